import { readFileSync, writeFileSync } from 'node:fs';
import type { LoadedConfig } from '../config/load.ts';
import { Output } from '../core/console.ts';
import { planMemory } from '../memory/plan.ts';
import { estimateTrialMemory, type EstimateComponent } from '../memory/trial-estimate.ts';
import { measureData } from '../ingest/data-facts.ts';
import { loadManifest } from '../data/cache-access.ts';
import { selectBackend, type BackendName } from '../model/backend.ts';
import { processMemoryState, wasmHeapBytes } from '../model/backend-memory.ts';
import { runPrepare } from '../prepare/run-prepare.ts';
import type { HyperparameterValues } from '../tune/hyperparameters.ts';
import { Oracle, type OracleDecision } from '../tune/oracle.ts';
import { SearchSpace } from '../tune/hyperparameters.ts';
import { objectiveOf } from '../tune/search-setup.ts';
import { announceTime } from '../tune/time-plan.ts';
import { tuneOnCache } from '../tune/tune-on-cache.ts';
import { runTuner } from '../tune/tuner.ts';

/**
 * Each trial's peak RSS in a real search, measured the way `galactic tune` runs one: one process,
 * the command's plan, backend and time plan (which trains the space's cheapest and dearest models
 * for a few steps), then the trials through `tuneOnCache` (validation, a checkpoint and a
 * best-epoch copy every epoch, a full GC between trials). The kernel's high-water mark (VmHWM) is
 * reset at each trial's start (`/proc/self/clear_refs`, Linux), so a trial's peak is its own,
 * including whatever earlier trials left resident. The trials are a fixed list, not the oracle's
 * draws, so a run can put a large model before a small one.
 */

const MiB = 1024 * 1024;

export interface TrialMemoryRow {
  trialId: string;
  values: HyperparameterValues;
  status: string;
  parameters: number;
  /** The tuner's estimate, made just before the trial (what its INFEASIBLE check compared). */
  estimateMB: number;
  components: Record<string, number>;
  /** RSS when the trial started and its peak (VmHWM since then), MiB. */
  startRssMB: number;
  peakRssMB: number;
  /** The wasm backend's heap after the trial (0 on other backends), MiB. */
  wasmHeapMB: number;
}

export interface TrialMemoryRun {
  backend: BackendName;
  /** RSS after the backend was selected, before any model, MiB. */
  baselineRssMB: number;
  /** Peak RSS before the first trial (after the time plan, when it ran), MiB. */
  beforeTrialsPeakMB: number;
  rows: TrialMemoryRow[];
}

function statusMB(field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'));
  if (!match) throw new Error(`/proc/self/status has no ${field}: per-trial peaks need Linux`);
  return Number(match[1]) / 1024;
}

/** Sets the kernel's high-water mark to the current RSS ("5": reset the peak, touch nothing else). */
function resetPeak(): void {
  writeFileSync('/proc/self/clear_refs', '5');
}

/** An oracle that schedules the given values in order, each for `epochs`. */
class ListOracle extends Oracle {
  readonly algorithm = 'list';
  constructor(
    config: LoadedConfig,
    private readonly list: HyperparameterValues[],
    private readonly epochs: number,
  ) {
    super(SearchSpace.fromConfig(config.tuner.space), objectiveOf(config), config.seed);
  }
  protected schedule(): OracleDecision {
    const values = this.list[this.trials.length];
    if (!values) return { kind: 'done', reason: 'list done' };
    return { kind: 'run', trial: this.addTrial({ values, epochs: this.epochs, initialEpoch: 0, parentId: null }) };
  }
}

export interface TrialMemoryOptions {
  config: LoadedConfig;
  backend: BackendName;
  trials: HyperparameterValues[];
  epochs: number;
  /** Run the time plan first, as `galactic tune` does (it measures rates unless they are cached). */
  timePlan: boolean;
  output?: Output;
}

export async function measureTrialMemory(options: TrialMemoryOptions): Promise<TrialMemoryRun> {
  const { config, trials, epochs } = options;
  const output = options.output ?? new Output({ quiet: true });
  const plan = planMemory(config, measureData(config));
  const prepared = await runPrepare(config, { output, plan });
  const backend = await selectBackend(options.backend, output, { threads: config.threads });
  const baselineRssMB = statusMB('VmRSS');
  if (options.timePlan) {
    await announceTime(config, output, {
      backend,
      cacheDir: prepared.cacheDir,
      cacheKey: prepared.cacheKey,
      search: {},
      plan,
      what: 'galactic tune',
    });
  }
  const beforeTrialsPeakMB = statusMB('VmHWM');
  const manifest = loadManifest(prepared.cacheDir);
  const trainRecords = Math.ceil(manifest.totals.images * (1 - config.split.validation));
  const rows: TrialMemoryRow[] = [];
  let pending: Omit<TrialMemoryRow, 'status' | 'startRssMB' | 'peakRssMB' | 'wasmHeapMB'> | null = null;
  await tuneOnCache({
    config,
    cacheDir: prepared.cacheDir,
    cacheKey: prepared.cacheKey,
    backend,
    plan,
    output,
    overwrite: true,
    tunerLoop: (tunerOptions) =>
      runTuner({
        ...tunerOptions,
        createOracle: () => new ListOracle(config, trials, epochs),
        estimate: (values) => {
          const answer = tunerOptions.estimate(values);
          // the same call the tuner's check made, for its components
          const e = estimateTrialMemory({
            values,
            config,
            plan,
            numClasses: manifest.classes.length,
            trainRecords,
            backend: backend.name,
            state: processMemoryState(),
          });
          pending = {
            trialId: '',
            values,
            parameters: e.parameters,
            estimateMB: answer.estimateMB,
            components: Object.fromEntries(
              e.components.map((c: EstimateComponent) => [c.name, Math.round(c.bytes / MiB)]),
            ),
          };
          if (answer.refusal)
            rows.push({
              ...pending,
              status: `INFEASIBLE: ${answer.refusal}`,
              startRssMB: 0,
              peakRssMB: 0,
              wasmHeapMB: 0,
            });
          return answer;
        },
      }),
    wrapRunner: (inner) => ({
      run: async (request) => {
        const startRssMB = statusMB('VmRSS');
        resetPeak();
        let status = 'completed';
        try {
          return await inner.run(request);
        } catch (error) {
          status = `failed: ${(error as Error).message}`;
          throw error;
        } finally {
          rows.push({
            ...pending!,
            trialId: request.trialId,
            status,
            startRssMB: Math.round(startRssMB),
            peakRssMB: Math.round(statusMB('VmHWM')),
            wasmHeapMB: Math.round(wasmHeapBytes() / MiB),
          });
        }
      },
    }),
  });
  return {
    backend: backend.name,
    baselineRssMB: Math.round(baselineRssMB),
    beforeTrialsPeakMB: Math.round(beforeTrialsPeakMB),
    rows,
  };
}
