import type { LoadedConfig } from '../config/load.ts';
import { describeArchitecture, type HyperparameterValues } from '../model/architecture.ts';
import { recordBytes, type MemoryComponent, type MemoryPlan } from './plan.ts';

/**
 * Peak memory of one tuner trial, estimated before its model is built so that a trial that
 * cannot fit `memory.limitMB` is recorded INFEASIBLE instead of taking the process down.
 *
 *   runtime             measured: Node 20 + tsx + @tensorflow/tfjs 4.22 + backend initialised
 *   parameters          4 float32 copies per parameter: weights, gradients, Adam's two moments
 *   optimizer update    Adam's elementwise temporaries while it updates one variable (tfjs
 *                       updates them one at a time): 11 copies of the largest variable (measured)
 *   activations         every layer's output for the batch, kept for backprop, x2 for their
 *                       gradients, plus the float32 input batch
 *   backprop workspace  3 more activation-sized copies per batch (measured on wasm: conv outputs
 *                       before their relu, transposed copies made by the backprop kernels, and
 *                       the wasm heap's growth steps)
 *   checkpoint          weights + Adam's moments, each held 3 times while saveCheckpoint encodes
 *                       them (tensor data, encoded buffers, joined buffer)
 *   feed                the prefetched float32 batches the memory plan sized, and the shuffle
 *                       buffer: the plan's capacity, or the training records when there are fewer
 *                       (the feed never allocates more slots than it can fill)
 * The measured factors come from bench/tune.ts (docs/tuning.md has the figures): the estimate
 * lands within about 10% above the measured peak RSS for notebook-sized models.
 */

const MiB = 1024 * 1024;
const FLOAT32 = 4;
/** Adam's per-variable temporaries, in copies of that variable (measured with bench/tune.ts). */
const OPTIMIZER_TEMPORARY_COPIES = 11;
/** Activation-sized buffers beyond outputs and their gradients (measured with bench/tune.ts). */
const BACKPROP_WORKSPACE_COPIES = 3;
/** Copies of (weights + both moments) alive while a checkpoint is encoded (measured with bench/tune.ts). */
const CHECKPOINT_COPIES = 3;
/** The wasm backend's heap is a 32-bit WebAssembly memory: 4 GiB at most, whatever the budget. */
export const WASM_HEAP_LIMIT_BYTES = 4096 * MiB;

/**
 * RSS of a process that has loaded the CLI, tfjs and the wasm backend, before any model: measured
 * 188 MB on Node 20.20 / x64 (tfjs 4.22, wasm and cpu backends alike), rounded up.
 */
export const RUNTIME_BASELINE_BYTES = 190 * MiB;


export interface TrialMemoryEstimate {
  totalBytes: number;
  /** The part that lives in the backend's tensor memory (for wasm: its heap, capped at 4 GiB). */
  tensorBytes: number;
  totalMB: number;
  parameters: number;
  components: MemoryComponent[];
}

export interface TrialEstimateInput {
  values: HyperparameterValues;
  config: LoadedConfig;
  /** The feed's buffer sizes; only the feed's parts are counted (decode and shard buffers do not exist while training). */
  plan: Pick<MemoryPlan, 'components' | 'batchSize' | 'shuffleBufferRecords'>;
  numClasses: number;
  /** Records in the training split, when known: caps the shuffle buffer like the feed does. */
  trainRecords?: number;
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
  const largest = Math.max(0, ...arch.layers.map((l) => l.parameters));
  add('optimizer update', OPTIMIZER_TEMPORARY_COPIES * FLOAT32 * largest, `largest layer ${largest} params x ${OPTIMIZER_TEMPORARY_COPIES} Adam temporaries x 4 B`);
  const inputElements = inputShape[0] * inputShape[1] * inputShape[2];
  add('activations', batch * (2 * arch.activationElementsPerExample + inputElements) * FLOAT32,
    `batch ${batch} x (2 x ${arch.activationElementsPerExample} activations + ${inputElements} input) x 4 B`);
  add('backprop workspace', batch * BACKPROP_WORKSPACE_COPIES * arch.activationElementsPerExample * FLOAT32,
    `batch ${batch} x ${BACKPROP_WORKSPACE_COPIES} x ${arch.activationElementsPerExample} activations x 4 B`);
  const tensorBytes = components.filter((c) => c.name !== 'runtime').reduce((sum, c) => sum + c.bytes, 0);
  add('checkpoint', CHECKPOINT_COPIES * 3 * FLOAT32 * arch.parameters,
    `${arch.parameters} params x 3 (weights, Adam m and v) x ${CHECKPOINT_COPIES} copies while encoding x 4 B`);
  const prefetch = plan.components.find((c) => c.name === 'feed prefetch');
  if (prefetch) add(prefetch.name, prefetch.bytes, prefetch.detail);
  const slots = Math.max(1, Math.min(plan.shuffleBufferRecords, input.trainRecords ?? Infinity));
  add('feed shuffle', slots * recordBytes(config), `${slots} records x ${recordBytes(config)} B`);

  const totalBytes = components.reduce((s, c) => s + c.bytes, 0);
  return { totalBytes, tensorBytes, totalMB: Math.ceil(totalBytes / MiB), parameters: arch.parameters, components };
}

/** Heap growth headroom: the wasm heap grows in steps of up to 20% and never shrinks (measured: 4079 MB for an estimated 3293 MB). */
const WASM_HEAP_GROWTH = 1.2;

/**
 * Why the wasm backend cannot hold this trial, or null. Its heap is a 32-bit WebAssembly memory, so
 * past 4 GiB the module aborts, and stays unusable for every later trial, whatever memory.limitMB says.
 */
export function wasmHeapRefusal(estimate: Pick<TrialMemoryEstimate, 'tensorBytes'>): string | null {
  if (estimate.tensorBytes * WASM_HEAP_GROWTH <= WASM_HEAP_LIMIT_BYTES) return null;
  return `its tensors need an estimated ${Math.ceil(estimate.tensorBytes / MiB)} MB (plus heap growth), more than the wasm backend's ` +
    `${WASM_HEAP_LIMIT_BYTES / MiB} MB heap can hold (use --backend node, a smaller train.batchSize or a smaller image size)`;
}
