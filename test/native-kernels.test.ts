import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/model/backend.ts';
import { heldPoolWorkspaces, nativeMaxPoolActive } from '../src/model/native-max-pool.ts';
import { HAS_NODE } from './support/backends.ts';
import { randomValues as random, relativeError, valuesOn as on } from './support/tensor-values.ts';

/**
 * galactic's kernels on tfjs-node against the cpu backend's (skipped without tfjs-node). Same
 * error measure as test/kernels.test.ts: max |candidate − reference| / max |reference| ≤ 1e-4.
 */
const TOLERANCE = 1e-4;
const skip = HAS_NODE ? false : 'tfjs-node is not installed (npm run native)';

describe('MaxPoolGrad on node (oneDNN pooling with a workspace) matches cpu, ties included', { skip }, () => {
  before(async () => {
    await selectBackend('node');
  });

  test('the oneDNN kernel is the one registered (libtensorflow 2.21 has it)', () => {
    assert.equal(nativeMaxPoolActive(), true);
  });

  const cases: { shape: number[]; size: number; stride: number; pad: 'valid' | 'same'; ties: boolean }[] = [
    { shape: [1, 8, 8, 1], size: 2, stride: 2, pad: 'valid', ties: true },
    { shape: [3, 7, 9, 3], size: 2, stride: 2, pad: 'valid', ties: true }, // odd sizes: last row/column dropped
    { shape: [2, 12, 10, 4], size: 3, stride: 3, pad: 'valid', ties: true },
    { shape: [2, 7, 7, 3], size: 3, stride: 1, pad: 'same', ties: true }, // overlapping windows add up
    { shape: [2, 9, 9, 2], size: 2, stride: 2, pad: 'same', ties: false },
    { shape: [2, 30, 30, 8], size: 2, stride: 2, pad: 'valid', ties: false },
  ];
  for (const c of cases) {
    test(`${c.shape.join('x')} pool ${c.size} stride ${c.stride} ${c.pad}${c.ties ? ' with ties' : ''}`, () => {
      const shape = c.shape as [number, number, number, number];
      const x = random(shape, 7, c.ties);
      const info = tf.backend_util.computePool2DInfo(shape, c.size, c.stride, 1, c.pad);
      const dyValues = random([shape[0], info.outHeight, info.outWidth, shape[3]], 8);
      const run = () => {
        const input = tf.tensor4d(x.data, shape);
        const output = tf.maxPool(input, c.size, c.stride, c.pad);
        const dy = tf.tensor(dyValues.data, dyValues.shape);
        return tf
          .engine()
          .runKernel(
            'MaxPoolGrad',
            { dy, input, output },
            { filterSize: c.size, strides: c.stride, pad: c.pad },
          ) as tf.Tensor;
      };
      const reference = on('cpu', run);
      const candidate = on('tensorflow', run);
      assert.deepEqual(candidate.shape, reference.shape);
      const error = relativeError(candidate.data, reference.data);
      assert.ok(error <= TOLERANCE, `relative error ${error.toExponential(2)} > ${TOLERANCE}`);
    });
  }
});

describe('max pooling under a gradient tape on node keeps its oneDNN workspace for the gradient', { skip }, () => {
  before(async () => {
    await selectBackend('node');
  });

  test('dx through the kept workspace equals cpu, ties included; no workspace outlives its pool', () => {
    for (const c of [
      { shape: [2, 12, 10, 4], size: 2, stride: 2, pad: 'valid' as const, ties: true },
      { shape: [2, 7, 7, 3], size: 3, stride: 1, pad: 'same' as const, ties: true },
      { shape: [2, 30, 30, 8], size: 2, stride: 2, pad: 'valid' as const, ties: false },
    ]) {
      const shape = c.shape as [number, number, number, number];
      const x = random(shape, 11, c.ties);
      const info = tf.backend_util.computePool2DInfo(shape, c.size, c.stride, 1, c.pad);
      const dyValues = random([shape[0], info.outHeight, info.outWidth, shape[3]], 12);
      let heldDuringGradient = -1;
      const run = () => {
        const input = tf.tensor4d(x.data, shape);
        const dy = tf.tensor(dyValues.data, dyValues.shape);
        // the pooled values are weighted by dy, so d(sum)/dx is MaxPoolGrad(dy)
        return tf.grad((t: tf.Tensor) => {
          const pooled = tf.maxPool(t as tf.Tensor4D, c.size, c.stride, c.pad);
          heldDuringGradient = heldPoolWorkspaces();
          return tf.sum(tf.mul(pooled, dy));
        })(input);
      };
      const reference = on('cpu', run);
      const before = tf.memory().numTensors;
      const candidate = on('tensorflow', run);
      assert.equal(heldDuringGradient, 1, 'the recorded pool kept its workspace');
      assert.equal(heldPoolWorkspaces(), 0, 'the workspace went with its pooled tensor');
      assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
      const error = relativeError(candidate.data, reference.data);
      assert.ok(error <= TOLERANCE, `${shape.join('x')}: relative error ${error.toExponential(2)} > ${TOLERANCE}`);
    }
  });

  test('a pool outside a gradient keeps no workspace', () => {
    tf.setBackend('tensorflow');
    const pooled = tf.tidy(() => tf.maxPool(tf.ones([1, 4, 4, 1]) as tf.Tensor4D, 2, 2, 'valid'));
    assert.equal(heldPoolWorkspaces(), 0);
    pooled.dispose();
  });
});
