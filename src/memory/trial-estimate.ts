import type { LoadedConfig } from '../config/load.ts';
import type { HyperparameterValues } from '../architecture/cnn-spec.ts';
import { estimateModelMemory } from './model-memory.ts';
import { recordBytes, type MemoryComponent, type MemoryPlan } from './plan.ts';

/**
 * Peak memory of one tuner trial, estimated before its model is built so that a trial that
 * cannot fit `memory.limitMB` is recorded INFEASIBLE instead of taking the process down:
 * the measured runtime baseline (plus the wasm thread pool when the plan reserves one), the model's training memory (`estimateModelMemory`, shared with
 * the memory plan), and the feed's buffers — the prefetched float32 batches the plan sized and the
 * shuffle buffer (the plan's capacity, or the training records when there are fewer: the feed
 * never allocates more slots than it can fill). The estimate lands within about 10% of the
 * measured peak RSS for notebook-sized models (docs/tuning.md).
 */

const MiB = 1024 * 1024;
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
  const model = estimateModelMemory(values, config, plan.batchSize, numClasses);
  const components: MemoryComponent[] = [];
  const add = (name: string, bytes: number, detail: string) => components.push({ name, bytes: Math.ceil(bytes), detail });

  const runtime = input.runtimeBytes ?? RUNTIME_BASELINE_BYTES;
  add('runtime', runtime, `measured baseline: node + tfjs + backend (${Math.round(runtime / MiB)} MB)`);
  const pool = plan.components.find((c) => c.name === 'wasm thread pool');
  if (pool) add(pool.name, pool.bytes, pool.detail);
  components.push(...model.components);
  const prefetch = plan.components.find((c) => c.name === 'feed prefetch');
  if (prefetch) add(prefetch.name, prefetch.bytes, prefetch.detail);
  const slots = Math.max(1, Math.min(plan.shuffleBufferRecords, input.trainRecords ?? Infinity));
  add('feed shuffle', slots * recordBytes(config), `${slots} records x ${recordBytes(config)} B`);

  const totalBytes = components.reduce((s, c) => s + c.bytes, 0);
  return { totalBytes, tensorBytes: model.tensorBytes, totalMB: Math.ceil(totalBytes / MiB), parameters: model.parameters, components };
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
