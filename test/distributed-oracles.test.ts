import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from './support/run-cli.ts';
import { distributedConfigWriter } from './support/distributed-config.ts';
import { synthesizeTinyData } from './support/tiny-data.ts';
import { startRedis, type RedisServer } from './support/redis-server.ts';
import { startWorker, type WorkerProcess } from './support/worker-process.ts';

/**
 * Hyperband and Bayesian search over the queue: the chief alone decides promotions (Hyperband)
 * and model updates (Bayesian), two workers train. Hyperband's trials (ids, values, parents,
 * epochs and every epoch's metrics) equal a local search of the same config; RandomSearch is
 * covered by distributed-tune.test.ts.
 */

const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-distributed-oracles-'));
let redis: RedisServer;
const workers: WorkerProcess[] = [];
const configWithDir = distributedConfigWriter(root, { maxTrials: 4, epochs: 3 });

interface TrialFile {
  id: string;
  values: Record<string, unknown>;
  status: string;
  parentId?: string | null;
  initialEpoch?: number;
  epochs?: number;
  metrics: { epoch: number; loss: number; accuracy: number; val_loss: number; val_accuracy: number }[];
}

function comparableTrials(dir: string) {
  const oracle = JSON.parse(readFileSync(path.join(root, dir, 'oracle.json'), 'utf8')) as {
    state: { trials: { id: string }[] };
  };
  return oracle.state.trials.map((entry) => {
    const t = JSON.parse(readFileSync(path.join(root, dir, `trial_${entry.id}`, 'trial.json'), 'utf8')) as TrialFile;
    return {
      id: t.id,
      values: t.values,
      status: t.status,
      parentId: t.parentId ?? null,
      initialEpoch: t.initialEpoch ?? 0,
      epochs: t.epochs ?? null,
      history: t.metrics.map(({ epoch, loss, accuracy, val_loss, val_accuracy }) => ({
        epoch,
        loss,
        accuracy,
        val_loss,
        val_accuracy,
      })),
    };
  });
}

function worker(config: string): WorkerProcess {
  const w = startWorker(['--queue', redis.url, '--config', config, '--backend', 'wasm', '--lease-seconds', '3']);
  workers.push(w);
  return w;
}

/** The shared tiny config with this search's algorithm and tuner settings. */
function withAlgorithm(file: string, search: { algorithm: string; tuner: Record<string, unknown> }): string {
  const config = JSON.parse(readFileSync(file, 'utf8')) as { tuner: Record<string, unknown> };
  config.tuner = { ...config.tuner, ...search.tuner, algorithm: search.algorithm };
  writeFileSync(file, JSON.stringify(config));
  return file;
}

before(async () => {
  redis = await startRedis();
  await synthesizeTinyData(root);
});

after(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

/** Runs the search locally, then as chief with two workers; returns both trial lists. */
async function localAndQueued(algorithm: string, tuner: Record<string, unknown> = {}) {
  const search = { algorithm, tuner };
  const local = withAlgorithm(configWithDir(`${algorithm}-local`), search);
  const shared = withAlgorithm(configWithDir(`${algorithm}-queue`), search);
  const alone = await runCli(['tune', '--config', local, '--backend', 'wasm', '--json']);
  assert.equal(alone.code, 0, alone.stderr);

  const pair = [worker(shared), worker(shared)];
  await Promise.all(pair.map((w) => w.waitFor(new RegExp(`serving the ${algorithm} search`))));
  const chief = await runCli(['tune', '--config', shared, '--backend', 'wasm', '--queue', redis.url, '--json']);
  assert.equal(chief.code, 0, chief.stderr);
  assert.equal(JSON.parse(chief.stdout).trials, JSON.parse(alone.stdout).trials);
  assert.deepEqual(await Promise.all(pair.map((w) => w.stop())), [130, 130]);
  return { local: comparableTrials(`${algorithm}-local`), queued: comparableTrials(`${algorithm}-queue`) };
}

const bestHp = (dir: string) => JSON.parse(readFileSync(path.join(root, dir, 'best_hp.json'), 'utf8')) as unknown;

describe('galactic tune --queue with Hyperband and Bayesian search', () => {
  it("Hyperband (factor 3 over 3 epochs): two workers run a local search's brackets, promotions included", async () => {
    const { local, queued } = await localAndQueued('hyperband');
    assert.ok(
      local.some((t) => t.parentId !== null && t.initialEpoch > 0),
      'the bracket promoted a trial (a continuation from its parent)',
    );
    assert.deepEqual(queued, local);
    assert.deepEqual(bestHp('hyperband-queue'), bestHp('hyperband-local'));
  });

  it('Bayesian: the random start equals a local search; guided trials come from what had completed', async () => {
    // 3 searched dimensions: 9 random trials, then 2 proposed by the Gaussian process. With two
    // trials in flight the chief proposes from the trials completed when it releases one (as
    // keras-tuner's distributed oracle does), so from the 10th trial on the values may differ.
    const { local, queued } = await localAndQueued('bayesian', { maxTrials: 11 });
    assert.equal(queued.length, 11);
    assert.deepEqual(queued.slice(0, 9), local.slice(0, 9));
    for (const trial of queued) assert.equal(trial.status, 'COMPLETED', trial.id);
    const distinct = new Set(queued.map((t) => JSON.stringify(t.values)));
    assert.equal(distinct.size, 11, 'no values tried twice');
  });
});
