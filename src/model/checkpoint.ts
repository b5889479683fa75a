import { existsSync, readFileSync, readdirSync, rmSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { UserError } from '../core/errors.ts';
import { parseJsonAs } from '../core/json-file.ts';
import { replaceFileAtomic } from '../core/atomic-file.ts';

/**
 * A training checkpoint: the model's weights and the optimizer's state (Adam's step count,
 * moments and running beta powers), so a resumed run continues bit for bit where it stopped. Written atomically: the
 * data
 * goes to a fresh `state-<n>.bin`, then `checkpoint.json` is renamed into place pointing at it,
 * so a crash leaves either the previous checkpoint or the new one, never a mix.
 */

export const CHECKPOINT_FILE = 'checkpoint.json';
const FORMAT = 'galactic-checkpoint';

interface CheckpointJson {
  format: typeof FORMAT;
  /** 2 adds `extraState` (version 1 checkpoints still load, with Adam's beta powers recomputed). */
  version: 1 | 2;
  data: string;
  modelWeights: number;
  /** Trailing specs that are optimizer internals its own getWeights leaves out (see `optimizerInternals`). */
  extraState?: number;
  specs: tf.io.WeightsManifestEntry[];
}

/**
 * tfjs's Adam keeps beta1^t and beta2^t as variables multiplied by beta once per step, but its
 * setWeights recomputes them as pow(beta, t + 1): a different float32 rounding, so a resumed run
 * drifted from an uninterrupted one from its first step (about 1e-7 relative per step). They are
 * saved and put back as they were. Adamax's accBeta1 has the same shape of problem.
 */
const OPTIMIZER_INTERNALS = ['accBeta1', 'accBeta2'] as const;

function optimizerInternals(optimizer: tf.Optimizer): { name: string; variable: tf.Variable }[] {
  const fields = optimizer as unknown as Record<string, unknown>;
  return OPTIMIZER_INTERNALS.flatMap((name) =>
    fields[name] instanceof tf.Variable ? [{ name, variable: fields[name] as tf.Variable }] : [],
  );
}

export class CheckpointError extends UserError {
  constructor(dir: string, problem: string) {
    super(`the checkpoint in ${dir} ${problem}. Delete that folder to start the training (or trial) from scratch.`);
  }
}

export async function saveCheckpoint(dir: string, model: tf.LayersModel): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const weights = model.getWeights().map((tensor, i) => ({ name: `model/${i}`, tensor }));
  const optimizerWeights = (await model.optimizer.getWeights()).map((w, i) => ({
    name: `optimizer/${i}/${w.name}`,
    tensor: w.tensor,
  }));
  const internals = optimizerInternals(model.optimizer).map(({ name, variable }) => ({
    name: `optimizer-internal/${name}`,
    tensor: variable as tf.Tensor,
  }));
  const { data, specs } = await tf.io.encodeWeights([...weights, ...optimizerWeights, ...internals]);
  // the optimizer hands out its live moment variables plus a fresh iteration-count scalar: free only the latter
  tf.dispose(optimizerWeights.map((w) => w.tensor).filter((t) => !(t instanceof tf.Variable)));
  const dataFile = `state-${Date.now().toString(36)}-${process.pid}.bin`;
  await replaceFileAtomic(path.join(dir, dataFile), new Uint8Array(tf.io.CompositeArrayBuffer.join(data)));
  const json: CheckpointJson = {
    format: FORMAT,
    version: 2,
    data: dataFile,
    modelWeights: weights.length,
    extraState: internals.length,
    specs,
  };
  await replaceFileAtomic(path.join(dir, CHECKPOINT_FILE), Buffer.from(JSON.stringify(json)));
  for (const name of readdirSync(dir)) {
    if (/^state-.*\.bin$/.test(name) && name !== dataFile) rmSync(path.join(dir, name), { force: true });
  }
}

const checkpointSchema = z.looseObject({
  format: z.literal(FORMAT, { error: 'not a galactic checkpoint' }),
  version: z.union([z.literal(1), z.literal(2)]),
  data: z.string().regex(/^state-[^/\\]+\.bin$/, 'a state-*.bin file name'),
  modelWeights: z.number().int().nonnegative(),
  extraState: z.number().int().nonnegative().optional(),
  specs: z.array(
    z.looseObject({ name: z.string(), shape: z.array(z.number().int().nonnegative()), dtype: z.string() }),
  ),
});

function readCheckpointJson(dir: string, required: boolean): CheckpointJson | null {
  const file = path.join(dir, CHECKPOINT_FILE);
  if (!existsSync(file)) {
    if (required) throw new CheckpointError(dir, `has no ${CHECKPOINT_FILE}`);
    return null;
  }
  try {
    return parseJsonAs(
      readFileSync(file, 'utf8'),
      checkpointSchema,
      (detail) => new Error(detail),
    ) as unknown as CheckpointJson;
  } catch (error) {
    if (!required) return null;
    throw new CheckpointError(dir, `has an unreadable ${CHECKPOINT_FILE} (${(error as Error).message})`);
  }
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
  const extra = json.extraState ?? 0;
  const modelTensors = json.specs.slice(0, json.modelWeights).map((s) => named[s.name]);
  const optimizerWeights = json.specs
    .slice(json.modelWeights, json.specs.length - extra)
    .map((s) => ({ name: s.name.replace(/^optimizer\/\d+\//, ''), tensor: named[s.name] }));
  const internals = new Map(
    json.specs
      .slice(json.specs.length - extra)
      .map((s) => [s.name.replace(/^optimizer-internal\//, ''), named[s.name]]),
  );
  const expected = model.weights.length;
  if (
    modelTensors.length !== expected ||
    modelTensors.some((t, i) => !tf.util.arraysEqual(t.shape, model.weights[i].shape as number[]))
  ) {
    tf.dispose(Object.values(named));
    throw new CheckpointError(
      dir,
      'was written for a different architecture (its weight shapes do not match the model)',
    );
  }
  model.setWeights(modelTensors);
  // setWeights copies into the model's variables; the optimizer's variables take their own reference
  await model.optimizer.setWeights(optimizerWeights);
  for (const { name, variable } of optimizerInternals(model.optimizer)) {
    const saved = internals.get(name);
    if (saved) variable.assign(saved);
  }
  tf.dispose(Object.values(named));
}
