import type { LoadedConfig } from '../config/load.ts';
import { loadManifest } from '../data/cache-access.ts';
import { estimateTrialMemory, wasmHeapRefusal } from '../memory/trial-estimate.ts';
import type { MemoryPlan } from '../memory/plan.ts';
import { trialRefusal } from '../memory/refusals.ts';
import { feedSettings } from '../data/feed.ts';
import type { BackendChoice } from '../model/backend.ts';
import { processMemoryState } from '../model/backend-memory.ts';
import { collectHeap } from './heap-collection.ts';
import type { Output } from '../core/console.ts';
import type { HyperparameterValues } from './hyperparameters.ts';
import { createOracle, describeSearch, type SearchOverrides } from './search-setup.ts';
import { TrainerTrialRunner } from './trainer-runner.ts';
import type { TrialRunner } from './trial-runner.ts';
import { runTuner, type TunerOptions, type TuneSummary } from './tuner.ts';

/**
 * The tuner on a prepared cache, as `galactic tune` and `galactic run` both need it: the search
 * from the config, per-trial memory estimates sized to this cache's training set, and the wasm
 * heap refusal (a trial that would exhaust wasm's 4 GiB heap aborts the backend for every later
 * trial, so it is INFEASIBLE whatever the budget). Callers only choose how progress is shown.
 */
export interface TuneOnCacheOptions {
  config: LoadedConfig;
  cacheDir: string;
  cacheKey: string;
  backend: BackendChoice;
  /** The command's memory plan: the feed's sizes and the limit each trial must fit. */
  plan: MemoryPlan;
  output: Output;
  overrides?: SearchOverrides;
  overwrite?: boolean;
  signal?: AbortSignal;
  /** Wraps the trainer-backed runner, e.g. to draw per-epoch progress. */
  wrapRunner?: (runner: TrialRunner) => TrialRunner;
  /** Given to the trainer for per-batch progress; omitted, trials train silently. */
  trainerOutput?: Output;
  /** Indentation of that batch bar (under the caller's trial and epoch bars). */
  batchBarDepth?: number;
  /**
   * The loop that runs the search; default `runTuner` (trials one at a time, here). A queue-backed chief replaces it.
   */
  tunerLoop?: (options: TunerOptions) => Promise<TuneSummary>;
}

/**
 * The per-trial memory checks for this cache on this machine: peak estimate and the plan's refusal (limit, then the
 * wasm heap).
 */
export function trialMemoryChecks(
  config: LoadedConfig,
  plan: MemoryPlan,
  cacheDir: string,
  backend: BackendChoice,
): {
  estimate: TunerOptions['estimate'];
  trainRecords: number;
} {
  const manifest = loadManifest(cacheDir);
  // Trials are refused one by one (INFEASIBLE) from their own values, not from config.model.
  const trainRecords = Math.ceil(manifest.totals.images * (1 - config.split.validation));
  return {
    estimate: (values: HyperparameterValues) => {
      // the trial runs in this process after earlier work: what it still holds counts (collected first)
      collectHeap();
      const e = estimateTrialMemory({
        values,
        config,
        plan,
        numClasses: manifest.classes.length,
        trainRecords,
        backend: backend.name,
        state: processMemoryState(),
      });
      return {
        estimateMB: e.totalMB,
        refusal: trialRefusal(plan, e) ?? (backend.name === 'wasm' ? wasmHeapRefusal(e) : null),
      };
    },
    trainRecords,
  };
}

export interface TuneOnCacheResult {
  summary: TuneSummary;
  /** Records the training side of the split holds (for throughput figures). */
  trainRecords: number;
}

export async function tuneOnCache(options: TuneOnCacheOptions): Promise<TuneOnCacheResult> {
  const { config, cacheDir, backend, output, plan } = options;
  const overrides = options.overrides ?? {};
  const { trainRecords, ...checks } = trialMemoryChecks(config, plan, cacheDir, backend);
  const search = describeSearch(config, options.cacheKey, overrides);
  const base = new TrainerTrialRunner({
    config,
    cacheDir,
    feedSettings: feedSettings(plan),
    output: options.trainerOutput,
    batchBarDepth: options.batchBarDepth,
  });
  const summary = await (options.tunerLoop ?? runTuner)({
    dir: config.tuner.dir,
    search,
    createOracle: (state) => createOracle(search, config, overrides, state),
    runner: options.wrapRunner ? options.wrapRunner(base) : base,
    ...checks,
    overwrite: options.overwrite,
    output,
    signal: options.signal,
    trialRetries: config.tuner.trialRetries,
  });
  return { summary, trainRecords };
}
