import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliPath, runCli } from './support/run-cli.ts';
import { synthesizeTinyData } from './support/tiny-data.ts';

/** `galactic tune` end to end on 32x32 synthetic images: 2 trials of 2 epochs on a tiny space. */

const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-tune-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));
const configFile = path.join(root, 'tune.config.json');

before(async () => {
  await synthesizeTinyData(root);
  writeFileSync(
    configFile,
    JSON.stringify({
      data: { csv: 'data/galaxy_df_final.csv', imageDir: 'data/images' },
      image: { width: 32, height: 32 },
      cache: { dir: 'cache' },
      memory: { limitMB: 2048 },
      train: { batchSize: 16 },
      model: { filters: [4, 8, 8], denseUnits: 8 },
      tuner: {
        maxTrials: 2,
        epochs: 2,
        patience: 2,
        dir: 'tuning',
        space: {
          filters_1: { type: 'choice', values: [4, 8] },
          dense_units: { type: 'int', min: 8, max: 16, step: 8 },
          learning_rate: { type: 'float', min: 0.001, max: 0.01, sampling: 'log' },
        },
      },
    }),
  );
});

describe('galactic tune', () => {
  it('prints a leaderboard, writes best_hp.json and one --json summary', async () => {
    const result = await runCli(['tune', '--config', configFile, '--json', '--backend', 'wasm']);
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout);
    for (const key of [
      'tuningDir',
      'algorithm',
      'trials',
      'completed',
      'failed',
      'infeasible',
      'best',
      'leaderboard',
      'seconds',
      'peakRssMB',
      'limitMB',
    ]) {
      assert.ok(key in summary, key);
    }
    assert.equal(summary.trials, 2);
    assert.equal(summary.completed, 2);
    assert.equal(summary.limitMB, 2048);
    assert.match(result.stderr, /rank\s+trial\s+val_accuracy/);
    const best = JSON.parse(readFileSync(path.join(root, 'tuning', 'best_hp.json'), 'utf8'));
    assert.deepEqual(best, {
      values: summary.best.values,
      score: summary.best.score,
      trialId: summary.best.trialId,
      objective: 'val_accuracy',
    });
  });

  it('refuses the folder for another search, naming --overwrite', async () => {
    const result = await runCli(['tune', '--config', configFile, '--algorithm', 'hyperband', '--backend', 'wasm']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /holds a different search \(algorithm was "random", now "hyperband"/);
    assert.match(result.stderr, /--overwrite/);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  });

  it('after SIGKILL mid-trial, a rerun takes over the lock, resumes that trial at its last epoch and ends with the same trials', async () => {
    const base = JSON.parse(readFileSync(configFile, 'utf8'));
    const withDir = (dir: string) => {
      const file = path.join(root, `${dir}.config.json`);
      writeFileSync(file, JSON.stringify({ ...base, tuner: { ...base.tuner, dir, epochs: 3, patience: null } }));
      return file;
    };
    const reference = await runCli(['tune', '--config', withDir('tuning-reference'), '--backend', 'wasm']);
    assert.equal(reference.code, 0, reference.stderr);

    const killedConfig = withDir('tuning-killed');
    const killed = await new Promise<{ signal: string | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [cliPath, 'tune', '--config', killedConfig, '--backend', 'wasm'], {
        env: { ...process.env, NO_COLOR: '1' },
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('trial 0001 epoch 2/3')) child.kill('SIGKILL');
      });
      child.on('close', (_code, signal) => resolve({ signal, stderr }));
    });
    assert.equal(killed.signal, 'SIGKILL', killed.stderr);
    const trialFile = (dir: string, id: string) =>
      JSON.parse(readFileSync(path.join(root, dir, `trial_${id}`, 'trial.json'), 'utf8'));
    // the kill lands while epoch 2 is being saved or after: the last saved epoch is 1 or 2
    const saved = (trialFile('tuning-killed', '0001').metrics as unknown[]).length;
    assert.ok(saved >= 1 && saved <= 2, `saved epochs: ${saved}`);
    const resumed = await runCli(['tune', '--config', killedConfig, '--backend', 'wasm']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /taking over the stale tuner lock/);
    assert.match(resumed.stderr, new RegExp(`trial 0001: resuming from epoch ${saved} of 3`));
    assert.doesNotMatch(resumed.stderr, /trial 0000 epoch/, 'a completed trial is never rerun');
    for (const id of ['0000', '0001']) {
      assert.deepEqual(trialFile('tuning-killed', id).values, trialFile('tuning-reference', id).values);
      assert.deepEqual(
        trialFile('tuning-killed', id).metrics.map((m: { epoch: number }) => m.epoch),
        [1, 2, 3],
      );
    }
  });

  it('rejects an unknown algorithm as a usage error', async () => {
    const result = await runCli(['tune', '--config', configFile, '--algorithm', 'grid']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--algorithm must be one of random, hyperband, bayesian/);
  });
});
