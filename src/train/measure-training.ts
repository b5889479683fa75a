import * as tf from '@tensorflow/tfjs';
import type { LoadedConfig } from '../config/load.ts';
import { loadManifest } from '../data/cache-access.ts';
import { batchTensors, Feed, type FeedSettings } from '../data/feed.ts';
import { splitCache } from '../data/split.ts';
import { buildModel, type HyperparameterValues } from '../model/architecture.ts';
import { activeBackendName, withKernelCheck } from '../model/backend.ts';
import { disposeModel } from './trainer.ts';

/**
 * The training step alone on the active backend: `trainOnBatch` over the first batches of a
 * training epoch, the first batch excluded as warm-up (kernel setup, optimizer slots). With
 * `measureFeed` it shows whether training ever waits for the feed.
 */
export interface TrainingMeasurement {
  images: number;
  batches: number;
  seconds: number;
  imagesPerSecond: number;
  backend: string;
}

export async function measureTraining(
  config: LoadedConfig,
  cacheDir: string,
  options: { settings: FeedSettings; batches?: number; values?: HyperparameterValues },
): Promise<TrainingMeasurement> {
  const wanted = options.batches ?? 10;
  const manifest = loadManifest(cacheDir);
  const split = await splitCache(cacheDir, manifest, config.split, config.seed);
  const feed = new Feed({ config, cacheDir, manifest, split, settings: options.settings });
  const { width, height, channels } = manifest.image;
  const model = buildModel(options.values ?? {}, {
    inputShape: [height, width, channels],
    numClasses: manifest.classes.length,
    seed: config.seed,
    defaults: config.model,
  });
  let images = 0;
  let batches = 0;
  let seconds = 0;
  try {
    let index = 0;
    for await (const batch of feed.trainBatches(0)) {
      if (batches >= wanted) break;
      const { xs, ys } = batchTensors(batch, feed.shape);
      const started = performance.now();
      await withKernelCheck(() => model.trainOnBatch(xs, ys));
      const elapsed = (performance.now() - started) / 1000;
      tf.dispose([xs, ys]);
      if (index++ === 0) continue; // warm-up
      seconds += elapsed;
      images += batch.size;
      batches++;
    }
  } finally {
    disposeModel(model);
  }
  return {
    images,
    batches,
    seconds,
    imagesPerSecond: seconds > 0 ? images / seconds : 0,
    backend: activeBackendName(),
  };
}
