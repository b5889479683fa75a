/**
 * Child for wasm-threads.test.ts: one training step of a small CNN on the wasm backend with the
 * thread count from argv (and, for 'auto', the cores to count), printing the threads in use and
 * the updated weights. It ends without process.exit, so the test also sees whether the pthread
 * workers let the process exit.
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/model/backend.ts';

const threads = process.argv[2] === 'auto' ? 'auto' : Number(process.argv[2]);
const cpus = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
const choice = await selectBackend('wasm', undefined, { threads, cpus });
const model = tf.sequential({
  layers: [
    tf.layers.conv2d({
      inputShape: [20, 20, 3],
      filters: 8,
      kernelSize: 3,
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
    }),
    tf.layers.maxPooling2d({ poolSize: 2 }),
    tf.layers.conv2d({
      filters: 16,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
    }),
    tf.layers.flatten(),
    tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
  ],
});
model.compile({ optimizer: tf.train.sgd(0.1), loss: 'sparseCategoricalCrossentropy' });
const xs = tf.randomUniform([12, 20, 20, 3], 0, 1, 'float32', 7);
const ys = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
await model.trainOnBatch(xs, ys);
const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
process.stdout.write(JSON.stringify({ threads: choice.threads, reason: choice.reason, weights }));
