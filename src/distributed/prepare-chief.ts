import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue, QueueEvents, type Job } from 'bullmq';
import type { LoadedConfig } from '../config/load.ts';
import type { Output } from '../core/console.ts';
import { writeJsonAtomicSync } from '../core/atomic-file.ts';
import { UserError } from '../core/errors.ts';
import { estimateCsvRows } from '../ingest/count-rows.ts';
import { PartPixels } from '../prepare/part-pixels.ts';
import type { OpenPixelSource, PixelBuild, PixelSource } from '../prepare/pixel-source.ts';
import { rangeName, rowRanges, type RowRange } from '../prepare/row-range.ts';
import { runPrepare, type PrepareOptions, type PrepareSummary } from '../prepare/run-prepare.ts';
import { prepareQueueName } from './names.ts';
import {
  CHIEF_FILE,
  partFileName,
  partsDirFor,
  rangeJobId,
  type ChiefMark,
  type RangeJobData,
  type RangeJobResult,
} from './range-jobs.ts';
import { probeRedis, watchConnection, type ConnectionWatch, type QueueSettings } from './redis-connection.ts';

/**
 * `galactic prepare --queue`: the chief of a distributed cache build. It runs the single-process
 * prepare (same lock, cache-hit check, screening, CacheBuilder, shards, rejects.jsonl, manifest)
 * with one difference: candidates' pixels come from part files that workers decode row range by
 * row range into the shared cache folder (BullMQ queue `galactic-prepare-<cache key>`, one job per
 * range). The chief reads each range as soon as its part is in, in row order, so the cache is
 * byte-identical to a single-process prepare's; it deletes the parts and the queue's jobs when the
 * manifest is written.
 */

export interface QueuePrepareSettings {
  queue: QueueSettings;
  /** Rows per range job. */
  rangeRows: number;
  /** How often unfinished range jobs are looked at when no queue event arrives (ms). */
  pollMs?: number;
}

export class RangeFailedError extends UserError {
  constructor(range: string, reason: string, url: string) {
    super(
      `the workers failed to build row range ${range} three times: ${reason}. Fix that on the workers, then rerun 'galactic prepare --queue ${url}': ranges already built are kept.`,
    );
  }
}

export async function runQueuePrepare(
  config: LoadedConfig,
  options: PrepareOptions,
  settings: QueuePrepareSettings,
): Promise<PrepareSummary> {
  await probeRedis(settings.queue, "rerunning 'galactic prepare --queue' resumes the build");
  return runPrepare(config, { ...options, pixelSource: partsFromWorkers(config, options.output, settings) });
}

function partsFromWorkers(config: LoadedConfig, output: Output, settings: QueuePrepareSettings): OpenPixelSource {
  return (build) => openParts(config, output, settings, build);
}

async function openParts(
  config: LoadedConfig,
  output: Output,
  settings: QueuePrepareSettings,
  build: PixelBuild,
): Promise<PixelSource> {
  const { cacheKey } = build;
  const { rangeRows } = settings;
  const { partsDir, ranges, needed } = claimPartsDir(config, rangeRows, build);
  const rangeQueue = new RangeQueue(config, output, settings, cacheKey, partsDir);
  try {
    await rangeQueue.queueRanges(needed, build.force);
  } catch (error) {
    await rangeQueue.close();
    throw error;
  }
  output.info(
    `distributed prepare: ${needed.length} row range(s) of ${rangeRows} rows on queue ${rangeQueue.name} at ${settings.queue.url}; parts in ${partsDir}`,
  );
  const pixels = new PartPixels({ cacheKey, ranges, rangeRows, ready: (range) => rangeQueue.ready(range) });
  return {
    pixels: (candidate) => pixels.pixels(candidate),
    finish: async () => {
      rmSync(partsDir, { recursive: true, force: true });
      await rangeQueue.discardJobs();
    },
    close: async () => {
      await pixels.close().catch(() => undefined);
      await rangeQueue.close();
    },
  };
}

/**
 * Marks the parts folder as this chief's and lists the ranges of the CSV; `needed` are the ranges
 * not yet in the cache (a resumed build starts after its last shard).
 */
function claimPartsDir(config: LoadedConfig, rangeRows: number, build: PixelBuild) {
  const partsDir = partsDirFor(config.cache.dir, build.cacheKey);
  // --force (e.g. an image replaced in place, which the key does not see): no part of an earlier build
  if (build.force) rmSync(partsDir, { recursive: true, force: true });
  mkdirSync(partsDir, { recursive: true });
  const mark: ChiefMark = { cacheKey: build.cacheKey, host: os.hostname(), pid: process.pid, rangeRows };
  writeJsonAtomicSync(path.join(partsDir, CHIEF_FILE), mark);
  const ranges = rowRanges(estimateCsvRows(config.data.csv) ?? 0, rangeRows);
  const needed = ranges.filter((r) => r.end === null || r.end > build.fromRow);
  removeOtherParts(partsDir, new Set(ranges.map(partFileName)));
  return { partsDir, ranges, needed };
}

/** The build's BullMQ queue as the chief sees it: one job per range, keyed by range, and its events. */
class RangeQueue {
  readonly name: string;
  private readonly queue: Queue<RangeJobData, RangeJobResult>;
  private readonly events: QueueEvents;
  private readonly watch: ConnectionWatch;
  private wake: () => void = () => undefined;

  constructor(
    private readonly config: LoadedConfig,
    private readonly output: Output,
    private readonly settings: QueuePrepareSettings,
    private readonly cacheKey: string,
    private readonly partsDir: string,
  ) {
    this.name = prepareQueueName(cacheKey);
    const connection = settings.queue.connection;
    this.queue = new Queue<RangeJobData, RangeJobResult>(this.name, { connection });
    this.events = new QueueEvents(this.name, { connection });
    this.queue.on('error', () => undefined);
    this.events.on('error', () => undefined);
    this.watch = watchConnection(settings.queue, output, 'the workers keep decoding the ranges they hold');
    this.events.on('completed', () => this.wake());
    this.events.on('failed', () => this.wake());
  }

  /** Queues every needed range; a failed job of an earlier chief is tried again (its cause may have been fixed). */
  async queueRanges(needed: readonly RowRange[], force: boolean): Promise<void> {
    if (force) await this.queue.obliterate({ force: true });
    for (const range of needed) {
      if ((await this.queue.getJobState(rangeJobId(range))) === 'failed')
        await (await this.queue.getJob(rangeJobId(range)))?.remove();
      await this.enqueue(range);
    }
  }

  /** Waits until the range's part is in and returns its path; queues the range again if its part went missing. */
  async ready(range: RowRange): Promise<string> {
    const jobId = rangeJobId(range);
    let announced = false;
    for (;;) {
      const state = await this.queue.getJobState(jobId);
      if (state === 'completed') {
        const job = (await this.queue.getJob(jobId)) as Job<RangeJobData, RangeJobResult> | undefined;
        if (existsSync(this.partFile(range))) {
          const by = job?.returnvalue?.worker;
          this.output.info(`range ${rangeName(range)}: in${by ? ` (decoded by ${by})` : ''}`);
          return this.partFile(range);
        }
        // completed without its part here (deleted meanwhile, or written where this chief cannot see it)
        this.output.warn(
          `range ${rangeName(range)}: its job completed but ${this.partFile(range)} is missing; queueing it again`,
        );
        await job?.remove().catch(() => undefined);
        await this.enqueue(range);
      } else if (state === 'failed') {
        const job = await this.queue.getJob(jobId);
        throw new RangeFailedError(
          rangeName(range),
          job?.failedReason ?? 'no reason recorded',
          this.settings.queue.url,
        );
      } else if (state === 'unknown') {
        // Redis lost the job (restarted without its data): queue it again
        await this.enqueue(range);
      } else if (!announced && (await this.queue.getWorkersCount()) === 0) {
        announced = true;
        this.output.info(
          `waiting for workers: start 'galactic worker --queue ${this.settings.queue.url} --config <the same config>' on machines that share cache.dir (${this.config.cache.dir})`,
        );
      }
      await this.waitForEvent(this.settings.pollMs ?? 1000);
    }
  }

  /** Removes every job of the build (once its manifest is written). */
  async discardJobs(): Promise<void> {
    await this.queue.obliterate({ force: true }).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.watch.close();
    await this.events.close().catch(() => undefined);
    await this.queue.close().catch(() => undefined);
  }

  private partFile(range: RowRange): string {
    return path.join(this.partsDir, partFileName(range));
  }

  private async enqueue(range: RowRange): Promise<void> {
    const data: RangeJobData = {
      kind: 'range',
      cacheKey: this.cacheKey,
      first: range.first,
      end: range.end,
      chiefPartsDir: this.partsDir,
      chiefHost: os.hostname(),
    };
    // keyed by range: a restarted chief finds the jobs it queued before
    await this.queue.add('range', data, {
      jobId: rangeJobId(range),
      attempts: 3,
      backoff: { type: 'fixed', delay: 2000 },
      removeOnComplete: false,
      removeOnFail: false,
    });
  }

  /** Resolves on the queue's next completed/failed event, or after `ms` at the latest. */
  private waitForEvent(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** Part files of another range size (an earlier chief's) are of no use; temp files of live writers are left alone. */
function removeOtherParts(partsDir: string, wanted: Set<string>): void {
  for (const name of readdirSync(partsDir)) {
    if (name === CHIEF_FILE || wanted.has(name.replace(/\.\d+\.tmp$/, ''))) continue;
    rmSync(path.join(partsDir, name), { force: true, recursive: true });
  }
}
