import * as tf from '@tensorflow/tfjs';
import type { LoadedConfig } from '../config/load.ts';
import type { Manifest } from '../cache/format.ts';
import { Rng } from '../core/rng.ts';
import type { MemoryPlan } from '../memory/plan.ts';
import { ImageWriter } from './image-writer.ts';
import { normalizationFor, type Normalization } from './normalization.ts';
import { IDENTITY, randomOrientation } from './orientation.ts';
import { streamShards } from './shard-stream.ts';
import { ShuffleBuffer } from './shuffle-buffer.ts';
import type { SplitPlan } from './split.ts';

/**
 * The training feed: shards → (train: seeded shard order → bounded shuffle buffer → random
 * flips/quarter turns) → normalized float32 batches → tf.data datasets of `{xs, ys}`.
 *
 * Host batches are built into one reused Float32Array, owned by the feed; `batchTensors` copies
 * it into an array the new tensor owns (docs/interfaces.md §4a). No per-image tensors exist.
 */

/** A batch on the host. Its arrays are reused: valid until the generator is resumed. */
export interface HostBatch {
  size: number;
  /** size * h * w * c normalized values (a view of the reused buffer). */
  xs: Float32Array;
  labels: Int32Array;
  ids: string[];
}

export interface TensorBatch extends tf.TensorContainerObject {
  xs: tf.Tensor4D;
  ys: tf.Tensor1D;
}

export interface FeedSettings {
  batchSize: number;
  shuffleBufferRecords: number;
  prefetchBatches: number;
}

/** The feed's buffer sizes, as the memory plan set them (explicit `feed` values or its auto sizes). */
export function feedSettings(plan: MemoryPlan): FeedSettings {
  return {
    batchSize: plan.batchSize,
    shuffleBufferRecords: plan.shuffleBufferRecords,
    prefetchBatches: plan.prefetchBatches,
  };
}

export interface FeedOptions {
  config: LoadedConfig;
  cacheDir: string;
  manifest: Manifest;
  split: SplitPlan;
  /** From the command's memory plan (`feedSettings(plan)`). */
  settings: FeedSettings;
}

export class Feed {
  readonly writer: ImageWriter;
  readonly normalization: Normalization;
  readonly settings: FeedSettings;
  readonly shape: [number, number, number];
  /** The epoch the next training pass belongs to (seeds shard order, shuffle and augmentation). */
  epoch = 0;
  private buffer: ShuffleBuffer | null = null;
  private readonly config: LoadedConfig;
  private readonly cacheDir: string;
  private readonly manifest: Manifest;
  readonly split: SplitPlan;

  constructor(options: FeedOptions) {
    this.config = options.config;
    this.cacheDir = options.cacheDir;
    this.manifest = options.manifest;
    this.split = options.split;
    this.settings = options.settings;
    const { width, height, channels } = options.manifest.image;
    this.shape = [height, width, channels];
    this.normalization = normalizationFor(options.config.feed.normalize, options.manifest.channelStats);
    this.writer = new ImageWriter({ height, width, channels }, options.manifest.dtype, this.normalization);
  }

  get trainBatchCount(): number {
    return Math.ceil(this.split.trainCount / this.settings.batchSize);
  }

  get validationBatchCount(): number {
    return Math.ceil(this.split.validationCount / this.settings.batchSize);
  }

  /** Most records the shuffle buffer has held (never above its capacity). */
  get shuffleBufferPeak(): number {
    return this.buffer?.peak ?? 0;
  }

  get shuffleBufferCapacity(): number {
    return Math.max(1, Math.min(this.settings.shuffleBufferRecords, this.split.trainCount));
  }

  private newBatch(): HostBatch {
    const { batchSize } = this.settings;
    return {
      size: 0,
      xs: new Float32Array(batchSize * this.writer.imageSize),
      labels: new Int32Array(batchSize),
      ids: new Array<string>(batchSize),
    };
  }

  /** One training epoch: shuffled, augmented. Same seed and epoch → same batches. */
  async *trainBatches(epoch: number): AsyncGenerator<HostBatch> {
    const { seed } = this.config;
    const augment = this.config.feed.augment;
    const square = this.shape[0] === this.shape[1];
    const order = this.split.train.map((records, s) => (records.length > 0 ? s : -1)).filter((s) => s >= 0);
    new Rng(seed, `feed-shard-order:${epoch}`).shuffle(order);
    const pick = new Rng(seed, `feed-shuffle:${epoch}`);
    const orient = new Rng(seed, `feed-augment:${epoch}`);
    const capacity = this.shuffleBufferCapacity;
    if (!this.buffer || this.buffer.capacity !== capacity)
      this.buffer = new ShuffleBuffer(capacity, this.writer.recordBytes);
    const buffer = this.buffer;
    buffer.clear();
    const batch = this.newBatch();
    const { batchSize } = this.settings;
    const { imageSize, recordBytes } = this.writer;
    const emitOne = () => {
      const slot = buffer.takeRandom(pick);
      const n = batch.size++;
      this.writer.write(batch.xs, n * imageSize, buffer.bytes(slot), 0, randomOrientation(orient, augment, square));
      batch.labels[n] = buffer.label(slot);
      batch.ids[n] = buffer.id(slot);
    };
    for await (const { index, shard } of streamShards(this.cacheDir, this.manifest, order)) {
      for (const r of this.split.train[index]) {
        if (buffer.full) {
          emitOne();
          if (batch.size === batchSize) {
            yield this.view(batch);
            batch.size = 0;
          }
        }
        buffer.push(shard.data, r * recordBytes, shard.labels[r], shard.ids[r]);
      }
    }
    while (buffer.size > 0) {
      emitOne();
      if (batch.size === batchSize) {
        yield this.view(batch);
        batch.size = 0;
      }
    }
    if (batch.size > 0) yield this.view(batch);
  }

  /** The validation records in cache order, neither shuffled nor augmented. */
  async *validationBatches(): AsyncGenerator<HostBatch> {
    const order = this.split.validation.map((records, s) => (records.length > 0 ? s : -1)).filter((s) => s >= 0);
    const batch = this.newBatch();
    const { batchSize } = this.settings;
    const { imageSize, recordBytes } = this.writer;
    for await (const { index, shard } of streamShards(this.cacheDir, this.manifest, order)) {
      for (const r of this.split.validation[index]) {
        const n = batch.size++;
        this.writer.write(batch.xs, n * imageSize, shard.data, r * recordBytes, IDENTITY);
        batch.labels[n] = shard.labels[r];
        batch.ids[n] = shard.ids[r];
        if (batch.size === batchSize) {
          yield this.view(batch);
          batch.size = 0;
        }
      }
    }
    if (batch.size > 0) yield this.view(batch);
  }

  private view(batch: HostBatch): HostBatch {
    if (batch.size === this.settings.batchSize) return batch;
    return {
      size: batch.size,
      xs: batch.xs.subarray(0, batch.size * this.writer.imageSize),
      labels: batch.labels.subarray(0, batch.size),
      ids: batch.ids.slice(0, batch.size),
    };
  }

  /**
   * Training dataset; each pass uses `feed.epoch` (the trainer sets it in onEpochBegin, before the
   * pass's first batch is pulled). tf.data.generator accepts async iterators at run time although
   * its type names only Iterator, hence the casts.
   */
  trainDataset(): tf.data.Dataset<TensorBatch> {
    const dataset = tf.data.generator(
      () => toTensors(this.trainBatches(this.epoch), this.shape) as unknown as Iterator<TensorBatch>,
    );
    return this.settings.prefetchBatches > 0 ? dataset.prefetch(this.settings.prefetchBatches) : dataset;
  }

  validationDataset(): tf.data.Dataset<TensorBatch> {
    const dataset = tf.data.generator(
      () => toTensors(this.validationBatches(), this.shape) as unknown as Iterator<TensorBatch>,
    );
    return this.settings.prefetchBatches > 0 ? dataset.prefetch(this.settings.prefetchBatches) : dataset;
  }
}

/** Turns host batches into fresh tensors, one pair per batch (a tf.data generator must never yield a tensor twice). */
export async function* toTensors(
  batches: AsyncIterable<HostBatch>,
  shape: [number, number, number],
): AsyncGenerator<TensorBatch> {
  for await (const batch of batches) yield batchTensors(batch, shape);
}

/**
 * A tensor pair that owns its memory. tfjs may keep the array handed to `tf.tensor` (the cpu
 * backend stores it; tfjs-node reads it only when the tensor is first used, possibly after the
 * feed has refilled its buffer), so the reused host buffer is copied on every backend.
 */
export function batchTensors(batch: HostBatch, shape: [number, number, number]): TensorBatch {
  const xs = tf.tensor4d(batch.xs.slice(), [batch.size, ...shape]);
  const ys = tf.tensor1d(Float32Array.from(batch.labels));
  return { xs, ys };
}
