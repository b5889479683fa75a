import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliPath, repoRoot, runCli } from './support/run-cli.ts';
import { distributedConfigWriter } from './support/distributed-config.ts';
import { synthesizeTinyData } from './support/tiny-data.ts';
import { startRedis, type RedisServer } from './support/redis-server.ts';
import { startWorker, type WorkerProcess } from './support/worker-process.ts';

/**
 * Faults of a distributed search on a real redis-server: a worker SIGKILLed mid-trial, the chief
 * SIGKILLed and restarted, Redis stopped and started again. Each search must end with the trials
 * and histories of a local run, every epoch trained once.
 */

const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-distributed-faults-'));
let redis: RedisServer;
const workers: WorkerProcess[] = [];
const configWithDir = distributedConfigWriter(root, { maxTrials: 3, epochs: 4 });

interface Epoch {
  epoch: number;
  loss: number;
  accuracy: number;
  val_loss: number;
  val_accuracy: number;
  worker?: string;
}
interface TrialFile {
  id: string;
  values: Record<string, unknown>;
  status: string;
  metrics: Epoch[];
}

function trialFile(dir: string, id: string): TrialFile | null {
  const file = path.join(root, dir, `trial_${id}`, 'trial.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as TrialFile) : null;
}

function trials(dir: string): TrialFile[] {
  const oracle = JSON.parse(readFileSync(path.join(root, dir, 'oracle.json'), 'utf8')) as {
    state: { trials: { id: string }[] };
  };
  return oracle.state.trials.map((t) => trialFile(dir, t.id)!);
}

function comparable(list: TrialFile[]) {
  return list.map((t) => ({
    id: t.id,
    values: t.values,
    status: t.status,
    history: t.metrics.map((m) => ({
      epoch: m.epoch,
      loss: m.loss,
      accuracy: m.accuracy,
      val_loss: m.val_loss,
      val_accuracy: m.val_accuracy,
    })),
  }));
}

function worker(config: string): WorkerProcess {
  const w = startWorker(['--queue', redis.url, '--config', config, '--backend', 'wasm', '--lease-seconds', '3']);
  workers.push(w);
  return w;
}

function pidOf(w: WorkerProcess): string {
  return `${os.hostname()}:${w.child.pid}`;
}

/** A chief in the background: its stderr, a way to wait on it, its exit. */
function startChief(config: string) {
  const child = spawn(
    process.execPath,
    [cliPath, 'tune', '--config', config, '--backend', 'wasm', '--queue', redis.url],
    { cwd: repoRoot, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, stderr: () => stderr };
}

async function until(condition: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

before(async () => {
  redis = await startRedis();
  await synthesizeTinyData(root);
  const local = await runCli(['tune', '--config', configWithDir('tuning-local'), '--backend', 'wasm']);
  assert.equal(local.code, 0, local.stderr);
});

after(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('distributed search faults', () => {
  it("a worker SIGKILLed during a trial's second epoch: the other worker resumes that trial from its checkpoint", async () => {
    const dir = 'tuning-worker-killed';
    const config = configWithDir(dir);
    const doomed = worker(config);
    await doomed.waitFor(/serving the random search/);
    const chief = startChief(config);
    // the doomed worker is alone, so it takes trial 0000; kill it once epoch 1 is saved
    await until(() => (trialFile(dir, '0000')?.metrics.length ?? 0) >= 1, 'epoch 1 of trial 0000');
    doomed.child.kill('SIGKILL');
    assert.equal((await doomed.exited).signal, 'SIGKILL');
    const killedAfter = trialFile(dir, '0000')!.metrics.length;
    assert.ok(killedAfter >= 1 && killedAfter < 4, `epochs saved when killed: ${killedAfter}`);
    const survivor = worker(config);
    assert.equal((await chief.exited).code, 0, chief.stderr());
    await survivor.waitFor(/trial 0000: resuming from epoch \d on/);

    const killedTrial = trialFile(dir, '0000')!;
    assert.deepEqual(
      killedTrial.metrics.map((m) => m.epoch),
      [1, 2, 3, 4],
      'every epoch trained exactly once',
    );
    assert.deepEqual(
      killedTrial.metrics.map((m) => m.worker),
      [...Array(killedAfter).fill(pidOf(doomed)), ...Array(4 - killedAfter).fill(pidOf(survivor))],
    );
    assert.match(survivor.stderr(), new RegExp(`trial 0000: resuming from epoch ${killedAfter} on`));
    assert.deepEqual(comparable(trials(dir)), comparable(trials('tuning-local')));
    assert.equal(await survivor.stop(), 130);
  });

  it('the chief SIGKILLed and restarted: the search completes with the same result, no trial rerun', async () => {
    const dir = 'tuning-chief-killed';
    const config = configWithDir(dir);
    const pair = [worker(config), worker(config)];
    await Promise.all(pair.map((w) => w.waitFor(/serving the random search/)));
    const first = startChief(config);
    await until(
      () => /trial 0000: val_accuracy|trial 0001: val_accuracy/.test(first.stderr()),
      'a first finished trial',
    );
    first.child.kill('SIGKILL');
    assert.equal((await first.exited).signal, 'SIGKILL');
    const second = await runCli(['tune', '--config', config, '--backend', 'wasm', '--queue', redis.url, '--json']);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /taking over the stale tuner lock/);
    assert.equal(JSON.parse(second.stdout).completed, 3);
    assert.deepEqual(comparable(trials(dir)), comparable(trials('tuning-local')));
    for (const id of ['0000', '0001', '0002']) {
      const starts = pair
        .map((w) => w.stderr().split(`trial ${id}: starting on`).length - 1)
        .reduce((a, b) => a + b, 0);
      assert.equal(starts, 1, `trial ${id} started once`);
    }
    assert.deepEqual(await Promise.all(pair.map((w) => w.stop())), [130, 130]);
  });

  it('Redis stopped during a search: a clear message, then the search resumes when Redis is back', async () => {
    const dir = 'tuning-redis-stopped';
    const config = configWithDir(dir);
    const pair = [worker(config), worker(config)];
    await Promise.all(pair.map((w) => w.waitFor(/serving the random search/)));
    const chief = startChief(config);
    await until(() => (trialFile(dir, '0000')?.metrics.length ?? 0) >= 1, 'epoch 1 of trial 0000');
    await redis.halt();
    await until(
      () =>
        /lost the connection to Redis at redis:\/\/127\.0\.0\.1:\d+ \(.+\); the workers keep training/.test(
          chief.stderr(),
        ),
      "the chief's message",
    );
    await redis.restart();
    const exit = await chief.exited;
    assert.equal(exit.code, 0, chief.stderr());
    assert.match(chief.stderr(), /Redis at redis:\/\/127\.0\.0\.1:\d+ is back; continuing/);
    assert.deepEqual(comparable(trials(dir)), comparable(trials('tuning-local')));
    for (const t of trials(dir))
      assert.deepEqual(
        t.metrics.map((m) => m.epoch),
        [1, 2, 3, 4],
      );
    assert.deepEqual(await Promise.all(pair.map((w) => w.stop())), [130, 130]);
  });
});
