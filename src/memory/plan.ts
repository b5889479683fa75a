import { statSync } from 'node:fs';
import os from 'node:os';
import { UserError } from '../core/errors.ts';
import type { LoadedConfig } from '../config/load.ts';
import { resolveWasmThreads } from '../model/thread-count.ts';

/**
 * The one memory planner (design principle 1): every queue, buffer and concurrency level of the
 * pipeline is sized here from `memory.limitMB`, and a config that cannot fit is refused before
 * any work with the knob to turn. The figures are deliberately conservative upper bounds; the
 * assumptions behind each one are in its `detail` and in docs/prepare.md.
 */

export interface MemoryComponent { name: string; bytes: number; detail: string }
export interface MemoryPlan {
  limitBytes: number;
  decodeConcurrency: number;
  sharpThreads: number;
  permits: number;
  shardImages: number;
  heapMB: number;
  shuffleBufferRecords: number;
  prefetchBatches: number;
  batchSize: number;
  components: MemoryComponent[];
  totalBytes: number;
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
/** Shard target when `cache.shardImages` is "auto": big enough for sequential I/O, small enough to resume cheaply. */
export const TARGET_SHARD_BYTES = 32 * MiB;
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

/**
 * Model reserve under the notebook's architecture assumption: conv(f1) → pool → conv(f2) → pool →
 * conv(f3) → dense(u) → dense(classes), float32. Activations are kept for the backward pass and
 * gradients are of the same size (x3 with tfjs temporaries); weights are held 4 times
 * (weights, gradients, Adam's two moments).
 */
function modelReserve(config: LoadedConfig): { bytes: number; detail: string } {
  const { width, height, channels } = config.image;
  const [f1 = 32, f2 = f1, f3 = f2] = config.model.filters;
  const k = config.model.kernelSize;
  const hw = width * height;
  const activationsPerImage = hw * f1 + (hw / 4) * f2 + (hw / 16) * f3;
  const activations = 3 * 4 * activationsPerImage * config.train.batchSize;
  const flatten = Math.ceil(height / 4) * Math.ceil(width / 4) * f3;
  const params = k * k * (channels * f1 + f1 * f2 + f2 * f3) + flatten * config.model.denseUnits
    + config.model.denseUnits * config.data.classes.length;
  const weights = 4 * 4 * params;
  return {
    bytes: Math.ceil(TFJS_BASE_BYTES + activations + weights),
    detail: `tfjs ${TFJS_BASE_BYTES / MiB} MB + activations 3x${config.train.batchSize}x${Math.round(activationsPerImage)} floats + ${params} params x4 copies`,
  };
}

/** Records in flight end to end for a shard size and decode concurrency. */
export function permitsFor(shardImages: number, decodeConcurrency: number): number {
  return 2 * shardImages + 2 * decodeConcurrency + 8;
}

export function planMemory(config: LoadedConfig, options: { mappingRows?: number; cpus?: number } = {}): MemoryPlan {
  const limitBytes = config.memory.limitMB * MiB;
  const record = recordBytes(config);
  const cpus = options.cpus ?? os.availableParallelism();
  const batchSize = config.train.batchSize;
  const components: MemoryComponent[] = [];
  const add = (name: string, bytes: number, detail: string) => components.push({ name, bytes: Math.ceil(bytes), detail });

  // Fixed costs: independent of any knob except the data and the model.
  add('runtime', RUNTIME_BYTES, 'node, V8 baseline, sharp/libvips loaded');
  const model = modelReserve(config);
  add('model', model.bytes, model.detail);
  const wasmThreads = config.backend === 'wasm' || config.backend === 'auto' ? resolveWasmThreads(config.threads, cpus) : 1;
  if (wasmThreads > 1) {
    add('wasm thread pool', WASM_POOL_BYTES, `threaded XNNPACK build, ${wasmThreads} threads: 8 pthread workers (reserved even if backend "auto" finds tfjs-node)`);
  }
  const mappingRows = config.data.layout === 'gz2' ? (options.mappingRows ?? fileRowsUpperBound(config.data.mappingCsv)) : 0;
  if (config.data.layout === 'gz2') {
    add('gz2 mapping', mappingRows * MAPPING_ENTRY_BYTES, `${mappingRows} rows x ${MAPPING_ENTRY_BYTES} B (objid -> asset_id map)`);
  }
  const csvRows = fileRowsUpperBound(config.data.csv);
  add('seen ids', csvRows * ID_ENTRY_BYTES, `<= ${csvRows} ids x ${ID_ENTRY_BYTES} B (duplicate-id detection)`);
  add('image index', csvRows * 24, `<= ${csvRows} names packed (~24 B each, sorted buffer + offsets)`);
  const fixedBytes = components.reduce((s, c) => s + c.bytes, 0);
  const available = limitBytes - fixedBytes;

  // The smallest pipeline that can run: one decode, one-image shards, a batch of shuffle buffer.
  const minimum = DECODE_SLOT_BYTES + SHARP_THREAD_BYTES + 2 * record + permitsFor(1, 1) * record + batchSize * record + batchSize * record * 4;
  if (available < minimum) {
    const needMB = Math.ceil((fixedBytes + minimum) / MiB);
    throw new MemoryPlanError('memory.limitMB',
      `memory.limitMB is ${config.memory.limitMB} but the runtime, model and index alone need ${Math.ceil(fixedBytes / MiB)} MB and the smallest pipeline ${Math.ceil(minimum / MiB)} MB more. Raise memory.limitMB to at least ${needMB} (or reduce image size / model size).`);
  }

  // Decoding: one image per core by default, each with one libvips thread (parallel images scale
  // better than parallel tiles of one small image), capped by 20% of what is left.
  const decodeAuto = config.memory.decodeConcurrency === 'auto';
  const decodeConcurrency = decodeAuto
    ? Math.max(1, Math.min(cpus, 4, Math.floor((available * 0.2) / (DECODE_SLOT_BYTES + SHARP_THREAD_BYTES))))
    : (config.memory.decodeConcurrency as number);
  const sharpThreads = Math.max(1, Math.floor(cpus / decodeConcurrency));
  add('decode', decodeConcurrency * DECODE_SLOT_BYTES + sharpThreads * decodeConcurrency * SHARP_THREAD_BYTES,
    `${decodeConcurrency} concurrent decodes x ${DECODE_SLOT_BYTES / MiB} MB + ${sharpThreads * decodeConcurrency} libvips threads x ${SHARP_THREAD_BYTES / MiB} MB`);

  // Shards: the writer holds two contiguous shard buffers (one filling while the other is
  // written); the encoding writes the pixel buffer as is, so it adds only the ids and labels.
  const shardAuto = config.cache.shardImages === 'auto';
  const shardCap = Math.max(1, Math.floor((available * 0.15) / (2 * record)));
  const shardImages = shardAuto
    ? Math.max(1, Math.min(MAX_AUTO_SHARD_IMAGES, Math.floor(TARGET_SHARD_BYTES / record), shardCap))
    : (config.cache.shardImages as number);
  if (!shardAuto && 2 * shardImages * record > available * 0.5) {
    throw new MemoryPlanError('cache.shardImages',
      `cache.shardImages is ${shardImages}: a shard of ${shardImages} x ${record} B images needs ${Math.ceil((2 * shardImages * record) / MiB)} MB (two buffers), more than half of the ${Math.floor(available / MiB)} MB left under memory.limitMB ${config.memory.limitMB}. Set cache.shardImages to at most ${shardCap} or "auto", or raise memory.limitMB.`);
  }
  add('shard buffer', 2 * shardImages * record, `${shardImages} images x ${record} B, two buffers (one filling, one being written)`);

  // Permits: a shard's records hold permits until it is flushed; two shards' worth lets the next
  // shard fill while one is written, the extra keeps decoders busy at the seam.
  const permits = permitsFor(shardImages, decodeConcurrency);
  add('in flight', permits * record, `${permits} permits x ${record} B decoded record (row pulled -> shard flushed)`);

  // Feed: prefetch holds float32 batches; the shuffle buffer holds cache records.
  const prefetchBatches = config.feed.prefetch === 'auto' ? 2 : (config.feed.prefetch as number);
  const floatRecord = config.image.width * config.image.height * config.image.channels * 4;
  add('feed prefetch', (prefetchBatches + 1) * batchSize * floatRecord, `${prefetchBatches}+1 batches x ${batchSize} x ${floatRecord} B float32`);
  const used = components.reduce((s, c) => s + c.bytes, 0);
  let shuffleBufferRecords: number;
  if (config.feed.shuffleBuffer === 'auto') {
    // half of the remaining headroom, the rest stays free for allocator slack and GC lag
    const room = Math.floor(((limitBytes - used) * 0.5) / record);
    shuffleBufferRecords = Math.max(batchSize, Math.min(MAX_AUTO_SHUFFLE_RECORDS, room));
  } else {
    shuffleBufferRecords = config.feed.shuffleBuffer as number;
  }
  add('feed shuffle', shuffleBufferRecords * record, `${shuffleBufferRecords} records x ${record} B`);

  const totalBytes = components.reduce((s, c) => s + c.bytes, 0);
  if (totalBytes > limitBytes) {
    const over = Math.ceil((totalBytes - limitBytes) / MiB);
    const knob = config.feed.shuffleBuffer !== 'auto' ? 'feed.shuffleBuffer'
      : !decodeAuto ? 'memory.decodeConcurrency'
        : config.feed.prefetch !== 'auto' ? 'feed.prefetch'
          : !shardAuto ? 'cache.shardImages' : 'memory.limitMB';
    throw new MemoryPlanError(knob,
      `the plan needs ${Math.ceil(totalBytes / MiB)} MB, ${over} MB over memory.limitMB ${config.memory.limitMB}. Lower ${knob}${knob === 'memory.limitMB' ? '' : ' (or set it to "auto")'} or raise memory.limitMB to at least ${Math.ceil(totalBytes / MiB)}.`);
  }

  // V8 old space holds only JS objects (pixel buffers are external): ids, index, mapping, slack.
  const jsBytes = components.filter((c) => ['seen ids', 'gz2 mapping', 'image index'].includes(c.name)).reduce((s, c) => s + c.bytes, 0);
  const heapMB = Math.ceil((jsBytes + 96 * MiB) / MiB);

  return {
    limitBytes, decodeConcurrency, sharpThreads, permits, shardImages, heapMB,
    shuffleBufferRecords, prefetchBatches, batchSize, components, totalBytes,
  };
}

/** The plan as an aligned table (for `galactic plan` and the start of `prepare`). */
export function formatPlan(plan: MemoryPlan): string {
  const mb = (b: number) => `${(b / MiB).toFixed(1)} MB`;
  const width = Math.max(...plan.components.map((c) => c.name.length), 'total'.length);
  const lines = plan.components.map((c) => `  ${c.name.padEnd(width)}  ${mb(c.bytes).padStart(10)}  ${c.detail}`);
  lines.push(`  ${'total'.padEnd(width)}  ${mb(plan.totalBytes).padStart(10)}  of ${mb(plan.limitBytes)} limit (${((100 * plan.totalBytes) / plan.limitBytes).toFixed(0)}%)`);
  lines.push(`  decode concurrency ${plan.decodeConcurrency}, sharp threads ${plan.sharpThreads}, permits ${plan.permits}, shard ${plan.shardImages} images, heap ${plan.heapMB} MB, shuffle buffer ${plan.shuffleBufferRecords} records, prefetch ${plan.prefetchBatches} batches of ${plan.batchSize}`);
  return lines.join('\n');
}
