import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { buildModel } from '../src/model/architecture.ts';
import { selectBackend } from '../src/model/backend.ts';
import { loadCheckpoint, saveCheckpoint } from '../src/model/checkpoint.ts';
import { createAdam, NativeAdamOptimizer, nativeAdamWorks, setNativeAdam } from '../src/model/native-adam.ts';
import { HAS_NODE } from './support/backends.ts';

/**
 * Adam as TensorFlow's ResourceApplyAdam on tfjs-node (src/model/native-adam.ts) against tfjs's
 * AdamOptimizer on the cpu backend, fed the same gradients. The node tests skip without tfjs-node;
 * the fallback's run everywhere.
 *
 * Tolerance, per step: TensorFlow computes 1 − β₂ in float32 (0.00099998713, 1.3e-5 below 0.001),
 * so its v is 1.3e-5 smaller relative to tfjs's and every update 6.4e-6 larger; the rest is a few
 * float32 roundings in a different order (m + (g − m)(1 − β₁) against β₁m + (1 − β₁)g). An update
 * is at most lr·(1 − β₁)/√(1 − β₂) ≈ 3.2·lr, so after N steps a weight may differ by N · 3.2·lr ·
 * 1e-5 plus N rounding steps of the weight itself: the bound below is 10x that. m: relative 1e-5
 * of its largest value; v: relative 1e-4 (the 1.3e-5 offset plus rounding).
 */
const LR = 0.01;
const STEPS = 12;
const SHAPES = [[37, 5], [5], [3, 3, 2, 4], [6]];
/** tfjs's Optimizer answers instanceof by duck typing (Symbol.hasInstance), for every optimizer class. */
const isNative = (optimizer: tf.Optimizer): boolean => optimizer.constructor === NativeAdamOptimizer;
const skip = HAS_NODE ? false : 'tfjs-node is not installed (npm run native)';

interface State {
  weights: Float32Array[];
  m: Float32Array[];
  v: Float32Array[];
}

/** Fixed gradients per step and variable, made on cpu: normal ones, tiny ones (√v̂ near ε) and zeros. */
function gradientSeries(): Float32Array[][] {
  tf.setBackend('cpu');
  return Array.from({ length: STEPS }, (_, step) =>
    SHAPES.map((shape, i) =>
      tf.tidy(() => {
        const scale = i === 1 ? 1e-7 : 1;
        const g = tf.randomNormal(shape, 0, scale, 'float32', 100 * step + i);
        // the last variable gets no gradient signal every third step
        return (i === 3 && step % 3 === 0 ? tf.zerosLike(g) : g).dataSync() as Float32Array;
      }),
    ),
  );
}

function initialWeights(): Float32Array[] {
  tf.setBackend('cpu');
  return SHAPES.map((shape, i) =>
    tf.tidy(() => tf.randomNormal(shape, 0, 0.5, 'float32', 7 + i).dataSync() as Float32Array),
  );
}

/** Runs the optimizer over the gradient series on the active backend; returns weights and moments. */
async function train(optimizer: tf.Optimizer, grads: Float32Array[][], init: Float32Array[]): Promise<State> {
  const variables = init.map((values, i) => {
    const initial = tf.tensor(values, SHAPES[i]);
    const variable = tf.variable(initial, true, `w${i}-${Math.random()}`);
    initial.dispose(); // the variable's data unshared, as a model's weights are
    return variable;
  });
  for (const step of grads) {
    const named = step.map((values, i) => ({ name: variables[i]!.name, tensor: tf.tensor(values, SHAPES[i]) }));
    optimizer.applyGradients(named);
    tf.dispose(named.map((n) => n.tensor));
  }
  const weights = await optimizer.getWeights();
  const moments = weights.slice(1).map((w) => w.tensor.dataSync() as Float32Array);
  const state = {
    weights: variables.map((v) => v.dataSync() as Float32Array),
    m: moments.slice(0, SHAPES.length),
    v: moments.slice(SHAPES.length),
  };
  tf.dispose(weights[0]!.tensor);
  optimizer.dispose();
  tf.dispose(variables);
  return state;
}

function maxAbs(values: Float32Array): number {
  return values.reduce((max, x) => Math.max(max, Math.abs(x)), 0);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  return a.reduce((max, x, i) => Math.max(max, Math.abs(x - b[i]!)), 0);
}

function assertClose(candidate: State, reference: State): void {
  reference.weights.forEach((want, i) => {
    const bound = STEPS * 10 * (3.2 * LR * 1e-5 + 1.2e-7 * maxAbs(want));
    const diff = maxDiff(candidate.weights[i]!, want);
    assert.ok(diff <= bound, `weight ${i}: max difference ${diff.toExponential(2)} > ${bound.toExponential(2)}`);
  });
  for (const [name, tolerance] of [
    ['m', 1e-5],
    ['v', 1e-4],
  ] as const) {
    reference[name].forEach((want, i) => {
      const relative = maxDiff(candidate[name][i]!, want) / Math.max(maxAbs(want), 1e-30);
      assert.ok(relative <= tolerance, `${name} ${i}: relative difference ${relative.toExponential(2)}`);
    });
  }
}

function assertIdentical(candidate: State, reference: State): void {
  for (const key of ['weights', 'm', 'v'] as const) {
    candidate[key].forEach((got, i) =>
      assert.deepEqual(Array.from(got), Array.from(reference[key][i]!), `${key} ${i}`),
    );
  }
}

afterEach(() => setNativeAdam('auto'));

describe('Adam as ResourceApplyAdam on node', { skip }, () => {
  let grads: Float32Array[][];
  let init: Float32Array[];
  let reference: State;
  let root: string;

  before(async () => {
    grads = gradientSeries();
    init = initialWeights();
    reference = await train(tf.train.adam(LR), grads, init);
    await selectBackend('node');
    root = mkdtempSync(path.join(os.tmpdir(), 'galactic-native-adam-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('the probe passes on libtensorflow 2.21 and the model is compiled with the fused Adam', () => {
    tf.setBackend('tensorflow');
    assert.equal(nativeAdamWorks(), true);
    const optimizer = createAdam(LR);
    assert.ok(isNative(optimizer));
    optimizer.dispose();
  });

  test(`${STEPS} steps equal tfjs's Adam on cpu (weights, m and v), updated in place`, async () => {
    tf.setBackend('tensorflow');
    const optimizer = new NativeAdamOptimizer(LR, 0.9, 0.999);
    const counts = optimizer.updates;
    assertClose(await train(optimizer, grads, init), reference);
    assert.deepEqual(counts, { inPlace: STEPS * SHAPES.length * 3, copied: 0 });
  });

  test('a variable whose data another tensor shares is updated through a copy; that tensor keeps its value', () => {
    tf.setBackend('tensorflow');
    const initial = tf.tensor(init[0]!, SHAPES[0]);
    const variable = tf.variable(initial, true, `shared-${Math.random()}`);
    initial.dispose();
    const alias = tf.clone(variable); // tfjs's clone shares the data id
    const optimizer = new NativeAdamOptimizer(LR, 0.9, 0.999);
    const gradient = tf.tensor(grads[0]![0]!, SHAPES[0]);
    optimizer.applyGradients([{ name: variable.name, tensor: gradient }]);
    assert.deepEqual(optimizer.updates, { inPlace: 2, copied: 1 });
    assert.deepEqual(Array.from(alias.dataSync()), Array.from(init[0]!));
    const first = tf.tidy(() => tf.sub(variable, alias).abs().max().dataSync()[0]!);
    assert.ok(first > 0.5 * LR, `the variable moved by ${first}`);
    tf.dispose([variable, alias, gradient]);
    optimizer.dispose();
  });

  test('tensor count stays flat across steps of a model', async () => {
    tf.setBackend('tensorflow');
    const model = smallModel();
    const { xs, ys } = batch();
    await model.trainOnBatch(xs, ys);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) await model.trainOnBatch(xs, ys);
    assert.equal(tf.memory().numTensors, before);
    assert.equal((model.optimizer as NativeAdamOptimizer).updates.copied, 0);
    tf.dispose([xs, ys]);
    model.optimizer.dispose();
    model.dispose();
  });

  test('a checkpoint written after fused-Adam steps resumes bit for bit, and loads into tfjs Adam on cpu', async () => {
    tf.setBackend('tensorflow');
    const { xs, ys } = batch();
    const full = smallModel();
    assert.ok(isNative(full.optimizer));
    for (let i = 0; i < 3; i++) await full.trainOnBatch(xs, ys);
    const dir = path.join(root, 'ck');
    await saveCheckpoint(dir, full);
    const saved = await snapshot(full);
    for (let i = 0; i < 3; i++) await full.trainOnBatch(xs, ys);
    const uninterrupted = await snapshot(full);

    const resumed = smallModel();
    await loadCheckpoint(dir, resumed);
    assert.ok((await snapshot(resumed)).equals(saved), 'the loaded state equals the saved one');
    for (let i = 0; i < 3; i++) await resumed.trainOnBatch(xs, ys);
    assert.ok((await snapshot(resumed)).equals(uninterrupted), 'resumed and uninterrupted runs end equal');

    // the same layout as tfjs's Adam writes: the checkpoint's tensor names, shapes and dtypes
    setNativeAdam('off');
    const plain = smallModel();
    assert.ok(!isNative(plain.optimizer));
    await plain.trainOnBatch(xs, ys);
    await saveCheckpoint(path.join(root, 'plain'), plain);
    // (layer names carry a per-model counter: digits are not compared)
    const specs = (name: string) =>
      JSON.parse(readFileSync(path.join(root, name, 'checkpoint.json'), 'utf8')).specs.map(
        (s: { name: string; shape: number[]; dtype: string }) => [s.name.replace(/\d+/g, '#'), s.shape, s.dtype],
      );
    assert.deepEqual(specs('ck'), specs('plain'));

    tf.setBackend('cpu');
    const onCpu = smallModel();
    await loadCheckpoint(dir, onCpu);
    assert.ok((await snapshot(onCpu)).equals(saved), 'the state loaded on cpu equals the saved one');
    for (const model of [full, resumed, plain, onCpu]) {
      model.optimizer.dispose();
      model.dispose();
    }
    tf.dispose([xs, ys]);
  });

  test("with setNativeAdam('off') it is tfjs's Adam, bit for bit", async () => {
    tf.setBackend('tensorflow');
    const plain = await train(tf.train.adam(LR), grads, init);
    setNativeAdam('off');
    assert.ok(!isNative(createAdam(LR)));
    const optimizer = new NativeAdamOptimizer(LR, 0.9, 0.999);
    assertIdentical(await train(optimizer, grads, init), plain);
    assert.deepEqual(optimizer.updates, { inPlace: 0, copied: 0 });
  });
});

test("off the node backend NativeAdamOptimizer is tfjs's Adam, bit for bit, and createAdam gives tfjs's", async () => {
  const grads = gradientSeries();
  const init = initialWeights();
  tf.setBackend('cpu');
  assert.ok(!isNative(createAdam(LR)));
  const reference = await train(tf.train.adam(LR), grads, init);
  const optimizer = new NativeAdamOptimizer(LR, 0.9, 0.999);
  assertIdentical(await train(optimizer, grads, init), reference);
  assert.deepEqual(optimizer.updates, { inPlace: 0, copied: 0 });
});

const SMALL = { filters: [4, 8], kernelSize: 3, denseUnits: 16, dropout: 0, learningRate: LR };

function smallModel(): tf.LayersModel {
  return buildModel({}, { inputShape: [16, 16, 3], numClasses: 3, seed: 3, defaults: SMALL });
}

function batch(): { xs: tf.Tensor; ys: tf.Tensor } {
  return {
    xs: tf.randomUniform([6, 16, 16, 3], 0, 1, 'float32', 11),
    ys: tf.tensor1d([0, 1, 2, 0, 1, 2], 'float32'),
  };
}

/** Model weights, optimizer weights and Adam's beta powers as bytes. */
async function snapshot(model: tf.LayersModel): Promise<Buffer> {
  const optimizerWeights = await model.optimizer.getWeights();
  const internals = model.optimizer as unknown as { accBeta1: tf.Tensor; accBeta2: tf.Tensor };
  const all = [
    ...model.getWeights(),
    ...optimizerWeights.map((w) => w.tensor),
    internals.accBeta1,
    internals.accBeta2,
  ].map((t) => Buffer.from((t.dataSync() as Float32Array).slice().buffer));
  tf.dispose(optimizerWeights[0]!.tensor);
  return Buffer.concat(all);
}
