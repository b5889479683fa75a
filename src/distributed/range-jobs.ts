import path from 'node:path';
import { rangeName, type RowRange } from '../prepare/row-range.ts';

/**
 * What a row-range job of a distributed prepare carries on the queue, what a worker answers, and
 * where the part files live: `<cache.dir>/.parts/<cache key>/` (a hidden folder beside the caches,
 * so a cache folder's own stray-file cleanup never touches it), with the chief's `chief.json`
 * marking it as the build in progress.
 */

export interface RangeJobData {
  kind: 'range';
  cacheKey: string;
  first: number;
  end: number | null;
  /** The chief's parts folder and host, for messages when a worker cannot see it. */
  chiefPartsDir: string;
  chiefHost: string;
}

export interface RangeJobResult {
  range: string;
  rows: number;
  records: number;
  rejected: number;
  worker: string;
  startedAt: number;
  finishedAt: number;
}

/** What a worker reports as job progress (shown by `galactic queue status`). */
export interface RangeJobProgress {
  worker: string;
  detail: string;
}

export const CHIEF_FILE = 'chief.json';

export interface ChiefMark {
  cacheKey: string;
  host: string;
  pid: number;
  rangeRows: number;
}

export function partsDirFor(cacheRoot: string, cacheKey: string): string {
  return path.join(cacheRoot, '.parts', cacheKey);
}

export function partFileName(range: Pick<RowRange, 'first' | 'end'>): string {
  return `${rangeName(range)}.part`;
}

export function rangeJobId(range: Pick<RowRange, 'first' | 'end'>): string {
  return `range-${rangeName(range)}`;
}
