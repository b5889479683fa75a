import { existsSync, readFileSync, readdirSync, rmSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../core/errors.ts';
import { replaceFileAtomic } from '../core/atomic-file.ts';

/**
 * A training checkpoint: the model's weights and the optimizer's state (Adam's step count and
 * moments), so a resumed run continues exactly where it stopped. Written atomically: the data
 * goes to a fresh `state-<n>.bin`, then `checkpoint.json` is renamed into place pointing at it,
 * so a crash leaves either the previous checkpoint or the new one, never a mix.
 */

export const CHECKPOINT_FILE = 'checkpoint.json';
const FORMAT = 'galactic-checkpoint';

interface CheckpointJson {
  format: typeof FORMAT;
  version: 1;
  data: string;
  modelWeights: number;
  specs: tf.io.WeightsManifestEntry[];
}

export class CheckpointError extends UserError {
  constructor(dir: string, problem: string) {
    super(`the checkpoint in ${dir} ${problem}. Delete that folder to start the training (or trial) from scratch.`);
  }
}

export async function saveCheckpoint(dir: string, model: tf.LayersModel): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const weights = model.getWeights().map((tensor, i) => ({ name: `model/${i}`, tensor }));
  const optimizerWeights = (await model.optimizer.getWeights()).map((w, i) => ({ name: `optimizer/${i}/${w.name}`, tensor: w.tensor }));
  const { data, specs } = await tf.io.encodeWeights([...weights, ...optimizerWeights]);
  // the optimizer hands out its live moment variables plus a fresh iteration-count scalar: free only the latter
  tf.dispose(optimizerWeights.map((w) => w.tensor).filter((t) => !(t instanceof tf.Variable)));
  const dataFile = `state-${Date.now().toString(36)}-${process.pid}.bin`;
  await replaceFileAtomic(path.join(dir, dataFile), new Uint8Array(tf.io.CompositeArrayBuffer.join(data)));
  const json: CheckpointJson = { format: FORMAT, version: 1, data: dataFile, modelWeights: weights.length, specs };
  await replaceFileAtomic(path.join(dir, CHECKPOINT_FILE), Buffer.from(JSON.stringify(json)));
  for (const name of readdirSync(dir)) {
    if (/^state-.*\.bin$/.test(name) && name !== dataFile) rmSync(path.join(dir, name), { force: true });
  }
}

function readCheckpointJson(dir: string, required: boolean): CheckpointJson | null {
  const file = path.join(dir, CHECKPOINT_FILE);
  if (!existsSync(file)) {
    if (required) throw new CheckpointError(dir, `has no ${CHECKPOINT_FILE}`);
    return null;
  }
  try {
    const json = JSON.parse(readFileSync(file, 'utf8')) as CheckpointJson;
    if (json.format !== FORMAT) throw new Error('not a galactic checkpoint');
    return json;
  } catch (error) {
    if (!required) return null;
    throw new CheckpointError(dir, `has an unreadable ${CHECKPOINT_FILE} (${(error as Error).message})`);
  }
}

export function hasCheckpoint(dir: string): boolean {
  return readCheckpointJson(dir, false) !== null;
}

/** Sets the model's weights and optimizer state from a checkpoint written for the same architecture. */
export async function loadCheckpoint(dir: string, model: tf.LayersModel): Promise<void> {
  const json = readCheckpointJson(dir, true)!;
  const dataFile = path.join(dir, json.data);
  if (!existsSync(dataFile)) throw new CheckpointError(dir, `is missing ${json.data}`);
  const bytes = readFileSync(dataFile);
  let named: tf.NamedTensorMap;
  try {
    named = tf.io.decodeWeights(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), json.specs);
  } catch (error) {
    throw new CheckpointError(dir, `has unreadable weights (${(error as Error).message})`);
  }
  const modelTensors = json.specs.slice(0, json.modelWeights).map((s) => named[s.name]);
  const optimizerWeights = json.specs.slice(json.modelWeights).map((s) => ({ name: s.name.replace(/^optimizer\/\d+\//, ''), tensor: named[s.name] }));
  const expected = model.weights.length;
  if (modelTensors.length !== expected || modelTensors.some((t, i) => !tf.util.arraysEqual(t.shape, model.weights[i].shape as number[]))) {
    tf.dispose(Object.values(named));
    throw new CheckpointError(dir, 'was written for a different architecture (its weight shapes do not match the model)');
  }
  model.setWeights(modelTensors);
  // setWeights copies into the model's variables; the optimizer's variables take their own reference
  await model.optimizer.setWeights(optimizerWeights);
  tf.dispose(Object.values(named));
}
