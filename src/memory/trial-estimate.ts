import type { LoadedConfig } from '../config/load.ts';
import type { HyperparameterValues } from '../architecture/cnn-spec.ts';
import { estimateModelMemory } from './model-memory.ts';
import { NODE_BACKEND_BYTES, TFJS_BASE_BYTES, type MemoryPlan } from './plan.ts';

/**
 * Peak memory of one tuner trial (or the final training), estimated before its model is built so
 * that a trial that cannot fit `memory.limitMB` is recorded INFEASIBLE instead of taking the
 * process down. It is the sum of:
 *
 *   runtime      the plan's baseline: the loaded CLI before any backend
 *   backend      what the backend adds once initialised, before any model: wasm, the engine with
 *                its first heap and the thread pool's workers (the plan's figures); tfjs-node,
 *                libtensorflow and its runtime (NODE_BACKEND_BYTES, measured)
 *   model        the tensors of a training step, optimizer state and checkpoint
 *                (`estimateModelMemory`, shared with the plan); on wasm the tensors live in a heap
 *                that grows in steps of up to 20% (WASM_HEAP_GROWTH)
 *   held         what this process already holds from earlier work (previous trials, the time
 *                plan's timed steps), measured just before the trial (`state`): the wasm heap
 *                never shrinks, so the tensors need max(heap now, their own need) there, and the
 *                rest of the resident set above the baseline (tfjs-node's allocator and glibc keep
 *                freed tensor memory in their arenas) is counted on top, not assumed reusable
 *   js garbage   what V8 has not collected yet (its young generation)
 *   feed         the feed's buffers as the plan sized them: prefetched float32 batches, the
 *                shuffle buffer (capped at the training records: the feed never allocates more
 *                slots than it can fill) and the two shards it reads at once
 *
 * docs/tuning.md compares it with measured per-trial peaks of whole searches.
 */

const MiB = 1024 * 1024;
/** The wasm backend's heap is a 32-bit WebAssembly memory: 4 GiB at most, whatever the budget. */
export const WASM_HEAP_LIMIT_BYTES = 4096 * MiB;
/**
 * Heap growth headroom: the wasm heap grows in steps of up to 20% and never shrinks (measured: 4079 MB for an estimated
 * 3293 MB).
 */
const WASM_HEAP_GROWTH = 1.2;
/**
 * V8 collects lazily: the RSS of a training process includes garbage up to its young generation
 * (two 16 MB semi-spaces and as much for new large objects, V8's 64-bit default) above the
 * baseline, which was measured right after start or a full collection.
 */
const V8_YOUNG_GENERATION_BYTES = 48 * MiB;

export type EstimateBackend = 'node' | 'wasm' | 'cpu';

export interface EstimateComponent {
  name: string;
  bytes: number;
  detail: string;
}

export interface TrialMemoryEstimate {
  totalBytes: number;
  /** The model's tensors (for wasm: what its heap, capped at 4 GiB, must hold before growth steps). */
  tensorBytes: number;
  totalMB: number;
  parameters: number;
  components: EstimateComponent[];
}

/** What the process holds just before the trial (`processMemoryState` in model/backend-memory.ts). */
export interface ProcessMemoryState {
  rssBytes: number;
  /** The wasm backend's heap (its WebAssembly memory) now; 0 on other backends. */
  wasmHeapBytes: number;
}

export interface TrialEstimateInput {
  values: HyperparameterValues;
  config: LoadedConfig;
  plan: MemoryPlan;
  numClasses: number;
  /** Records in the training split, when known: caps the shuffle buffer like the feed does. */
  trainRecords?: number;
  /**
   * The backend the trial trains on; unknown (a plan before the backend is chosen): the larger of
   * what the plan reserves for the backends config.backend may pick.
   */
  backend?: EstimateBackend;
  /** The process's memory now, when the trial runs in this process after other work; omitted: a fresh process. */
  state?: ProcessMemoryState;
}

/**
 * The backend's own components (after the runtime, before any model). Unknown backend: what the
 * plan reserves for the backends config.backend may pick.
 */
function backendComponents(plan: MemoryPlan, backend: EstimateBackend | undefined): EstimateComponent[] {
  if (backend === undefined) {
    const reserved = [{ name: 'tfjs', ...plan.train.tfjs }];
    return plan.train.wasmPool ? [...reserved, { name: 'wasm thread pool', ...plan.train.wasmPool }] : reserved;
  }
  if (backend === 'node')
    return [
      {
        name: 'tfjs-node',
        bytes: NODE_BACKEND_BYTES,
        detail: 'libtensorflow, its thread pools and oneDNN once initialised (measured +228 MB over the runtime)',
      },
    ];
  const tfjs = { name: 'tfjs', bytes: TFJS_BASE_BYTES, detail: 'tfjs engine, backend and kernels before any model' };
  return backend === 'wasm' && plan.train.wasmPool
    ? [tfjs, { name: 'wasm thread pool', ...plan.train.wasmPool }]
    : [tfjs];
}

export function estimateTrialMemory(input: TrialEstimateInput): TrialMemoryEstimate {
  const { values, config, plan, numClasses, backend, state } = input;
  const model = estimateModelMemory(values, config, plan.batchSize, numClasses);
  const components: EstimateComponent[] = [];
  const add = (name: string, bytes: number, detail: string) =>
    components.push({ name, bytes: Math.ceil(bytes), detail });

  add('runtime', plan.runtime.bytes, plan.runtime.detail);
  for (const c of backendComponents(plan, backend)) add(c.name, c.bytes, c.detail);
  const baseline = components.reduce((s, c) => s + c.bytes, 0);
  components.push(...model.components);
  if (backend === 'wasm') {
    const grown = model.tensorBytes * WASM_HEAP_GROWTH;
    add(
      'wasm heap growth',
      grown - model.tensorBytes,
      `the heap grows in steps of up to ${Math.round((WASM_HEAP_GROWTH - 1) * 100)}% of the tensors' ${Math.ceil(model.tensorBytes / MiB)} MB`,
    );
    const heap = state?.wasmHeapBytes ?? 0;
    if (heap > grown) {
      add(
        'wasm heap held',
        heap - grown,
        `the heap is already ${Math.ceil(heap / MiB)} MB (earlier trials or timed steps) and never shrinks`,
      );
    }
  }
  if (state) {
    // on wasm the heap is accounted above; the rest of the resident set above the baseline is held too
    const held = state.rssBytes - baseline - (backend === 'wasm' ? state.wasmHeapBytes : 0);
    if (held > 0)
      add(
        'held by this process',
        held,
        `RSS now ${Math.ceil(state.rssBytes / MiB)} MB over the ${Math.ceil(baseline / MiB)} MB baseline${backend === 'wasm' ? ' outside the wasm heap' : ''}: memory earlier work left with the allocators, not counted as reusable`,
      );
  }
  add(
    'js garbage',
    V8_YOUNG_GENERATION_BYTES,
    "what a trial's JavaScript allocates before V8 collects it (its young generation: 3 x 16 MB semi-spaces)",
  );
  add('feed prefetch', plan.train.prefetch.bytes, plan.train.prefetch.detail);
  const slots = Math.max(1, Math.min(plan.shuffleBufferRecords, input.trainRecords ?? Infinity));
  add('feed shuffle', slots * plan.recordBytes, `${slots} records x ${plan.recordBytes} B`);
  add(
    'feed shards',
    2 * plan.shardImages * plan.recordBytes,
    `2 shards read at once (one read ahead) x ${plan.shardImages} records x ${plan.recordBytes} B`,
  );

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
 * Why the wasm backend cannot hold this trial, or null. Its heap is a 32-bit WebAssembly memory, so
 * past 4 GiB the module aborts, and stays unusable for every later trial, whatever memory.limitMB says.
 */
export function wasmHeapRefusal(estimate: Pick<TrialMemoryEstimate, 'tensorBytes'>): string | null {
  if (estimate.tensorBytes <= WASM_HEAP_LIMIT_BYTES) return null;
  return (
    `its tensors need an estimated ${Math.ceil(estimate.tensorBytes / MiB)} MB (plus heap growth), more than the wasm backend's ` +
    `${WASM_HEAP_LIMIT_BYTES / MiB} MB heap can hold (use --backend node, a smaller train.batchSize or a smaller image size)`
  );
}
