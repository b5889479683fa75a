import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { buildModel } from '../src/model/architecture.ts';
import { selectBackend } from '../src/model/backend.ts';
import {
  findFusedConvOp,
  fusedConv2dRelu,
  nativeFusedConvOp,
  setNativeFusedConvMode,
  type NativeFusedConvMode,
} from '../src/model/native-fused-conv.ts';
import { disposeModel } from '../src/train/trainer.ts';
import { HAS_NODE } from './support/backends.ts';
import { randomValues as random, relativeError, type Values } from './support/tensor-values.ts';

/**
 * Conv + bias (+ ReLU) as one TensorFlow op on tfjs-node (src/model/native-fused-conv.ts; skipped without
 * tfjs-node). Outputs and gradients against the cpu backend with the error measure of the other kernel tests,
 * max |candidate − reference| / max |reference|; a model's losses and gradients against tfjs's own unfused ops.
 */
const FORWARD_TOLERANCE = 1e-5;
const GRADIENT_TOLERANCE = 1e-4;
const skip = HAS_NODE ? false : 'tfjs-node is not installed (npm run native)';

/** Whether `npm run native` built this tfjs-node with the list-attribute patch (then the fused op must be active). */
function bindingPatched(): boolean {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const source = path.join(root, 'node_modules', '@tensorflow', 'tfjs-node', 'binding', 'tfjs_backend.cc');
  return fs.existsSync(source) && fs.readFileSync(source, 'utf8').includes('galactic: list-of-string');
}

function on(backend: string, op: () => tf.Tensor[]): Values[] {
  tf.setBackend(backend);
  return tf.tidy(() => op().map((out) => ({ data: out.dataSync() as Float32Array, shape: out.shape })));
}

function assertClose(candidate: Values[], reference: Values[], tolerance: number, what: string): void {
  assert.equal(candidate.length, reference.length);
  reference.forEach((want, i) => {
    assert.deepEqual(candidate[i]!.shape, want.shape, `${what} ${i}: shape`);
    const error = relativeError(candidate[i]!.data, want.data);
    assert.ok(error <= tolerance, `${what} ${i}: relative error ${error.toExponential(2)} > ${tolerance}`);
  });
}

function withMode<T>(mode: NativeFusedConvMode, run: () => T): T {
  const previous = setNativeFusedConvMode(mode);
  try {
    return run();
  } finally {
    setNativeFusedConvMode(previous);
  }
}

interface ConvCase {
  x: number[];
  filter: number[];
  stride: 1 | 2;
  pad: 'valid' | 'same';
}
const CASES: ConvCase[] = [
  { x: [2, 9, 9, 3], filter: [3, 3, 3, 8], stride: 1, pad: 'valid' },
  { x: [3, 8, 11, 4], filter: [3, 3, 4, 5], stride: 1, pad: 'same' },
  { x: [2, 10, 9, 2], filter: [2, 2, 2, 6], stride: 2, pad: 'same' }, // even kernel: asymmetric padding
  { x: [1, 7, 7, 5], filter: [3, 3, 5, 4], stride: 2, pad: 'valid' },
];
const name = (c: ConvCase) => `${c.x.join('x')} * ${c.filter.join('x')} stride ${c.stride} ${c.pad}`;

describe('conv + bias (+ ReLU) as one TensorFlow op on node', { skip }, () => {
  before(async () => {
    await selectBackend('node');
  });

  test('the binding built by npm run native runs oneDNN fused convolutions', (t) => {
    if (!bindingPatched()) {
      t.skip('tfjs-node was not built by npm run native (no list-attribute patch): the fallback is in use');
      return;
    }
    assert.equal(nativeFusedConvOp(), '_MklNativeFusedConv2D');
  });

  for (const c of CASES) {
    for (const activation of ['relu', 'linear'] as const) {
      test(`forward ${name(c)} ${activation} equals cpu's conv + bias${activation === 'relu' ? ' + relu' : ''}`, () => {
        const x = random(c.x, 1);
        const filter = random(c.filter, 2);
        const bias = random([c.filter[3]!], 3);
        const run = () => [
          tf.fused.conv2d({
            x: tf.tensor4d(x.data, x.shape as [number, number, number, number]),
            filter: tf.tensor4d(filter.data, filter.shape as [number, number, number, number]),
            bias: tf.tensor1d(bias.data),
            strides: c.stride,
            pad: c.pad,
            activation,
          }),
        ];
        assertClose(on('tensorflow', run), on('cpu', run), FORWARD_TOLERANCE, 'output');
      });
    }

    test(`gradients of x, filter and bias through ${name(c)} + relu equal cpu's`, () => {
      const x = random(c.x, 4);
      const filter = random(c.filter, 5);
      const bias = random([c.filter[3]!], 6);
      const run = (fused: boolean) => () => {
        const xs = tf.tensor4d(x.data, x.shape as [number, number, number, number]);
        const fs4 = tf.tensor4d(filter.data, filter.shape as [number, number, number, number]);
        const b = tf.tensor1d(bias.data);
        const weight = tf.randomNormal(tf.conv2d(xs, fs4, c.stride, c.pad).shape, 0, 1, 'float32', 7);
        const f = (a: tf.Tensor, k: tf.Tensor, o: tf.Tensor) => {
          const y = fused
            ? fusedConv2dRelu(a as tf.Tensor4D, k as tf.Tensor4D, o as tf.Tensor1D, [c.stride, c.stride], c.pad)
            : tf.relu(tf.add(tf.conv2d(a as tf.Tensor4D, k as tf.Tensor4D, c.stride, c.pad), o));
          return tf.sum(tf.mul(y, weight));
        };
        return tf.grads(f)([xs, fs4, b]);
      };
      assertClose(on('tensorflow', run(true)), on('cpu', run(false)), GRADIENT_TOLERANCE, 'gradient');
    });
  }

  test('settings the fused op does not cover take tfjs-node own kernel (elu, dilation 2)', () => {
    const x = random([2, 9, 9, 3], 8);
    const filter = random([3, 3, 3, 4], 9);
    const bias = random([4], 10);
    for (const [activation, dilations] of [
      ['elu', 1],
      ['relu', 2],
    ] as const) {
      const run = () => [
        tf.fused.conv2d({
          x: tf.tensor4d(x.data, x.shape as [number, number, number, number]),
          filter: tf.tensor4d(filter.data, filter.shape as [number, number, number, number]),
          bias: tf.tensor1d(bias.data),
          strides: 1,
          pad: 'valid',
          dilations,
          activation,
        }),
      ];
      assertClose(on('tensorflow', run), on('cpu', run), FORWARD_TOLERANCE, `${activation} dilation ${dilations}`);
    }
  });

  describe("the notebook's CNN (two ReLU conv layers) trained on node", () => {
    const SMALL = { filters: [4, 8], kernelSize: 3, denseUnits: 16, dropout: 0, learningRate: 0.01 };
    let xs: tf.Tensor4D;
    let ys: tf.Tensor1D;
    before(() => {
      tf.setBackend('tensorflow');
      xs = tf.randomUniform([6, 20, 20, 3], 0, 1, 'float32', 11);
      ys = tf.tensor1d([0, 1, 2, 0, 1, 2], 'float32');
    });
    after(() => tf.dispose([xs, ys]));

    const build = () =>
      buildModel({}, { inputShape: [20, 20, 3], numClasses: 3, seed: 13, defaults: SMALL }) as tf.LayersModel;

    /** One tape step's loss and every trainable weight's gradient, and the kernels the step ran. */
    async function step(mode: NativeFusedConvMode) {
      return withMode(mode, async () => {
        const model = build();
        try {
          const variables = model.trainableWeights.map((w) => (w as unknown as { read(): tf.Variable }).read());
          let result: { loss: Values[]; grads: Values[] } | undefined;
          const profile = await tf.profile(() => {
            const oneHot = tf.oneHot(ys.toInt(), 3);
            const { value, grads } = tf.variableGrads(
              () =>
                tf.mean(
                  tf.metrics.categoricalCrossentropy(oneHot, model.apply(xs, { training: true }) as tf.Tensor),
                ) as tf.Scalar,
              variables,
            );
            const pack = (t: tf.Tensor) => ({ data: t.dataSync() as Float32Array, shape: t.shape });
            result = { loss: [pack(value)], grads: variables.map((v) => pack(grads[v.name]!)) };
            tf.dispose([oneHot, value, ...Object.values(grads)]);
          });
          return { ...result!, kernels: profile.kernelNames };
        } finally {
          disposeModel(model);
        }
      });
    }

    test("one step's loss and every gradient equal tfjs's unfused ops', in both fused modes", async () => {
      const reference = await step('off');
      assert.ok(reference.kernels.includes('Conv2D') && !reference.kernels.includes('FusedConv2D'));
      for (const mode of ['bias-relu', 'bias'] as const) {
        const got = await step(mode);
        if (nativeFusedConvOp()) {
          assert.ok(got.kernels.includes('FusedConv2D'), `${mode}: ${got.kernels.join(', ')}`);
          assert.ok(!got.kernels.includes('Conv2D'), `${mode}: ${got.kernels.join(', ')}`);
        }
        assertClose(got.loss, reference.loss, 1e-6, `${mode} loss`);
        assertClose(got.grads, reference.grads, GRADIENT_TOLERANCE, `${mode} gradient`);
      }
    });

    test('five trainOnBatch steps give the same losses as unfused, and no tensor is left behind', async () => {
      const losses = async (mode: NativeFusedConvMode) =>
        withMode(mode, async () => {
          const model = build();
          const out: number[] = [];
          const counts: number[] = [];
          try {
            for (let i = 0; i < 5; i++) {
              out.push(((await model.trainOnBatch(xs, ys)) as number[])[0]!);
              counts.push(tf.memory().numTensors);
            }
          } finally {
            disposeModel(model);
          }
          return { out, counts };
        });
      const reference = await losses('off');
      const fused = await losses('bias-relu');
      fused.out.forEach((loss, i) => {
        const want = reference.out[i]!;
        assert.ok(Math.abs(loss - want) <= 1e-5 * Math.abs(want), `step ${i}: ${loss} fused, ${want} unfused`);
      });
      // the first step creates Adam's moments; after that every step leaves the count as it was
      assert.deepEqual(fused.counts.slice(1), Array(4).fill(fused.counts[1]));
    });
  });
});

describe('fused convolution probe and fallback', () => {
  test('a binding that cannot set list attributes (tfjs-node installed as published) gets no fused op', () => {
    const unpatched = {
      binding: { TF_ATTR_TYPE: 3, TF_ATTR_INT: 1, TF_ATTR_STRING: 0, TF_FLOAT: 1 },
      executeSingleOutput(_name: string, attrs: { value: unknown }[]): tf.Tensor {
        if (attrs.some((a) => Array.isArray(a.value) && typeof a.value[0] !== 'number')) {
          throw new Error('Invalid napi_status: A string was expected');
        }
        throw new Error('Invalid napi_status: A number was expected');
      },
    };
    assert.equal(findFusedConvOp(unpatched), null);
  });

  test('on wasm the layers keep tfjs own convolution (Conv2D, Add, Relu)', async () => {
    await selectBackend('wasm');
    const model = buildModel(
      {},
      {
        inputShape: [12, 12, 3],
        numClasses: 2,
        seed: 3,
        defaults: { filters: [4], kernelSize: 3, denseUnits: 4, dropout: 0, learningRate: 0.01 },
      },
    );
    try {
      const x = tf.ones([2, 12, 12, 3]);
      const profile = await tf.profile(() => {
        tf.dispose(tf.variableGrads(() => tf.sum(model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar));
      });
      x.dispose();
      assert.ok(profile.kernelNames.includes('Conv2D'), profile.kernelNames.join(', '));
      assert.ok(!profile.kernelNames.includes('FusedConv2D'), profile.kernelNames.join(', '));
    } finally {
      disposeModel(model);
    }
  });
});
