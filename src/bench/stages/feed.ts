import { readManifest } from '../../cache/manifest.ts';
import type { LoadedConfig } from '../../config/load.ts';
import type { StageResult } from '../results.ts';
import { measureRepeats, stageResult } from '../repeat.ts';

/**
 * The feed: full training epochs (seeded shard order, bounded shuffle buffer, augmentation,
 * normalization into float32 batches, tensors) without a model. Its ceiling is the bare shard
 * read of the same cache (stages/shard-read.ts).
 */
export async function benchFeed(
  config: LoadedConfig,
  cacheDir: string,
  options: { repeats: number; epochs: number; ceiling: StageResult | null; plannedMB: number },
): Promise<StageResult> {
  const shardBytes = readManifest(cacheDir).shards.reduce((s, e) => s + e.bytes, 0);
  // TEMPORARY until the feed's measureFeed is committed: resolved at run time
  const specifier: string = '../../data/measure-feed.ts';
  const { measureFeed } = (await import(specifier)) as { measureFeed: (c: LoadedConfig, d: string, o: { epochs: number }) => Promise<{ images: number } & Record<string, unknown>> };
  const measured = await measureRepeats(options.repeats, async () => {
    const m = await measureFeed(config, cacheDir, { epochs: options.epochs });
    return { images: m.images, bytes: shardBytes * options.epochs, detail: { epochs: options.epochs, ...m } };
  });
  return stageResult('feed', measured, { plannedMB: options.plannedMB, limitMB: config.memory.limitMB, ceiling: options.ceiling, mbOf: 'shards read' });
}
