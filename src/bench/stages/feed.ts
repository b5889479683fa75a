import type { FeedSettings } from '../../data/feed.ts';
import { readManifest } from '../../cache/manifest.ts';
import type { LoadedConfig } from '../../config/load.ts';
import { measureFeed } from '../../data/measure-feed.ts';
import type { StageResult } from '../results.ts';
import { measureRepeats, stageResult } from '../repeat.ts';

/**
 * The feed: full training epochs (seeded shard order, bounded shuffle buffer, augmentation,
 * normalization into float32 batches, tensors) without a model. Its ceiling is the bare shard
 * read of the same cache (stages/shard-read.ts). Only training records are fed (images = the
 * training split), at the rate of the feed's epochs.
 */
export async function benchFeed(
  config: LoadedConfig,
  cacheDir: string,
  options: { settings: FeedSettings; repeats: number; epochs: number; ceiling: StageResult | null; plannedMB: number },
): Promise<StageResult> {
  const shardBytes = readManifest(cacheDir).shards.reduce((s, e) => s + e.bytes, 0);
  const measured = await measureRepeats(options.repeats, async () => {
    const m = await measureFeed(config, cacheDir, { epochs: options.epochs, settings: options.settings });
    // the feed's own epoch time: the split (once per training) is in detail.splitSeconds, not in the rate;
    // an epoch reads every shard whole (validation records share them), hence all shard bytes
    return { images: m.images, seconds: m.seconds, bytes: shardBytes * options.epochs, detail: { ...m } };
  });
  return stageResult('feed', measured, {
    plannedMB: options.plannedMB,
    limitMB: config.memory.limitMB,
    ceiling: options.ceiling,
    mbOf: 'shards read',
  });
}
