import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { acquireTunerLock, TunerLockedError } from '../src/tune/tuner-lock.ts';
import { TuningDirMismatchError } from '../src/tune/search-setup.ts';
import { LOCK_FILE, TuningDirNotWritableError, type TrialRecord } from '../src/tune/trial-store.ts';
import { runTuner, TooManyFailuresError, TuneInterruptedError, type TuneSummary } from '../src/tune/tuner.ts';
import { FakeTrialRunner, type FakeFault } from './support/fake-trial-runner.ts';
import { captureOutput, fakeTunerOptions, type FakeTunerSetup } from './support/fake-tuner.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-tune-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshDir = () => path.join(root, `t${counter++}`);

function trials(dir: string): TrialRecord[] {
  return readdirSync(dir)
    .filter((e) => e.startsWith('trial_'))
    .sort()
    .map((e) => JSON.parse(readFileSync(path.join(dir, e, 'trial.json'), 'utf8')) as TrialRecord);
}

/** What must be identical between an interrupted and an uninterrupted search. */
function essence(dir: string) {
  return trials(dir).map((t) => ({
    id: t.id,
    values: t.values,
    status: t.status,
    metrics: t.metrics,
    score: t.score,
    bestEpoch: t.bestEpoch,
    parentId: t.parentId,
  }));
}

async function tune(
  setup: Omit<FakeTunerSetup, 'runner'> & {
    runner?: FakeTrialRunner;
    fault?: (id: string, epoch: number) => FakeFault;
  },
) {
  const runner = setup.runner ?? new FakeTrialRunner({ fault: setup.fault });
  const { output, text } = captureOutput();
  const summary = await runTuner(fakeTunerOptions({ ...setup, runner }, output));
  return { summary, runner, text: text() };
}

describe('tuner with a fake trial runner', () => {
  it('runs maxTrials trials, persists them and writes best_hp.json and a leaderboard', async () => {
    const dir = freshDir();
    const { summary } = await tune({ dir, maxTrials: 5 });
    assert.equal(summary.trials, 5);
    assert.equal(summary.completed, 5);
    const records = trials(dir);
    assert.equal(records.length, 5);
    for (const r of records) {
      assert.equal(r.status, 'COMPLETED');
      assert.ok(r.metrics.length >= 1 && r.metrics.length <= 6);
      assert.equal(r.score, Math.max(...r.metrics.map((m) => m.val_accuracy)));
      assert.equal(r.checkpoint, null, 'the latest checkpoint is dropped once the trial is done');
      assert.ok(r.bestCheckpoint && existsSync(path.join(dir, `trial_${r.id}`, r.bestCheckpoint)));
    }
    const best = JSON.parse(readFileSync(path.join(dir, 'best_hp.json'), 'utf8'));
    const top = [...records].sort((a, b) => (b.score ?? 0) - (a.score ?? 0))[0];
    assert.deepEqual(best, { values: top.values, score: top.score, trialId: top.id, objective: 'val_accuracy' });
    assert.deepEqual(
      summary.leaderboard.map((e) => e.score),
      [...records.map((r) => r.score)].sort((a, b) => (b ?? 0) - (a ?? 0)),
    );
    assert.ok(existsSync(path.join(dir, 'oracle.json')));
    assert.ok(!existsSync(path.join(dir, LOCK_FILE)), 'lock released');
  });

  it('early-stops a trial once val_loss has not improved for `patience` epochs', async () => {
    const dir = freshDir();
    await tune({ dir, maxTrials: 6, epochs: 12, patience: 2 });
    const records = trials(dir);
    assert.ok(
      records.some((r) => r.metrics.length < 12),
      'some trial stopped early',
    );
    for (const r of records) {
      const losses = r.metrics.map((m) => m.val_loss);
      const bestIndex = losses.indexOf(Math.min(...losses));
      if (r.metrics.length < 12) assert.equal(r.metrics.length - 1 - bestIndex, 2);
    }
  });

  it('a rerun of a finished search runs nothing again', async () => {
    const dir = freshDir();
    await tune({ dir, maxTrials: 3 });
    const again = await tune({ dir, maxTrials: 3 });
    assert.equal(again.runner.starts.length, 0);
    assert.equal(again.summary.ranNow, 0);
    assert.equal(again.summary.completed, 3);
  });

  for (const algorithm of ['random', 'hyperband'] as const) {
    it(`${algorithm}: a search killed mid-trial resumes that trial from its last epoch and ends with the same trials`, async () => {
      const epochs = algorithm === 'hyperband' ? 9 : 6;
      const maxTrials = algorithm === 'hyperband' ? undefined : 6;
      const reference = freshDir();
      const whole = await tune({ dir: reference, algorithm, epochs, maxTrials });

      // Hyperband: kill inside a promoted trial, so resume must keep its parent link and epochs.
      const victim =
        algorithm === 'hyperband'
          ? trials(reference).findIndex((t) => t.parentId !== null && t.metrics.length >= 2)
          : 2;
      assert.ok(victim >= 0);
      const victimId = String(victim).padStart(4, '0');
      const victimRecord = trials(reference)[victim];
      assert.ok(victimRecord.metrics.length >= 2, 'the victim trial trains at least two epochs');
      // killed while training its second epoch: one finished epoch must survive
      const killEpoch = victimRecord.initialEpoch + 1;

      const dir = freshDir();
      let hung = false;
      const first = new FakeTrialRunner({
        fault: (id, epoch) => (id === victimId && epoch === killEpoch ? 'hang' : null),
        onHang: () => (hung = true),
      });
      const { output } = captureOutput();
      void runTuner(fakeTunerOptions({ dir, runner: first, algorithm, epochs, maxTrials }, output));
      while (!hung) await new Promise((r) => setTimeout(r, 5));
      // The "dead" process leaves its lock behind; our pid is alive, so remove it as a dead holder's would be taken
      // over.
      rmSync(path.join(dir, LOCK_FILE));

      const second = await tune({ dir, algorithm, epochs, maxTrials });
      assert.deepEqual(
        second.runner.starts[0],
        {
          trialId: victimId,
          initialEpoch: killEpoch,
          checkpointEpoch: killEpoch,
          checkpointTrial: victimId,
        },
        'resumed from the last finished epoch with its checkpoint, not from epoch 0',
      );
      assert.deepEqual(
        [...first.epochsRun, ...second.runner.epochsRun],
        whole.runner.epochsRun,
        'every epoch trained exactly once, in the same order',
      );
      assert.deepEqual(essence(dir), essence(reference));
      assert.deepEqual(
        stripTimes(second.summary),
        stripTimes(whole.summary, second.summary.tuningDir, second.summary.ranNow),
      );
    });
  }

  it('hyperband promotes from the parent best checkpoint with initialEpoch = previous round epochs', async () => {
    const dir = freshDir();
    const { runner } = await tune({ dir, algorithm: 'hyperband', epochs: 9, patience: null });
    const records = trials(dir);
    const promoted = records.filter((r) => r.parentId !== null);
    assert.ok(promoted.length > 0);
    for (const r of promoted) {
      const start = runner.starts.find((s) => s.trialId === r.id)!;
      const parent = records.find((p) => p.id === r.parentId)!;
      assert.equal(start.checkpointTrial, parent.id);
      assert.equal(start.checkpointEpoch, parent.bestEpoch, 'continues from the parent best epoch weights');
      assert.equal(start.initialEpoch, r.initialEpoch);
      assert.equal(r.initialEpoch, parent.epochs);
    }
  });

  it('records a trial that does not fit the budget as INFEASIBLE with its estimate and goes on', async () => {
    const dir = freshDir();
    const { summary, runner } = await tune({
      dir,
      maxTrials: 6,
      limitMB: 500,
      estimateMB: (values) => ((values.filters_1 as number) >= 48 ? 900 : 200),
    });
    const records = trials(dir);
    const infeasible = records.filter((r) => r.status === 'INFEASIBLE');
    assert.ok(infeasible.length > 0 && infeasible.length < 6, `infeasible: ${infeasible.length}`);
    for (const r of infeasible) {
      assert.equal(r.estimateMB, 900);
      assert.match(r.reason!, /900 MB exceeds memory.limitMB 500/);
      assert.ok(!runner.starts.some((s) => s.trialId === r.id), 'an infeasible trial never builds a model');
    }
    assert.equal(summary.infeasible, infeasible.length);
    assert.equal(summary.completed + summary.infeasible, 6);
  });

  it('records a trial the backend cannot hold as INFEASIBLE with the backend reason', async () => {
    const options = fakeTunerOptions({ dir: freshDir(), runner: new FakeTrialRunner(), maxTrials: 6 });
    const result = await runTuner({
      ...options,
      estimate: (values) => ({
        estimateMB: 100,
        refusal: (values.filters_1 as number) >= 48 ? 'beyond the heap' : null,
      }),
    });
    const records = trials(options.dir);
    assert.ok(records.some((r) => r.status === 'INFEASIBLE' && r.reason === 'beyond the heap'));
    assert.equal(result.infeasible, records.filter((r) => (r.values.filters_1 as number) >= 48).length);
  });

  it('a NaN loss is FAILED, an out-of-memory trial INFEASIBLE, a transient failure retried; the search goes on', async () => {
    const dir = freshDir();
    let transient = 0;
    const { summary, text } = await tune({
      dir,
      maxTrials: 5,
      fault: (id, epoch) => {
        if (id === '0001' && epoch === 1) return 'nan';
        if (id === '0002' && epoch === 0) return 'oom';
        if (id === '0003' && epoch === 1 && transient++ < 2) return 'transient';
        return null;
      },
    });
    const records = trials(dir);
    assert.equal(records[1].status, 'FAILED');
    assert.match(records[1].reason!, /loss became NaN at epoch 2/);
    assert.equal(records[2].status, 'INFEASIBLE');
    assert.match(records[2].reason!, /^does not fit: WebAssembly\.Memory\.grow\(\): Out of memory/);
    assert.equal(records[3].status, 'COMPLETED', 'retried twice from its last saved epoch, then completed');
    assert.equal(transient, 3);
    assert.match(
      text,
      /trial 0003: simulated EMFILE in trial 0003 at epoch 1 \(a transient failure\); retrying from its last saved epoch \(2 of 2\)/,
    );
    assert.equal(summary.completed, 3);
    assert.equal(summary.failed, 1);
    assert.equal(summary.infeasible, 1);
  });

  it('a bug in a trial stops the search with its stack, kept in trial.json; the rerun retries that trial', async () => {
    const dir = freshDir();
    await assert.rejects(
      tune({ dir, maxTrials: 3, fault: (id, epoch) => (id === '0001' && epoch === 1 ? 'throw' : null) }),
      (error: unknown) =>
        error instanceof TypeError && /simulated failure in trial 0001 at epoch 1/.test(error.message),
    );
    const broken = trials(dir)[1];
    assert.equal(broken.status, 'FAILED');
    assert.equal(broken.error?.name, 'TypeError');
    assert.match(broken.error?.stack ?? '', /TypeError: simulated failure[^]*\n\s+at /);
    const rerun = await tune({ dir, maxTrials: 3 });
    assert.equal(rerun.runner.starts[0].trialId, '0001');
    assert.equal(rerun.runner.starts[0].initialEpoch, 1, 'from its last saved epoch');
    assert.equal(rerun.summary.completed, 3);
    assert.equal(trials(dir)[1].error, undefined);
  });

  it('three consecutive failures stop the search with a clear message; a rerun continues', async () => {
    const dir = freshDir();
    await assert.rejects(
      tune({
        dir,
        maxTrials: 8,
        fault: (id, epoch) => (['0001', '0002', '0003'].includes(id) && epoch === 0 ? 'nan' : null),
      }),
      (error: unknown) =>
        error instanceof TooManyFailuresError && /3 trials failed in a row \(last: trial 0003/.test(error.message),
    );
    assert.deepEqual(
      trials(dir).map((t) => t.status),
      ['COMPLETED', 'FAILED', 'FAILED', 'FAILED'],
    );
    const rerun = await tune({ dir, maxTrials: 8 });
    assert.equal(rerun.summary.trials, 8);
    assert.equal(rerun.runner.starts[0].trialId, '0004', 'failed trials are not rerun');
  });

  it('an interrupt stops after the current epoch, saved as STOPPED, and the rerun resumes it', async () => {
    const dir = freshDir();
    const controller = new AbortController();
    const runner = new FakeTrialRunner({
      fault: (id, epoch) => {
        if (id === '0001' && epoch === 1) controller.abort();
        return null;
      },
    });
    await assert.rejects(tune({ dir, runner, maxTrials: 3, signal: controller.signal }), TuneInterruptedError);
    const stopped = trials(dir)[1];
    assert.equal(stopped.status, 'STOPPED');
    assert.equal(stopped.metrics.length, 2);
    const rerun = await tune({ dir, maxTrials: 3 });
    assert.equal(rerun.runner.starts[0].trialId, '0001');
    assert.equal(rerun.runner.starts[0].initialEpoch, 2);
    assert.equal(rerun.summary.completed, 3);
  });

  it('refuses a tuning folder made for another search and starts afresh with overwrite', async () => {
    const dir = freshDir();
    await tune({ dir, maxTrials: 2 });
    const otherSpace = { filters_1: { type: 'int', min: 8, max: 16, step: 8, sampling: 'linear' } };
    await assert.rejects(
      tune({ dir, maxTrials: 2, space: otherSpace }),
      (error: unknown) =>
        error instanceof TuningDirMismatchError &&
        /tuner\.space was/.test(error.message) &&
        /--overwrite/.test(error.message),
    );
    const fresh = await tune({ dir, maxTrials: 2, space: otherSpace, overwrite: true });
    assert.equal(fresh.summary.trials, 2);
    assert.ok(trials(dir).every((t) => Object.keys(t.values).join() === 'filters_1'));
  });
});

describe('tuning folder', () => {
  it('an unwritable tuner.dir is a clear error', async () => {
    const file = path.join(root, 'a-file');
    writeFileSync(file, 'not a folder');
    await assert.rejects(
      tune({ dir: path.join(file, 'tuning'), maxTrials: 1 }),
      (error: unknown) =>
        error instanceof TuningDirNotWritableError && /Set tuner.dir to a folder you can write to/.test(error.message),
    );
  });
});

describe('tuner lock', () => {
  it('refuses a second tuner on the same folder', async () => {
    const dir = freshDir();
    await tune({ dir, maxTrials: 1 });
    const lock = acquireTunerLock(dir);
    try {
      await assert.rejects(
        tune({ dir, maxTrials: 2 }),
        (error: unknown) =>
          error instanceof TunerLockedError &&
          error.message.includes(`process ${process.pid}`) &&
          error.message.includes('in use by another tuner'),
      );
    } finally {
      lock.release();
    }
    assert.ok(!existsSync(path.join(dir, LOCK_FILE)));
  });

  it('takes over a stale lock left by a dead process, with a warning', async () => {
    const dir = freshDir();
    await tune({ dir, maxTrials: 1 });
    const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid!;
    writeFileSync(
      path.join(dir, LOCK_FILE),
      JSON.stringify({ pid: dead, host: os.hostname(), startedAt: '2026-01-01T00:00:00.000Z' }),
    );
    const { summary, text } = await tune({ dir, maxTrials: 2 });
    assert.equal(summary.trials, 2);
    assert.match(text, new RegExp(`taking over the stale tuner lock .*process ${dead}`));
  });

  it('SIGKILL of a real tuner process: the rerun takes over its lock and finishes with the same trials', async () => {
    const child = fileURLToPath(new URL('./support/fake-tune-child.ts', import.meta.url));
    const run = (dir: string, env: Record<string, string> = {}) =>
      new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
        const p = spawn(process.execPath, ['--import', 'tsx', child, dir], {
          env: { ...process.env, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
      });
    const reference = freshDir();
    const whole = await run(reference);
    assert.equal(whole.code, 0, whole.stderr);
    const dir = freshDir();
    const killed = await run(dir, { KILL_AT: '0003@2' });
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok(existsSync(path.join(dir, LOCK_FILE)), 'the killed tuner left its lock');
    const resumed = await run(dir);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /taking over the stale tuner lock/);
    const parsed = JSON.parse(resumed.stdout) as { starts: { trialId: string; initialEpoch: number }[] };
    assert.deepEqual(parsed.starts[0], {
      trialId: '0003',
      initialEpoch: 2,
      checkpointEpoch: 2,
      checkpointTrial: '0003',
    });
    assert.deepEqual(essence(dir), essence(reference));
  });
});

/** Summaries compare equal apart from the folder and how many trials this invocation ran. */
function stripTimes(summary: TuneSummary, dir?: string, ranNow?: number): TuneSummary {
  return { ...summary, tuningDir: dir ?? summary.tuningDir, ranNow: ranNow ?? summary.ranNow };
}
