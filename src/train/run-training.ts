import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { LoadedConfig } from '../config/load.ts';
import { loadManifest } from '../data/cache-access.ts';
import { MemoryPlanError, type MemoryPlan } from '../memory/plan.ts';
import { refuseTraining } from '../memory/refusals.ts';
import { feedSettings } from '../data/feed.ts';
import { estimateTrialMemory, wasmHeapRefusal } from '../memory/trial-estimate.ts';
import { processMemoryState } from '../model/backend-memory.ts';
import { UserError } from '../core/errors.ts';
import { RssSampler } from '../memory/rss-sampler.ts';
import { resolveArchitecture, type HyperparameterValues } from '../model/architecture.ts';
import type { BackendChoice } from '../model/backend.ts';
import type { Output, Progress } from '../core/console.ts';
import { evaluateValidation } from './metrics.ts';
import { configDigest, GALACTIC_VERSION, writeRunDirectory, type RunMetadata } from './run-directory.ts';
import { disposeModel, trainClassifier, type EpochRecord } from './trainer.ts';

/**
 * The final training as one library call (used by `galactic train` and `galactic run`): picks
 * the hyperparameters, trains on the prepared cache, scores the validation set and writes
 * runs/<name>/.
 */

export class HyperparametersFileError extends UserError {
  constructor(file: string, problem: string) {
    super(
      `hyperparameter file ${file} ${problem}. Give a JSON object of values (e.g. {"filters_1": 32, "learning_rate": 0.001}) or a best_hp.json written by 'galactic tune'.`,
    );
  }
}

export class TunerResultMissingError extends UserError {
  constructor(file: string) {
    super(`--from-tuner needs ${file}, which does not exist. Run 'galactic tune' first (or pass --hp FILE).`);
  }
}

export class TrainingDivergedError extends UserError {
  constructor(epoch: number, learningRate: number) {
    super(
      `training diverged: the loss became NaN in epoch ${epoch} and no earlier epoch's weights were kept, so no model was saved. Lower the learning rate (train.learningRate, now ${learningRate}), or keep train.earlyStopping with restoreBestWeights so the last good epoch is saved.`,
    );
  }
}

/** Reads values from a JSON file: `{values: {...}}` (best_hp.json) or a plain `{name: value}` map. */
export function readHyperparameters(file: string): HyperparameterValues {
  if (!existsSync(file)) throw new HyperparametersFileError(file, 'does not exist');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new HyperparametersFileError(file, `is not valid JSON (${(error as Error).message})`);
  }
  const values = raw && typeof raw === 'object' && 'values' in raw ? (raw as { values: unknown }).values : raw;
  if (!values || typeof values !== 'object' || Array.isArray(values))
    throw new HyperparametersFileError(file, 'holds no object of values');
  for (const [name, value] of Object.entries(values)) {
    if (!['number', 'string', 'boolean'].includes(typeof value))
      throw new HyperparametersFileError(
        file,
        `has '${name}' = ${JSON.stringify(value)}, not a number, string or boolean`,
      );
  }
  return values as HyperparameterValues;
}

/** `<tuner.dir>/best_hp.json`, written by the tuner. */
export function tunerBestValues(config: LoadedConfig): HyperparameterValues {
  const file = path.join(config.tuner.dir, 'best_hp.json');
  if (!existsSync(file)) throw new TunerResultMissingError(file);
  return readHyperparameters(file);
}

export interface TrainRunOptions {
  cacheDir: string;
  cacheKey: string;
  backend: BackendChoice;
  values: HyperparameterValues;
  /** The command's memory plan: the feed's sizes and the limit the training must fit. */
  plan: MemoryPlan;
  epochs?: number;
  name?: string;
  output: Output;
}

export interface TrainRunSummary {
  run: string;
  runDir: string;
  backend: string;
  epochs: number;
  bestEpoch: number;
  stopReason: string;
  valAccuracy: number;
  valLoss: number;
  seconds: number;
  imagesPerSecond: number;
  peakRssMB: number;
  limitMB: number;
}

/**
 * The learning rate of the final training: the tuned one unless `train.learningRate` overrides
 * it. (The notebook tuned it, then silently trained with 1e-4; here an override is explicit.)
 */
export function finalValues(
  config: LoadedConfig,
  values: HyperparameterValues,
  output?: Output,
): { values: HyperparameterValues; source: RunMetadata['learningRate']['source'] } {
  if (config.train.learningRate !== null) {
    if (typeof values.learning_rate === 'number' && values.learning_rate !== config.train.learningRate) {
      output?.warn(
        `train.learningRate ${config.train.learningRate} overrides the tuned learning_rate ${values.learning_rate}`,
      );
    }
    return { values: { ...values, learning_rate: config.train.learningRate }, source: 'train.learningRate' };
  }
  return { values, source: 'learning_rate' in values ? 'hyperparameters' : 'model.learningRate' };
}

const round = (x: number, digits = 4) => (Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : x);

/**
 * Refuses, before any work, a final training whose model cannot fit memory.limitMB (or the wasm
 * heap): the estimate the tuner's INFEASIBLE rule uses, for the values actually trained.
 */
export function checkTrainingFits(
  config: LoadedConfig,
  plan: MemoryPlan,
  cacheDir: string,
  values: HyperparameterValues,
  backend: BackendChoice['name'],
): void {
  const manifest = loadManifest(cacheDir);
  const trainRecords = Math.ceil(manifest.totals.images * (1 - config.split.validation));
  // `galactic run` trains after tuning in the same process: what the process still holds counts
  const estimate = estimateTrialMemory({
    values,
    config,
    plan,
    numClasses: manifest.classes.length,
    trainRecords,
    backend,
    state: processMemoryState(),
  });
  refuseTraining(plan, estimate);
  const heap = backend === 'wasm' ? wasmHeapRefusal(estimate) : null;
  if (heap) throw new MemoryPlanError('train.batchSize', `this model cannot train on the wasm backend: ${heap}`);
}

export async function trainRun(config: LoadedConfig, options: TrainRunOptions): Promise<TrainRunSummary> {
  const { output } = options;
  const { values, source } = finalValues(config, options.values, output);
  checkTrainingFits(config, options.plan, options.cacheDir, values, options.backend.name);
  const started = performance.now();
  const sampler = new RssSampler().start();
  const epochs = options.epochs ?? config.train.epochs;
  const name = options.name ?? config.runs.name;
  const runDir = path.join(config.runs.dir, name);
  let progress: Progress | null = null;
  const result = await trainClassifier({
    config,
    cacheDir: options.cacheDir,
    values,
    epochs,
    output,
    feedSettings: feedSettings(options.plan),
    onBatchEnd: ({ epoch, batch, batches, loss, accuracy }) => {
      if (batch === 1) progress = output.progress(`epoch ${epoch}/${epochs}`, batches, 'batches');
      progress?.update(batch, { loss: loss.toFixed(4), acc: accuracy.toFixed(3) });
    },
    onEpochEnd: ({ record }) => {
      progress?.stop(formatEpoch(record, epochs));
      progress = null;
    },
  });
  try {
    if (result.stopReason === 'nan-loss') {
      const nanEpoch = result.history.length > 0 ? result.history[result.history.length - 1].epoch : 1;
      if (!result.restoredBestWeights)
        throw new TrainingDivergedError(nanEpoch, resolveArchitecture(values, config.model).learningRate);
      output.warn(`the loss became NaN in epoch ${nanEpoch}; saving the weights of epoch ${result.bestEpoch}`);
    }
    const metrics = await evaluateValidation(result.model, result.feed, result.manifest.classes);
    const history = result.history;
    const final =
      (result.restoredBestWeights ? history.find((r) => r.epoch === result.bestEpoch) : history[history.length - 1]) ??
      history[history.length - 1];
    const spec = resolveArchitecture(values, config.model);
    const metadata: RunMetadata = {
      format: 'galactic-run',
      version: 1,
      name,
      createdAt: new Date().toISOString(),
      classes: result.manifest.classes,
      image: {
        ...config.image,
        width: result.manifest.image.width,
        height: result.manifest.image.height,
        channels: result.manifest.image.channels as 1 | 3,
      },
      normalization: result.feed.normalization,
      cacheDtype: result.manifest.dtype,
      backend: { name: options.backend.name, reason: options.backend.reason },
      versions: { galactic: GALACTIC_VERSION, tfjs: tf.version.tfjs, node: process.versions.node },
      configDigest: configDigest(config),
      configPath: config.configPath,
      cacheKey: options.cacheKey,
      hyperparameters: values,
      learningRate: { value: spec.learningRate, source },
      seed: config.seed,
      split: {
        validation: config.split.validation,
        stratify: config.split.stratify,
        trainImages: result.split.trainCount,
        validationImages: result.split.validationCount,
      },
      epochs: history.length > 0 ? history[history.length - 1].epoch : 0,
      bestEpoch: result.bestEpoch,
      stopReason: result.stopReason,
    };
    await writeRunDirectory(runDir, { model: result.model, metadata, history, metrics });
    const trainSeconds = history.reduce(
      (s, r) => s + (r.imagesPerSecond > 0 ? result.split.trainCount / r.imagesPerSecond : 0),
      0,
    );
    sampler.stop();
    output.info(
      `run ${name}: validation accuracy ${metrics.accuracy.toFixed(4)} (best epoch ${result.bestEpoch}, ${result.stopReason}); saved to ${runDir}`,
    );
    return {
      run: name,
      runDir,
      backend: options.backend.name,
      epochs: metadata.epochs,
      bestEpoch: result.bestEpoch,
      stopReason: result.stopReason,
      valAccuracy: round(metrics.accuracy),
      valLoss: round(final?.val_loss ?? Number.NaN),
      seconds: round((performance.now() - started) / 1000, 3),
      imagesPerSecond: trainSeconds > 0 ? round((result.split.trainCount * history.length) / trainSeconds, 1) : 0,
      peakRssMB: sampler.peakMB,
      limitMB: config.memory.limitMB,
    };
  } finally {
    sampler.stop();
    disposeModel(result.model);
  }
}

export function formatEpoch(r: EpochRecord, epochs: number): string {
  const f = (x: number, d = 4) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
  return `epoch ${r.epoch}/${epochs}: loss ${f(r.loss)} acc ${f(r.accuracy, 3)} val_loss ${f(r.val_loss)} val_acc ${f(r.val_accuracy, 3)} | ${r.seconds.toFixed(1)} s, ${r.imagesPerSecond.toFixed(1)} img/s, peak ${r.peakRssMB} MB`;
}
