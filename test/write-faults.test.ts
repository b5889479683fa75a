import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from './support/run-cli.ts';

/**
 * A disk that refuses a write (full, over quota, read-only, no permission) mid-command, injected
 * through the one atomic-write module's test seam (GALACTIC_TEST_WRITE_FAULT): one clear message
 * naming the file, no stack trace, the last good file intact, no temp file left, and a rerun
 * without the fault finishes the job.
 */

const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-write-faults-'));
after(() => rmSync(root, { recursive: true, force: true }));
const configFile = path.join(root, 'faults.config.json');

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String);
}

before(async () => {
  const synth = await runCli([
    'synth',
    '--out',
    path.join(root, 'data'),
    '--count',
    '40',
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
      cache: { dir: 'cache', shardImages: 8 },
      memory: { limitMB: 2048 },
      train: { batchSize: 8 },
      model: { filters: [4, 4, 4], denseUnits: 8 },
      tuner: {
        maxTrials: 1,
        epochs: 3,
        patience: null,
        dir: 'tuning',
        space: { dense_units: { type: 'choice', values: [8] } },
      },
    }),
  );
});

describe('a refused write', () => {
  it('prepare: ENOSPC on the third manifest write leaves the second manifest, no temp file; a rerun completes', async () => {
    const failed = await runCli(['prepare', '--config', configFile], {
      env: { GALACTIC_TEST_WRITE_FAULT: 'manifest.json:ENOSPC:3' },
    });
    assert.equal(failed.code, 1, failed.stderr);
    const cacheDir = path.join(root, 'cache', readdirSync(path.join(root, 'cache'))[0]);
    const manifestFile = path.join(cacheDir, 'manifest.json');
    assert.match(
      failed.stderr,
      new RegExp(
        `galactic: could not write ${manifestFile.replace(/[.]/g, '\\.')} \\(ENOSPC\\): no space left on the device\\. Free disk space on the device holding ${cacheDir}`,
      ),
    );
    assert.match(
      failed.stderr,
      /then run 'galactic prepare' again: it resumes after the last complete shard\. Its previous version, if any, is unchanged\.\n$/,
    );
    assert.doesNotMatch(failed.stderr, /\n\s+at /, 'no stack trace');
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { complete: boolean; shards: unknown[] };
    assert.equal(manifest.complete, false);
    assert.equal(manifest.shards.length, 2, 'the last manifest written before the fault');
    assert.deepEqual(
      filesUnder(cacheDir).filter((f) => f.endsWith('.tmp')),
      [],
      'no temp file left',
    );

    const rerun = await runCli(['prepare', '--config', configFile, '--json']);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.equal((JSON.parse(rerun.stdout) as { images: number }).images, 40);
  });

  it('tune: EROFS on a trial.json write keeps the previous trial.json, no temp file, no stack', async () => {
    const failed = await runCli(['tune', '--config', configFile, '--backend', 'wasm'], {
      env: { GALACTIC_TEST_WRITE_FAULT: 'trial.json:EROFS:3' },
    });
    assert.equal(failed.code, 1, failed.stderr);
    const trialFile = path.join(root, 'tuning', 'trial_0000', 'trial.json');
    assert.match(
      failed.stderr,
      new RegExp(
        `galactic: could not write ${trialFile.replace(/[.]/g, '\\.')} \\(EROFS\\): the file system is read-only\\.`,
      ),
    );
    assert.match(failed.stderr, /the search resumes from the last epoch saved/);
    assert.doesNotMatch(failed.stderr, /\n\s+at /, 'no stack trace');
    const trial = JSON.parse(readFileSync(trialFile, 'utf8')) as { status: string; metrics: unknown[] };
    assert.equal(trial.status, 'RUNNING');
    assert.equal(trial.metrics.length, 1, 'the trial.json of epoch 1 (the second write)');
    assert.deepEqual(
      filesUnder(path.join(root, 'tuning')).filter((f) => f.endsWith('.tmp')),
      [],
      'no temp file or folder left',
    );

    const rerun = await runCli(['tune', '--config', configFile, '--backend', 'wasm', '--json']);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.equal((JSON.parse(rerun.stdout) as { completed: number }).completed, 1);
  });
});
