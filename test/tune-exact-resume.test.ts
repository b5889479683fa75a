import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CHECKPOINT_FILE } from '../src/model/checkpoint.ts';
import type { TrialRecord } from '../src/tune/trial-store.ts';
import { patternRecords, writeFixtureCache } from './support/fixture-cache.ts';
import { repoRoot } from './support/run-cli.ts';

/**
 * Issue 13 item 13: a tuning trial killed (SIGKILL) after any of its 4 epochs and resumed in a new
 * process reproduces the uninterrupted history bit for bit, and ends with the same weights and
 * Adam state. Tiny model (16x16, dropout on, so its RNG stream is covered) so it is fast.
 */

const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-exact-resume-'));
after(() => rmSync(root, { recursive: true, force: true }));
const cacheDir = path.join(root, 'cache');
const child = path.join(repoRoot, 'test', 'support', 'exact-resume-child.ts');

before(() => {
  writeFixtureCache(cacheDir, patternRecords(80, 16, 3), {
    classes: ['blob', 'bar', 'noise'],
    height: 16,
    width: 16,
    channels: 3,
    shardImages: 16,
  });
});

function runChild(
  tuningDir: string,
  backend: string,
  killAfter: number | null,
): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, NO_COLOR: '1', ...(killAfter !== null ? { KILL_AFTER: String(killAfter) } : {}) };
    if (killAfter === null) delete env.KILL_AFTER;
    const proc = spawn(process.execPath, ['--import', 'tsx', child, cacheDir, tuningDir, backend], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.on('error', reject);
    proc.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

const trial = (dir: string): TrialRecord =>
  JSON.parse(readFileSync(path.join(dir, 'trial_0000', 'trial.json'), 'utf8')) as TrialRecord;
/** The learned numbers of an epoch (time and RSS differ between runs by nature). */
const learned = (t: TrialRecord) =>
  t.metrics.map(({ epoch, loss, accuracy, val_loss, val_accuracy }) => ({
    epoch,
    loss,
    accuracy,
    val_loss,
    val_accuracy,
  }));

/** Weights + optimizer state bytes of the trial's best checkpoint. */
function bestState(dir: string): Buffer {
  const t = trial(dir);
  const folder = path.join(dir, 'trial_0000', t.bestCheckpoint!);
  const json = JSON.parse(readFileSync(path.join(folder, CHECKPOINT_FILE), 'utf8')) as { data: string };
  return readFileSync(path.join(folder, json.data));
}

for (const backend of ['wasm', 'cpu']) {
  describe(`exact resume on ${backend}`, () => {
    it('a trial killed after each of its 4 epochs in turn ends with the uninterrupted history and weights, bit for bit', async () => {
      const reference = path.join(root, `${backend}-reference`);
      const ref = await runChild(reference, backend, null);
      assert.equal(ref.code, 0, ref.stderr);

      const killed = path.join(root, `${backend}-killed`);
      for (const epoch of [1, 2, 3, 4]) {
        const run = await runChild(killed, backend, epoch);
        assert.equal(run.signal, 'SIGKILL', run.stderr);
        assert.equal(trial(killed).metrics.length, epoch);
        assert.equal(trial(killed).status, 'RUNNING');
        if (epoch > 1) assert.match(run.stderr, new RegExp(`trial 0000: resuming from epoch ${epoch - 1} of 4`));
      }
      const last = await runChild(killed, backend, null);
      assert.equal(last.code, 0, last.stderr);

      const want = trial(reference);
      const got = trial(killed);
      assert.equal(got.status, 'COMPLETED');
      assert.deepEqual(learned(got), learned(want));
      assert.equal(got.score, want.score);
      assert.equal(got.bestEpoch, want.bestEpoch);
      assert.ok(bestState(killed).equals(bestState(reference)), 'best checkpoint bytes differ');
      assert.deepEqual(
        readdirSync(path.join(killed, 'trial_0000')).sort(),
        readdirSync(path.join(reference, 'trial_0000')).sort(),
      );
    });
  });
}
