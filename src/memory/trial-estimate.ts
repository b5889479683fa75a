import type { LoadedConfig } from '../config/load.ts';
import { describeArchitecture, type HyperparameterValues } from '../model/architecture.ts';
import type { MemoryComponent, MemoryPlan } from './plan.ts';

/**
 * Peak memory of one tuner trial, estimated before its model is built so that a trial that
 * cannot fit `memory.limitMB` is recorded INFEASIBLE instead of taking the process down.
 *
 *   runtime      measured: Node 20 + tsx + @tensorflow/tfjs 4.22 + the wasm backend initialised
 *   parameters   4 float32 copies per parameter: weights, gradients, Adam's two moments
 *   activations  every layer's output for the batch, kept for backprop, x2 for their gradients,
 *                plus the float32 input batch
 *   checkpoint   weights + both Adam moments serialised once per epoch (saveCheckpoint)
 *   feed         the shuffle buffer and prefetched batches the memory plan sized
 */

const MiB = 1024 * 1024;
const FLOAT32 = 4;

/**
 * RSS of a process that has loaded the CLI, tfjs and the wasm backend, before any model: measured
 * 188 MB on Node 20.20 / x64 (tfjs 4.22, wasm and cpu backends alike), rounded up.
 */
export const RUNTIME_BASELINE_BYTES = 190 * MiB;

/** Names of the memory-plan components that exist while training (decode and shard buffers do not). */
const FEED_COMPONENTS = ['feed prefetch', 'feed shuffle'];

export interface TrialMemoryEstimate {
  totalBytes: number;
  totalMB: number;
  parameters: number;
  components: MemoryComponent[];
}

export interface TrialEstimateInput {
  values: HyperparameterValues;
  config: LoadedConfig;
  /** The feed's buffer sizes; only its feed components are counted. */
  plan: Pick<MemoryPlan, 'components' | 'batchSize'>;
  numClasses: number;
  runtimeBytes?: number;
}

export function estimateTrialMemory(input: TrialEstimateInput): TrialMemoryEstimate {
  const { values, config, plan, numClasses } = input;
  const inputShape: [number, number, number] = [config.image.height, config.image.width, config.image.channels];
  const arch = describeArchitecture(values, inputShape, numClasses, config.model);
  const batch = plan.batchSize;
  const components: MemoryComponent[] = [];
  const add = (name: string, bytes: number, detail: string) => components.push({ name, bytes: Math.ceil(bytes), detail });

  const runtime = input.runtimeBytes ?? RUNTIME_BASELINE_BYTES;
  add('runtime', runtime, `measured baseline: node + tfjs + backend (${Math.round(runtime / MiB)} MB)`);
  add('parameters', 4 * FLOAT32 * arch.parameters, `${arch.parameters} params x 4 copies (weights, gradients, Adam m and v) x 4 B`);
  const inputElements = inputShape[0] * inputShape[1] * inputShape[2];
  add('activations', batch * (2 * arch.activationElementsPerExample + inputElements) * FLOAT32,
    `batch ${batch} x (2 x ${arch.activationElementsPerExample} activations + ${inputElements} input) x 4 B`);
  add('checkpoint', 3 * FLOAT32 * arch.parameters, `${arch.parameters} params x 3 (weights, Adam m and v) serialised per epoch`);
  const feed = plan.components.filter((c) => FEED_COMPONENTS.includes(c.name));
  for (const c of feed) add(c.name, c.bytes, c.detail);

  const totalBytes = components.reduce((s, c) => s + c.bytes, 0);
  return { totalBytes, totalMB: Math.ceil(totalBytes / MiB), parameters: arch.parameters, components };
}
