import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { validateConfig, type LoadedConfig } from '../src/config/load.ts';
import { buildModel } from '../src/model/architecture.ts';
import { selectBackend } from '../src/model/backend.ts';
import { loadCheckpoint } from '../src/model/checkpoint.ts';
import { balancedClassWeights } from '../src/train/class-weights.ts';
import { EarlyStopping } from '../src/train/early-stopping.ts';
import { evaluateValidation } from '../src/train/metrics.ts';
import { disposeModel, trainClassifier, type EpochRecord, type TrainerResult } from '../src/train/trainer.ts';
import { patternRecords, writeFixtureCache } from './support/fixture-cache.ts';
import { testEachBackend } from './support/backends.ts';

/**
 * Trainer tests on a small hand-made cache (32x32, 300 images) with a tiny CNN, on every training backend that loads.
 */

let root: string;
let cacheDir: string;
const SIZE = 32;

function config(overrides: Record<string, unknown> = {}): LoadedConfig {
  return validateConfig(
    {
      data: { csv: 'x.csv', imageDir: 'img' },
      seed: 11,
      model: { filters: [4, 8], denseUnits: 16 },
      train: { batchSize: 16, earlyStopping: null },
      feed: { shuffleBuffer: 100, prefetch: 1 },
      ...overrides,
    },
    '<test>',
    os.tmpdir(),
  );
}

/** The feed sizes config() sets (batch 16, shuffle buffer 100, prefetch 1). */
const FEED = { batchSize: 16, shuffleBufferRecords: 100, prefetchBatches: 1 };

const comparable = (h: EpochRecord[]) =>
  h.map(({ epoch, loss, accuracy, val_loss, val_accuracy }) => ({ epoch, loss, accuracy, val_loss, val_accuracy }));

before(async () => {
  await selectBackend('wasm');
  root = mkdtempSync(path.join(os.tmpdir(), 'galactic-train-'));
  cacheDir = path.join(root, 'cache');
  writeFixtureCache(cacheDir, patternRecords(300, SIZE, 1), {
    classes: ['blob', 'bar', 'noise'],
    height: SIZE,
    width: SIZE,
    channels: 3,
    shardImages: 64,
  });
});

after(() => rmSync(root, { recursive: true, force: true }));

testEachBackend(
  'trains above 0.7 validation accuracy, keeps the tensor count flat, and repeats exactly for a seed',
  async (backend) => {
    await selectBackend(backend);
    const counts: number[] = [];
    const run = () =>
      trainClassifier({
        feedSettings: FEED,
        config: config(),
        cacheDir,
        values: {},
        epochs: 5,
        onEpochEnd: () => {
          counts.push(tf.memory().numTensors);
        },
      });
    const first = await run();
    const firstCounts = counts.splice(0);
    try {
      assert.equal(first.history.length, 5);
      assert.deepEqual(
        first.history.map((r) => r.epoch),
        [1, 2, 3, 4, 5],
      );
      assert.equal(first.stopReason, 'completed');
      const last = first.history[4];
      assert.ok(last.val_accuracy >= 0.7, `val_accuracy ${last.val_accuracy}`);
      for (const r of first.history) {
        assert.ok(r.seconds > 0 && r.imagesPerSecond > 0 && r.peakRssMB > 0);
        assert.ok(Number.isFinite(r.loss) && Number.isFinite(r.val_loss));
      }
      assert.ok(
        firstCounts.every((n) => n === firstCounts[0]),
        `tensors after each epoch: ${firstCounts.join(', ')}`,
      );
      const metrics = await evaluateValidation(first.model, first.feed, first.manifest.classes);
      assert.equal(
        metrics.confusion.flat().reduce((a, b) => a + b, 0),
        first.split.validationCount,
      );
      assert.ok(Math.abs(metrics.accuracy - first.history[first.bestEpoch - 1].val_accuracy) < 1e-6);
      assert.ok(metrics.samples.length > 0 && metrics.samples.length <= 3 * 8);
    } finally {
      disposeModel(first.model);
    }
    const second = await run();
    disposeModel(second.model);
    assert.deepEqual(comparable(second.history), comparable(first.history));
  },
);

testEachBackend(
  'early stopping stops after `patience` epochs without improvement and restores the best weights',
  async (backend) => {
    await selectBackend(backend);
    const checkpoints = path.join(root, `es-${backend}`);
    const cfg = config({
      train: { batchSize: 16, earlyStopping: { monitor: 'val_accuracy', patience: 1, restoreBestWeights: true } },
    });
    const result: TrainerResult = await trainClassifier({
      feedSettings: FEED,
      config: cfg,
      cacheDir,
      values: {},
      epochs: 12,
      onEpochEnd: ({ epoch, saveCheckpoint }) => saveCheckpoint(path.join(checkpoints, String(epoch))),
    });
    try {
      assert.equal(result.stopReason, 'early-stopping');
      assert.ok(result.history.length < 12);
      assert.equal(result.bestEpoch, result.history.length - 1, 'patience 1: stops one epoch after the best');
      assert.equal(result.restoredBestWeights, true);
      // the model now holds exactly the weights saved at the best epoch
      const reference = buildModel(
        {},
        { inputShape: [SIZE, SIZE, 3], numClasses: 3, seed: cfg.seed, defaults: cfg.model },
      );
      await loadCheckpoint(path.join(checkpoints, String(result.bestEpoch)), reference);
      const got = result.model.getWeights().map((w) => Array.from(w.dataSync()));
      const want = reference.getWeights().map((w) => Array.from(w.dataSync()));
      disposeModel(reference);
      assert.deepEqual(got, want);
    } finally {
      disposeModel(result.model);
    }
  },
);

testEachBackend('resuming from a checkpoint continues bit for bit like an uninterrupted run', async (backend) => {
  await selectBackend(backend);
  const ck = path.join(root, `resume-${backend}`);
  const full = await trainClassifier({
    feedSettings: FEED,
    config: config(),
    cacheDir,
    values: {},
    epochs: 4,
    onEpochEnd: async ({ epoch, saveCheckpoint }) => {
      if (epoch === 2) await saveCheckpoint(ck);
    },
  });
  disposeModel(full.model);
  const resumed = await trainClassifier({
    feedSettings: FEED,
    config: config(),
    cacheDir,
    values: {},
    epochs: 4,
    initialEpoch: 2,
    checkpoint: ck,
  });
  disposeModel(resumed.model);
  assert.deepEqual(
    resumed.history.map((r) => r.epoch),
    [3, 4],
  );
  // bit for bit: the checkpoint carries Adam's running beta powers, not only its step count
  assert.deepEqual(comparable(resumed.history), comparable(full.history.slice(2)));
});

test('a NaN loss stops training with stopReason nan-loss', async () => {
  // wasm's clamp turns NaN probabilities into finite losses; the cpu backend lets a NaN input through
  await selectBackend('cpu');
  const nanDir = path.join(root, 'nan-cache');
  writeFixtureCache(nanDir, patternRecords(60, SIZE, 2), {
    classes: ['blob', 'bar', 'noise'],
    height: SIZE,
    width: SIZE,
    channels: 3,
    shardImages: 64,
    dtype: 'float32',
    floatValues: (r) => Float32Array.from(r.pixels, (v, i) => (i === 0 ? Number.NaN : v)),
  });
  let result: TrainerResult;
  try {
    result = await trainClassifier({ feedSettings: FEED, config: config(), cacheDir: nanDir, values: {}, epochs: 5 });
  } finally {
    await selectBackend('wasm');
  }
  disposeModel(result.model);
  assert.equal(result.stopReason, 'nan-loss');
  assert.equal(result.history.length, 1);
});

testEachBackend('balanced class weights give each class the same total weight, and train', async (backend) => {
  await selectBackend(backend);
  assert.deepEqual(balancedClassWeights([60, 30, 10]), { 0: 100 / 180, 1: 100 / 90, 2: 100 / 30 });
  assert.deepEqual(balancedClassWeights([5, 0]), { 0: 1, 1: 1 });
  const result = await trainClassifier({
    feedSettings: FEED,
    config: config({ train: { batchSize: 16, classWeights: 'balanced', earlyStopping: null } }),
    cacheDir,
    values: {},
    epochs: 1,
  });
  disposeModel(result.model);
  assert.ok(Number.isFinite(result.history[0].loss));
});

test('EarlyStopping keeps one copy of the best weights and compares strictly', () => {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1], kernelInitializer: 'ones' })] });
  const stopper = new EarlyStopping({ monitor: 'val_loss', patience: 2, restoreBestWeights: true });
  const before = tf.memory().numTensors;
  assert.equal(stopper.update(1, 0.5, model), false);
  const afterFirst = tf.memory().numTensors;
  model.setWeights([tf.tensor2d([[7]]), tf.tensor1d([3])]);
  assert.equal(stopper.update(2, 0.5, model), false, 'equal is not an improvement');
  assert.equal(stopper.update(3, Number.NaN, model), true, 'patience 2 reached');
  assert.equal(tf.memory().numTensors - afterFirst, 2, 'only the two tensors set by hand are new');
  assert.ok(afterFirst - before === 2, 'one copy per weight');
  assert.equal(stopper.restore(model, 3), true);
  assert.deepEqual(Array.from(model.getWeights()[0].dataSync()), [1]);
  model.dispose();
});
