import * as tf from '@tensorflow/tfjs';
import type { LoadedConfig } from '../config/load.ts';
import { loadManifest } from './cache-access.ts';
import { Feed, type FeedSettings } from './feed.ts';
import { splitCache } from './split.ts';

/**
 * The feed alone, as training sees it: whole training epochs through the tf.data dataset
 * (seeded shard order, bounded shuffle buffer, augmentation, normalization into float32
 * batches, tensors made and disposed), no model. Its rate must stay far above the training
 * rate so training never waits for data.
 */
export interface FeedMeasurement {
  images: number;
  batches: number;
  epochs: number;
  seconds: number;
  imagesPerSecond: number;
  /** Seconds spent splitting (reading ids and labels of every shard) before the first epoch. */
  splitSeconds: number;
  shuffleBufferRecords: number;
  shuffleBufferPeak: number;
  prefetchBatches: number;
  backend: string;
}

export async function measureFeed(
  config: LoadedConfig,
  cacheDir: string,
  options: { settings: FeedSettings; epochs?: number },
): Promise<FeedMeasurement> {
  const epochs = options.epochs ?? 1;
  const splitStarted = performance.now();
  const manifest = loadManifest(cacheDir);
  const split = await splitCache(cacheDir, manifest, config.split, config.seed);
  const splitSeconds = (performance.now() - splitStarted) / 1000;
  const feed = new Feed({ config, cacheDir, manifest, split, settings: options.settings });
  const dataset = feed.trainDataset();
  let images = 0;
  let batches = 0;
  const started = performance.now();
  for (let epoch = 0; epoch < epochs; epoch++) {
    feed.epoch = epoch;
    await dataset.forEachAsync((batch) => {
      const { xs, ys } = batch as unknown as { xs: tf.Tensor; ys: tf.Tensor };
      images += xs.shape[0];
      batches++;
      tf.dispose([xs, ys]);
    });
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    images,
    batches,
    epochs,
    seconds,
    imagesPerSecond: seconds > 0 ? images / seconds : 0,
    splitSeconds,
    shuffleBufferRecords: feed.shuffleBufferCapacity,
    shuffleBufferPeak: feed.shuffleBufferPeak,
    prefetchBatches: feed.settings.prefetchBatches,
    backend: tf.getBackend(),
  };
}
