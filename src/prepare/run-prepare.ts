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
import { cacheKey, cacheKeyInputs } from '../cache/key.ts';
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
import { newProbe, streamRecords, type Replayed } from './pipeline.ts';
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
  const limit = options.limit === undefined ? config.data.limit : options.limit;
  const data = config.data;

  // Everything that can stop a run, before any work.
  const plan = options.plan ?? planMemory(config, measureData(config));
  refusePhases(config, plan, ['prepare']);
  checkFileNamePattern(data.fileName);
  // listed synchronously: nothing else runs yet, and the async listing (one promise per entry)
  // takes 2-3x longer (20,000 names: 47-83 ms against 21-24 ms)
  const index = ImageIndex.buildSync(data.imageDir, data.fileName);
  const inputs = cacheKeyInputs(config, index, limit);
  const key = cacheKey(inputs);
  const cacheDir = path.join(config.cache.dir, key);
  const summary = (cacheHit: boolean, manifest: Manifest, decoded: number): PrepareSummary => {
    const seconds = (performance.now() - started) / 1000;
    sampler.sample();
    return {
      cacheKey: key,
      cacheDir,
      cacheHit,
      rows: manifest.totals.rows,
      images: manifest.totals.images,
      rejected: { ...manifest.rejects },
      shards: manifest.shards.length,
      seconds: Math.round(seconds * 1000) / 1000,
      imagesPerSecond: seconds > 0 ? Math.round((decoded / seconds) * 10) / 10 : 0,
      peakRssMB: sampler.peakMB,
      limitMB: config.memory.limitMB,
    };
  };

  // one prepare per cache folder: a second one waits for the first, then answers from its cache
  held.lock = await lockCacheDir(cacheDir, output);
  let existing: Manifest | null;
  try {
    existing = readManifestIfPresent(cacheDir);
  } catch (error) {
    // an edited or damaged manifest is refused (ManifestUnreadableError says to --force); --force rebuilds
    if (!(options.force && error instanceof ManifestUnreadableError)) throw error;
    existing = null;
  }
  if (existing?.complete && !options.force) {
    const problem = shardFilesProblem(cacheDir, existing);
    if (!problem) {
      output.info(`cache hit: ${cacheDir} (${existing.totals.images} images in ${existing.shards.length} shards)`);
      return summary(true, existing, 0);
    }
    output.warn(
      `the cache at ${cacheDir} does not match its manifest (${problem}): it was damaged or edited; rebuilding it`,
    );
  }

  const mapping = await loadMappingFor(config, plan);
  const csv: CsvSource = await openCsv(
    data.csv,
    [
      { column: data.idColumn, knob: 'data.idColumn' },
      { column: data.labelColumn, knob: 'data.labelColumn' },
    ],
    data.maxRowBytes,
  );

  try {
    ensureWritable(config.cache.dir, config.cache.dir);
    ensureWritable(cacheDir, config.cache.dir);
  } catch (error) {
    csv.close();
    throw error;
  }

  if (options.force || (existing && (existing.complete || !existing.resume))) {
    // --force, or a damaged complete cache: rebuild from nothing
    existing = null;
  }
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
  // a resumed cache keeps its shard size, which the plan's permits hold (refuseResume): never more permits than planned
  const shardImages = existing ? existing.shardImages : plan.shardImages;
  const committedRow = existing && resume ? resume.committedRow : 0;

  // sharp (libvips) loads only now: a cache hit never needs it
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
  output.info(
    existing
      ? `resuming ${cacheDir} after row ${committedRow} (${existing.shards.length} shards, ${existing.totals.images} images already written)`
      : `preparing ${cacheDir}`,
  );

  const labels = new LabelRules(data.classes);
  const permits = new PermitPool(plan.permits);
  const rejects = new RejectsLog(cacheDir, existing && resume ? resume.rejectsBytes : 0);
  const { width, height, channels, fit } = config.image;
  const now = new Date().toISOString();
  const builder = new CacheBuilder({
    cacheDir,
    base: {
      format: MANIFEST_FORMAT,
      version: CACHE_FORMAT_VERSION,
      cacheKey: key,
      inputs: inputs as unknown as Record<string, unknown>,
      classes: labels.names,
      image: { width, height, channels, fit },
      dtype: config.cache.dtype,
      shardImages,
      toolVersion: GALACTIC_VERSION,
      createdAt: existing?.createdAt ?? now,
    },
    writer: new ShardWriter(cacheDir, shardImages, { height, width, channels }, config.cache.dtype, options.writeFile),
    rejects,
    permits,
    channels,
    limit,
    resumeFrom: existing,
    writeManifestFile: options.writeFile,
    onCommit: options.onCommit,
  });

  // what the existence check saw, for the "none of the images is there" refusal
  const existence = { found: 0, missing: 0, firstMissing: null as string | null };
  const hasImage = (name: string): boolean => {
    if (index.has(name)) {
      existence.found++;
      return true;
    }
    existence.missing++;
    existence.firstMissing ??= name;
    return false;
  };
  const seen = new StringTable(plan.prepare.seenIds, () => tableFullError(plan, data.csv, 'ids', plan.prepare.seenIds));
  const screen = new RowScreen({ data, labels, hasImage, headerCount: csv.headerCount, mapping, seen });
  const probe = newProbe();
  output.setMemoryLimit(config.memory.limitMB);
  // a total (and so an ETA) from a quick count of the CSV's lines, or from --limit when that ends the run sooner
  const csvRows = estimateCsvRows(data.csv);
  const progressTotal = () =>
    prepareProgressTotal(csvRows, limit, { pulled: probe.pulled, accepted: builder.imageCount, committedRow });
  let shownTotal = progressTotal();
  const progress = output.progress('prepare', shownTotal, 'rows');
  const followTotal = () => {
    const total = progressTotal();
    if (total !== null && total !== shownTotal) progress.setTotal((shownTotal = total));
  };
  const decodeStarted = performance.now();
  const ticker = setInterval(() => {
    sampler.sample();
    const seconds = (performance.now() - decodeStarted) / 1000;
    followTotal();
    progress.update(probe.pulled, {
      images: probe.decoded,
      'images/s': (probe.decoded / Math.max(seconds, 1e-3)).toFixed(1),
      shards: builder.shardCount,
    });
  }, 500);
  ticker.unref();
  const finalFields = () => ({ images: probe.decoded, shards: builder.shardCount });
  let manifest: Manifest;
  let pixelSource: PixelSource | null = null;
  try {
    const build = { cacheKey: key, cacheDir, fromRow: committedRow + 1, force: Boolean(options.force) };
    pixelSource = options.pixelSource ? await options.pixelSource(build) : null;
    const fromParts = pixelSource;
    await streamRecords({
      source: csv,
      permits,
      orderSlots: new PermitPool(plan.orderSlots),
      screen: (row) => {
        const screened = screen.screen(row);
        return row.row <= committedRow
          ? ({ kind: 'replayed', seq: row.row, row: row.row } satisfies Replayed)
          : screened;
      },
      decode: fromParts
        ? (candidate) => fromParts.pixels(candidate)
        : options.decode
          ? (candidate) => options.decode!(candidate.file, config.image)
          : (candidate) => decodeImage(candidate.file, config.image, { within: index.realDir }),
      decodeConcurrency: plan.decodeConcurrency,
      sink: builder,
      probe,
      limit: { records: limit, alreadyAccepted: existing?.totals.images ?? 0 },
    });
    // a wrong data.imageDir or data.fileName must not look like success (nor be cached as complete)
    if (existence.found === 0 && existence.missing > 0) {
      throw new NoImagesFoundError(
        data.imageDir,
        data.fileName,
        path.join(data.imageDir, existence.firstMissing!),
        probe.pulled,
        existence.missing,
        rejects.file,
      );
    }
    manifest = await builder.finish();
    await pixelSource?.finish();
  } finally {
    await pixelSource?.close();
    clearInterval(ticker);
    rejects.close();
    csv.close();
    await removed;
  }
  followTotal();
  progress.update(probe.pulled, finalFields());
  progress.stop();
  const result = summary(false, manifest, builder.decodedThisRun);
  output.info(
    `prepared ${result.images} images from ${result.rows} rows into ${result.shards} shards (${
      Object.entries(result.rejected)
        .map(([r, n]) => `${n} ${r}`)
        .join(', ') || 'no rejects'
    }) in ${formatSeconds(result.seconds)}, peak RSS ${result.peakRssMB} MB of ${result.limitMB} MB`,
  );
  return result;
}
