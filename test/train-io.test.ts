import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { buildModel } from '../src/model/architecture.ts';
import { CheckpointError, loadCheckpoint, saveCheckpoint } from '../src/model/checkpoint.ts';
import { loadModel, ModelFilesError, saveModel } from '../src/model/io.ts';

const defaults = { filters: [2, 4], kernelSize: 3, denseUnits: 8, dropout: 0, learningRate: 0.001 };
const tiny = (filters = defaults.filters) =>
  buildModel({}, { inputShape: [16, 16, 3], numClasses: 3, seed: 5, defaults: { ...defaults, filters } });
let root: string;

before(async () => {
  await tf.setBackend('cpu');
  root = mkdtempSync(path.join(os.tmpdir(), 'galactic-io-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

test('a saved model folder loads back with the same predictions, as a plain tfjs layers model', async () => {
  const model = tiny();
  const dir = path.join(root, 'model');
  await saveModel(model, dir);
  const json = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8'));
  assert.equal(json.format, 'layers-model');
  assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
  // any tfjs can read it: the standard in-memory handler over the same files
  const viaTfjs = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest[0].weights,
      weightData: new Uint8Array(readFileSync(path.join(dir, 'weights.bin'))).buffer,
    }),
  );
  const loaded = await loadModel(dir);
  const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 3);
  const expected = Array.from((model.predict(x) as tf.Tensor).dataSync());
  assert.deepEqual(Array.from((loaded.predict(x) as tf.Tensor).dataSync()), expected);
  assert.deepEqual(Array.from((viaTfjs.predict(x) as tf.Tensor).dataSync()), expected);
  tf.dispose([x]);
  [model, loaded, viaTfjs].forEach((m) => m.dispose());
});

test('a missing or mismatched weights.bin is a clear ModelFilesError', async () => {
  const a = path.join(root, 'a');
  const b = path.join(root, 'b');
  const small = tiny();
  const big = tiny([4, 8]);
  await saveModel(small, a);
  await saveModel(big, b);
  small.dispose();
  big.dispose();
  copyFileSync(path.join(b, 'weights.bin'), path.join(a, 'weights.bin'));
  await assert.rejects(
    loadModel(a),
    (e: Error) =>
      e instanceof ModelFilesError &&
      /weights of \d+ bytes, but its model.json describes \d+ bytes/.test(e.message) &&
      /galactic train/.test(e.message),
  );
  rmSync(path.join(b, 'weights.bin'));
  await assert.rejects(
    loadModel(b),
    (e: Error) => e instanceof ModelFilesError && /is missing weights.bin/.test(e.message),
  );
  await assert.rejects(
    loadModel(path.join(root, 'nowhere')),
    (e: Error) => e instanceof ModelFilesError && /has no model.json/.test(e.message),
  );
  writeFileSync(path.join(b, 'model.json'), '{oops');
  await assert.rejects(
    loadModel(b),
    (e: Error) => e instanceof ModelFilesError && /unreadable model.json/.test(e.message),
  );
});

test('a checkpoint restores weights and Adam state; another architecture is refused', async () => {
  const model = tiny();
  const x = tf.randomUniform([4, 16, 16, 3], 0, 1, 'float32', 1);
  const y = tf.tensor1d([0, 1, 2, 1]);
  await model.fit(x, y, { epochs: 2, verbose: 0, shuffle: false });
  const dir = path.join(root, 'ck');
  await saveCheckpoint(dir, model);
  await saveCheckpoint(dir, model); // overwriting keeps exactly one state file
  const copy = tiny();
  await loadCheckpoint(dir, copy);
  await model.fit(x, y, { epochs: 1, verbose: 0, shuffle: false });
  await copy.fit(x, y, { epochs: 1, verbose: 0, shuffle: false });
  // equal up to float rounding: Adam recomputes beta^t from the restored step count instead of the running product
  const want = model.getWeights().map((w) => w.dataSync());
  copy
    .getWeights()
    .forEach((w, i) => w.dataSync().forEach((v, j) => assert.ok(Math.abs(v - want[i][j]) < 1e-6, `weight ${i}[${j}]`)));
  const other = tiny([4, 8]);
  await assert.rejects(
    loadCheckpoint(dir, other),
    (e: Error) => e instanceof CheckpointError && /different architecture/.test(e.message),
  );
  await assert.rejects(loadCheckpoint(path.join(root, 'none'), other), CheckpointError);
  tf.dispose([x, y]);
  [model, copy, other].forEach((m) => m.dispose());
});
