import { readManifest } from '../../cache/manifest.ts';
import { readShard } from '../../cache/reader.ts';
import type { StageResult } from '../results.ts';
import { measureRepeats, stageResult } from '../repeat.ts';

/**
 * The ceiling of the feed: read every shard of a cache with the same checks the feed makes
 * (file crc, msgpack decode, data crc), sequentially, and nothing else: no split, shuffle,
 * batching, normalization, augmentation or tensors.
 */
export async function benchShardRead(cacheDir: string, repeats: number, limitMB: number | null): Promise<StageResult> {
  const manifest = readManifest(cacheDir);
  const measured = await measureRepeats(repeats, async () => {
    let images = 0;
    let bytes = 0;
    for (const entry of manifest.shards) {
      const shard = await readShard(cacheDir, entry);
      images += shard.shape[0];
      bytes += entry.bytes;
    }
    return { images, bytes, detail: { shards: manifest.shards.length } };
  });
  return stageResult('shardRead', measured, { limitMB, mbOf: 'shards read' });
}
