import os from 'node:os';
import { UserError } from '../core/errors.ts';
import type { LoadedConfig } from '../config/load.ts';
import { resolveWasmThreads } from '../core/thread-count.ts';
import { estimateModelMemory } from './model-memory.ts';

/**
 * The one memory plan (design principle 1): every queue, buffer, table and concurrency level is
 * sized here from `memory.limitMB` and what the data says (its row counts), once per command, and
 * handed down as a value: prepare, the feed, the tuner and the trainer read their sizes from it
 * and never compute or compare their own. Planning never refuses; the refusals are the functions
 * in `refusals.ts`, each taking the plan. The figures are conservative upper bounds; the
 * assumptions behind each one are in its `detail` and in docs/prepare.md.
 *
 * Work runs in two phases that never overlap: `prepare` (decoders, shard buffers, records in
 * flight, the id tables) and `train` (tfjs, the model, the wasm thread pool, the feed's buffers).
 * Each is sized against what the runtime leaves; the peak is the runtime plus the larger phase.
 */

export type MemoryPhase = 'prepare' | 'train';
export const MEMORY_PHASES: readonly MemoryPhase[] = ['prepare', 'train'];

/** Bytes set aside for one thing, and how they were worked out. */
export interface Reserve {
  bytes: number;
  detail: string;
}
/** A table that grows with the rows it is given, up to `entries` strings within `bytes`. */
export interface TableReserve extends Reserve {
  entries: number;
}

/** What the data says, measured before planning (`measureData` in ingest/). Zero when unknown. */
export interface DataFacts {
  /** Data rows of data.csv at most (its lines, header excluded). */
  csvRows: number;
  csvBytes: number;
  /** gz2 layout: data rows of the mapping CSV at most. */
  mappingRows: number;
  mappingBytes: number;
}
export const NO_DATA: DataFacts = { csvRows: 0, csvBytes: 0, mappingRows: 0, mappingBytes: 0 };

export interface PreparePhase {
  /** Every CSV id seen so far (duplicate-id detection). */
  seenIds: TableReserve;
  /** gz2 layout: object ids and image ids of the mapping, with the object -> image link and the claim on each image. */
  mapping: { objects: TableReserve; images: TableReserve; links: Reserve } | null;
  imageIndex: Reserve;
  decode: Reserve;
  shardBuffer: Reserve;
  inFlight: Reserve;
  awaitingOrder: Reserve;
  totalBytes: number;
}

export interface TrainPhase {
  tfjs: Reserve;
  /** config.model at train.batchSize; `error` when it cannot be built for this image size. */
  model: Reserve & { error: string | null };
  wasmPool: Reserve | null;
  prefetch: Reserve;
  shuffle: Reserve;
  totalBytes: number;
}

export interface MemoryPlan {
  limitMB: number;
  limitBytes: number;
  facts: DataFacts;
  runtime: Reserve;
  prepare: PreparePhase;
  train: TrainPhase;
  /** The peak: runtime plus the larger phase. */
  totalBytes: number;
  decodeConcurrency: number;
  sharpThreads: number;
  /** Decoded records in flight end to end (row pulled -> shard flushed). */
  permits: number;
  /** Rows pulled but not yet handled in row order (each holds its small outcome, not a record). */
  orderSlots: number;
  shardImages: number;
  /** Bytes of one cached record. */
  recordBytes: number;
  heapMB: number;
  shuffleBufferRecords: number;
  prefetchBatches: number;
  batchSize: number;
  /**
   * The smallest pipeline each phase can run with (one decode, one-image shards; one batch of shuffle, one prefetched).
   */
  smallestBytes: Record<MemoryPhase, number>;
  /** What the knobs were: "auto" lets a refusal point at memory.limitMB alone. */
  auto: { decodeConcurrency: boolean; shardImages: boolean; shuffleBuffer: boolean; prefetch: boolean };
  cpus: number;
}

export class MemoryPlanError extends UserError {
  readonly knob: string;
  constructor(knob: string, message: string) {
    super(`memory plan does not fit: ${message}`);
    this.knob = knob;
  }
}

const MiB = 1024 * 1024;

/**
 * RSS of the galactic CLI process once loaded, before any work: node, tsx, sharp/libvips, tfjs and
 * the wasm backend's module (every command's modules are imported at start). Measured 214-223 MB
 * on Node 20.20 / x64; the one runtime baseline, for prepare and for training alike.
 */
export const RUNTIME_BYTES = 224 * MiB;
/** Per concurrent decode: the source file buffer plus libvips' working regions for a shrink-on-load JPEG decode. */
export const DECODE_SLOT_BYTES = 16 * MiB;
/** Per libvips worker thread: thread stack and per-thread tile buffers. */
export const SHARP_THREAD_BYTES = 8 * MiB;
/** The threaded wasm build's 8 pthread workers, each its own V8 isolate (measured +70 MB RSS after init). */
export const WASM_POOL_BYTES = 80 * MiB;
/** The tfjs engine with its backend initialised (wasm: the module's first heap), before any model. */
export const TFJS_BASE_BYTES = 64 * MiB;
/**
 * tfjs-node once selected, before any model: libtensorflow's code and data pages, its thread pools
 * and oneDNN's runtime. Measured on Node 20.20 / x64: RSS 452 MB right after selecting node in a
 * tune process (sharp and the prepare modules loaded; 311 MB with wasm there), i.e. 228 MB over
 * the runtime baseline; the loaded CLI alone goes from 51 to 369 MB (wasm: 162 MB).
 */
export const NODE_BACKEND_BYTES = 256 * MiB;
/** Id bytes planned per row at most, on average (gz2 object ids have 18, asset ids 5-6). */
export const ID_BYTES_PER_ROW = 64;
/** Per image-index name: packed name (about 16 B), offset, hash-table slots. */
export const IMAGE_INDEX_ENTRY_BYTES = 40;
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

const CHUNK_BYTES = 1 << 20;

/** Bytes a string table of `entries` strings with `stringBytes` in all may take (see ingest/string-table.ts). */
export function stringTableBytes(entries: number, stringBytes: number): number {
  if (entries === 0) return 0;
  const chunks = Math.ceil((stringBytes + 2 * entries) / CHUNK_BYTES) + 1;
  let slots = 16;
  while (slots < 2 * entries) slots *= 2;
  return chunks * CHUNK_BYTES + 8 * entries + 4 * slots;
}

function table(entries: number, fileBytes: number, what: string): TableReserve {
  const stringBytes = Math.min(fileBytes, entries * ID_BYTES_PER_ROW);
  return {
    entries,
    bytes: stringTableBytes(entries, stringBytes),
    detail: `<= ${entries} ${what} packed (<= ${Math.ceil(stringBytes / MiB)} MB of id bytes, 18 B per entry, 1 MB chunks)`,
  };
}

/** Bytes of one cached record (pixels in the cache dtype). */
export function recordBytes(config: LoadedConfig): number {
  const { width, height, channels } = config.image;
  return width * height * channels * (config.cache.dtype === 'uint8' ? 1 : 4);
}

/** Records in flight end to end for a shard size and decode concurrency. */
export function permitsFor(shardImages: number, decodeConcurrency: number): number {
  return 2 * shardImages + 2 * decodeConcurrency + 8;
}

const reserve = (bytes: number, detail: string): Reserve => ({ bytes: Math.ceil(bytes), detail });
const sum = (reserves: (Reserve | null)[]) => reserves.reduce((s, r) => s + (r?.bytes ?? 0), 0);

export function planMemory(config: LoadedConfig, facts: DataFacts, options: { cpus?: number } = {}): MemoryPlan {
  const limitBytes = config.memory.limitMB * MiB;
  const record = recordBytes(config);
  const cpus = options.cpus ?? os.availableParallelism();
  const runtime = reserve(
    RUNTIME_BYTES,
    'node, tsx, sharp/libvips, tfjs and the wasm module loaded (measured 214-223 MB)',
  );
  const data = dataReserves(config, facts);
  const available = Math.max(0, limitBytes - runtime.bytes - data.bytes);
  const decoding = decodeReserve(config, cpus, available);
  const shards = shardReserve(config, record, available);
  const flight = inFlightReserves(shards.shardImages, decoding.decodeConcurrency, record);
  const prepare: PreparePhase = {
    seenIds: data.seenIds,
    mapping: data.mapping,
    imageIndex: data.imageIndex,
    decode: decoding.decode,
    shardBuffer: shards.shardBuffer,
    inFlight: flight.inFlight,
    awaitingOrder: flight.awaitingOrder,
    totalBytes:
      runtime.bytes + data.bytes + sum([decoding.decode, shards.shardBuffer, flight.inFlight, flight.awaitingOrder]),
  };

  const engine = engineReserves(config, cpus);
  const feed = feedReserves(config, record, limitBytes - runtime.bytes - engine.bytes);
  const train: TrainPhase = {
    tfjs: engine.tfjs,
    model: engine.model,
    wasmPool: engine.wasmPool,
    prefetch: feed.prefetch,
    shuffle: feed.shuffle,
    totalBytes: runtime.bytes + engine.bytes + feed.prefetch.bytes + feed.shuffle.bytes,
  };

  return {
    limitMB: config.memory.limitMB,
    limitBytes,
    facts,
    runtime,
    prepare,
    train,
    totalBytes: Math.max(prepare.totalBytes, train.totalBytes),
    decodeConcurrency: decoding.decodeConcurrency,
    sharpThreads: decoding.sharpThreads,
    permits: flight.permits,
    orderSlots: flight.orderSlots,
    shardImages: shards.shardImages,
    recordBytes: record,
    // V8 old space holds only JS objects (pixel buffers and the id tables' chunks are external): slack.
    heapMB: 96 + Math.ceil((data.indexRows * 16) / MiB),
    shuffleBufferRecords: feed.shuffleBufferRecords,
    prefetchBatches: feed.prefetchBatches,
    batchSize: config.train.batchSize,
    smallestBytes: smallestPipelines(config, record),
    auto: {
      decodeConcurrency: decoding.auto,
      shardImages: shards.auto,
      shuffleBuffer: feed.shuffleAuto,
      prefetch: feed.prefetchAuto,
    },
    cpus,
  };
}

/** Bytes of one record as the feed's float32 batches hold it. */
function floatRecordBytes(config: LoadedConfig): number {
  return config.image.width * config.image.height * config.image.channels * 4;
}

/** Prepare, fixed: what the data itself costs, from its measured row counts (the id tables and the image index). */
function dataReserves(config: LoadedConfig, facts: DataFacts) {
  const seenIds = table(facts.csvRows, facts.csvBytes, 'CSV ids');
  const mapping =
    config.data.layout === 'gz2'
      ? {
          objects: table(facts.mappingRows, facts.mappingBytes, 'mapping object ids'),
          images: table(facts.mappingRows, facts.mappingBytes, 'mapping image ids'),
          links: reserve(8 * facts.mappingRows, `${facts.mappingRows} rows x 8 B (object -> image, image claimed by)`),
        }
      : null;
  const indexRows = Math.max(facts.csvRows, facts.mappingRows);
  const imageIndex = reserve(
    indexRows * IMAGE_INDEX_ENTRY_BYTES,
    `<= ${indexRows} names x ${IMAGE_INDEX_ENTRY_BYTES} B (packed names, offsets, hash table)`,
  );
  const bytes = sum([seenIds, mapping?.objects ?? null, mapping?.images ?? null, mapping?.links ?? null, imageIndex]);
  return { seenIds, mapping, imageIndex, indexRows, bytes };
}

/**
 * Train, fixed: the engine, the configured model's training memory (the estimate the tuner's
 * INFEASIBLE rule uses too) and the threaded wasm build's workers.
 */
function engineReserves(config: LoadedConfig, cpus: number) {
  const batchSize = config.train.batchSize;
  // backend "auto" picks tfjs-node first when it is installed
  const tfjs =
    config.backend === 'node' || config.backend === 'auto'
      ? reserve(
          NODE_BACKEND_BYTES,
          `tfjs engine with tfjs-node (libtensorflow, its thread pools, oneDNN) before any model${config.backend === 'auto' ? ', if "auto" finds it' : ''}`,
        )
      : reserve(TFJS_BASE_BYTES, 'tfjs engine, backend and kernels before any model');
  let model: TrainPhase['model'];
  try {
    const m = estimateModelMemory({}, config, batchSize, config.data.classes.length);
    model = {
      ...reserve(
        m.totalBytes,
        `config.model at batch ${batchSize}: ${m.components.map((c) => `${c.name} ${Math.ceil(c.bytes / MiB)} MB`).join(', ')}`,
      ),
      error: null,
    };
  } catch (error) {
    // config.model may not suit the image size (e.g. too deep for 16x16); only training cares.
    if (!(error instanceof UserError)) throw error;
    model = { bytes: 0, detail: `config.model cannot be built: ${error.message}`, error: error.message };
  }
  const wasmThreads =
    config.backend === 'wasm' || config.backend === 'auto' ? resolveWasmThreads(config.threads, cpus) : 1;
  const wasmPool =
    wasmThreads > 1
      ? reserve(
          WASM_POOL_BYTES,
          `threaded XNNPACK build, ${wasmThreads} threads: 8 pthread workers (reserved even if backend "auto" finds tfjs-node)`,
        )
      : null;
  return { tfjs, model, wasmPool, bytes: sum([tfjs, model, wasmPool]) };
}

/** The smallest pipeline each phase can run with (one decode, one-image shards; one batch shuffled, one prefetched). */
function smallestPipelines(config: LoadedConfig, record: number): Record<MemoryPhase, number> {
  const batchSize = config.train.batchSize;
  return {
    prepare: DECODE_SLOT_BYTES + SHARP_THREAD_BYTES + 2 * record + permitsFor(1, 1) * (record + ORDER_SLOT_BYTES),
    train: batchSize * record + 2 * batchSize * floatRecordBytes(config),
  };
}

/**
 * Decoding: one image per core plus one by default, each with one libvips thread (parallel images
 * scale better than parallel tiles of one small image), capped by 20% of what is `available`. The
 * extra image keeps every core decoding while the main thread hands a finished image to the sink
 * and starts the next one (bench/README.md, start-up).
 */
function decodeReserve(config: LoadedConfig, cpus: number, available: number) {
  const auto = config.memory.decodeConcurrency === 'auto';
  const decodeConcurrency = auto
    ? Math.max(1, Math.min(cpus + 1, 4, Math.floor((available * 0.2) / (DECODE_SLOT_BYTES + SHARP_THREAD_BYTES))))
    : (config.memory.decodeConcurrency as number);
  const sharpThreads = Math.max(1, Math.floor(cpus / decodeConcurrency));
  const decode = reserve(
    decodeConcurrency * DECODE_SLOT_BYTES + sharpThreads * decodeConcurrency * SHARP_THREAD_BYTES,
    `${decodeConcurrency} concurrent decodes x ${DECODE_SLOT_BYTES / MiB} MB + ${sharpThreads * decodeConcurrency} libvips threads x ${SHARP_THREAD_BYTES / MiB} MB`,
  );
  return { auto, decodeConcurrency, sharpThreads, decode };
}

/** Shards: the writer holds two shards' records (one filling while the other is written). */
function shardReserve(config: LoadedConfig, record: number, available: number) {
  const auto = config.cache.shardImages === 'auto';
  const shardImages = auto
    ? Math.max(
        1,
        Math.min(
          MAX_AUTO_SHARD_IMAGES,
          Math.floor(TARGET_SHARD_BYTES / record),
          Math.floor((available * 0.15) / (2 * record)),
        ),
      )
    : (config.cache.shardImages as number);
  const shardBuffer = reserve(
    2 * shardImages * record,
    `${shardImages} images x ${record} B, two buffers (one filling, one being written)`,
  );
  return { auto, shardImages, shardBuffer };
}

/**
 * Permits: a shard's records hold permits until it is flushed; two shards' worth lets the next
 * shard fill while one is written, the extra keeps decoders busy at the seam.
 */
function inFlightReserves(shardImages: number, decodeConcurrency: number, record: number) {
  const permits = permitsFor(shardImages, decodeConcurrency);
  const inFlight = reserve(
    permits * record,
    `${permits} permits x ${record} B decoded record (row pulled -> shard flushed)`,
  );
  const orderSlots = permits;
  const awaitingOrder = reserve(
    orderSlots * ORDER_SLOT_BYTES,
    `${orderSlots} rows x ${ORDER_SLOT_BYTES} B outcome waiting for its turn in row order`,
  );
  return { permits, inFlight, orderSlots, awaitingOrder };
}

/**
 * Feed: prefetch holds float32 batches; the shuffle buffer holds cache records, by default half
 * of the headroom `left` after the prefetch (the rest stays free for allocator slack and GC lag).
 */
function feedReserves(config: LoadedConfig, record: number, left: number) {
  const batchSize = config.train.batchSize;
  const floatRecord = floatRecordBytes(config);
  const prefetchAuto = config.feed.prefetch === 'auto';
  const prefetchBatches = prefetchAuto ? 2 : (config.feed.prefetch as number);
  const prefetch = reserve(
    (prefetchBatches + 1) * batchSize * floatRecord,
    `${prefetchBatches}+1 batches x ${batchSize} x ${floatRecord} B float32`,
  );
  const shuffleAuto = config.feed.shuffleBuffer === 'auto';
  const headroom = Math.floor(((left - prefetch.bytes) * 0.5) / record);
  const shuffleBufferRecords = shuffleAuto
    ? Math.max(batchSize, Math.min(MAX_AUTO_SHUFFLE_RECORDS, headroom))
    : (config.feed.shuffleBuffer as number);
  const shuffle = reserve(shuffleBufferRecords * record, `${shuffleBufferRecords} records x ${record} B`);
  return { prefetchAuto, prefetchBatches, prefetch, shuffleAuto, shuffleBufferRecords, shuffle };
}

/** The plan's reserves as named rows, by phase (for display and `galactic plan --json`). */
export function planComponents(
  plan: MemoryPlan,
): { name: string; phase: MemoryPhase | null; bytes: number; detail: string }[] {
  const { prepare: p, train: t } = plan;
  const rows: [string, MemoryPhase | null, Reserve | null][] = [
    ['runtime', null, plan.runtime],
    ['gz2 mapping objects', 'prepare', p.mapping?.objects ?? null],
    ['gz2 mapping images', 'prepare', p.mapping?.images ?? null],
    ['gz2 mapping links', 'prepare', p.mapping?.links ?? null],
    ['seen ids', 'prepare', p.seenIds],
    ['image index', 'prepare', p.imageIndex],
    ['decode', 'prepare', p.decode],
    ['shard buffer', 'prepare', p.shardBuffer],
    ['in flight', 'prepare', p.inFlight],
    ['awaiting order', 'prepare', p.awaitingOrder],
    ['tfjs', 'train', t.tfjs],
    ['model', 'train', t.model],
    ['wasm thread pool', 'train', t.wasmPool],
    ['feed prefetch', 'train', t.prefetch],
    ['feed shuffle', 'train', t.shuffle],
  ];
  return rows
    .filter((r): r is [string, MemoryPhase | null, Reserve] => r[2] !== null)
    .map(([name, phase, r]) => ({ name, phase, bytes: r.bytes, detail: r.detail }));
}

/** The plan as an aligned table, grouped by phase (for `galactic plan` and the start of `prepare`). */
export function formatPlan(plan: MemoryPlan): string {
  const components = planComponents(plan);
  const mb = (b: number) => `${(b / MiB).toFixed(1)} MB`;
  const width = Math.max(...components.map((c) => c.name.length), 'peak (larger phase)'.length);
  const row = (c: (typeof components)[number]) => `  ${c.name.padEnd(width)}  ${mb(c.bytes).padStart(10)}  ${c.detail}`;
  const percent = (b: number) => `${((100 * b) / plan.limitBytes).toFixed(0)}%`;
  const lines = components.filter((c) => c.phase === null).map(row);
  for (const phase of MEMORY_PHASES) {
    lines.push(`  ${phase} phase:`);
    lines.push(...components.filter((c) => c.phase === phase).map(row));
    const total = plan[phase].totalBytes;
    lines.push(
      `  ${`${phase} total`.padEnd(width)}  ${mb(total).padStart(10)}  runtime + ${phase} phase (${percent(total)} of the limit)`,
    );
  }
  lines.push(
    `  ${'peak (larger phase)'.padEnd(width)}  ${mb(plan.totalBytes).padStart(10)}  of ${mb(plan.limitBytes)} limit (${percent(plan.totalBytes)}); the phases never overlap`,
  );
  lines.push(
    `  decode concurrency ${plan.decodeConcurrency}, sharp threads ${plan.sharpThreads}, permits ${plan.permits}, shard ${plan.shardImages} images, heap ${plan.heapMB} MB, shuffle buffer ${plan.shuffleBufferRecords} records, prefetch ${plan.prefetchBatches} batches of ${plan.batchSize}`,
  );
  return lines.join('\n');
}
