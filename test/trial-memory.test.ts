import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import type { TrialMemoryRun } from '../src/bench/trial-memory.ts';
import { testEachBackend } from './support/backends.ts';
import { repoRoot, runCli } from './support/run-cli.ts';

/**
 * Issue 13 item 12: the per-trial memory estimate covers the measured peak. A child process runs a
 * real search as `galactic tune` does (the time plan's timed steps of the space's cheapest and
 * dearest models, then the trials with validation, a checkpoint and a best copy each), with a large
 * model first, so the later, smaller trials run in a process that already holds its memory. Each
 * trial's peak RSS (VmHWM, reset at its start) must be at most its estimate, and the estimate not
 * more than twice the peak.
 */

const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-trial-memory-'));
after(() => rmSync(root, { recursive: true, force: true }));
const configFile = path.join(root, 'config.json');
const child = path.join(repoRoot, 'test', 'support', 'trial-memory-child.ts');

const TRIALS = [
  { filters_1: 64, filters_2: 128, filters_3: 256, dense_units: 256, learning_rate: 0.001 },
  { filters_1: 8, filters_2: 16, filters_3: 16, dense_units: 16, learning_rate: 0.001 },
  { filters_1: 32, filters_2: 64, filters_3: 64, dense_units: 64, learning_rate: 0.001 },
];

before(async () => {
  const synth = await runCli([
    'synth',
    '--out',
    path.join(root, 'data'),
    '--count',
    '96',
    '--size',
    '32',
    '--seed',
    '3',
  ]);
  assert.equal(synth.code, 0, synth.stderr);
  writeFileSync(
    configFile,
    JSON.stringify({
      data: { csv: 'data/galaxy_df_final.csv', imageDir: 'data/images' },
      image: { width: 32, height: 32 },
      cache: { dir: 'cache' },
      train: { batchSize: 32 },
      tuner: {
        epochs: 1,
        dir: 'tuning',
        space: {
          filters_1: { type: 'int', min: 8, max: 64, step: 8 },
          filters_2: { type: 'int', min: 16, max: 128, step: 16 },
          filters_3: { type: 'int', min: 16, max: 256, step: 16 },
          dense_units: { type: 'int', min: 16, max: 256, step: 16 },
        },
      },
    }),
  );
});

testEachBackend('each trial of a search peaks within its memory estimate (large model first)', (backend) => {
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', child, configFile, backend, JSON.stringify(TRIALS), '1'],
    {
      cwd: repoRoot,
      encoding: 'utf8',
      // the time plan measures its rates afresh, as on a first run
      env: { ...process.env, XDG_CACHE_HOME: path.join(root, `xdg-${backend}`), TF_CPP_MIN_LOG_LEVEL: '2' },
    },
  );
  assert.equal(result.status, 0, result.stderr);
  const run = JSON.parse(result.stdout.trim().split('\n').pop()!) as TrialMemoryRun;
  assert.equal(run.backend, backend);
  assert.equal(run.rows.length, TRIALS.length);
  for (const row of run.rows) {
    const line = `trial ${row.trialId} (${row.parameters} params): estimate ${row.estimateMB} MB, peak ${row.peakRssMB} MB (started at ${row.startRssMB} MB)`;
    console.log(`[${backend}] ${line}`);
    assert.equal(row.status, 'completed', line);
    assert.ok(row.peakRssMB <= row.estimateMB, `peak above the estimate: ${line}; ${JSON.stringify(row.components)}`);
    assert.ok(
      row.estimateMB <= 2 * row.peakRssMB,
      `estimate over twice the peak: ${line}; ${JSON.stringify(row.components)}`,
    );
  }
});
