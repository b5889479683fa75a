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
import { probeRedis, watchConnection, type QueueSettings } from './redis-connection.ts';

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
  const partsDir = partsDirFor(config.cache.dir, cacheKey);
  // --force (e.g. an image replaced in place, which the key does not see): no part of an earlier build
  if (build.force) rmSync(partsDir, { recursive: true, force: true });
  mkdirSync(partsDir, { recursive: true });
  const mark: ChiefMark = { cacheKey, host: os.hostname(), pid: process.pid, rangeRows };
  writeJsonAtomicSync(path.join(partsDir, CHIEF_FILE), mark);
  const ranges = rowRanges(estimateCsvRows(config.data.csv) ?? 0, rangeRows);
  const needed = ranges.filter((r) => r.end === null || r.end > build.fromRow);
  removeOtherParts(partsDir, new Set(ranges.map(partFileName)));

  const name = prepareQueueName(cacheKey);
  const connection = settings.queue.connection;
  const queue = new Queue<RangeJobData, RangeJobResult>(name, { connection });
  const events = new QueueEvents(name, { connection });
  queue.on('error', () => undefined);
  events.on('error', () => undefined);
  const watch = watchConnection(settings.queue, output, 'the workers keep decoding the ranges they hold');
  let wake: () => void = () => undefined;
  events.on('completed', () => wake());
  events.on('failed', () => wake());
  const waitForEvent = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const partFile = (range: RowRange) => path.join(partsDir, partFileName(range));
  const enqueue = async (range: RowRange) => {
    const data: RangeJobData = {
      kind: 'range',
      cacheKey,
      first: range.first,
      end: range.end,
      chiefPartsDir: partsDir,
      chiefHost: os.hostname(),
    };
    // keyed by range: a restarted chief finds the jobs it queued before
    await queue.add('range', data, {
      jobId: rangeJobId(range),
      attempts: 3,
      backoff: { type: 'fixed', delay: 2000 },
      removeOnComplete: false,
      removeOnFail: false,
    });
  };

  const ready = async (range: RowRange): Promise<string> => {
    const jobId = rangeJobId(range);
    let announced = false;
    for (;;) {
      const state = await queue.getJobState(jobId);
      if (state === 'completed') {
        const job = (await queue.getJob(jobId)) as Job<RangeJobData, RangeJobResult> | undefined;
        if (existsSync(partFile(range))) {
          const by = job?.returnvalue?.worker;
          output.info(`range ${rangeName(range)}: in${by ? ` (decoded by ${by})` : ''}`);
          return partFile(range);
        }
        // completed without its part here (deleted meanwhile, or written where this chief cannot see it)
        output.warn(
          `range ${rangeName(range)}: its job completed but ${partFile(range)} is missing; queueing it again`,
        );
        await job?.remove().catch(() => undefined);
        await enqueue(range);
      } else if (state === 'failed') {
        const job = await queue.getJob(jobId);
        throw new RangeFailedError(rangeName(range), job?.failedReason ?? 'no reason recorded', settings.queue.url);
      } else if (state === 'unknown') {
        // Redis lost the job (restarted without its data): queue it again
        await enqueue(range);
      } else if (!announced && (await queue.getWorkersCount()) === 0) {
        announced = true;
        output.info(
          `waiting for workers: start 'galactic worker --queue ${settings.queue.url} --config <the same config>' on machines that share cache.dir (${config.cache.dir})`,
        );
      }
      await waitForEvent(settings.pollMs ?? 1000);
    }
  };

  try {
    if (build.force) await queue.obliterate({ force: true });
    for (const range of needed) {
      // a failed job of an earlier chief is tried again: its cause may have been fixed
      if ((await queue.getJobState(rangeJobId(range))) === 'failed')
        await (await queue.getJob(rangeJobId(range)))?.remove();
      await enqueue(range);
    }
  } catch (error) {
    watch.close();
    await events.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
    throw error;
  }
  output.info(
    `distributed prepare: ${needed.length} row range(s) of ${rangeRows} rows on queue ${name} at ${settings.queue.url}; parts in ${partsDir}`,
  );
  const pixels = new PartPixels({ cacheKey, ranges, rangeRows, ready });
  return {
    pixels: (candidate) => pixels.pixels(candidate),
    finish: async () => {
      rmSync(partsDir, { recursive: true, force: true });
      await queue.obliterate({ force: true }).catch(() => undefined);
    },
    close: async () => {
      await pixels.close().catch(() => undefined);
      watch.close();
      await events.close().catch(() => undefined);
      await queue.close().catch(() => undefined);
    },
  };
}

/** Part files of another range size (an earlier chief's) are of no use; temp files of live writers are left alone. */
function removeOtherParts(partsDir: string, wanted: Set<string>): void {
  for (const name of readdirSync(partsDir)) {
    if (name === CHIEF_FILE || wanted.has(name.replace(/\.\d+\.tmp$/, ''))) continue;
    rmSync(path.join(partsDir, name), { force: true, recursive: true });
  }
}
