import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Job } from 'bullmq';
import type { LoadedConfig } from '../config/load.ts';
import type { Output } from '../core/console.ts';
import { UserError } from '../core/errors.ts';
import type { MemoryPlan } from '../memory/plan.ts';
import { buildRange, type RangeInputs } from '../prepare/range-build.ts';
import { rangeName } from '../prepare/row-range.ts';
import {
  CHIEF_FILE,
  partFileName,
  partsDirFor,
  type ChiefMark,
  type RangeJobData,
  type RangeJobProgress,
  type RangeJobResult,
} from './range-jobs.ts';

/**
 * One row-range job of a distributed prepare on a worker: decode the range's rows into its part
 * file in the shared cache folder (src/prepare/range-build.ts), with this machine's memory plan.
 * A part file that already exists is complete (it is renamed into place), so a range handed out
 * twice is built once.
 */

export class CacheDirNotSharedError extends UserError {
  constructor(partsDir: string, job: RangeJobData, detail: string) {
    super(
      `this worker cannot see the cache folder the chief builds into: ${detail} in ${partsDir} (the chief on ${job.chiefHost} uses ${job.chiefPartsDir}). ` +
        `For 'galactic prepare --queue', cache.dir must be one folder every worker and the chief share (NFS, EFS, SMB), named by cache.dir in each machine's config; see docs/distributed.md.`,
    );
  }
}

export interface RangeWorkerContext {
  config: LoadedConfig;
  plan: MemoryPlan;
  worker: string;
  output: Output;
  /** The image listing, labels and gz2 mapping, loaded on the first range job. */
  inputs: () => Promise<RangeInputs>;
  signal: AbortSignal;
}

function chiefMark(partsDir: string): ChiefMark | null {
  const file = path.join(partsDir, CHIEF_FILE);
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ChiefMark;
  } catch {
    return null;
  }
}

export async function processRangeJob(job: Job<RangeJobData>, context: RangeWorkerContext): Promise<RangeJobResult> {
  const { config, output, worker } = context;
  const data = job.data;
  const partsDir = partsDirFor(config.cache.dir, data.cacheKey);
  const mark = chiefMark(partsDir);
  if (!mark) throw new CacheDirNotSharedError(partsDir, data, `${CHIEF_FILE} is missing`);
  if (mark.cacheKey !== data.cacheKey)
    throw new CacheDirNotSharedError(partsDir, data, `${CHIEF_FILE} names another cache`);
  const name = rangeName(data);
  const target = path.join(partsDir, partFileName(data));
  const startedAt = Date.now();
  const result = (summary: { rows: number; records: number; rejected: number }): RangeJobResult => ({
    range: name,
    ...summary,
    worker,
    startedAt,
    finishedAt: Date.now(),
  });
  if (existsSync(target)) {
    output.info(`range ${name}: already built`);
    return result({ rows: 0, records: 0, rejected: 0 });
  }
  const progress: RangeJobProgress = { worker, detail: `decoding ${name}` };
  job.updateProgress(progress as unknown as object).catch(() => undefined);
  output.info(`range ${name}: decoding on ${worker}`);
  const summary = await buildRange(
    config,
    context.plan,
    await context.inputs(),
    data,
    target,
    { cacheKey: data.cacheKey, first: data.first, end: data.end },
    context.signal,
  );
  output.info(
    `range ${name}: ${summary.records} images decoded, ${summary.rejected} rejected, of ${summary.rows} rows, on ${worker}`,
  );
  return result(summary);
}
