import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { buildModel } from '../src/model/architecture.ts';
import { selectBackend } from '../src/model/backend.ts';
import { conv2DBackpropFilterWith } from '../src/model/kernels/conv2d-backprop-filter.ts';
import { convolve, type WasmBackend } from '../src/model/kernels/wasm-primitives.ts';
import { randomValues as random, relativeError, valuesOn as on, type Values } from './support/tensor-values.ts';

/**
 * galactic's wasm training kernels against the cpu backend's (the reference tfjs ships).
 * Error measure: max |candidate − reference| / max |reference| over the whole output tensor
 * (normalised by the tensor's largest reference magnitude, so near-zero elements cannot inflate
 * it); every case must be ≤ 1e-4.
 */
const TOLERANCE = 1e-4;

function compare(name: string, op: () => tf.Tensor): void {
  const reference = on('cpu', op);
  assertClose(name, on('wasm', op), reference);
}

function assertClose(name: string, candidate: Values, reference: Values): void {
  assert.deepEqual(candidate.shape, reference.shape, `${name}: shape`);
  const error = relativeError(candidate.data, reference.data);
  assert.ok(error <= TOLERANCE, `${name}: relative error ${error.toExponential(2)} > ${TOLERANCE}`);
}

const t4 = (v: Values) => tf.tensor4d(v.data, v.shape as [number, number, number, number]);

before(async () => {
  await selectBackend('wasm');
});

interface ConvCase {
  n: number;
  h: number;
  w: number;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  pad: 'valid' | 'same' | number;
}

const convCases: ConvCase[] = [];
for (const stride of [1, 2]) {
  for (const pad of ['valid', 'same'] as const) {
    convCases.push({ n: 1, h: 9, w: 7, cin: 1, cout: 4, k: 3, stride, pad });
    convCases.push({ n: 3, h: 8, w: 11, cin: 3, cout: 5, k: 3, stride, pad });
  }
}
convCases.push({ n: 2, h: 10, w: 10, cin: 3, cout: 2, k: 4, stride: 2, pad: 'same' }); // even kernel: asymmetric same padding
convCases.push({ n: 1, h: 7, w: 9, cin: 3, cout: 3, k: 5, stride: 1, pad: 'same' });
convCases.push({ n: 2, h: 9, w: 9, cin: 1, cout: 2, k: 3, stride: 1, pad: 1 });
convCases.push({ n: 2, h: 64, w: 64, cin: 3, cout: 8, k: 3, stride: 1, pad: 'valid' }); // several row bands

function convShapes(c: ConvCase): { x: number[]; filter: number[]; dy: number[] } {
  const out = tf.tidy(
    () =>
      tf.conv2d(
        tf.zeros([c.n, c.h, c.w, c.cin]) as tf.Tensor4D,
        tf.zeros([c.k, c.k, c.cin, c.cout]) as tf.Tensor4D,
        c.stride,
        c.pad,
      ).shape,
  );
  return { x: [c.n, c.h, c.w, c.cin], filter: [c.k, c.k, c.cin, c.cout], dy: out };
}

describe('Conv2DBackpropFilter (wasm) matches cpu', () => {
  for (const c of convCases) {
    test(`n${c.n} ${c.h}x${c.w}x${c.cin}→${c.cout} k${c.k} s${c.stride} ${c.pad}`, () => {
      const s = convShapes(c);
      const x = random(s.x, 1);
      const dy = random(s.dy, 2);
      compare(
        'Conv2DBackpropFilter',
        () =>
          tf
            .engine()
            .runKernel(
              'Conv2DBackpropFilter',
              { x: t4(x), dy: t4(dy) },
              { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', filterShape: s.filter },
            ) as tf.Tensor,
      );
    });
  }
});

test('Conv2DBackpropFilter split into many pieces (matrix-product chunks at stride 1, filter bands at stride 2) still matches cpu', () => {
  // 1,000 rows per product (9 chunks, the last one short); a band of one or two filter rows
  const finelyCut = conv2DBackpropFilterWith({ matrixBytes: 4 * 27 * 1000, filterBytes: 2048 });
  for (const c of [
    { n: 2, h: 64, w: 64, cin: 3, cout: 8, k: 3, stride: 1, pad: 'valid' },
    { n: 2, h: 64, w: 64, cin: 3, cout: 8, k: 3, stride: 1, pad: 'same' },
    { n: 2, h: 40, w: 40, cin: 3, cout: 8, k: 3, stride: 2, pad: 'valid' },
  ] as ConvCase[]) {
    const s = convShapes(c);
    const x = random(s.x, 11);
    const dy = random(s.dy, 12);
    const attrs = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', filterShape: s.filter };
    const reference = on(
      'cpu',
      () => tf.engine().runKernel('Conv2DBackpropFilter', { x: t4(x), dy: t4(dy) }, attrs) as tf.Tensor,
    );
    const candidate = on('wasm', () => {
      const out = finelyCut({ inputs: { x: t4(x), dy: t4(dy) }, backend: tf.backend(), attrs }) as tf.TensorInfo;
      return tf.engine().makeTensorFromTensorInfo(out);
    });
    assertClose(`Conv2DBackpropFilter s${c.stride} ${c.pad}`, candidate, reference);
  }
});

describe('Conv2DBackpropInput (wasm) matches cpu', () => {
  for (const c of convCases) {
    test(`n${c.n} ${c.h}x${c.w}x${c.cin}→${c.cout} k${c.k} s${c.stride} ${c.pad}`, () => {
      const s = convShapes(c);
      const filter = random(s.filter, 3);
      const dy = random(s.dy, 4);
      compare(
        'Conv2DBackpropInput',
        () =>
          tf
            .engine()
            .runKernel(
              'Conv2DBackpropInput',
              { dy: t4(dy), filter: t4(filter) },
              { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', inputShape: s.x },
            ) as tf.Tensor,
      );
    });
  }
});

describe('explicit-padding XNNPACK convolution (the primitive both gradients use) matches cpu', () => {
  for (const [dilation, pad] of [
    [2, 'valid'],
    [2, 'same'],
    [1, 'same'],
  ] as const) {
    test(`dilation ${dilation}, ${pad}`, () => {
      const x = random([2, 11, 9, 3], 5);
      const filter = random([3, 3, 3, 4], 6);
      const reference = on('cpu', () => tf.conv2d(t4(x), t4(filter), 1, pad, 'NHWC', dilation));
      tf.setBackend('wasm');
      const backend = tf.backend() as unknown as WasmBackend;
      // 'same' with dilation 2 and a 3-tap filter pads (3-1)*2/2 = 2 on each side.
      const p = pad === 'valid' ? 0 : dilation;
      const candidate = tf.tidy(() => {
        const out = convolve(backend, t4(x), t4(filter), {
          strides: [1, 1],
          dilations: [dilation, dilation],
          pads: [p, p, p, p],
        });
        const tensor = tf.engine().makeTensorFromTensorInfo(out);
        return { data: tensor.dataSync() as Float32Array, shape: tensor.shape };
      });
      assert.deepEqual(candidate.shape, reference.shape);
      assert.ok(relativeError(candidate.data, reference.data) <= TOLERANCE);
    });
  }
});

describe('MaxPoolGrad (wasm) matches cpu, ties included', () => {
  const cases: { shape: number[]; size: number; stride: number; pad: 'valid' | 'same'; ties: boolean }[] = [
    { shape: [1, 8, 8, 1], size: 2, stride: 2, pad: 'valid', ties: true },
    { shape: [3, 7, 9, 3], size: 2, stride: 2, pad: 'valid', ties: true }, // odd sizes: last row/column dropped
    { shape: [2, 12, 10, 4], size: 3, stride: 3, pad: 'valid', ties: true },
    { shape: [2, 7, 7, 3], size: 3, stride: 1, pad: 'same', ties: false }, // overlapping: the backend's kernel
    { shape: [2, 9, 9, 2], size: 2, stride: 2, pad: 'same', ties: false },
  ];
  for (const c of cases) {
    test(`${c.shape.join('x')} pool ${c.size} stride ${c.stride} ${c.pad}${c.ties ? ' with ties' : ''}`, () => {
      const x = random(c.shape, 7, c.ties);
      const run = () => {
        const input = t4(x);
        const output = tf.maxPool(input, c.size, c.stride, c.pad);
        const dy = tf.randomNormal(output.shape, 0, 1, 'float32', 8);
        return tf
          .engine()
          .runKernel(
            'MaxPoolGrad',
            { dy, input, output },
            { filterSize: c.size, strides: c.stride, pad: c.pad },
          ) as tf.Tensor;
      };
      compare('MaxPoolGrad', run);
    });
  }
});

describe('BatchMatMul (wasm) with transposed operands matches cpu', () => {
  for (const [transposeA, transposeB] of [
    [true, false],
    [false, true],
    [true, true],
    [false, false],
  ] as const) {
    test(`transposeA ${transposeA}, transposeB ${transposeB}`, () => {
      const a = random(transposeA ? [300, 5] : [5, 300], 9);
      const b = random(transposeB ? [7, 300] : [300, 7], 10);
      compare('BatchMatMul', () =>
        tf.matMul(
          tf.tensor2d(a.data, a.shape as [number, number]),
          tf.tensor2d(b.data, b.shape as [number, number]),
          transposeA,
          transposeB,
        ),
      );
    });
  }
  test('batched (falls back to the backend kernel)', () => {
    const a = random([2, 4, 6], 11);
    const b = random([2, 5, 6], 12);
    compare('BatchMatMul', () =>
      tf.matMul(
        tf.tensor3d(a.data, a.shape as [number, number, number]),
        tf.tensor3d(b.data, b.shape as [number, number, number]),
        false,
        true,
      ),
    );
  });
});

describe('Sum (wasm) matches cpu', () => {
  const cases: { shape: number[]; axis: number[]; keepDims: boolean }[] = [
    { shape: [4, 30, 30, 8], axis: [0, 1, 2], keepDims: false }, // a conv bias gradient
    { shape: [4, 30, 30, 8], axis: [0, 1, 2], keepDims: true },
    { shape: [3000, 5], axis: [0], keepDims: false },
    { shape: [5, 3000], axis: [1], keepDims: false }, // inner axis: the backend's kernel
    { shape: [3, 4, 5], axis: [0, 2], keepDims: false },
  ];
  for (const c of cases) {
    test(`${c.shape.join('x')} over ${c.axis.join(',')}${c.keepDims ? ' keepDims' : ''}`, () => {
      const x = random(c.shape, 13);
      compare('Sum', () => tf.sum(tf.tensor(x.data, c.shape), c.axis, c.keepDims));
    });
  }
});

describe("ReLU's gradient (one ReluGrad kernel on wasm) matches cpu", () => {
  test('dy passes where x > 0 and is 0 where x <= 0 (zeros, infinities and denormals included)', () => {
    const x = [-2, -0, 0, 1e-45, -1e-45, 3, Infinity, -Infinity, 3.4e38];
    const dy = [5, 6, 7, 8, 9, 10, 11, 12, 13];
    const expected = [0, 0, 0, 8, 0, 10, 11, 0, 13];
    for (const backend of ['cpu', 'wasm']) {
      tf.setBackend(backend);
      const g = tf.tidy(() =>
        tf
          .grad((v: tf.Tensor) => tf.relu(v).mul(tf.tensor1d(dy)).sum())(tf.tensor1d(x))
          .dataSync(),
      );
      assert.deepEqual(Array.from(g), expected, backend);
    }
  });
  test("on wasm a NaN activation passes no gradient (as TensorFlow's ReluGrad)", () => {
    tf.setBackend('wasm');
    const g = tf.tidy(() =>
      tf
        .grad((v: tf.Tensor) => tf.relu(v).sum())(tf.tensor1d([NaN, -NaN, 1]))
        .dataSync(),
    );
    assert.deepEqual(Array.from(g), [0, 0, 1]);
  });
  test('a 4-D activation', () => {
    const x = random([2, 9, 9, 5], 21);
    const dy = random([2, 9, 9, 5], 22);
    compare('ReluGrad', () => tf.grad((v: tf.Tensor) => tf.relu(v).mul(t4(dy)).sum())(t4(x)));
  });
});

test("a whole training step's gradients on a small CNN match the cpu backend's", () => {
  const defaults = { filters: [4, 8, 8], kernelSize: 3, denseUnits: 8, dropout: 0, learningRate: 0.001 };
  const x = random([3, 20, 20, 3], 14);
  const labels = [0, 1, 2];
  const gradients = (backend: string): Map<string, Float32Array> => {
    tf.setBackend(backend);
    const model = buildModel({}, { inputShape: [20, 20, 3], numClasses: 3, seed: 5, defaults });
    try {
      const result = new Map<string, Float32Array>();
      tf.tidy(() => {
        const xs = t4(x);
        const ys = tf.oneHot(tf.tensor1d(labels, 'int32'), 3);
        const { grads } = tf.variableGrads(
          () => tf.losses.softmaxCrossEntropy(ys, model.apply(xs) as tf.Tensor).asScalar() as tf.Scalar,
          model.trainableWeights.map((w) => w.read() as tf.Variable),
        );
        for (const [name, g] of Object.entries(grads)) result.set(name, g.dataSync() as Float32Array);
      });
      return result;
    } finally {
      model.optimizer?.dispose();
      model.dispose();
    }
  };
  const reference = gradients('cpu');
  const candidate = gradients('wasm');
  assert.equal(candidate.size, reference.size);
  assert.equal(reference.size, 10, 'kernel and bias of 3 convs and 2 dense layers');
  const [refList, candList] = [[...reference.values()], [...candidate.values()]];
  refList.forEach((ref, i) => {
    const error = relativeError(candList[i]!, ref);
    assert.ok(error <= TOLERANCE, `gradient ${i}: relative error ${error.toExponential(2)}`);
  });
});

test('Identity (tf.clone) on wasm shares memory by reference count: each copy outlives the other, and both free it', () => {
  tf.setBackend('wasm');
  const before = tf.memory();
  const a = tf.tensor1d([1, 2, 3, 4]);
  const b = tf.clone(a);
  assert.equal(tf.memory().numDataBuffers, before.numDataBuffers + 1, 'one buffer, not two');
  a.dispose();
  assert.deepEqual(Array.from(b.dataSync()), [1, 2, 3, 4]);
  const c = tf.clone(b);
  b.dispose();
  assert.deepEqual(Array.from(c.dataSync()), [1, 2, 3, 4]);
  c.dispose();
  assert.equal(tf.memory().numTensors, before.numTensors);
  assert.equal(tf.memory().numDataBuffers, before.numDataBuffers);
  assert.equal(tf.memory().numBytes, before.numBytes);
});
