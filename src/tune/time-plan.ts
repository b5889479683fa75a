import { existsSync } from 'node:fs';
import { readManifest } from '../cache/manifest.ts';
import { createRequire } from 'node:module';
import type { LoadedConfig } from '../config/load.ts';
import type { Output } from '../core/console.ts';
import type { BackendChoice } from '../model/backend.ts';
import { Rng } from '../core/rng.ts';
import { resolveWasmThreads } from '../core/thread-count.ts';
import { describeArchitecture, type HyperparameterValues } from '../architecture/cnn-spec.ts';
import {
  cachedAutoBackend,
  cachedStepCosts,
  rateCacheFile,
  stepCostKey,
  storeAutoBackend,
  storeStepCosts,
  type CachedStepCosts,
} from '../train/rate-cache.ts';
import type { StepCosts } from '../train/training-rate.ts';
import { hyperbandSchedule } from './hyperband.ts';
import { SearchSpace } from './hyperparameters.ts';
import { searchDifferences, describeSearch, type SearchOverrides } from './search-setup.ts';
import { TrialStore } from './trial-store.ts';
import type { MemoryPlan } from '../memory/plan.ts';
import { trialRefusal } from '../memory/refusals.ts';
import { estimateTrialMemory, wasmHeapRefusal, type EstimateBackend } from '../memory/trial-estimate.ts';

/**
 * The time plan (`galactic plan`, and before `run`, `tune` and `train` start): how many trials and
 * epochs the search will run (RandomSearch/Bayesian: maxTrials x up to tuner.epochs; Hyperband: its
 * exact bracket schedule), how many images an epoch sees, and how long that takes on the selected
 * backend, from timed training steps of this model at this image size (measured once per machine
 * and backend, cached: rate-cache.ts). Durations are upper bounds: early stopping, failed and
 * infeasible trials only shorten them.
 */

export interface RoundWork {
  trials: number;
  epochs: number;
  fromEpoch: number;
}
export interface BracketWork {
  iteration: number;
  bracket: number;
  rounds: RoundWork[];
}

export interface SearchWork {
  algorithm: 'random' | 'hyperband' | 'bayesian';
  /** Trials the search will schedule (at most). */
  trials: number;
  /** Epochs trained over all trials (at most; promoted Hyperband trials continue from their parent). */
  epochs: number;
  /** Hyperband only: the schedule, cut at --max-trials when given. */
  brackets: BracketWork[] | null;
  /** Up to how many epochs one trial trains (RandomSearch, Bayesian). */
  epochsPerTrial: number;
}

export function searchWork(config: LoadedConfig, overrides: SearchOverrides = {}): SearchWork {
  const algorithm = overrides.algorithm ?? config.tuner.algorithm;
  const maxEpochs = config.tuner.epochs;
  if (algorithm !== 'hyperband') {
    const trials = overrides.maxTrials ?? config.tuner.maxTrials;
    return { algorithm, trials, epochs: trials * maxEpochs, brackets: null, epochsPerTrial: maxEpochs };
  }
  const { factor, iterations } = config.tuner.hyperband;
  let budget = overrides.maxTrials ?? Infinity;
  const brackets: BracketWork[] = [];
  for (let iteration = 0; iteration < iterations && budget > 0; iteration++) {
    for (const plan of hyperbandSchedule(maxEpochs, factor)) {
      if (budget <= 0) break;
      const rounds: RoundWork[] = [];
      let fromEpoch = 0;
      for (const round of plan.rounds) {
        const trials = Math.min(round.trials, budget);
        if (trials <= 0) break;
        budget -= trials;
        rounds.push({ trials, epochs: round.epochs, fromEpoch });
        fromEpoch = round.epochs;
      }
      brackets.push({ iteration, bracket: plan.bracket, rounds });
    }
  }
  const rounds = brackets.flatMap((b) => b.rounds);
  return {
    algorithm,
    trials: rounds.reduce((n, r) => n + r.trials, 0),
    epochs: rounds.reduce((n, r) => n + r.trials * (r.epochs - r.fromEpoch), 0),
    brackets,
    epochsPerTrial: maxEpochs,
  };
}

/** Trials and epochs an earlier, interrupted run of the same search has already used up. */
export function searchProgress(
  config: LoadedConfig,
  cacheKey: string | null,
  overrides: SearchOverrides = {},
): { trials: number; epochs: number } {
  const none = { trials: 0, epochs: 0 };
  if (cacheKey === null || !existsSync(config.tuner.dir)) return none;
  const store = new TrialStore(config.tuner.dir);
  let saved;
  try {
    saved = store.readOracle();
  } catch {
    return none;
  }
  if (!saved || searchDifferences(saved.search, describeSearch(config, cacheKey, overrides)).length > 0) return none;
  let epochs = 0;
  for (const trial of saved.state.trials) {
    const allotted = trial.epochs - trial.initialEpoch;
    if (trial.status === 'RUNNING' || trial.status === 'STOPPED') {
      let record = null;
      try {
        record = store.readTrial(trial.id);
      } catch {
        // unreadable: counted as not started
      }
      epochs += Math.min(allotted, record?.metrics.length ?? 0);
    } else {
      epochs += allotted;
    }
  }
  return { trials: saved.state.trials.filter((t) => t.status !== 'RUNNING' && t.status !== 'STOPPED').length, epochs };
}

/** Whether an earlier run of this search has used up its whole schedule. */
export function searchFinished(config: LoadedConfig, cacheKey: string, overrides: SearchOverrides = {}): boolean {
  return searchProgress(config, cacheKey, overrides).epochs >= searchWork(config, overrides).epochs;
}

export interface ImageCounts {
  train: number;
  validation: number;
  /** Where the counts come from, e.g. "the prepared cache" or "up to 5,000 CSV rows". */
  source: string;
}

/** Counts from a number of usable images and the split fraction (the split is by id hash, so about this). */
export function imageCounts(images: number, config: LoadedConfig, source: string): ImageCounts {
  const validation = Math.max(1, Math.round(images * config.split.validation));
  return { train: Math.max(0, images - validation), validation, source };
}

/** Forward multiply-adds per image: what a step's cost grows with across the models of a space. */
export function modelMacs(values: HyperparameterValues, config: LoadedConfig, numClasses: number): number {
  const { width, height, channels } = config.image;
  const description = describeArchitecture(values, [height, width, channels], numClasses, config.model);
  let macs = 0;
  for (const layer of description.layers) {
    if (layer.kind === 'conv2d') {
      const filters = layer.outputShape[2];
      macs += layer.outputShape[0] * layer.outputShape[1] * (layer.parameters - filters);
    } else if (layer.kind === 'dense') {
      macs += layer.parameters - layer.outputShape[0];
    }
  }
  return macs;
}

/** The cheapest and dearest values sets of the space (among seeded draws) and the mean cost of a draw. */
export function spaceCostRange(
  config: LoadedConfig,
  numClasses: number,
  draws = 64,
  fits: (values: HyperparameterValues) => boolean = () => true,
): { cheapest: HyperparameterValues; dearest: HyperparameterValues; meanMacs: number; feasible: boolean } {
  const space = SearchSpace.fromConfig(config.tuner.space);
  const rng = new Rng(config.seed, 'time-plan-space');
  let cheapest: { values: HyperparameterValues; macs: number } | null = null;
  let dearest: { values: HyperparameterValues; macs: number } | null = null;
  let total = 0;
  let counted = 0;
  for (let i = 0; i < draws; i++) {
    const values = space.sample(rng);
    let macs: number;
    try {
      macs = modelMacs(values, config, numClasses);
    } catch {
      continue; // values that cannot make a model fail at once; they cost nothing
    }
    if (!fits(values)) continue; // refused INFEASIBLE before any step: no cost, and never timed
    total += macs;
    counted++;
    if (!cheapest || macs < cheapest.macs) cheapest = { values, macs };
    if (!dearest || macs > dearest.macs) dearest = { values, macs };
  }
  // no draw fits: every trial would be refused before any step (feasible false: nothing to time)
  if (!cheapest || !dearest)
    return { cheapest: {}, dearest: {}, meanMacs: modelMacs({}, config, numClasses), feasible: false };
  return { cheapest: cheapest.values, dearest: dearest.values, meanMacs: total / counted, feasible: true };
}

export interface MeasuredModel {
  macs: number;
  costs: StepCosts;
}

/**
 * Step costs at `macs`, on the line through the measured models (a step costs a fixed part plus a part growing with the
 * model).
 */
export function costsAt(points: MeasuredModel[], macs: number): StepCosts {
  const sorted = [...points].sort((a, b) => a.macs - b.macs);
  const lo = sorted[0];
  const hi = sorted[sorted.length - 1];
  if (sorted.length === 1 || hi.macs - lo.macs < lo.macs * 0.05) {
    return lo.costs;
  }
  const t = (macs - lo.macs) / (hi.macs - lo.macs);
  const at = (pick: (c: StepCosts) => number) =>
    Math.max(pick(lo.costs) * 0.5, pick(lo.costs) + t * (pick(hi.costs) - pick(lo.costs)));
  return {
    trainSecondsPerImage: at((c) => c.trainSecondsPerImage),
    evalSecondsPerImage: at((c) => c.evalSecondsPerImage),
    setupSeconds: at((c) => c.setupSeconds),
    checkpointSeconds: at((c) => c.checkpointSeconds),
    steps: Math.min(lo.costs.steps, hi.costs.steps),
  };
}

/** One epoch of training plus its validation pass (plus the tuner's checkpoint). */
export function epochSeconds(costs: StepCosts, images: ImageCounts, checkpoint: boolean): number {
  return (
    images.train * costs.trainSecondsPerImage +
    images.validation * costs.evalSecondsPerImage +
    (checkpoint ? costs.checkpointSeconds : 0)
  );
}

export interface SearchEstimate extends SearchWork {
  /** Epochs and trials left after an interrupted run of the same search (equal to the totals on a fresh one). */
  remainingTrials: number;
  remainingEpochs: number;
  secondsPerEpoch: number;
  seconds: number;
  /** Training images per second, cheapest and dearest model of the space. */
  imagesPerSecond: [number, number];
}

export interface TrainEstimate {
  epochs: number;
  secondsPerEpoch: number;
  seconds: number;
  imagesPerSecond: number;
}

export interface TimePlan {
  backend: string;
  threads: number | null;
  images: ImageCounts;
  search: SearchEstimate | null;
  train: TrainEstimate | null;
  seconds: number;
  /** Whether every rate came from the cache file (else some were measured now). */
  cached: boolean;
  cacheFile: string;
}

/** Measures one model's step costs on the active backend (loads tfjs: callers pass it lazily). */
export type MeasureFn = (values: HyperparameterValues) => Promise<StepCosts>;

export interface TimePlanRequest {
  config: LoadedConfig;
  images: ImageCounts;
  numClasses: number;
  backend: { name: string; threads?: number | null };
  /** Include the search (tune, run); its progress so far is subtracted. */
  search?: { overrides?: SearchOverrides; progress?: { trials: number; epochs: number } } | null;
  /** Include a final training: its values (null = the search's typical model) and epochs. */
  train?: { values: HyperparameterValues | null; epochs: number } | null;
  measure: MeasureFn;
  /**
   * Whether a model fits the memory budget (the tuner's per-trial check). Models that do not are
   * refused INFEASIBLE before any step, so the plan neither times them (timing one would itself break
   * the budget) nor counts their cost. Default: every model fits.
   */
  fits?: (values: HyperparameterValues) => boolean;
  output?: Output;
}

function modelKey(values: HyperparameterValues, config: LoadedConfig, numClasses: number): unknown {
  const { spec } = describeArchitecture(
    values,
    [config.image.height, config.image.width, config.image.channels],
    numClasses,
    config.model,
  );
  return {
    filters: spec.filters,
    kernelSize: spec.kernelSize,
    denseUnits: spec.denseUnits,
    dropout: spec.dropout > 0,
    image: config.image,
    numClasses,
    batchSize: config.train.batchSize,
  };
}

export async function planTime(request: TimePlanRequest): Promise<TimePlan> {
  const { config, images, numClasses, backend } = request;
  const threads = backend.threads ?? null;
  let cached = true;
  const costsOf = async (values: HyperparameterValues): Promise<MeasuredModel> => {
    const key = stepCostKey({ backend: backend.name, threads, model: modelKey(values, config, numClasses) });
    let costs: StepCosts | null = cachedStepCosts(key);
    if (!costs) {
      cached = false;
      request.output?.info(
        `time plan: timing a few training steps of ${describeModel(values, config)} on ${backend.name} (once per machine and backend; cached in ${rateCacheFile()})`,
      );
      costs = await request.measure(values);
      const entry: CachedStepCosts = { ...costs, backend: backend.name, threads, measuredAt: new Date().toISOString() };
      await storeStepCosts(key, entry);
    }
    return { macs: modelMacs(values, config, numClasses), costs };
  };

  let search: SearchEstimate | null = null;
  let typical: MeasuredModel[] | null = null;
  let typicalMacs = 0;
  if (request.search) {
    const work = searchWork(config, request.search.overrides);
    const range = spaceCostRange(config, numClasses, 64, request.fits);
    if (!range.feasible && request.fits) {
      search = infeasibleSearch(work, request.search.progress);
    } else {
      const points = [await costsOf(range.cheapest)];
      if (modelMacs(range.dearest, config, numClasses) > points[0].macs * 1.05)
        points.push(await costsOf(range.dearest));
      typical = points;
      typicalMacs = range.meanMacs;
      const costs = costsAt(points, range.meanMacs);
      const progress = request.search.progress ?? { trials: 0, epochs: 0 };
      const remainingTrials = Math.max(0, work.trials - progress.trials);
      const remainingEpochs = Math.max(0, work.epochs - progress.epochs);
      const secondsPerEpoch = epochSeconds(costs, images, true);
      search = {
        ...work,
        remainingTrials,
        remainingEpochs,
        secondsPerEpoch,
        seconds: remainingEpochs * secondsPerEpoch + remainingTrials * costs.setupSeconds,
        imagesPerSecond: [
          1 / points[points.length - 1].costs.trainSecondsPerImage,
          1 / points[0].costs.trainSecondsPerImage,
        ],
      };
    }
  }
  let train: TrainEstimate | null = null;
  if (request.train) {
    const values = request.train.values;
    const fits = request.fits ?? (() => true);
    // a final model over the budget is refused before it trains: never timed; read off the line
    // through the search's models when there is one, else no estimate (the refusal says why)
    const costs =
      values === null && typical
        ? costsAt(typical, typicalMacs)
        : fits(values ?? {})
          ? (await costsOf(values ?? {})).costs
          : typical
            ? costsAt(typical, modelMacs(values ?? {}, config, numClasses))
            : null;
    if (costs) {
      const secondsPerEpoch = epochSeconds(costs, images, false);
      // plus the model's setup and one more validation pass for the metrics
      const seconds =
        costs.setupSeconds + request.train.epochs * secondsPerEpoch + images.validation * costs.evalSecondsPerImage;
      train = {
        epochs: request.train.epochs,
        secondsPerEpoch,
        seconds,
        imagesPerSecond: 1 / costs.trainSecondsPerImage,
      };
    }
  }
  return {
    backend: backend.name,
    threads,
    images,
    search,
    train,
    seconds: (search?.seconds ?? 0) + (train?.seconds ?? 0),
    cached,
    cacheFile: rateCacheFile(),
  };
}

/** No model of the space fits the budget: every trial is refused INFEASIBLE before a step, so it takes no time. */
function infeasibleSearch(work: SearchWork, progress = { trials: 0, epochs: 0 }): SearchEstimate {
  return {
    ...work,
    remainingTrials: Math.max(0, work.trials - progress.trials),
    remainingEpochs: Math.max(0, work.epochs - progress.epochs),
    secondsPerEpoch: 0,
    seconds: 0,
    imagesPerSecond: [0, 0],
  };
}

function describeModel(values: HyperparameterValues, config: LoadedConfig): string {
  const { spec } = describeArchitecture(
    values,
    [config.image.height, config.image.width, config.image.channels],
    2,
    config.model,
  );
  return `the CNN with filters ${spec.filters.join('/')}, dense ${spec.denseUnits} at ${config.image.width}x${config.image.height}, batch ${config.train.batchSize}`;
}

/** "45 s", "12.5 min", "3.2 h", "2.5 days": precision that suits the size. */
export function formatDuration(seconds: number): string {
  if (seconds < 90) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 48 * 3600) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const rate = (n: number) => (n >= 100 ? int(n) : n.toPrecision(3));

export function formatTimePlan(plan: TimePlan): string {
  const lines: string[] = [];
  const threads = plan.threads !== null ? `, ${plan.threads} thread${plan.threads === 1 ? '' : 's'}` : '';
  lines.push(
    `  images per epoch    ${int(plan.images.train)} training + ${int(plan.images.validation)} validation (${plan.images.source})`,
  );
  const s = plan.search;
  if (s) {
    const name =
      s.algorithm === 'hyperband' ? 'Hyperband' : s.algorithm === 'bayesian' ? 'Bayesian optimisation' : 'RandomSearch';
    if (s.brackets) {
      lines.push(`  search              ${name}: ${int(s.trials)} trials, ${int(s.epochs)} epochs in all:`);
      for (const b of s.brackets) {
        const rounds = b.rounds
          .map((r) => `${r.trials} x ${r.fromEpoch > 0 ? `${r.fromEpoch}->` : ''}${r.epochs} ep`)
          .join(' -> ');
        lines.push(
          `                        ${s.brackets.some((x) => x.iteration > 0) ? `iteration ${b.iteration + 1} ` : ''}bracket ${b.bracket}: ${rounds}`,
        );
      }
    } else {
      lines.push(
        `  search              ${name}: ${int(s.trials)} trials x up to ${s.epochsPerTrial} epochs = up to ${int(s.epochs)} epochs`,
      );
    }
    if (s.remainingEpochs < s.epochs)
      lines.push(
        `                      ${int(s.epochs - s.remainingEpochs)} epochs already done; ${int(s.remainingEpochs)} left`,
      );
    const [slow, fast] = s.imagesPerSecond;
    if (fast === 0)
      lines.push(
        `  training rate       none: no model of the search space fits memory.limitMB (every trial would be refused INFEASIBLE)`,
      );
    else
      lines.push(
        `  training rate       ${Math.abs(fast - slow) / fast < 0.05 ? `${rate(fast)} images/s` : `${rate(fast)} images/s (cheapest model of the space) to ${rate(slow)} (dearest)`} on ${plan.backend}${threads}`,
      );
    lines.push(
      `  search time         about ${formatDuration(s.seconds)} (${formatDuration(s.secondsPerEpoch)} per epoch of a typical model${s.remainingTrials > 0 ? ', with validation and checkpoints' : ''})`,
    );
  }
  const t = plan.train;
  if (t) {
    if (!s) lines.push(`  training rate       ${rate(t.imagesPerSecond)} images/s on ${plan.backend}${threads}`);
    lines.push(
      `  final training      up to ${t.epochs} epochs, about ${formatDuration(t.seconds)} (${formatDuration(t.secondsPerEpoch)} per epoch)`,
    );
  }
  lines.push(`  total               about ${formatDuration(plan.seconds)}, at most (early stopping only shortens it)`);
  lines.push(
    `  rates               ${plan.cached ? 'measured earlier on this machine' : 'measured now'}, cached in ${plan.cacheFile}`,
  );
  return lines.join('\n');
}

export const LONG_JOB_SECONDS = 3600;

/** The warning printed before a job estimated over an hour, or null. */
export function longJobWarning(plan: TimePlan, what: string): string | null {
  if (plan.seconds <= LONG_JOB_SECONDS) return null;
  const knobs = plan.search
    ? 'lower tuner.maxTrials or tuner.epochs, use tuner.algorithm "hyperband", a smaller image size'
    : 'lower train.epochs, use a smaller image size';
  return `${what} is estimated at about ${formatDuration(plan.seconds)} on ${plan.backend}. To shorten it: ${knobs}, ${plan.backend === 'node' ? 'or' : 'or use --backend node (tfjs-node) where it installs, or'} fewer images (data.limit).`;
}

/** Prints the plan and, over an hour, the warning (run, tune, train). */
export function announceTimePlan(plan: TimePlan, output: Output, what: string): void {
  output.info(`time plan (${what}):\n${formatTimePlan(plan)}`);
  const warning = longJobWarning(plan, what);
  if (warning) output.warn(warning);
}

/**
 * The backend `auto` would select, without loading tfjs when a plan already found out on this
 * machine (null: not known yet, the caller selects it to measure).
 */
export function knownBackend(
  config: LoadedConfig,
  requested: 'auto' | 'node' | 'wasm' | 'cpu',
): { name: string; threads: number | null } | null {
  const threadsOf = (name: string) => (name === 'wasm' ? resolveWasmThreads(config.threads) : null);
  if (requested !== 'auto') return { name: requested, threads: threadsOf(requested) };
  const name = cachedAutoBackend(autoFingerprint());
  return name ? { name, threads: threadsOf(name) } : null;
}

export function rememberAutoBackend(name: string): Promise<void> {
  return storeAutoBackend(autoFingerprint(), name);
}

/** What `auto` depends on: which optional backend packages are installed. */
function autoFingerprint(): string {
  const require = createRequire(import.meta.url);
  const installed = (name: string) => {
    try {
      require.resolve(`${name}/package.json`);
      return '1';
    } catch {
      return '0';
    }
  };
  return `node:${installed('@tensorflow/tfjs-node')}`;
}

/** Times steps of a model on the active backend (tfjs loads only when something must be measured). */
export async function measureOn(config: LoadedConfig, numClasses: number): Promise<MeasureFn> {
  const { measureStepCosts } = await import('../train/training-rate.ts');
  const { width, height, channels } = config.image;
  return (values) => measureStepCosts({ config, values, inputShape: [height, width, channels], numClasses });
}

export interface AnnounceOptions {
  backend: BackendChoice;
  cacheDir: string;
  cacheKey: string;
  /** The search about to run (tune, run). */
  search?: SearchOverrides | null;
  /** The final training about to run: its values (null: the search's typical model) and epochs. */
  train?: { values: HyperparameterValues | null; epochs: number } | null;
  /** The command's memory plan: models over its budget are neither timed nor counted. */
  plan: MemoryPlan;
  what: string;
}

/** The tuner's per-trial memory refusal, without the process state (the plan is made before any trial). */
export function fitsMemoryPlan(
  config: LoadedConfig,
  plan: MemoryPlan,
  numClasses: number,
  /** Unknown (`auto` before a backend is chosen): what the plan reserves for the backends it may pick. */
  backend: EstimateBackend | undefined,
): (values: HyperparameterValues) => boolean {
  return (values) => {
    const estimate = estimateTrialMemory({ values, config, plan, numClasses, backend });
    return trialRefusal(plan, estimate) === null && (backend !== 'wasm' || wasmHeapRefusal(estimate) === null);
  };
}

/** Before `run`, `tune` and `train` start: the same estimate as `galactic plan`, and a warning over an hour. */
export async function announceTime(config: LoadedConfig, output: Output, options: AnnounceOptions): Promise<TimePlan> {
  const manifest = readManifest(options.cacheDir);
  const numClasses = manifest.classes.length;
  const plan = await planTime({
    config,
    images: imageCounts(manifest.totals.images, config, 'the prepared cache'),
    numClasses,
    backend: { name: options.backend.name, threads: options.backend.threads ?? null },
    search: options.search
      ? { overrides: options.search, progress: searchProgress(config, options.cacheKey, options.search) }
      : null,
    train: options.train ?? null,
    measure: await measureOn(config, numClasses),
    fits: fitsMemoryPlan(config, options.plan, numClasses, options.backend.name as EstimateBackend),
    output,
  });
  announceTimePlan(plan, output, options.what);
  return plan;
}
