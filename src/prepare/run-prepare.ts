import { readdirSync, renameSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import v8 from 'node:v8';
import { UserError } from '../core/errors.ts';
import type { LoadedConfig } from '../config/load.ts';
import { formatSeconds, type Output } from '../core/console.ts';
import { openCsv, type CsvSource } from '../ingest/csv-source.ts';
import { estimateCsvRows } from '../ingest/count-rows.ts';
import { ImageIndex } from '../ingest/image-index.ts';
import { checkFileNamePattern } from '../ingest/ids.ts';
import { LabelRules } from '../ingest/labels.ts';
import type { Gz2Mapping } from '../ingest/gz2-mapping.ts';
import { cacheKey, cacheKeyInputs, type CacheKeyInputs } from '../cache/key.ts';
import {
  MANIFEST_FILE,
  REJECTS_FILE,
  ManifestUnreadableError,
  readManifestIfPresent,
  shardFilesProblem,
} from '../cache/manifest.ts';
import { CACHE_FORMAT_VERSION, MANIFEST_FORMAT, type Manifest } from '../cache/format.ts';
import { RejectsLog } from '../cache/rejects-log.ts';
import { ShardWriter } from '../cache/shard-writer.ts';
import type { WriteFileFn } from '../core/atomic-file.ts';
import { planMemory, formatPlan, type MemoryPlan } from '../memory/plan.ts';
import { refusePhases, refuseResume, tableFullError } from '../memory/refusals.ts';
import { measureData } from '../ingest/data-facts.ts';
import { StringTable } from '../ingest/string-table.ts';
import { RssSampler } from '../memory/rss-sampler.ts';
import type { FolderLock } from '../core/lock.ts';
import { isPrepareLockFile, lockCacheDir } from './cache-lock.ts';
import { loadMappingFor } from './mapping-load.ts';
import { PermitPool } from './permits.ts';
import { RowScreen } from './row-screen.ts';
import { CacheBuilder, type ResumeState } from './cache-builder.ts';
import type { OpenPixelSource, PixelSource } from './pixel-source.ts';
import { newProbe, streamRecords, type PipelineStages, type Replayed } from './pipeline.ts';
import { prepareProgressTotal } from './progress-total.ts';
import { GALACTIC_VERSION } from '../core/version.ts';
import { probeWritableDir } from '../core/writable-dir.ts';

/**
 * `galactic prepare` as a library call: checks everything that can stop a run before any work,
 * answers from the cache when the same inputs were prepared before, resumes an interrupted
 * build after its last complete shard, and otherwise streams the CSV into shards.
 */

export interface PrepareSummary {
  cacheKey: string;
  cacheDir: string;
  cacheHit: boolean;
  rows: number;
  images: number;
  rejected: Record<string, number>;
  shards: number;
  seconds: number;
  imagesPerSecond: number;
  peakRssMB: number;
  limitMB: number;
}

export interface PrepareOptions {
  output: Output;
  force?: boolean;
  /** Overrides data.limit (the CLI's --limit). */
  limit?: number | null;
  /** Injection points for tests: how shard/manifest bytes reach disk, and a hook after each shard. */
  writeFile?: WriteFileFn;
  onCommit?: (manifest: Manifest) => void;
  /**
   * The command's memory plan (computed once from the config and the data, and handed down);
   * library callers without one get it computed here.
   */
  plan?: MemoryPlan;
  /**
   * Candidates' pixels from elsewhere instead of decoding them here (a distributed prepare: the workers'
   * part files); opened once the cache is known to need building, with its lock held.
   */
  pixelSource?: OpenPixelSource;
  /** Replaces decodeImage (benches compare the pipeline against bare sharp with it). */
  decode?: (file: string, image: LoadedConfig['image']) => Promise<Uint8Array>;
}

export class CacheDirNotWritableError extends UserError {
  constructor(dir: string, detail: string) {
    super(
      `cache folder ${dir} is not writable (${detail}). Set cache.dir to a folder you can write to, or fix its permissions.`,
    );
  }
}

export class NoImagesFoundError extends UserError {
  constructor(
    imageDir: string,
    fileName: string,
    firstExpected: string,
    rows: number,
    missing: number,
    rejectsFile: string,
  ) {
    super(
      `none of the images was found: ${missing} of the ${rows} rows checked name an image that is not in data.imageDir (${imageDir}) under data.fileName "${fileName}"; the first expected was ${firstExpected}. Point data.imageDir at the folder holding the images and make data.fileName match their names (the rejected rows are listed in ${rejectsFile}). Nothing was cached.`,
    );
  }
}

function ensureWritable(dir: string, reportAs: string): void {
  const problem = probeWritableDir(dir);
  if (problem) throw new CacheDirNotWritableError(reportAs, problem);
}

const STALE_SUFFIX = '.stale';

/**
 * Removes everything a crashed run may have left that the manifest does not vouch for (and an
 * old cache's shards on --force). The files are renamed out of the way at once (a rename costs
 * microseconds) and deleted in the background: unlinking five 30 MB shards takes 40-60 ms of
 * wall time on ext4, which would otherwise be spent before the first decode. The caller awaits
 * the returned promise before returning; a crash in between leaves `.stale` files, which are not
 * in any manifest, so the next run deletes them.
 */
function removeStrayFiles(cacheDir: string, keep: Manifest | null): Promise<void> {
  const wanted = new Set([MANIFEST_FILE, REJECTS_FILE, ...(keep?.shards.map((s) => s.file) ?? [])]);
  const doomed: string[] = [];
  for (const name of readdirSync(cacheDir)) {
    if (wanted.has(name) || isPrepareLockFile(name)) continue;
    const file = path.join(cacheDir, name);
    try {
      const stale = name.endsWith(STALE_SUFFIX) ? file : `${file}${STALE_SUFFIX}`;
      if (stale !== file) renameSync(file, stale);
      doomed.push(stale);
    } catch {
      rmSync(file, { force: true, recursive: true });
    }
  }
  return Promise.all(doomed.map((file) => rm(file, { force: true, recursive: true }))).then(() => undefined);
}

export async function runPrepare(config: LoadedConfig, options: PrepareOptions): Promise<PrepareSummary> {
  const started = performance.now();
  const sampler = new RssSampler(100, 10_000, { processHighWater: true }).start();
  const held: { lock: FolderLock | null } = { lock: null };
  try {
    return await prepare(config, options, started, sampler, held);
  } finally {
    held.lock?.release();
    sampler.stop();
  }
}

async function prepare(
  config: LoadedConfig,
  options: PrepareOptions,
  started: number,
  sampler: RssSampler,
  held: { lock: FolderLock | null },
): Promise<PrepareSummary> {
  const { output } = options;
  const target = checkBeforeWork(config, options);
  const summary = (cacheHit: boolean, manifest: Manifest, decoded: number): PrepareSummary =>
    summarize(config, target, { started, sampler, cacheHit, manifest, decoded });

  // one prepare per cache folder: a second one waits for the first, then answers from its cache
  held.lock = await lockCacheDir(target.cacheDir, output);
  const existing = readExistingManifest(target.cacheDir, options.force);
  if (existing?.complete && !options.force && isIntact(target.cacheDir, existing, output)) {
    return summary(true, existing, 0);
  }

  const { mapping, csv } = await openInputs(config, target.plan);
  const resume = await resumePoint(config, target, csv, options.force ? null : existing, output);
  const decode = await loadDecoder(config, target, options, output);
  output.info(
    resume.existing
      ? `resuming ${target.cacheDir} after row ${resume.committedRow} (${resume.existing.shards.length} shards, ${resume.existing.totals.images} images already written)`
      : `preparing ${target.cacheDir}`,
  );

  const built = await buildCache(config, target, { csv, mapping, resume, decode }, options, sampler);
  const result = summary(false, built.manifest, built.decoded);
  output.info(
    `prepared ${result.images} images from ${result.rows} rows into ${result.shards} shards (${
      Object.entries(result.rejected)
        .map(([r, n]) => `${n} ${r}`)
        .join(', ') || 'no rejects'
    }) in ${formatSeconds(result.seconds)}, peak RSS ${result.peakRssMB} MB of ${result.limitMB} MB`,
  );
  return result;
}

/**
 * Streams data.csv into the cache: each row screened (labels, ids, the image's existence), decoded
 * under the plan's permits and written in row order into shards; rows already committed by an
 * interrupted run are replayed, not decoded again.
 */
async function buildCache(
  config: LoadedConfig,
  target: CacheTarget,
  inputs: { csv: CsvSource; mapping: Gz2Mapping | null; resume: ResumePoint; decode: DecodeFn },
  options: PrepareOptions,
  sampler: RssSampler,
): Promise<{ manifest: Manifest; decoded: number }> {
  const { csv, resume } = inputs;
  const labels = new LabelRules(config.data.classes);
  const permits = new PermitPool(target.plan.permits);
  const rejects = new RejectsLog(target.cacheDir, resume.rejectsBytes);
  const builder = newCacheBuilder(config, target, resume, { labels, permits, rejects }, options);
  const existence = new ExistenceCheck(target.index);
  const screen = newRowScreen(config, target.plan, { csv, mapping: inputs.mapping, labels, existence });
  const probe = newProbe();
  const progress = startProgress(config, options.output, sampler, { probe, builder, limit: target.limit, resume });
  let manifest: Manifest;
  let pixelSource: PixelSource | null = null;
  try {
    const build = {
      cacheKey: target.key,
      cacheDir: target.cacheDir,
      fromRow: resume.committedRow + 1,
      force: Boolean(options.force),
    };
    pixelSource = options.pixelSource ? await options.pixelSource(build) : null;
    const fromParts = pixelSource;
    await streamRecords({
      source: csv,
      permits,
      orderSlots: new PermitPool(target.plan.orderSlots),
      screen: (row) => {
        const screened = screen.screen(row);
        return row.row <= resume.committedRow
          ? ({ kind: 'replayed', seq: row.row, row: row.row } satisfies Replayed)
          : screened;
      },
      decode: fromParts ? (candidate) => fromParts.pixels(candidate) : inputs.decode,
      decodeConcurrency: target.plan.decodeConcurrency,
      sink: builder,
      probe,
      limit: { records: target.limit, alreadyAccepted: resume.existing?.totals.images ?? 0 },
    });
    // a wrong data.imageDir or data.fileName must not look like success (nor be cached as complete)
    existence.refuseIfNoneFound(config.data, probe.pulled, rejects.file);
    manifest = await builder.finish();
    await pixelSource?.finish();
  } finally {
    await pixelSource?.close();
    progress.stopTicker();
    rejects.close();
    csv.close();
    await resume.removed;
  }
  progress.finish();
  return { manifest, decoded: builder.decodedThisRun };
}

/**
 * The row checks: label rules, duplicate ids (in a table within the plan's ceiling), the gz2
 * mapping, the image's existence.
 */
function newRowScreen(
  config: LoadedConfig,
  plan: MemoryPlan,
  parts: { csv: CsvSource; mapping: Gz2Mapping | null; labels: LabelRules; existence: ExistenceCheck },
): RowScreen {
  const seen = new StringTable(plan.prepare.seenIds, () =>
    tableFullError(plan, config.data.csv, 'ids', plan.prepare.seenIds),
  );
  return new RowScreen({
    data: config.data,
    labels: parts.labels,
    hasImage: (name) => parts.existence.has(name),
    headerCount: parts.csv.headerCount,
    mapping: parts.mapping,
    seen,
  });
}

/** The plan, the image index and the cache folder these inputs map to. */
interface CacheTarget {
  plan: MemoryPlan;
  index: ImageIndex;
  inputs: CacheKeyInputs;
  key: string;
  cacheDir: string;
  limit: number | null;
}

/** Everything that can stop a run, before any work; and where its cache goes. */
function checkBeforeWork(config: LoadedConfig, options: PrepareOptions): CacheTarget {
  const data = config.data;
  const limit = options.limit === undefined ? data.limit : options.limit;
  const plan = options.plan ?? planMemory(config, measureData(config));
  refusePhases(config, plan, ['prepare']);
  checkFileNamePattern(data.fileName);
  // listed synchronously: nothing else runs yet, and the async listing (one promise per entry)
  // takes 2-3x longer (20,000 names: 47-83 ms against 21-24 ms)
  const index = ImageIndex.buildSync(data.imageDir, data.fileName);
  const inputs = cacheKeyInputs(config, index, limit);
  const key = cacheKey(inputs);
  return { plan, index, inputs, key, cacheDir: path.join(config.cache.dir, key), limit };
}

function summarize(
  config: LoadedConfig,
  target: CacheTarget,
  run: { started: number; sampler: RssSampler; cacheHit: boolean; manifest: Manifest; decoded: number },
): PrepareSummary {
  const { manifest, sampler } = run;
  const seconds = (performance.now() - run.started) / 1000;
  sampler.sample();
  return {
    cacheKey: target.key,
    cacheDir: target.cacheDir,
    cacheHit: run.cacheHit,
    rows: manifest.totals.rows,
    images: manifest.totals.images,
    rejected: { ...manifest.rejects },
    shards: manifest.shards.length,
    seconds: Math.round(seconds * 1000) / 1000,
    imagesPerSecond: seconds > 0 ? Math.round((run.decoded / seconds) * 10) / 10 : 0,
    peakRssMB: sampler.peakMB,
    limitMB: config.memory.limitMB,
  };
}

/**
 * The cache folder's manifest, if any; an edited or damaged one is refused (the error says to
 * --force), or ignored on --force.
 */
function readExistingManifest(cacheDir: string, force: boolean | undefined): Manifest | null {
  try {
    return readManifestIfPresent(cacheDir);
  } catch (error) {
    if (!(force && error instanceof ManifestUnreadableError)) throw error;
    return null;
  }
}

/** Whether a complete cache still matches its manifest (a cache hit); a damaged one is said to be rebuilt. */
function isIntact(cacheDir: string, existing: Manifest, output: Output): boolean {
  const problem = shardFilesProblem(cacheDir, existing);
  if (!problem) {
    output.info(`cache hit: ${cacheDir} (${existing.totals.images} images in ${existing.shards.length} shards)`);
    return true;
  }
  output.warn(
    `the cache at ${cacheDir} does not match its manifest (${problem}): it was damaged or edited; rebuilding it`,
  );
  return false;
}

/** The gz2 mapping (loaded whole, within its planned tables) and data.csv opened as a row source. */
async function openInputs(
  config: LoadedConfig,
  plan: MemoryPlan,
): Promise<{ mapping: Gz2Mapping | null; csv: CsvSource }> {
  const data = config.data;
  const mapping = await loadMappingFor(config, plan);
  const csv = await openCsv(
    data.csv,
    [
      { column: data.idColumn, knob: 'data.idColumn' },
      { column: data.labelColumn, knob: 'data.labelColumn' },
    ],
    data.maxRowBytes,
  );
  return { mapping, csv };
}

/** Where this run starts: after the last complete shard of an interrupted cache, or from nothing. */
interface ResumePoint {
  /** The interrupted cache's manifest, or null when starting from nothing. */
  existing: Manifest | null;
  committedRow: number;
  rejectsBytes: number;
  shardImages: number;
  /** The stray files' background removal (never fails). */
  removed: Promise<unknown>;
}

/**
 * Checks the cache folders are writable, clears what no manifest vouches for and decides where to
 * start: `existing` (null on --force) is resumed unless it is complete (damaged: rebuilt), cannot
 * resume or lost a shard; a resume whose shards the plan cannot hold is refused. Closes `csv` when
 * it refuses.
 */
async function resumePoint(
  config: LoadedConfig,
  target: CacheTarget,
  csv: CsvSource,
  existing: Manifest | null,
  output: Output,
): Promise<ResumePoint> {
  const { cacheDir, plan } = target;
  try {
    ensureWritable(config.cache.dir, config.cache.dir);
    ensureWritable(cacheDir, config.cache.dir);
  } catch (error) {
    csv.close();
    throw error;
  }
  // a damaged complete cache, or one without resume state: rebuild from nothing
  if (existing && (existing.complete || !existing.resume)) existing = null;
  const resume = existing?.resume as ResumeState | undefined;
  const removals = [removeStrayFiles(cacheDir, existing)];
  if (existing && shardFilesProblem(cacheDir, existing)) {
    output.warn(`the interrupted cache at ${cacheDir} lost a shard; starting it over`);
    existing = null;
    removals.push(removeStrayFiles(cacheDir, null));
  }
  // a failed background delete leaves a .stale file for the next run; it never fails this one
  const removed = Promise.all(removals).catch(() => undefined);
  if (existing) {
    try {
      refuseResume(config, plan, cacheDir, existing.shardImages);
    } catch (error) {
      csv.close();
      await removed;
      throw error;
    }
  }
  return {
    existing,
    committedRow: existing && resume ? resume.committedRow : 0,
    rejectsBytes: existing && resume ? resume.rejectsBytes : 0,
    // a resumed cache keeps its shard size, which the plan's permits hold (refuseResume): never more permits
    // than planned
    shardImages: existing ? existing.shardImages : plan.shardImages,
    removed,
  };
}

type DecodeFn = PipelineStages['decode'];

/**
 * Loads sharp (libvips) only now, a cache hit never needs it, set to the plan's threads; warns when
 * V8's heap limit is under the plan's and shows the plan.
 */
async function loadDecoder(
  config: LoadedConfig,
  target: CacheTarget,
  options: PrepareOptions,
  output: Output,
): Promise<DecodeFn> {
  const { plan, index } = target;
  const [{ default: sharp }, { decodeImage }] = await Promise.all([import('sharp'), import('../images/decode.ts')]);
  sharp.cache(false);
  sharp.concurrency(plan.sharpThreads);
  const heapLimitMB = Math.floor(v8.getHeapStatistics().heap_size_limit / 1048576);
  if (heapLimitMB < plan.heapMB) {
    output.warn(
      `the V8 heap limit is ${heapLimitMB} MB but the plan needs ${plan.heapMB} MB of JS heap; run node with --max-old-space-size=${plan.heapMB}`,
    );
  }
  output.info(`memory plan (memory.limitMB ${config.memory.limitMB}):\n${formatPlan(plan)}`);
  const replacement = options.decode;
  return replacement
    ? (candidate) => replacement(candidate.file, config.image)
    : (candidate) => decodeImage(candidate.file, config.image, { within: index.realDir });
}

function newCacheBuilder(
  config: LoadedConfig,
  target: CacheTarget,
  resume: ResumePoint,
  parts: { labels: LabelRules; permits: PermitPool; rejects: RejectsLog },
  options: PrepareOptions,
): CacheBuilder {
  const { cacheDir, key, inputs } = target;
  const { width, height, channels, fit } = config.image;
  return new CacheBuilder({
    cacheDir,
    base: {
      format: MANIFEST_FORMAT,
      version: CACHE_FORMAT_VERSION,
      cacheKey: key,
      inputs: inputs as unknown as Record<string, unknown>,
      classes: parts.labels.names,
      image: { width, height, channels, fit },
      dtype: config.cache.dtype,
      shardImages: resume.shardImages,
      toolVersion: GALACTIC_VERSION,
      createdAt: resume.existing?.createdAt ?? new Date().toISOString(),
    },
    writer: new ShardWriter(
      cacheDir,
      resume.shardImages,
      { height, width, channels },
      config.cache.dtype,
      options.writeFile,
    ),
    rejects: parts.rejects,
    permits: parts.permits,
    channels,
    limit: target.limit,
    resumeFrom: resume.existing,
    writeManifestFile: options.writeFile,
    onCommit: options.onCommit,
  });
}

/** What the existence check saw, for the "none of the images is there" refusal. */
class ExistenceCheck {
  private found = 0;
  private missing = 0;
  private firstMissing: string | null = null;
  constructor(private readonly index: ImageIndex) {}

  has(name: string): boolean {
    if (this.index.has(name)) {
      this.found++;
      return true;
    }
    this.missing++;
    this.firstMissing ??= name;
    return false;
  }

  refuseIfNoneFound(data: LoadedConfig['data'], rows: number, rejectsFile: string): void {
    if (this.found === 0 && this.missing > 0) {
      throw new NoImagesFoundError(
        data.imageDir,
        data.fileName,
        path.join(data.imageDir, this.firstMissing!),
        rows,
        this.missing,
        rejectsFile,
      );
    }
  }
}

/**
 * The prepare progress line, redrawn and RSS sampled every 500 ms: rows against a quick count of
 * the CSV's lines, or against --limit when that ends the run sooner.
 */
function startProgress(
  config: LoadedConfig,
  output: Output,
  sampler: RssSampler,
  run: { probe: ReturnType<typeof newProbe>; builder: CacheBuilder; limit: number | null; resume: ResumePoint },
): { stopTicker: () => void; finish: () => void } {
  const { probe, builder } = run;
  output.setMemoryLimit(config.memory.limitMB);
  const csvRows = estimateCsvRows(config.data.csv);
  const committedRow = run.resume.committedRow;
  const progressTotal = () =>
    prepareProgressTotal(csvRows, run.limit, { pulled: probe.pulled, accepted: builder.imageCount, committedRow });
  let shownTotal = progressTotal();
  const progress = output.progress('prepare', shownTotal, 'rows');
  const followTotal = () => {
    const total = progressTotal();
    if (total !== null && total !== shownTotal) progress.setTotal((shownTotal = total));
  };
  const decodeStarted = performance.now();
  // the final line carries the rate too: a prepare shorter than one tick would otherwise show none
  const counts = () => {
    const seconds = (performance.now() - decodeStarted) / 1000;
    return {
      images: probe.decoded,
      'images/s': (probe.decoded / Math.max(seconds, 1e-3)).toFixed(1),
      shards: builder.shardCount,
    };
  };
  const ticker = setInterval(() => {
    sampler.sample();
    followTotal();
    progress.update(probe.pulled, counts());
  }, 500);
  ticker.unref();
  return {
    stopTicker: () => clearInterval(ticker),
    finish: () => {
      followTotal();
      progress.update(probe.pulled, counts());
      progress.stop();
    },
  };
}
