import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from './support/run-cli.ts';

/** `galactic tune` end to end on 32x32 synthetic images: 2 trials of 2 epochs on a tiny space. */

const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-tune-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));
const configFile = path.join(root, 'tune.config.json');

before(async () => {
  const synth = await runCli(['synth', '--out', path.join(root, 'data'), '--count', '48', '--size', '32', '--seed', '5']);
  assert.equal(synth.code, 0, synth.stderr);
  writeFileSync(configFile, JSON.stringify({
    data: { csv: 'data/galaxy_df_final.csv', imageDir: 'data/images' },
    image: { width: 32, height: 32 },
    cache: { dir: 'cache' },
    memory: { limitMB: 2048 },
    train: { batchSize: 16 },
    model: { filters: [4, 8, 8], denseUnits: 8 },
    tuner: {
      maxTrials: 2, epochs: 2, patience: 2, dir: 'tuning',
      space: {
        filters_1: { type: 'choice', values: [4, 8] },
        dense_units: { type: 'int', min: 8, max: 16, step: 8 },
        learning_rate: { type: 'float', min: 0.001, max: 0.01, sampling: 'log' },
      },
    },
  }));
});

describe('galactic tune', () => {
  it('prints a leaderboard, writes best_hp.json and one --json summary', async () => {
    const result = await runCli(['tune', '--config', configFile, '--json', '--backend', 'wasm']);
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout);
    for (const key of ['tuningDir', 'algorithm', 'trials', 'completed', 'failed', 'infeasible', 'best', 'leaderboard', 'seconds', 'peakRssMB', 'limitMB']) {
      assert.ok(key in summary, key);
    }
    assert.equal(summary.trials, 2);
    assert.equal(summary.completed, 2);
    assert.equal(summary.limitMB, 2048);
    assert.match(result.stderr, /rank\s+trial\s+val_accuracy/);
    const best = JSON.parse(readFileSync(path.join(root, 'tuning', 'best_hp.json'), 'utf8'));
    assert.deepEqual(best, { values: summary.best.values, score: summary.best.score, trialId: summary.best.trialId, objective: 'val_accuracy' });
  });

  it('refuses the folder for another search, naming --overwrite', async () => {
    const result = await runCli(['tune', '--config', configFile, '--algorithm', 'hyperband', '--backend', 'wasm']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /holds a different search \(algorithm was "random", now "hyperband"/);
    assert.match(result.stderr, /--overwrite/);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  });

  it('rejects an unknown algorithm as a usage error', async () => {
    const result = await runCli(['tune', '--config', configFile, '--algorithm', 'bayesian']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--algorithm must be one of random, hyperband/);
  });
});
