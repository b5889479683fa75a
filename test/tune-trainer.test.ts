import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { validateConfig, type LoadedConfig } from '../src/config/load.ts';
import { NO_DATA, planMemory } from '../src/memory/plan.ts';
import { trialRefusal } from '../src/memory/refusals.ts';
import { estimateTrialMemory, wasmHeapRefusal } from '../src/memory/trial-estimate.ts';
import { selectBackend } from '../src/model/backend.ts';
import { createOracle, describeSearch } from '../src/tune/search-setup.ts';
import { TrainerTrialRunner } from '../src/tune/trainer-runner.ts';
import type { TrialRecord } from '../src/tune/trial-store.ts';
import type { TrialRunner } from '../src/tune/trial-runner.ts';
import { runTuner } from '../src/tune/tuner.ts';
import { patternRecords, writeFixtureCache } from './support/fixture-cache.ts';

/** The tuner on the real trainer: 32x32 fixture cache, a tiny space, 2 epochs per trial. */

const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-tune-real-'));
after(() => rmSync(root, { recursive: true, force: true }));
const cacheDir = path.join(root, 'cache', 'fixture');

function tinyConfig(overrides: Record<string, unknown> = {}): LoadedConfig {
  return validateConfig(
    {
      data: { csv: 'none.csv', imageDir: 'images' },
      image: { width: 32, height: 32 },
      memory: { limitMB: 2048 },
      train: { batchSize: 8, epochs: 2 },
      feed: { shuffleBuffer: 32, prefetch: 1 },
      model: { filters: [4, 8, 8], denseUnits: 8 },
      tuner: {
        maxTrials: 3,
        epochs: 2,
        patience: null,
        dir: 'tuning',
        space: {
          filters_1: { type: 'fixed', value: 4 },
          filters_2: { type: 'choice', values: [4, 8] },
          dense_units: { type: 'int', min: 8, max: 16, step: 8 },
          learning_rate: { type: 'float', min: 1e-3, max: 1e-2, sampling: 'log' },
        },
      },
      ...overrides,
    },
    '<test>',
    root,
  );
}

before(async () => {
  writeFixtureCache(cacheDir, patternRecords(48, 32, 1), {
    classes: ['elliptical', 'spiral', 'artifact'],
    height: 32,
    width: 32,
    channels: 3,
    shardImages: 16,
  });
  await selectBackend('wasm');
});

describe('tuner on the real trainer', () => {
  it('runs trials on the cached shards and returns tf.memory().numTensors to its baseline after every trial', async () => {
    const config = tinyConfig();
    const inner = new TrainerTrialRunner({
      config,
      cacheDir,
      feedSettings: { batchSize: 8, shuffleBufferRecords: 32, prefetchBatches: 1 },
    });
    const baseline = tf.memory().numTensors;
    const after: number[] = [];
    const runner: TrialRunner = {
      run: async (request) => {
        try {
          return await inner.run(request);
        } finally {
          after.push(tf.memory().numTensors);
        }
      },
    };
    const search = describeSearch(config, 'fixture');
    const summary = await runTuner({
      dir: config.tuner.dir,
      search,
      runner,
      createOracle: (state) => createOracle(search, config, {}, state),
      estimate: () => ({ estimateMB: 100, refusal: null }),
    });
    assert.equal(summary.completed, 3, JSON.stringify(summary));
    assert.deepEqual(after, [baseline, baseline, baseline]);
    const trial = JSON.parse(
      readFileSync(path.join(config.tuner.dir, 'trial_0000', 'trial.json'), 'utf8'),
    ) as TrialRecord;
    assert.equal(trial.metrics.length, 2);
    assert.deepEqual(
      trial.metrics.map((m) => m.epoch),
      [1, 2],
    );
    assert.ok(trial.bestCheckpoint);
    const best = JSON.parse(readFileSync(path.join(config.tuner.dir, 'best_hp.json'), 'utf8'));
    assert.equal(best.objective, 'val_accuracy');
    assert.ok(typeof best.values.learning_rate === 'number');
  });

  it('resumes a trial from its checkpoint (weights + optimizer) at the saved epoch', async () => {
    const config = tinyConfig({
      tuner: { ...tinyConfig().tuner, dir: path.join(root, 'resume'), maxTrials: 1, epochs: 3 },
    });
    const search = describeSearch(config, 'fixture');
    const inner = new TrainerTrialRunner({
      config,
      cacheDir,
      feedSettings: { batchSize: 8, shuffleBufferRecords: 32, prefetchBatches: 1 },
    });
    const controller = new AbortController();
    const options = {
      dir: config.tuner.dir,
      search,
      createOracle: (state?: Parameters<typeof createOracle>[3]) => createOracle(search, config, {}, state),
      estimate: () => ({ estimateMB: 100, refusal: null }),
    };
    // Interrupt after the first epoch (as SIGINT would), then rerun.
    const interrupting: TrialRunner = {
      run: (request) =>
        inner.run({
          ...request,
          onEpochEnd: async (info) => {
            controller.abort();
            return request.onEpochEnd(info);
          },
        }),
    };
    await assert.rejects(
      runTuner({ ...options, runner: interrupting, signal: controller.signal }),
      /interrupted during trial 0000 after epoch 1/,
    );
    const starts: { initialEpoch: number; checkpoint: string | null }[] = [];
    const recording: TrialRunner = {
      run: (request) => {
        starts.push({ initialEpoch: request.initialEpoch, checkpoint: request.checkpoint });
        return inner.run(request);
      },
    };
    const summary = await runTuner({ ...options, runner: recording });
    assert.equal(summary.completed, 1);
    assert.equal(starts[0].initialEpoch, 1);
    assert.match(starts[0].checkpoint ?? '', /trial_0000[/\\]checkpoint-1$/);
    const trial = JSON.parse(
      readFileSync(path.join(config.tuner.dir, 'trial_0000', 'trial.json'), 'utf8'),
    ) as TrialRecord;
    assert.deepEqual(
      trial.metrics.map((m) => m.epoch),
      [1, 2, 3],
    );
  });
});

describe('trial memory estimate', () => {
  it('grows with the model and marks a trial INFEASIBLE under a tiny budget', () => {
    const config = tinyConfig({ image: { width: 128, height: 128 }, train: { batchSize: 32 } });
    const plan = planMemory(config, NO_DATA);
    const small = estimateTrialMemory({
      values: { filters_1: 16, filters_2: 32, filters_3: 64, dense_units: 32 },
      config,
      plan,
      numClasses: 3,
    });
    const big = estimateTrialMemory({
      values: { filters_1: 64, filters_2: 128, filters_3: 256, dense_units: 256 },
      config,
      plan,
      numClasses: 3,
    });
    assert.ok(big.totalBytes > small.totalBytes);
    assert.ok(big.parameters > small.parameters);
    const names = big.components.map((c) => c.name);
    for (const name of ['runtime', 'parameters', 'activations', 'checkpoint', 'feed prefetch', 'feed shuffle'])
      assert.ok(names.includes(name), name);
    assert.equal(
      big.totalBytes,
      big.components.reduce((s, c) => s + c.bytes, 0),
    );
    // notebook-size model at 128x128, batch 32: weights 4 x 4 B x params
    const params = big.components.find((c) => c.name === 'parameters')!;
    assert.equal(params.bytes, 16 * big.parameters);
  });

  it('refuses on wasm a trial whose tensors cannot fit the 4 GiB heap', () => {
    const config = tinyConfig({ image: { width: 128, height: 128 }, train: { batchSize: 32 } });
    const plan = planMemory(config, NO_DATA);
    const notebook = estimateTrialMemory({
      values: { filters_1: 32, filters_2: 64, filters_3: 128, dense_units: 64 },
      config,
      plan,
      numClasses: 3,
    });
    const largest = estimateTrialMemory({
      values: { filters_1: 64, filters_2: 128, filters_3: 256, dense_units: 256 },
      config,
      plan,
      numClasses: 3,
    });
    assert.equal(wasmHeapRefusal(notebook), null);
    assert.match(wasmHeapRefusal(largest) ?? '', /more than the wasm backend's 4096 MB heap/);
  });

  it('has per-backend components: tfjs-node on node, the heap growth and thread pool on wasm', () => {
    const config = tinyConfig({ image: { width: 128, height: 128 }, train: { batchSize: 32 } });
    const plan = planMemory(config, NO_DATA);
    const values = { filters_1: 32, filters_2: 64, filters_3: 128, dense_units: 64 };
    const names = (backend: 'node' | 'wasm') =>
      estimateTrialMemory({ values, config, plan, numClasses: 3, backend }).components.map((c) => c.name);
    assert.ok(names('node').includes('tfjs-node'));
    assert.ok(!names('node').includes('wasm thread pool') && !names('node').includes('wasm heap growth'));
    assert.ok(names('wasm').includes('wasm heap growth') && !names('wasm').includes('tfjs-node'));
    const wasm = estimateTrialMemory({ values, config, plan, numClasses: 3, backend: 'wasm' });
    const growth = wasm.components.find((c) => c.name === 'wasm heap growth')!;
    assert.equal(growth.bytes, Math.ceil(0.2 * wasm.tensorBytes));
  });

  it('counts what the process already holds: the wasm heap that never shrinks, RSS above the baseline', () => {
    const config = tinyConfig({ image: { width: 64, height: 64 }, train: { batchSize: 16 } });
    const plan = planMemory(config, NO_DATA);
    const values = { filters_1: 8, filters_2: 16, filters_3: 16, dense_units: 16 };
    const MiB = 1024 * 1024;
    const fresh = estimateTrialMemory({ values, config, plan, numClasses: 3, backend: 'wasm' });
    const heap = 1500 * MiB; // left by an earlier, larger trial
    const baseline = fresh.components
      .filter((c) => ['runtime', 'tfjs', 'wasm thread pool'].includes(c.name))
      .reduce((s, c) => s + c.bytes, 0);
    const after = estimateTrialMemory({
      values,
      config,
      plan,
      numClasses: 3,
      backend: 'wasm',
      state: { rssBytes: baseline + heap + 100 * MiB, wasmHeapBytes: heap },
    });
    const byName = (e: typeof after, name: string) => e.components.find((c) => c.name === name)?.bytes ?? 0;
    // the tensors need max(heap now, their own grown need); the other 100 MB come on top
    assert.equal(byName(after, 'wasm heap held'), Math.ceil(heap - 1.2 * fresh.tensorBytes));
    assert.equal(byName(after, 'held by this process'), 100 * MiB);
    assert.equal(after.totalBytes - fresh.totalBytes, byName(after, 'wasm heap held') + 100 * MiB);
    // node: everything above its baseline counts
    const node = estimateTrialMemory({ values, config, plan, numClasses: 3, backend: 'node' });
    const nodeAfter = estimateTrialMemory({
      values,
      config,
      plan,
      numClasses: 3,
      backend: 'node',
      state: { rssBytes: 2000 * MiB, wasmHeapBytes: 0 },
    });
    assert.equal(nodeAfter.totalBytes - node.totalBytes, 2000 * MiB - (224 + 256) * MiB);
    // a process at its baseline holds nothing extra
    const idle = estimateTrialMemory({
      values,
      config,
      plan,
      numClasses: 3,
      backend: 'node',
      state: { rssBytes: 300 * MiB, wasmHeapBytes: 0 },
    });
    assert.equal(idle.totalBytes, node.totalBytes);
  });

  it("does not refuse the notebook's default model under the default 8 GB budget on either backend", () => {
    const config = tinyConfig({
      image: { width: 128, height: 128 },
      train: { batchSize: 32 },
      memory: { limitMB: 8192 },
    });
    const plan = planMemory(config, NO_DATA);
    for (const backend of ['node', 'wasm'] as const) {
      const e = estimateTrialMemory({
        values: { filters_1: 32, filters_2: 64, filters_3: 128, dense_units: 64 },
        config,
        plan,
        numClasses: 3,
        trainRecords: 200_000,
        backend,
      });
      assert.equal(trialRefusal(plan, e), null, `${backend}: ${e.totalMB} MB`);
      if (backend === 'wasm') assert.equal(wasmHeapRefusal(e), null);
    }
  });

  it('the tuner skips a trial that does not fit as INFEASIBLE (real estimate, tiny budget)', async () => {
    const config = tinyConfig({ tuner: { ...tinyConfig().tuner, dir: path.join(root, 'infeasible'), maxTrials: 2 } });
    // below the runtime baseline alone
    const tight = planMemory({ ...config, memory: { ...config.memory, limitMB: 150 } }, NO_DATA);
    const search = describeSearch(config, 'fixture');
    let ran = 0;
    const summary = await runTuner({
      dir: config.tuner.dir,
      search,
      createOracle: (state) => createOracle(search, config, {}, state),
      runner: {
        run: async () => {
          ran++;
          return { stopReason: 'completed' };
        },
      },
      estimate: (values) => {
        const e = estimateTrialMemory({ values, config, plan: tight, numClasses: 3 });
        return { estimateMB: e.totalMB, refusal: trialRefusal(tight, e) };
      },
    });
    assert.equal(summary.infeasible, 2);
    assert.equal(ran, 0);
    const trial = JSON.parse(
      readFileSync(path.join(config.tuner.dir, 'trial_0000', 'trial.json'), 'utf8'),
    ) as TrialRecord;
    assert.equal(trial.status, 'INFEASIBLE');
    assert.ok((trial.estimateMB ?? 0) > 150);
  });
});
