import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { validateConfig, type LoadedConfig } from '../src/config/load.ts';
import { buildModel } from '../src/model/architecture.ts';
import { selectBackend, type BackendName } from '../src/model/backend.ts';
import { disposeModel, trainClassifier } from '../src/train/trainer.ts';
import { patternRecords, writeFixtureCache } from './support/fixture-cache.ts';
import { testEachBackend, TRAINING_BACKENDS } from './support/backends.ts';
import { runCli } from './support/run-cli.ts';

/**
 * Correct on every backend (issue 12): the same test bodies run on each training backend that
 * loads here (node with tfjs-node built, wasm always). A backend whose feed, kernels or gradients
 * are wrong cannot pass: it must learn an easy set through the real feed, match the cpu backend's
 * loss and gradients for one step, and predict the same classes as the other backends.
 */

const SIZE = 24;
const CLASSES = ['blob', 'bar', 'noise'];
const SMALL = { filters: [4, 8], kernelSize: 3, denseUnits: 16, dropout: 0, learningRate: 0.01 };
let root: string;
let cacheDir: string;

function config(): LoadedConfig {
  return validateConfig(
    {
      data: { csv: 'x.csv', imageDir: 'img' },
      seed: 5,
      model: { filters: SMALL.filters, denseUnits: SMALL.denseUnits, learningRate: SMALL.learningRate },
      train: { batchSize: 16, earlyStopping: null },
      // prefetch > 0: batches are built ahead of the step that reads them, which is when a tensor
      // still pointing at the feed's reused buffer would see the next batch's pixels
      feed: { shuffleBuffer: 64, prefetch: 2 },
    },
    '<test>',
    os.tmpdir(),
  );
}

before(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'galactic-learn-'));
  cacheDir = path.join(root, 'cache');
  writeFixtureCache(cacheDir, patternRecords(240, SIZE, 9), {
    classes: CLASSES,
    height: SIZE,
    width: SIZE,
    channels: 3,
    shardImages: 48,
  });
});

after(() => rmSync(root, { recursive: true, force: true }));

testEachBackend(
  'three epochs through the feed on an easy set: the loss falls and validation accuracy is far above chance',
  async (backend) => {
    await selectBackend(backend);
    const batchLosses: number[] = [];
    const result = await trainClassifier({
      feedSettings: { batchSize: 16, shuffleBufferRecords: 64, prefetchBatches: 2 },
      config: config(),
      cacheDir,
      values: {},
      epochs: 3,
      onBatchEnd: ({ loss }) => {
        batchLosses.push(loss);
      },
    });
    try {
      const [first, , last] = result.history;
      const early = batchLosses.slice(0, 3).reduce((a, b) => a + b) / 3;
      const late = batchLosses.slice(-3).reduce((a, b) => a + b) / 3;
      assert.ok(
        late < 0.5 * early,
        `mean loss of the first 3 batches ${early.toFixed(3)}, of the last 3 ${late.toFixed(3)}`,
      );
      assert.ok(last.loss < first.loss, `epoch losses ${result.history.map((r) => r.loss.toFixed(3)).join(', ')}`);
      assert.ok(last.val_accuracy >= 0.9, `validation accuracy ${last.val_accuracy} (chance is 0.33)`);
    } finally {
      disposeModel(result.model);
    }
  },
);

/** A normalized batch of the easy set and its labels. */
function fixedBatch(n: number): { xs: tf.Tensor4D; ys: tf.Tensor1D } {
  const records = patternRecords(n, SIZE, 21);
  const pixels = new Float32Array(n * SIZE * SIZE * 3);
  records.forEach((r, i) =>
    pixels.set(
      Float32Array.from(r.pixels, (v) => v / 255),
      i * SIZE * SIZE * 3,
    ),
  );
  return {
    xs: tf.tensor4d(pixels, [n, SIZE, SIZE, 3]),
    ys: tf.tensor1d(
      records.map((r) => r.label),
      'float32',
    ),
  };
}

/** The loss of one training-mode forward pass and its gradient for every trainable weight, from the given weights. */
async function oneStep(
  backend: BackendName,
  weights: Float32Array[] | null,
): Promise<{ loss: number; grads: Float32Array[]; weights: Float32Array[] }> {
  await selectBackend(backend);
  const model = buildModel({}, { inputShape: [SIZE, SIZE, 3], numClasses: CLASSES.length, seed: 13, defaults: SMALL });
  const { xs, ys } = fixedBatch(12);
  try {
    if (weights) model.setWeights(weights.map((w, i) => tf.tensor(w, model.getWeights()[i]!.shape)));
    const oneHot = tf.oneHot(ys.toInt(), CLASSES.length);
    const variables = model.trainableWeights.map((w) => (w as unknown as { read(): tf.Variable }).read());
    const { value, grads } = tf.variableGrads(
      () =>
        tf.mean(
          tf.metrics.categoricalCrossentropy(oneHot, model.apply(xs, { training: true }) as tf.Tensor),
        ) as tf.Scalar,
      variables,
    );
    const result = {
      loss: (await value.data())[0]!,
      grads: await Promise.all(variables.map(async (v) => (await grads[v.name]!.data()) as Float32Array)),
      weights: await Promise.all(model.getWeights().map(async (w) => (await w.data()) as Float32Array)),
    };
    tf.dispose([oneHot, value, ...Object.values(grads)]);
    return result;
  } finally {
    tf.dispose([xs, ys]);
    disposeModel(model);
  }
}

testEachBackend("one step's loss and gradients equal the cpu backend's", async (backend) => {
  const reference = await oneStep('cpu', null);
  const got = await oneStep(backend, reference.weights);
  assert.ok(
    Math.abs(got.loss - reference.loss) <= 1e-5 * Math.abs(reference.loss),
    `loss ${got.loss} on ${backend}, ${reference.loss} on cpu`,
  );
  reference.grads.forEach((want, k) => {
    const scale = Math.max(...want.map(Math.abs));
    const worst = Math.max(...want.map((w, i) => Math.abs(got.grads[k]![i]! - w)));
    assert.ok(scale > 0, `gradient ${k} is all zeros on cpu`);
    assert.ok(worst <= 1e-4 * scale, `gradient ${k}: largest difference ${worst} against a largest value ${scale}`);
  });
});

/** Writes the easy set as PNG files plus a CSV, the layout `galactic train` reads. */
async function writeImageSet(dir: string, count: number, seed: number): Promise<string[]> {
  const letters = ['E', 'S', 'A']; // the default class rules: ^E elliptical, ^S spiral, ^A artifact
  mkdirSync(path.join(dir, 'images'), { recursive: true });
  const rows = ['asset_id,gz2class'];
  const files: string[] = [];
  for (const r of patternRecords(count, 32, seed)) {
    const file = path.join(dir, 'images', `${r.id}.png`);
    await sharp(Buffer.from(r.pixels), { raw: { width: 32, height: 32, channels: 3 } })
      .png()
      .toFile(file);
    rows.push(`${r.id},${letters[r.label]}`);
    files.push(file);
  }
  writeFileSync(path.join(dir, 'labels.csv'), rows.join('\n') + '\n');
  return files;
}

test('predict: models trained on each backend give the same classes for the same images, on each backend', async () => {
  const dir = path.join(root, 'predict');
  await writeImageSet(dir, 240, 4);
  const unseen = await writeImageSet(path.join(dir, 'unseen'), 30, 77);
  const configFile = path.join(dir, 'galactic.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      data: { csv: 'labels.csv', imageDir: 'images', fileName: '{id}.png' },
      image: { width: SIZE, height: SIZE },
      cache: { dir: 'cache' },
      memory: { limitMB: 2048 },
      seed: 3,
      model: { filters: SMALL.filters, denseUnits: SMALL.denseUnits, learningRate: SMALL.learningRate },
      train: { batchSize: 16, epochs: 4, earlyStopping: null },
      runs: { dir: 'runs' },
      tuner: { dir: 'tuning' },
    }),
  );
  const classes = new Map<string, string[]>();
  for (const trainedOn of TRAINING_BACKENDS) {
    const train = await runCli(
      ['train', '--config', configFile, '--name', trainedOn, '--backend', trainedOn, '--json', '--quiet'],
      { timeoutMs: 240_000 },
    );
    assert.equal(train.code, 0, train.stderr);
    for (const predictedOn of TRAINING_BACKENDS) {
      const r = await runCli([
        'predict',
        '--model',
        path.join(dir, 'runs', trainedOn),
        '--backend',
        predictedOn,
        '--json',
        ...unseen,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const predictions = JSON.parse(r.stdout) as { predictions: { file: string; class: string }[] };
      classes.set(
        `trained on ${trainedOn}, predicted on ${predictedOn}`,
        predictions.predictions.map((p) => p.class),
      );
    }
  }
  const truth = patternRecords(30, 32, 77).map((r) => ['elliptical', 'spiral', 'artifact'][r.label]!);
  for (const [setting, got] of classes) assert.deepEqual(got, truth, setting);
});
