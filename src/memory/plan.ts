import { statSync } from 'node:fs';
import os from 'node:os';
import { UserError } from '../core/errors.ts';
import type { LoadedConfig } from '../config/load.ts';
import { resolveWasmThreads } from '../core/thread-count.ts';
import { estimateModelMemory } from './model-memory.ts';

/**
 * The one memory planner (design principle 1): every queue, buffer and concurrency level of the
 * pipeline is sized here from `memory.limitMB`, and a config that cannot fit is refused before
 * any work with the knob to turn. The figures are deliberately conservative upper bounds; the
 * assumptions behind each one are in its `detail` and in docs/prepare.md.
 *
 * Work runs in two phases that never overlap: `prepare` (decoders, shard buffers, records in
 * flight, the id index) and `train` (the model, the wasm thread pool, the feed's buffers). Each is
 * sized against what the runtime leaves; the peak is the runtime plus the larger phase.
 */

export type MemoryPhase = 'prepare' | 'train';
export const MEMORY_PHASES: readonly MemoryPhase[] = ['prepare', 'train'];
/** `phase` absent: held for the whole process (the runtime). */
export interface MemoryComponent { name: string; bytes: number; detail: string; phase?: MemoryPhase }
export interface MemoryPlan {
  limitBytes: number;
  decodeConcurrency: number;
  sharpThreads: number;
  permits: number;
  /** Rows pulled but not yet handled in row order (each holds its small outcome, not a record). */
  orderSlots: number;
  shardImages: number;
  heapMB: number;
  shuffleBufferRecords: number;
  prefetchBatches: number;
  batchSize: number;
  components: MemoryComponent[];
  /** Each phase's bytes, the runtime included. */
  phaseBytes: Record<MemoryPhase, number>;
  /** The peak: the larger phase. */
  totalBytes: number;
}

export interface PlanOptions {
  mappingRows?: number;
  cpus?: number;
  /**
   * Phases the caller will run: a phase listed here that cannot fit is refused (MemoryPlanError);
   * the others are still sized and shown. Default: both.
   */
  need?: readonly MemoryPhase[];
}

export class MemoryPlanError extends UserError {
  readonly knob: string;
  constructor(knob: string, message: string) {
    super(`memory plan does not fit: ${message}`);
    this.knob = knob;
  }
}

const MiB = 1024 * 1024;

/** Node + V8 baseline + sharp/libvips loaded, measured around 70-90 MB; rounded up. */
export const RUNTIME_BYTES = 128 * MiB;
/** Per concurrent decode: the source file buffer plus libvips' working regions for a shrink-on-load JPEG decode. */
export const DECODE_SLOT_BYTES = 16 * MiB;
/** Per libvips worker thread: thread stack and per-thread tile buffers. */
export const SHARP_THREAD_BYTES = 8 * MiB;
/** The threaded wasm build's 8 pthread workers, each its own V8 isolate (measured +70 MB RSS after init). */
export const WASM_POOL_BYTES = 80 * MiB;
/** tfjs engine, kernels and bookkeeping before any model exists. */
export const TFJS_BASE_BYTES = 64 * MiB;
/** One gz2 mapping entry: object id + image id strings and a Map slot (V8 measured ~100 bytes). */
export const MAPPING_ENTRY_BYTES = 128;
/** One seen-id entry (duplicate detection) or one image-index name: a string and a Set slot. */
export const ID_ENTRY_BYTES = 80;
/** Shortest plausible CSV data row (id, separator, label, newline): turns a file size into a row bound. */
export const MIN_CSV_ROW_BYTES = 12;
/** One row waiting for its turn in row order: its promise, outcome object, id and reject detail. */
export const ORDER_SLOT_BYTES = 512;
/**
 * Shard target when `cache.shardImages` is "auto": big enough for sequential I/O, small enough to
 * resume cheaply; a shard's records stay alive until it is flushed, so this also bounds the RSS
 * transient of records in flight (32 MB let the peak vary by +15% from run to run; docs/prepare.md).
 */
export const TARGET_SHARD_BYTES = 16 * MiB;
export const MAX_AUTO_SHARD_IMAGES = 8192;
export const MAX_AUTO_SHUFFLE_RECORDS = 20_000;

function bytesPerValue(config: LoadedConfig): number {
  return config.cache.dtype === 'uint8' ? 1 : 4;
}

/** Bytes of one cached record (pixels in the cache dtype). */
export function recordBytes(config: LoadedConfig): number {
  const { width, height, channels } = config.image;
  return width * height * channels * bytesPerValue(config);
}

function fileRowsUpperBound(file: string | null): number {
  if (!file) return 0;
  try {
    return Math.ceil(statSync(file).size / MIN_CSV_ROW_BYTES);
  } catch {
    return 0; // a missing file is reported by prepare with its own error, not by the planner
  }
}

/** Records in flight end to end for a shard size and decode concurrency. */
export function permitsFor(shardImages: number, decodeConcurrency: number): number {
  return 2 * shardImages + 2 * decodeConcurrency + 8;
}

export function planMemory(config: LoadedConfig, options: PlanOptions = {}): MemoryPlan {
  const limitBytes = config.memory.limitMB * MiB;
  const record = recordBytes(config);
  const cpus = options.cpus ?? os.availableParallelism();
  const need = new Set(options.need ?? MEMORY_PHASES);
  const batchSize = config.train.batchSize;
  const components: MemoryComponent[] = [];
  const add = (phase: MemoryPhase | undefined, name: string, bytes: number, detail: string) =>
    components.push(phase ? { name, bytes: Math.ceil(bytes), detail, phase } : { name, bytes: Math.ceil(bytes), detail });
  const sum = (phase: MemoryPhase) => components.filter((c) => !c.phase || c.phase === phase).reduce((s, c) => s + c.bytes, 0);

  add(undefined, 'runtime', RUNTIME_BYTES, 'node, V8 baseline, sharp/libvips loaded');

  // prepare, fixed: what the data itself costs.
  const mappingRows = config.data.layout === 'gz2' ? (options.mappingRows ?? fileRowsUpperBound(config.data.mappingCsv)) : 0;
  if (config.data.layout === 'gz2') {
    add('prepare', 'gz2 mapping', mappingRows * MAPPING_ENTRY_BYTES, `${mappingRows} rows x ${MAPPING_ENTRY_BYTES} B (objid -> asset_id map)`);
  }
  const csvRows = fileRowsUpperBound(config.data.csv);
  add('prepare', 'seen ids', csvRows * ID_ENTRY_BYTES, `<= ${csvRows} ids x ${ID_ENTRY_BYTES} B (duplicate-id detection)`);
  add('prepare', 'image index', csvRows * 24, `<= ${csvRows} names packed (~24 B each, sorted buffer + offsets)`);

  // train, fixed: the engine, the configured model's training memory (the estimate the tuner's
  // INFEASIBLE rule uses too) and the threaded wasm build's workers.
  add('train', 'tfjs', TFJS_BASE_BYTES, 'tfjs engine, backend and kernels before any model');
  try {
    const model = estimateModelMemory({}, config, batchSize, config.data.classes.length);
    add('train', 'model', model.totalBytes, `config.model at batch ${batchSize}: ${model.components.map((c) => `${c.name} ${Math.ceil(c.bytes / MiB)} MB`).join(', ')}`);
  } catch (error) {
    // config.model may not suit the image size (e.g. too deep for 16x16); only training cares.
    if (need.has('train') || !(error instanceof UserError)) throw error;
    add('train', 'model', 0, `config.model cannot be built: ${error.message}`);
  }
  const wasmThreads = config.backend === 'wasm' || config.backend === 'auto' ? resolveWasmThreads(config.threads, cpus) : 1;
  if (wasmThreads > 1) {
    add('train', 'wasm thread pool', WASM_POOL_BYTES, `threaded XNNPACK build, ${wasmThreads} threads: 8 pthread workers (reserved even if backend "auto" finds tfjs-node)`);
  }

  // The smallest pipeline of each phase: one decode, one-image shards; a batch of shuffle buffer and one prefetched batch.
  const floatRecord = config.image.width * config.image.height * config.image.channels * 4;
  const smallest: Record<MemoryPhase, number> = {
    prepare: DECODE_SLOT_BYTES + SHARP_THREAD_BYTES + 2 * record + permitsFor(1, 1) * record,
    train: batchSize * record + 2 * batchSize * floatRecord,
  };
  const room: Record<MemoryPhase, number> = { prepare: limitBytes - sum('prepare'), train: limitBytes - sum('train') };
  for (const phase of MEMORY_PHASES) {
    if (!need.has(phase) || room[phase] >= smallest[phase]) continue;
    const fixedMB = Math.ceil((limitBytes - room[phase]) / MiB);
    const needMB = Math.ceil((limitBytes - room[phase] + smallest[phase]) / MiB);
    const what = phase === 'prepare' ? 'the runtime and the id index' : 'the runtime, tfjs and the model';
    const smaller = phase === 'prepare' ? 'a smaller image size' : 'a smaller train.batchSize, image size or model';
    throw new MemoryPlanError('memory.limitMB',
      `memory.limitMB is ${config.memory.limitMB} but in the ${phase} phase ${what} alone need ${fixedMB} MB and its smallest pipeline ${Math.ceil(smallest[phase] / MiB)} MB more. Raise memory.limitMB to at least ${needMB} (or choose ${smaller}).`);
  }
  const available = Math.max(0, room.prepare);

  // Decoding: one image per core by default, each with one libvips thread (parallel images scale
  // better than parallel tiles of one small image), capped by 20% of what is left.
  const decodeAuto = config.memory.decodeConcurrency === 'auto';
  const decodeConcurrency = decodeAuto
    ? Math.max(1, Math.min(cpus, 4, Math.floor((available * 0.2) / (DECODE_SLOT_BYTES + SHARP_THREAD_BYTES))))
    : (config.memory.decodeConcurrency as number);
  const sharpThreads = Math.max(1, Math.floor(cpus / decodeConcurrency));
  add('prepare', 'decode', decodeConcurrency * DECODE_SLOT_BYTES + sharpThreads * decodeConcurrency * SHARP_THREAD_BYTES,
    `${decodeConcurrency} concurrent decodes x ${DECODE_SLOT_BYTES / MiB} MB + ${sharpThreads * decodeConcurrency} libvips threads x ${SHARP_THREAD_BYTES / MiB} MB`);

  // Shards: the writer holds two contiguous shard buffers (one filling while the other is
  // written); the encoding writes the pixel buffer as is, so it adds only the ids and labels.
  const shardAuto = config.cache.shardImages === 'auto';
  const shardCap = Math.max(1, Math.floor((available * 0.15) / (2 * record)));
  const shardImages = shardAuto
    ? Math.max(1, Math.min(MAX_AUTO_SHARD_IMAGES, Math.floor(TARGET_SHARD_BYTES / record), shardCap))
    : (config.cache.shardImages as number);
  if (!shardAuto && need.has('prepare') && 2 * shardImages * record > available * 0.5) {
    throw new MemoryPlanError('cache.shardImages',
      `cache.shardImages is ${shardImages}: a shard of ${shardImages} x ${record} B images needs ${Math.ceil((2 * shardImages * record) / MiB)} MB (two buffers), more than half of the ${Math.floor(available / MiB)} MB left under memory.limitMB ${config.memory.limitMB}. Set cache.shardImages to at most ${shardCap} or "auto", or raise memory.limitMB.`);
  }
  add('prepare', 'shard buffer', 2 * shardImages * record, `${shardImages} images x ${record} B, two buffers (one filling, one being written)`);

  // Permits: a shard's records hold permits until it is flushed; two shards' worth lets the next
  // shard fill while one is written, the extra keeps decoders busy at the seam.
  const permits = permitsFor(shardImages, decodeConcurrency);
  add('prepare', 'in flight', permits * record, `${permits} permits x ${record} B decoded record (row pulled -> shard flushed)`);
  const orderSlots = permits;
  add('prepare', 'awaiting order', orderSlots * ORDER_SLOT_BYTES, `${orderSlots} rows x ${ORDER_SLOT_BYTES} B outcome waiting for its turn in row order`);

  // Feed: prefetch holds float32 batches; the shuffle buffer holds cache records.
  const prefetchBatches = config.feed.prefetch === 'auto' ? 2 : (config.feed.prefetch as number);
  add('train', 'feed prefetch', (prefetchBatches + 1) * batchSize * floatRecord, `${prefetchBatches}+1 batches x ${batchSize} x ${floatRecord} B float32`);
  let shuffleBufferRecords: number;
  if (config.feed.shuffleBuffer === 'auto') {
    // half of the remaining headroom, the rest stays free for allocator slack and GC lag
    const headroom = Math.floor(((limitBytes - sum('train')) * 0.5) / record);
    shuffleBufferRecords = Math.max(batchSize, Math.min(MAX_AUTO_SHUFFLE_RECORDS, headroom));
  } else {
    shuffleBufferRecords = config.feed.shuffleBuffer as number;
  }
  add('train', 'feed shuffle', shuffleBufferRecords * record, `${shuffleBufferRecords} records x ${record} B`);

  const phaseBytes: Record<MemoryPhase, number> = { prepare: sum('prepare'), train: sum('train') };
  for (const phase of MEMORY_PHASES) {
    if (!need.has(phase) || phaseBytes[phase] <= limitBytes) continue;
    const over = Math.ceil((phaseBytes[phase] - limitBytes) / MiB);
    const knob = phase === 'prepare'
      ? (!decodeAuto ? 'memory.decodeConcurrency' : !shardAuto ? 'cache.shardImages' : 'memory.limitMB')
      : (config.feed.shuffleBuffer !== 'auto' ? 'feed.shuffleBuffer' : config.feed.prefetch !== 'auto' ? 'feed.prefetch' : 'memory.limitMB');
    throw new MemoryPlanError(knob,
      `the ${phase} phase needs ${Math.ceil(phaseBytes[phase] / MiB)} MB, ${over} MB over memory.limitMB ${config.memory.limitMB}. Lower ${knob}${knob === 'memory.limitMB' ? '' : ' (or set it to "auto")'} or raise memory.limitMB to at least ${Math.ceil(phaseBytes[phase] / MiB)}.`);
  }

  // V8 old space holds only JS objects (pixel buffers are external): ids, index, mapping, slack.
  const jsBytes = components.filter((c) => ['seen ids', 'gz2 mapping', 'image index'].includes(c.name)).reduce((s, c) => s + c.bytes, 0);
  const heapMB = Math.ceil((jsBytes + 96 * MiB) / MiB);

  return {
    limitBytes, decodeConcurrency, sharpThreads, permits, orderSlots, shardImages, heapMB,
    shuffleBufferRecords, prefetchBatches, batchSize, components, phaseBytes,
    totalBytes: Math.max(phaseBytes.prepare, phaseBytes.train),
  };
}

/** The plan as an aligned table, grouped by phase (for `galactic plan` and the start of `prepare`). */
export function formatPlan(plan: MemoryPlan): string {
  const mb = (b: number) => `${(b / MiB).toFixed(1)} MB`;
  const width = Math.max(...plan.components.map((c) => c.name.length), 'peak (larger phase)'.length);
  const row = (c: MemoryComponent) => `  ${c.name.padEnd(width)}  ${mb(c.bytes).padStart(10)}  ${c.detail}`;
  const percent = (b: number) => `${((100 * b) / plan.limitBytes).toFixed(0)}%`;
  const lines = plan.components.filter((c) => !c.phase).map(row);
  for (const phase of MEMORY_PHASES) {
    lines.push(`  ${phase} phase:`);
    lines.push(...plan.components.filter((c) => c.phase === phase).map(row));
    lines.push(`  ${`${phase} total`.padEnd(width)}  ${mb(plan.phaseBytes[phase]).padStart(10)}  runtime + ${phase} phase (${percent(plan.phaseBytes[phase])} of the limit)`);
  }
  lines.push(`  ${'peak (larger phase)'.padEnd(width)}  ${mb(plan.totalBytes).padStart(10)}  of ${mb(plan.limitBytes)} limit (${percent(plan.totalBytes)}); the phases never overlap`);
  lines.push(`  decode concurrency ${plan.decodeConcurrency}, sharp threads ${plan.sharpThreads}, permits ${plan.permits}, shard ${plan.shardImages} images, heap ${plan.heapMB} MB, shuffle buffer ${plan.shuffleBufferRecords} records, prefetch ${plan.prefetchBatches} batches of ${plan.batchSize}`);
  return lines.join('\n');
}
