import type { LoadedConfig } from '../config/load.ts';
import type { HyperparameterValues } from '../architecture/cnn-spec.ts';
import { estimateModelMemory } from './model-memory.ts';
import type { MemoryPlan } from './plan.ts';

/**
 * Peak memory of one tuner trial (or the final training), estimated before its model is built so
 * that a trial that cannot fit `memory.limitMB` is recorded INFEASIBLE instead of taking the
 * process down: the plan's runtime baseline, tfjs and wasm thread pool, the model's training
 * memory for these values (`estimateModelMemory`, shared with the plan), and the feed's buffers as
 * the plan sized them (the shuffle buffer capped at the training records: the feed never
 * allocates more slots than it can fill). docs/tuning.md compares it with measured peaks.
 */

const MiB = 1024 * 1024;
/** The wasm backend's heap is a 32-bit WebAssembly memory: 4 GiB at most, whatever the budget. */
export const WASM_HEAP_LIMIT_BYTES = 4096 * MiB;

export interface EstimateComponent {
  name: string;
  bytes: number;
  detail: string;
}

export interface TrialMemoryEstimate {
  totalBytes: number;
  /** The part that lives in the backend's tensor memory (for wasm: its heap, capped at 4 GiB). */
  tensorBytes: number;
  totalMB: number;
  parameters: number;
  components: EstimateComponent[];
}

export interface TrialEstimateInput {
  values: HyperparameterValues;
  config: LoadedConfig;
  plan: MemoryPlan;
  numClasses: number;
  /** Records in the training split, when known: caps the shuffle buffer like the feed does. */
  trainRecords?: number;
}

export function estimateTrialMemory(input: TrialEstimateInput): TrialMemoryEstimate {
  const { values, config, plan, numClasses } = input;
  const model = estimateModelMemory(values, config, plan.batchSize, numClasses);
  const components: EstimateComponent[] = [];
  const add = (name: string, bytes: number, detail: string) =>
    components.push({ name, bytes: Math.ceil(bytes), detail });

  add('runtime', plan.runtime.bytes, plan.runtime.detail);
  add('tfjs', plan.train.tfjs.bytes, plan.train.tfjs.detail);
  if (plan.train.wasmPool) add('wasm thread pool', plan.train.wasmPool.bytes, plan.train.wasmPool.detail);
  components.push(...model.components);
  add('feed prefetch', plan.train.prefetch.bytes, plan.train.prefetch.detail);
  const slots = Math.max(1, Math.min(plan.shuffleBufferRecords, input.trainRecords ?? Infinity));
  add('feed shuffle', slots * plan.recordBytes, `${slots} records x ${plan.recordBytes} B`);

  const totalBytes = components.reduce((s, c) => s + c.bytes, 0);
  return {
    totalBytes,
    tensorBytes: model.tensorBytes,
    totalMB: Math.ceil(totalBytes / MiB),
    parameters: model.parameters,
    components,
  };
}

/**
 * Heap growth headroom: the wasm heap grows in steps of up to 20% and never shrinks (measured: 4079 MB for an estimated
 * 3293 MB).
 */
const WASM_HEAP_GROWTH = 1.2;

/**
 * Why the wasm backend cannot hold this trial, or null. Its heap is a 32-bit WebAssembly memory, so
 * past 4 GiB the module aborts, and stays unusable for every later trial, whatever memory.limitMB says.
 */
export function wasmHeapRefusal(estimate: Pick<TrialMemoryEstimate, 'tensorBytes'>): string | null {
  if (estimate.tensorBytes * WASM_HEAP_GROWTH <= WASM_HEAP_LIMIT_BYTES) return null;
  return (
    `its tensors need an estimated ${Math.ceil(estimate.tensorBytes / MiB)} MB (plus heap growth), more than the wasm backend's ` +
    `${WASM_HEAP_LIMIT_BYTES / MiB} MB heap can hold (use --backend node, a smaller train.batchSize or a smaller image size)`
  );
}
