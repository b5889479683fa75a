import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import {
  buildModel,
  countParameters,
  describeArchitecture,
  InvalidHyperparameterError,
  ArchitectureTooDeepError,
} from '../src/model/architecture.ts';
import {
  asMissingKernelError,
  BackendUnavailableError,
  MissingKernelError,
  selectBackend,
  withKernelCheck,
} from '../src/model/backend.ts';
import { Output } from '../src/core/console.ts';
import { repoRoot, runCli } from './support/run-cli.ts';
import { AVAILABLE_BACKENDS, HAS_NODE, missingExpectedBackends, testEachBackend } from './support/backends.ts';

const NOTEBOOK = { filters: [32, 64, 128], kernelSize: 3, denseUnits: 64, dropout: 0, learningRate: 0.001 };
const SMALL = { filters: [4, 8], kernelSize: 3, denseUnits: 8, dropout: 0, learningRate: 0.01 };

function capture(): { output: Output; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { output: new Output({ stream, tty: false }), text: () => text };
}

describe('selectBackend', () => {
  test('the backends CI expects here load (GALACTIC_TEST_BACKENDS)', () => {
    assert.deepEqual(missingExpectedBackends(), [], `loaded: ${AVAILABLE_BACKENDS.join(', ')}`);
  });

  test(
    'auto skips the missing tfjs-node with its reason, picks wasm and says so',
    { skip: HAS_NODE && 'tfjs-node loads here' },
    async () => {
      const { output, text } = capture();
      const choice = await selectBackend('auto', output);
      assert.equal(choice.name, 'wasm');
      assert.match(choice.reason, /^auto/);
      assert.equal(choice.skipped.length, 1);
      assert.equal(choice.skipped[0]!.name, 'node');
      assert.match(choice.skipped[0]!.why, /@tensorflow\/tfjs-node is not installed.*storage\.googleapis\.com/);
      assert.match(text(), /backend node skipped: .*not installed/);
      assert.match(text(), /backend: wasm \(auto/);
    },
  );

  test(
    'auto picks tfjs-node when it loads and says so',
    { skip: !HAS_NODE && 'tfjs-node is not installed' },
    async () => {
      const { output, text } = capture();
      const choice = await selectBackend('auto', output);
      assert.equal(choice.name, 'node');
      assert.deepEqual(choice.skipped, []);
      assert.equal(tf.getBackend(), 'tensorflow');
      assert.match(text(), /^backend: node \(auto: native TensorFlow/);
    },
  );

  test("tfjs's 'install tfjs-node' banner never reaches the user on the cpu backend", () => {
    const script = `import * as tf from '@tensorflow/tfjs'; import { selectBackend } from './src/model/backend.ts';
      await selectBackend('cpu'); tf.square(tf.tensor1d([1, 2])).dataSync(); console.log('ran');`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'ran\n');
    assert.doesNotMatch(r.stderr, /looks like you are running TensorFlow\.js in Node\.js/);
  });

  const TFJS_NAME = { node: 'tensorflow', wasm: 'wasm', cpu: 'cpu' } as const;
  testEachBackend(
    'the registered backend is the one tf ops run on (one engine)',
    async (name) => {
      const tfjsName = TFJS_NAME[name];
      const choice = await selectBackend(name);
      assert.equal(choice.name, name);
      assert.equal(tf.getBackend(), tfjsName);
      assert.equal(tf.engine().backendName, tfjsName);
      assert.strictEqual(tf.engine().backend, tf.findBackend(tfjsName));
      const x = tf.tensor1d([1, 2, 3]);
      const held = tf.findBackend(tfjsName)!.numDataIds();
      const y = tf.square(x);
      // the op's result is stored by that backend, not by some other engine's
      assert.equal(tf.findBackend(tfjsName)!.numDataIds(), held + 1);
      assert.deepEqual(Array.from(await y.data()), [1, 4, 9]);
      tf.dispose([x, y]);
    },
    AVAILABLE_BACKENDS,
  );

  test(
    'forcing tfjs-node, which is not installed, names the package, npm run native and why its install fails offline',
    { skip: HAS_NODE && 'tfjs-node loads here' },
    async () => {
      await assert.rejects(selectBackend('node'), (error: unknown) => {
        assert.ok(error instanceof BackendUnavailableError);
        assert.match(error.message, /backend 'node' is not available/);
        assert.match(error.message, /npm install @tensorflow\/tfjs-node@4\.22\.0/);
        assert.match(error.message, /'npm run native'/);
        assert.match(error.message, /storage\.googleapis\.com/);
        assert.match(error.message, /--backend wasm/);
        return true;
      });
    },
  );

  test('selecting twice is harmless (kernels registered once, same backend)', async () => {
    await selectBackend('wasm');
    const first = tf.getKernel('Conv2DBackpropFilter', 'wasm')!.kernelFunc;
    await selectBackend('wasm');
    assert.strictEqual(tf.getKernel('Conv2DBackpropFilter', 'wasm')!.kernelFunc, first);
  });
});

describe('missing kernels', () => {
  test("tfjs's 'Kernel not registered' becomes a MissingKernelError naming op and backend", async () => {
    await selectBackend('wasm');
    await assert.rejects(
      withKernelCheck(() => tf.engine().runKernel('GalacticNoSuchOp', { x: tf.scalar(1) }, {})),
      (error: unknown) => {
        assert.ok(error instanceof MissingKernelError);
        assert.equal(error.op, 'GalacticNoSuchOp');
        assert.equal(error.backend, 'wasm');
        assert.match(error.message, /'GalacticNoSuchOp'.*'wasm' backend/);
        return true;
      },
    );
    const other = new Error('something else');
    assert.strictEqual(asMissingKernelError(other), other);
  });
});

describe('buildModel (contract §5)', () => {
  test("the notebook's CNN: conv/pool/conv/pool/conv/flatten/dense/dense, compiled with Adam and sparse CE", async () => {
    await selectBackend('cpu');
    const model = buildModel({}, { inputShape: [128, 128, 3], numClasses: 3, seed: 42, defaults: NOTEBOOK });
    try {
      const kinds = model.layers.map((l) => l.getClassName());
      assert.deepEqual(kinds, [
        'Conv2D',
        'MaxPooling2D',
        'Conv2D',
        'MaxPooling2D',
        'Conv2D',
        'Flatten',
        'Dense',
        'Dense',
      ]);
      assert.deepEqual(model.outputs[0]!.shape, [null, 3]);
      assert.equal(model.loss, 'sparseCategoricalCrossentropy');
      assert.ok(model.optimizer instanceof tf.AdamOptimizer);
      assert.equal((model.optimizer as unknown as { learningRate: number }).learningRate, 0.001);
      assert.equal(countParameters({}, [128, 128, 3], 3, NOTEBOOK), model.countParams());
      // describeArchitecture's shapes are the model's
      const described = describeArchitecture({}, [128, 128, 3], 3, NOTEBOOK);
      assert.deepEqual(
        described.layers.map((l) => l.outputShape),
        model.layers.map((l) => (l.outputShape as number[]).slice(1)),
      );
      assert.equal(described.parameters, model.countParams());
    } finally {
      model.optimizer?.dispose();
      model.dispose();
    }
  });

  test('hyperparameter values override defaults; filters_k beyond the defaults adds a block; dropout adds a layer', async () => {
    await selectBackend('cpu');
    const model = buildModel(
      {
        filters_1: 8,
        filters_2: 8,
        filters_3: 16,
        filters_4: 16,
        dense_units: 32,
        dropout: 0.25,
        learning_rate: 0.005,
      },
      { inputShape: [64, 64, 1], numClasses: 4, seed: 1, defaults: NOTEBOOK },
    );
    try {
      const kinds = model.layers.map((l) => l.getClassName());
      assert.deepEqual(kinds, [
        'Conv2D',
        'MaxPooling2D',
        'Conv2D',
        'MaxPooling2D',
        'Conv2D',
        'MaxPooling2D',
        'Conv2D',
        'Flatten',
        'Dense',
        'Dropout',
        'Dense',
      ]);
      assert.equal((model.optimizer as unknown as { learningRate: number }).learningRate, 0.005);
      assert.equal((model.layers[8] as unknown as { units: number }).units, 32);
    } finally {
      model.optimizer?.dispose();
      model.dispose();
    }
  });

  test('the same seed gives the same initial weights, another seed different ones', async () => {
    await selectBackend('cpu');
    const weights = (seed: number) => {
      const model = buildModel({}, { inputShape: [16, 16, 3], numClasses: 3, seed, defaults: SMALL });
      const values = model.getWeights().map((w) => Array.from(w.dataSync()));
      model.optimizer?.dispose();
      model.dispose();
      return values;
    };
    assert.deepEqual(weights(7), weights(7));
    assert.notDeepEqual(weights(7), weights(8));
  });

  test('bad values and too-deep nets are user errors, not tfjs stack traces', () => {
    const options = { inputShape: [16, 16, 3] as [number, number, number], numClasses: 3, seed: 1, defaults: SMALL };
    assert.throws(() => buildModel({ filters_1: 0 }, options), InvalidHyperparameterError);
    assert.throws(() => buildModel({ dense_units: 'many' }, options), InvalidHyperparameterError);
    assert.throws(() => buildModel({ filters_4: 4 }, options), /hyperparameter 'filters_3' is undefined/);
    assert.throws(
      () => buildModel({ filters_1: 4, filters_2: 4, filters_3: 4, filters_4: 4, filters_5: 4 }, options),
      ArchitectureTooDeepError,
    );
  });
});

describe('no leaks: tensor count and bytes are flat across training steps', () => {
  testEachBackend(
    'tensors and bytes before and after four steps',
    async (name) => {
      await selectBackend(name);
      const model = buildModel({}, { inputShape: [16, 16, 3], numClasses: 3, seed: 3, defaults: SMALL });
      const xs = tf.randomUniform([4, 16, 16, 3], 0, 1, 'float32', 1);
      const ys = tf.tensor1d([0, 1, 2, 0], 'float32');
      try {
        await model.trainOnBatch(xs, ys); // creates Adam's slots
        const before = tf.memory();
        for (let i = 0; i < 4; i++) await model.trainOnBatch(xs, ys);
        const after = tf.memory();
        assert.equal(after.numTensors, before.numTensors, 'numTensors');
        assert.equal(after.numBytes, before.numBytes, 'numBytes');
        if (name === 'wasm') {
          // the wasm heap's own tensor records (our kernels' intermediates) are released too
          assert.equal(
            (tf.backend() as unknown as { numDataIds(): number }).numDataIds(),
            tf.engine().backend.numDataIds(),
          );
        }
      } finally {
        tf.dispose([xs, ys]);
        model.optimizer?.dispose();
        model.dispose();
      }
    },
    AVAILABLE_BACKENDS,
  );

  testEachBackend('the backend holds no more data ids after steps than before', async (name) => {
    await selectBackend(name);
    const model = buildModel({}, { inputShape: [20, 20, 3], numClasses: 3, seed: 3, defaults: SMALL });
    const xs = tf.randomUniform([3, 20, 20, 3], 0, 1, 'float32', 2);
    const ys = tf.tensor1d([0, 1, 2], 'float32');
    try {
      await model.trainOnBatch(xs, ys);
      const before = tf.engine().backend.numDataIds();
      for (let i = 0; i < 3; i++) await model.trainOnBatch(xs, ys);
      assert.equal(tf.engine().backend.numDataIds(), before);
    } finally {
      tf.dispose([xs, ys]);
      model.optimizer?.dispose();
      model.dispose();
    }
  });
});

describe('galactic bench train (CLI)', () => {
  testEachBackend(
    '--json prints one object with backend, images/s, ms per step and the top kernels',
    async (backend) => {
      const threads = backend === 'wasm' ? ['--threads', '2'] : [];
      const result = await runCli([
        'bench',
        'train',
        '--backend',
        backend,
        '--size',
        '32',
        '--batch',
        '4',
        '--steps',
        '2',
        ...threads,
        '--json',
      ]);
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.trim().split('\n');
      assert.equal(lines.length, 1, 'exactly one line on stdout');
      const summary = JSON.parse(lines[0]!) as {
        backend: string;
        threads: number | null;
        imagesPerSecond: number;
        msPerStep: { median: number; min: number; max: number };
        topKernels: { kernel: string; ms: number; share: number }[];
      };
      assert.equal(summary.backend, backend);
      assert.equal(summary.threads, backend === 'wasm' ? 2 : null);
      assert.ok(summary.imagesPerSecond > 0);
      assert.ok(summary.msPerStep.min <= summary.msPerStep.median && summary.msPerStep.median <= summary.msPerStep.max);
      assert.equal(summary.topKernels.length, 5);
      assert.ok(
        summary.topKernels.every((k) => typeof k.kernel === 'string' && k.ms >= 0 && k.share >= 0 && k.share <= 1),
      );
      assert.match(result.stderr, /Intel|AMD|cores/);
      assert.match(result.stderr, /images\/s/);
    },
  );

  test('--threads outside 1-8 is a usage error before any work', async () => {
    const result = await runCli(['bench', 'train', '--threads', '9']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /galactic: --threads must be auto or a whole number from 1 to 8 \(got '9'\)/);
  });

  test(
    'forcing tfjs-node fails with the reason and no stack trace',
    { skip: HAS_NODE && 'tfjs-node loads here' },
    async () => {
      const result = await runCli(['bench', 'train', '--backend', 'node', '--steps', '1']);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /galactic: backend 'node' is not available: @tensorflow\/tfjs-node is not installed/);
      assert.doesNotMatch(result.stderr, /\n\s+at /);
    },
  );
});
