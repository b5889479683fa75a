import * as tf from '@tensorflow/tfjs';
import type { LoadedConfig } from '../config/load.ts';
import type { Manifest } from '../cache/format.ts';
import type { Output } from '../core/console.ts';
import { buildModel, type HyperparameterValues } from '../model/architecture.ts';
import { withKernelCheck } from '../model/backend.ts';
import { loadCheckpoint, saveCheckpoint } from '../model/checkpoint.ts';
import { loadManifest } from '../data/cache-access.ts';
import { RssSampler } from '../memory/rss-sampler.ts';
import { Feed, type FeedSettings } from '../data/feed.ts';
import { splitCache, SplitTooSmallError, type SplitPlan } from '../data/split.ts';
import { balancedClassWeights } from './class-weights.ts';
import { EarlyStopping, type Monitor } from './early-stopping.ts';

/**
 * The trainer (contract §6): the notebook's CNN from hyperparameter values, trained with
 * `fitDataset` on the streaming feed, validated every epoch, early stopping on the monitored
 * metric with the best weights restored by hand.
 *
 * Epoch numbers are counts of completed epochs: `EpochRecord.epoch` = 1 for the first epoch, and
 * a checkpoint saved at `epoch` k resumes with `initialEpoch: k`. `bestEpoch` uses the same count.
 */

export { saveCheckpoint };

export interface EpochRecord {
  epoch: number;
  loss: number;
  accuracy: number;
  val_loss: number;
  val_accuracy: number;
  seconds: number;
  imagesPerSecond: number;
  peakRssMB: number;
}

export interface TrainerOptions {
  config: LoadedConfig;
  cacheDir: string;
  values: HyperparameterValues;
  epochs: number;
  initialEpoch?: number;
  checkpoint?: string | null;
  monitor?: Monitor;
  patience?: number | null;
  restoreBestWeights?: boolean;
  /** Answering 'stop' ends training after this epoch (stopReason 'early-stopping'); anything else continues. */
  onEpochEnd?: (info: {
    epoch: number;
    record: EpochRecord;
    saveCheckpoint: (dir: string) => Promise<void>;
  }) => Promise<void | 'stop' | 'continue'> | void | 'stop' | 'continue';
  onBatchEnd?: (info: { epoch: number; batch: number; batches: number; loss: number; accuracy: number }) => void;
  output?: Output;
  /** Feed buffer sizes, from the command's memory plan (`feedSettings(plan)`). */
  feedSettings: FeedSettings;
}

/**
 * Frees a trained model and its optimizer: buildModel passes Adam in as an object, so
 * `model.dispose()` alone leaves Adam's moment variables behind.
 */
export function disposeModel(model: tf.LayersModel): void {
  model.optimizer?.dispose();
  model.dispose();
}

export interface TrainerResult {
  /** The caller frees it with `disposeModel`. */
  model: tf.LayersModel;
  history: EpochRecord[];
  bestEpoch: number;
  stopReason: 'completed' | 'early-stopping' | 'nan-loss';
  /** The feed's split and the manifest it trained on (for metrics and the run folder). */
  split: SplitPlan;
  manifest: Manifest;
  feed: Feed;
  /** Whether the best epoch's weights were put back at the end. */
  restoredBestWeights: boolean;
}

/** tfjs names the 'accuracy' metric 'acc' in its logs. */
function logValue(logs: tf.Logs | undefined, name: Monitor): number {
  if (!logs) return Number.NaN;
  const short = name.replace('accuracy', 'acc');
  const value = logs[name] ?? logs[short];
  return typeof value === 'number' ? value : Number.NaN;
}

export async function trainClassifier(options: TrainerOptions): Promise<TrainerResult> {
  const { config, cacheDir, output } = options;
  const stopping = stoppingRules(options);
  const initialEpoch = options.initialEpoch ?? 0;
  const { manifest, split, feed } = await openFeed(config, cacheDir, options.feedSettings);
  const { width, height, channels } = manifest.image;
  const model = buildModel(options.values, {
    inputShape: [height, width, channels],
    numClasses: manifest.classes.length,
    seed: config.seed,
    defaults: config.model,
  });
  try {
    if (options.checkpoint) await loadCheckpoint(options.checkpoint, model);
    const stopper = new EarlyStopping(stopping);
    const watch = new EpochWatch(model, feed, stopper, stopping.monitor, options, initialEpoch);
    if (initialEpoch < options.epochs) {
      describeTraining(options, { split, manifest, feed, initialEpoch });
      const classWeight =
        config.train.classWeights === 'balanced' ? balancedClassWeights(split.trainClassCounts) : undefined;
      await withKernelCheck(() =>
        model.fitDataset(feed.trainDataset(), {
          epochs: options.epochs,
          initialEpoch,
          validationData: feed.validationDataset(),
          callbacks: [watch.callback()],
          classWeight,
          verbose: 0,
        }),
      );
    }
    watch.stopSampling();
    const { history } = watch;
    const lastEpoch = history.length > 0 ? history[history.length - 1].epoch : initialEpoch;
    const restored = stopping.restoreBestWeights ? stopper.restore(model, lastEpoch) : (stopper.dispose(), false);
    if (restored)
      output?.info(
        `restored the weights of epoch ${stopper.bestEpoch} (best ${stopping.monitor} ${stopper.best.toFixed(4)})`,
      );
    return {
      model,
      history,
      bestEpoch: stopper.bestEpoch >= 0 ? stopper.bestEpoch : lastEpoch,
      stopReason: watch.stopReason,
      split,
      manifest,
      feed,
      restoredBestWeights: restored,
    };
  } catch (error) {
    disposeModel(model);
    throw error;
  }
}

/** The options' early-stopping rules, else the config's: the monitored metric, patience, best weights restored. */
function stoppingRules(options: TrainerOptions): {
  monitor: Monitor;
  patience: number | null;
  restoreBestWeights: boolean;
} {
  const early = options.config.train.earlyStopping;
  return {
    monitor: options.monitor ?? early?.monitor ?? 'val_loss',
    patience: options.patience !== undefined ? options.patience : (early?.patience ?? null),
    restoreBestWeights: options.restoreBestWeights ?? early?.restoreBestWeights ?? false,
  };
}

/** The cache's split into training and validation (both must hold images) and the feed over it. */
async function openFeed(
  config: LoadedConfig,
  cacheDir: string,
  settings: FeedSettings,
): Promise<{ manifest: Manifest; split: SplitPlan; feed: Feed }> {
  const manifest = loadManifest(cacheDir);
  const split = await splitCache(cacheDir, manifest, config.split, config.seed);
  if (split.trainCount === 0 || split.validationCount === 0) {
    throw new SplitTooSmallError(cacheDir, split.trainCount, split.validationCount);
  }
  return { manifest, split, feed: new Feed({ config, cacheDir, manifest, split, settings }) };
}

function describeTraining(
  options: TrainerOptions,
  run: { split: SplitPlan; manifest: Manifest; feed: Feed; initialEpoch: number },
): void {
  const { config, output } = options;
  const { split, manifest, feed } = run;
  output?.info(
    `training on ${split.trainCount} images, validating on ${split.validationCount} (${manifest.classes.join(', ')}), epochs ${run.initialEpoch + 1}..${options.epochs}, ${feed.trainBatchCount} batches of ${feed.settings.batchSize}`,
  );
  const bufferMB = (feed.shuffleBufferCapacity * feed.writer.recordBytes) / (1024 * 1024);
  output?.info(
    `feed: shuffle buffer ${feed.shuffleBufferCapacity} records (${bufferMB.toFixed(1)} MB), prefetch ${feed.settings.prefetchBatches} batches, ${config.feed.normalize} normalization, augment flip ${config.feed.augment.flip} rotate90 ${config.feed.augment.rotate90}`,
  );
}

/**
 * What fitDataset's callbacks see: each epoch's record (time, images per second, its own RSS
 * peak), the stop on a NaN loss, on early stopping or when the caller answers 'stop'.
 */
class EpochWatch {
  readonly history: EpochRecord[] = [];
  stopReason: TrainerResult['stopReason'] = 'completed';
  private rss = new RssSampler(100);
  private epochStarted = 0;
  private trainEnded = 0;
  private imagesThisEpoch = 0;
  private current: number;
  private readonly batches: number;

  constructor(
    private readonly model: tf.LayersModel,
    private readonly feed: Feed,
    private readonly stopper: EarlyStopping,
    private readonly monitor: Monitor,
    private readonly options: TrainerOptions,
    initialEpoch: number,
  ) {
    this.current = initialEpoch;
    this.batches = feed.trainBatchCount;
  }

  callback(): tf.CustomCallback {
    return new tf.CustomCallback({
      onEpochBegin: async (epoch) => this.epochBegins(epoch),
      onBatchEnd: async (batch, logs) => this.batchEnded(batch, logs),
      onEpochEnd: async (epoch, logs) => this.epochEnded(epoch, logs),
    });
  }

  stopSampling(): void {
    this.rss.stop();
  }

  private epochBegins(epoch: number): void {
    this.current = epoch;
    this.feed.epoch = epoch;
    this.epochStarted = performance.now();
    this.imagesThisEpoch = 0;
    // a fresh sampler per epoch gives the epoch's own peak; its timer fires between batches
    this.rss.stop();
    this.rss = new RssSampler(100).start();
  }

  private batchEnded(batch: number, logs: tf.Logs | undefined): void {
    this.trainEnded = performance.now();
    this.imagesThisEpoch += typeof logs?.size === 'number' ? logs.size : 0;
    this.rss.sample();
    const loss = logValue(logs, 'loss');
    if (Number.isNaN(loss)) this.stop('nan-loss');
    this.options.onBatchEnd?.({
      epoch: this.current + 1,
      batch: batch + 1,
      batches: this.batches,
      loss,
      accuracy: logValue(logs, 'accuracy'),
    });
  }

  private async epochEnded(epoch: number, logs: tf.Logs | undefined): Promise<void> {
    this.rss.stop();
    const trainSeconds = (this.trainEnded - this.epochStarted) / 1000;
    const record: EpochRecord = {
      epoch: epoch + 1,
      loss: logValue(logs, 'loss'),
      accuracy: logValue(logs, 'accuracy'),
      val_loss: logValue(logs, 'val_loss'),
      val_accuracy: logValue(logs, 'val_accuracy'),
      seconds: (performance.now() - this.epochStarted) / 1000,
      imagesPerSecond: trainSeconds > 0 ? this.imagesThisEpoch / trainSeconds : 0,
      peakRssMB: this.rss.peakMB,
    };
    this.history.push(record);
    if (Number.isNaN(record.loss)) this.stop('nan-loss');
    // best-weights copy first, so the tensor count the caller sees is the same every epoch
    const monitored = logValue(logs, this.monitor);
    if (this.stopper.update(epoch + 1, monitored, this.model) && this.stopReason === 'completed') {
      this.stop('early-stopping');
    }
    const answer = await this.options.onEpochEnd?.({
      epoch: epoch + 1,
      record,
      saveCheckpoint: (dir) => saveCheckpoint(dir, this.model),
    });
    if (answer === 'stop' && this.stopReason === 'completed') this.stop('early-stopping');
  }

  private stop(reason: TrainerResult['stopReason']): void {
    this.stopReason = reason;
    this.model.stopTraining = true;
  }
}
