/**
 * galactic as a library: the CLI's stages as typed functions. Nothing here prints; pass
 * `onEvent` to receive the lines and progress the CLI would show (docs/api.md).
 *
 * `tf` is the @tensorflow/tfjs instance galactic trains and predicts with: build tensors and
 * models with it (or with your own `import * as tf from '@tensorflow/tfjs'`, which resolves to the
 * same package as long as your project does not pin another version).
 */
import * as tf from '@tensorflow/tfjs';
import { loadConfig, validateConfig, type LoadedConfig } from './config/load.ts';
import type { PipelineConfig } from './config/schema.ts';
import { EventOutput, type EventListener, type GalacticEvent } from './core/event-output.ts';
import type { Manifest, Shard } from './cache/format.ts';
import { loadManifest, loadShard } from './data/cache-access.ts';
import { Feed, feedSettings, type FeedSettings, type HostBatch, type TensorBatch } from './data/feed.ts';
import { splitCache, type SplitPlan } from './data/split.ts';
import { formatPlan, planMemory, type DataFacts, type MemoryPlan } from './memory/plan.ts';
import { measureData } from './ingest/data-facts.ts';
import type { HyperparameterValues } from './model/architecture.ts';
import { selectBackend as chooseBackend, type BackendChoice, type BackendName } from './model/backend.ts';
import { loadTrainedModel, predictFiles, type Prediction } from './predict/predict.ts';
import { runPrepare, type PrepareSummary } from './prepare/run-prepare.ts';
import { readHyperparameters, trainRun, tunerBestValues, type TrainRunSummary } from './train/run-training.ts';
import type { SearchOverrides } from './tune/search-setup.ts';
import { tuneOnCache } from './tune/tune-on-cache.ts';
import type { TuneSummary } from './tune/tuner.ts';
import type { SuiteReport, SuiteStage } from './bench/suite.ts';
import type { SynthOptions as SynthSettings, SynthSummary } from './images/synth/dataset.ts';

export { tf, loadConfig, validateConfig, planMemory, formatPlan, measureData, readHyperparameters, tunerBestValues };

/** The memory plan for a config and its data as they are now: what every stage below sizes itself from. */
export function planFor(config: LoadedConfig): MemoryPlan {
  return planMemory(config, measureData(config));
}
export { UserError } from './core/errors.ts';
export { GALACTIC_VERSION as version } from './core/version.ts';
export type {
  BackendChoice,
  BackendName,
  EventListener,
  FeedSettings,
  GalacticEvent,
  HostBatch,
  HyperparameterValues,
  LoadedConfig,
  DataFacts,
  Manifest,
  MemoryPlan,
  PipelineConfig,
  Prediction,
  PrepareSummary,
  Shard,
  SplitPlan,
  SuiteReport,
  SuiteStage,
  SynthSummary,
  TensorBatch,
  TrainRunSummary,
  TuneSummary,
};

/** Every stage takes a listener for what the CLI would print; without one it is silent. */
export interface StageOptions {
  onEvent?: EventListener;
}

export interface BackendStageOptions extends StageOptions {
  /** tfjs backend: 'auto' (node, then wasm, then cpu) unless the config or this says otherwise. */
  backend?: 'auto' | BackendName;
}

/** Selects (and initialises) the tfjs backend galactic and `tf` will run on. */
export function selectBackend(
  preference: 'auto' | BackendName = 'auto',
  options: StageOptions & { threads?: 'auto' | number } = {},
): Promise<BackendChoice> {
  return chooseBackend(preference, new EventOutput(options.onEvent), { threads: options.threads });
}

export interface PrepareOptions extends StageOptions {
  /** Rebuild even when a complete cache for these inputs exists. */
  force?: boolean;
  /** Keep only the first N usable records (overrides data.limit). */
  limit?: number | null;
}

/** `galactic prepare`: streams the CSV and images into a sharded cache (or finds the one already built). */
export function prepare(config: LoadedConfig, options: PrepareOptions = {}): Promise<PrepareSummary> {
  return runPrepare(config, {
    output: new EventOutput(options.onEvent),
    force: options.force,
    limit: options.limit ?? config.data.limit,
    plan: planFor(config),
  });
}

/** A prepared cache: its manifest (classes, image shape, shards, channel statistics) and its shards, one at a time. */
export interface Cache {
  dir: string;
  manifest: Manifest;
  /** Reads shard `index` (0-based, manifest order) after checking its checksum. */
  readShard(index: number): Promise<Shard>;
}

/** Opens a prepared cache folder (`PrepareSummary.cacheDir`). */
export function openCache(cacheDir: string): Cache {
  const manifest = loadManifest(cacheDir);
  return {
    dir: cacheDir,
    manifest,
    readShard: (index) => {
      const entry = manifest.shards[index];
      if (!entry) throw new RangeError(`shard ${index} does not exist: the cache has ${manifest.shards.length} shards`);
      return loadShard(cacheDir, entry);
    },
  };
}

export interface FeedHandle {
  /** Shuffled, augmented training batches ({xs, ys}); each pass is the epoch in `feed.epoch`. */
  train: tf.data.Dataset<TensorBatch>;
  /** Validation batches in cache order. */
  validation: tf.data.Dataset<TensorBatch>;
  /** The underlying feed: host batches (`trainBatches(epoch)`), split sizes, normalization. */
  feed: Feed;
}

/**
 * The tf.data feed the trainer uses, over a prepared cache: the config's split, shuffle buffer,
 * augmentation and normalization, streamed shard by shard (never the whole set in memory).
 */
export async function createFeed(
  config: LoadedConfig,
  cacheDir: string,
  options: BackendStageOptions & { settings?: FeedSettings } = {},
): Promise<FeedHandle> {
  // the batches become tensors of the backend galactic selects (the same one train would use)
  await chooseBackend(options.backend ?? config.backend, new EventOutput(options.onEvent), { threads: config.threads });
  const manifest = loadManifest(cacheDir);
  const split = await splitCache(cacheDir, manifest, config.split, config.seed);
  const feed = new Feed({
    config,
    cacheDir,
    manifest,
    split,
    settings: options.settings ?? feedSettings(planFor(config)),
  });
  return { train: feed.trainDataset(), validation: feed.validationDataset(), feed };
}

export interface TrainOptions extends BackendStageOptions {
  /** A prepared cache; prepared from the config when omitted. */
  cacheDir?: string;
  /** Hyperparameter values (e.g. `TuneSummary.best.values`); the config's model defaults otherwise. */
  values?: HyperparameterValues;
  epochs?: number;
  /** Run folder name under runs.dir (overrides runs.name). */
  name?: string;
}

/** `galactic train`: trains the CNN and writes `runs/<name>/` (model, metadata, history, metrics). */
export async function train(config: LoadedConfig, options: TrainOptions = {}): Promise<TrainRunSummary> {
  const output = new EventOutput(options.onEvent);
  const backend = await chooseBackend(options.backend ?? config.backend, output, { threads: config.threads });
  const plan = planFor(config);
  const cache = await preparedCache(config, plan, options.cacheDir, output);
  return trainRun(config, {
    ...cache,
    backend,
    plan,
    values: options.values ?? {},
    epochs: options.epochs,
    name: options.name,
    output,
  });
}

export interface TuneOptions extends BackendStageOptions, SearchOverrides {
  cacheDir?: string;
  /** Delete the trials in tuner.dir and start afresh. */
  overwrite?: boolean;
  /** Abort: the current epoch finishes and is saved, then the search stops (a later call resumes). */
  signal?: AbortSignal;
}

/** `galactic tune`: the hyperparameter search, resumable; writes tuner.dir and best_hp.json. */
export async function tune(config: LoadedConfig, options: TuneOptions = {}): Promise<TuneSummary> {
  const output = new EventOutput(options.onEvent);
  const plan = planFor(config);
  const cache = await preparedCache(config, plan, options.cacheDir, output);
  const backend = await chooseBackend(options.backend ?? config.backend, output, { threads: config.threads });
  const { summary } = await tuneOnCache({
    config,
    ...cache,
    backend,
    plan,
    output,
    trainerOutput: output,
    overrides: { algorithm: options.algorithm, maxTrials: options.maxTrials },
    overwrite: options.overwrite,
    signal: options.signal,
  });
  return summary;
}

export interface PredictOptions extends BackendStageOptions {
  batchSize?: number;
}

/**
 * `galactic predict`: class and probabilities per image file (folders are expanded); a bad file becomes `{file,
 * error}`.
 */
export async function predict(modelDir: string, images: string[], options: PredictOptions = {}): Promise<Prediction[]> {
  await chooseBackend(options.backend ?? 'auto', new EventOutput(options.onEvent));
  const trained = await loadTrainedModel(modelDir);
  try {
    return await predictFiles(trained, images, { batchSize: options.batchSize });
  } finally {
    trained.model.dispose();
  }
}

export interface BenchOptions extends StageOptions {
  /** decode, prepare, feed, train (default: all four). */
  stages?: SuiteStage[];
  quick?: boolean;
  images?: number;
  repeats?: number;
  epochs?: number;
}

/** `galactic bench`: throughput and peak memory of each stage on the config's data (scratch caches, removed after). */
export async function bench(config: LoadedConfig, options: BenchOptions = {}): Promise<SuiteReport> {
  const [{ runSuite, selectStages, suiteSettings }, { trainStage }] = await Promise.all([
    import('./bench/suite.ts'),
    import('./bench/stages/train.ts'),
  ]);
  const settings = suiteSettings(config, {
    quick: Boolean(options.quick),
    images: options.images,
    repeats: options.repeats,
    epochs: options.epochs,
  });
  return runSuite(
    config,
    selectStages(options.stages ?? ['all']),
    settings,
    new EventOutput(options.onEvent),
    trainStage,
  );
}

export interface SynthOptions extends StageOptions, Partial<Omit<SynthSettings, 'out' | 'count'>> {
  /** Folder to write into (new or empty unless `force`). */
  out: string;
  /** Records (CSV rows). */
  count: number;
}

/**
 * `galactic synth`: a synthetic Galaxy Zoo 2 set (images/, galaxy_df_final.csv, gz2_hart16.csv,
 * gz2_filename_mapping.csv).
 */
export async function synth(options: SynthOptions): Promise<SynthSummary> {
  const { synthesizeDataset } = await import('./images/synth/dataset.ts');
  const { onEvent, ...settings } = options;
  return synthesizeDataset(
    { seed: 42, size: 424, hazards: false, imbalance: false, force: false, ...settings },
    new EventOutput(onEvent),
  );
}

async function preparedCache(
  config: LoadedConfig,
  plan: MemoryPlan,
  cacheDir: string | undefined,
  output: EventOutput,
): Promise<{ cacheDir: string; cacheKey: string }> {
  if (cacheDir) return { cacheDir, cacheKey: loadManifest(cacheDir).cacheKey };
  const prepared = await runPrepare(config, { output, plan });
  return { cacheDir: prepared.cacheDir, cacheKey: prepared.cacheKey };
}
