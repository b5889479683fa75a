import { createHash } from 'node:crypto';
import os from 'node:os';
import { canonicalJson } from '../core/canonical-json.ts';
import type { SearchDescription } from '../tune/trial-store.ts';

/**
 * Queue names. A search's trials go to a queue named after the search itself (its description's
 * digest), so a worker started with the same config serves exactly that search, and two searches
 * on one Redis never share jobs. A cache build's row ranges go to a queue named after the cache key.
 */

export const QUEUE_PREFIX = 'galactic';

export function searchKey(search: SearchDescription): string {
  return createHash('sha256').update(canonicalJson(search)).digest('hex').slice(0, 16);
}

export function trialQueueName(key: string): string {
  return `${QUEUE_PREFIX}-tune-${key}`;
}

export function prepareQueueName(cacheKey: string): string {
  return `${QUEUE_PREFIX}-prepare-${cacheKey}`;
}

export function trialJobId(trialId: string): string {
  return `trial-${trialId}`;
}

/** How a worker names itself in the queue, in trial.json and in `galactic queue status`. */
export function workerName(): string {
  return `${os.hostname()}:${process.pid}`;
}
