import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import { cliPath, repoRoot, runCli } from './support/run-cli.ts';
import { distributedConfigWriter } from './support/distributed-config.ts';
import { synthesizeTinyData } from './support/tiny-data.ts';
import { startRedis, type RedisServer } from './support/redis-server.ts';
import { startWorker, type WorkerProcess } from './support/worker-process.ts';

/**
 * Distributed tuning end to end on a real redis-server (127.0.0.1, a free port): a chief
 * (`galactic tune --queue`) and worker processes (`galactic worker`) on 32x32 synthetic images,
 * compared with a local `galactic tune` of the same search.
 */

const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-distributed-'));
let redis: RedisServer;
const workers: WorkerProcess[] = [];
const configWithDir = distributedConfigWriter(root, { maxTrials: 4, epochs: 3 });

interface TrialFile {
  id: string;
  values: Record<string, unknown>;
  status: string;
  metrics: { epoch: number; loss: number; accuracy: number; val_loss: number; val_accuracy: number; worker?: string }[];
}

function trials(dir: string): TrialFile[] {
  const oracle = JSON.parse(readFileSync(path.join(root, dir, 'oracle.json'), 'utf8')) as {
    state: { trials: { id: string }[] };
  };
  return oracle.state.trials.map(
    (t) => JSON.parse(readFileSync(path.join(root, dir, `trial_${t.id}`, 'trial.json'), 'utf8')) as TrialFile,
  );
}

/** What must equal a local run's: ids, values, status and every epoch's numbers (not timings, not who ran it). */
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

function worker(config: string, extra: string[] = []): WorkerProcess {
  const w = startWorker([
    '--queue',
    redis.url,
    '--config',
    config,
    '--backend',
    'wasm',
    '--lease-seconds',
    '3',
    ...extra,
  ]);
  workers.push(w);
  return w;
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

describe('galactic tune --queue with galactic worker', () => {
  it("chief + 2 worker processes run a 4-trial RandomSearch: the trial set and each history equal a local run's", async () => {
    const config = configWithDir('tuning-two');
    const pair = [worker(config), worker(config)];
    await Promise.all(pair.map((w) => w.waitFor(/serving the random search/)));
    const chief = await runCli(['tune', '--config', config, '--backend', 'wasm', '--queue', redis.url, '--json']);
    assert.equal(chief.code, 0, chief.stderr);
    const summary = JSON.parse(chief.stdout);
    assert.equal(summary.trials, 4);
    assert.equal(summary.completed, 4);
    assert.equal(summary.queue.handoffMs.length, 4);
    assert.deepEqual(comparable(trials('tuning-two')), comparable(trials('tuning-local')));
    // every epoch says which worker trained it, and only these two did
    const names = new Set(trials('tuning-two').flatMap((t) => t.metrics.map((m) => m.worker)));
    for (const name of names) assert.match(String(name), /^.+:\d+$/);
    assert.ok(names.size >= 1 && names.size <= 2, [...names].join(', '));
    assert.deepEqual(
      JSON.parse(readFileSync(path.join(root, 'tuning-two', 'best_hp.json'), 'utf8')),
      JSON.parse(readFileSync(path.join(root, 'tuning-local', 'best_hp.json'), 'utf8')),
    );

    const status = await runCli(['queue', 'status', '--queue', redis.url]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(
      status.stdout,
      /galactic-tune-[0-9a-f]{16}: 0 waiting, 0 active, 0 delayed, 4 completed, 0 failed; 2 worker\(s\)/,
    );
    assert.match(status.stdout, /\n {2}worker .+:\d+ \(127\.0\.0\.1:\d+\), idle \d+ s/);

    // SIGTERM on an idle worker: a clean stop with the CLI's interrupt code
    assert.deepEqual(await Promise.all(pair.map((w) => w.stop())), [130, 130]);
  });

  it('the same search again in a new tuner.dir: the finished jobs left on its queue are replaced at once, no warning', async () => {
    // same seed and space as 'tuning-two': the same search key, so the same queue and job ids
    const config = configWithDir('tuning-again');
    const again = worker(config);
    await again.waitFor(/serving the random search/);
    const chief = await runCli(['tune', '--config', config, '--backend', 'wasm', '--queue', redis.url, '--json']);
    assert.equal(chief.code, 0, chief.stderr);
    assert.equal(JSON.parse(chief.stdout).completed, 4);
    for (const id of ['0000', '0001', '0002', '0003'])
      assert.ok(
        chief.stderr.includes(
          `trial ${id}: replacing the queue's finished job of this search from ${path.join(root, 'tuning-two')}`,
        ),
        chief.stderr,
      );
    assert.doesNotMatch(chief.stderr, /warning/);
    assert.deepEqual(comparable(trials('tuning-again')), comparable(trials('tuning-local')));
    assert.equal(await again.stop(), 130);
  });

  it('a worker that cannot see the tuning folder the chief wrote gives the job back and stops, saying so', async () => {
    // another seed: another search, so its own queue
    const chiefConfig = configWithDir('tuning-shared', { seed: 7 });
    const lone = worker(configWithDir('tuning-elsewhere', { seed: 7 }));
    await lone.waitFor(/serving the random search/);
    const chief = spawn(
      process.execPath,
      [cliPath, 'tune', '--config', chiefConfig, '--backend', 'wasm', '--queue', redis.url],
      { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let chiefErr = '';
    chief.stderr.on('data', (d: Buffer) => (chiefErr += d.toString()));
    const chiefExit = new Promise<number | null>((resolve) => chief.on('exit', (code) => resolve(code)));
    assert.equal((await lone.exited).code, 1, lone.stderr());
    assert.match(
      lone.stderr(),
      /galactic: this worker cannot see the tuning folder the chief wrote: oracle\.json is missing in \S*tuning-elsewhere \(the chief on \S+ uses \S*tuning-shared\)\. tuner\.dir must be one folder every worker and the chief share/,
    );
    assert.doesNotMatch(lone.stderr(), /\n\s+at /, 'no stack trace');
    const status = await runCli(['queue', 'status', '--queue', redis.url]);
    assert.match(
      status.stdout,
      /: 1 waiting, 0 active, 0 delayed, 0 completed, 0 failed; 0 worker\(s\)/,
      'the job is back on the queue',
    );
    chief.kill('SIGTERM');
    assert.equal(await chiefExit, 130, chiefErr);
    assert.match(chiefErr, /the chief stopped; trial\(s\) 0000 stay on the queue and keep running on the workers/);
  });

  it('refuses a Redis that does not answer, naming the URL, before any work', async () => {
    const config = configWithDir('tuning-unreachable');
    const chief = await runCli(['tune', '--config', config, '--backend', 'wasm', '--queue', 'redis://127.0.0.1:1']);
    assert.equal(chief.code, 1);
    assert.match(
      chief.stderr,
      /galactic: cannot reach Redis at redis:\/\/127\.0\.0\.1:1 \(connect ECONNREFUSED 127\.0\.0\.1:1\)\. Start it/,
    );
    assert.doesNotMatch(chief.stderr, /\n\s+at /, 'no stack trace');
    const lone = await runCli(['worker', '--config', config, '--queue', 'redis://127.0.0.1:1']);
    assert.equal(lone.code, 1);
    assert.match(lone.stderr, /cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
  });

  it('rejects a --queue that is not a Redis URL as a usage error', async () => {
    const result = await runCli(['worker', '--config', configWithDir('tuning-x'), '--queue', 'http://127.0.0.1:6379']);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /--queue must be a Redis URL such as redis:\/\/127\.0\.0\.1:6379 \(got 'http:\/\/127\.0\.0\.1:6379': the scheme must be redis:\/\/ or rediss:\/\/\)/,
    );
  });
});
