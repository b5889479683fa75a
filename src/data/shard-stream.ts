import type { Manifest, Shard } from '../cache/format.ts';
import { loadShard } from './cache-access.ts';

/**
 * Yields shards in the given order with one read ahead: while the caller works through shard k,
 * shard k+1 is being read from disk. At most two shards are alive at once (the planner's
 * "shard buffer" component covers two shards).
 */
export async function* streamShards(
  cacheDir: string,
  manifest: Manifest,
  order: readonly number[],
): AsyncGenerator<{ index: number; shard: Shard }> {
  const read = (k: number) => {
    const pending = loadShard(cacheDir, manifest.shards[order[k]]);
    // the error surfaces when awaited; this only stops an abandoned read-ahead from being "unhandled"
    pending.catch(() => undefined);
    return pending;
  };
  let next = order.length > 0 ? read(0) : null;
  for (let k = 0; k < order.length; k++) {
    const shard = await next!;
    next = k + 1 < order.length ? read(k + 1) : null;
    yield { index: order[k], shard };
  }
}
