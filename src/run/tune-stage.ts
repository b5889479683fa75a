import type { MemoryPlan } from '../memory/plan.ts';
import type { LoadedConfig } from '../config/load.ts';
import type { HyperparameterValues } from '../model/architecture.ts';
import type { BackendChoice } from '../model/backend.ts';
import type { Output, Progress } from '../core/console.ts';
import type { TrialRunner, TrialRunRequest, TrialRunResult } from '../tune/trial-runner.ts';
import { tuneOnCache, type TuneOnCacheOptions } from '../tune/tune-on-cache.ts';
import type { TuneSummary } from '../tune/tuner.ts';

/**
 * The run's tune stage: the tuner on the prepared cache with the config's search. The tuner's
 * persistence decides what is left: a finished search runs nothing (the stage counts as skipped),
 * an interrupted one resumes its unfinished trial from the last saved epoch, and a folder holding
 * a different search is refused with the differences named.
 */

export interface TuneStageSummary {
  skipped: boolean;
  tuningDir: string;
  trials: number;
  completed: number;
  failed: number;
  infeasible: number;
  ranNow: number;
  endReason: string;
  best: TuneSummary['best'];
  /**
   * What the final training uses: the best trial's values, or {} (the config's model defaults) when no trial scored.
   */
  bestValues: HyperparameterValues;
  /** Training images × epochs trained by this stage (for the throughput chart). */
  imageEpochs: number;
}

export interface TuneStageOptions {
  cacheDir: string;
  cacheKey: string;
  output: Output;
  ensureBackend: () => Promise<BackendChoice>;
  plan: MemoryPlan;
  /** Aborting stops the search after the current epoch, saved; the next run resumes it. */
  signal?: AbortSignal;
  overwrite?: boolean;
  /** Replaces the tuner loop (the distributed chief of `run --queue`). */
  tunerLoop?: TuneOnCacheOptions['tunerLoop'];
}

export async function tuneStage(config: LoadedConfig, options: TuneStageOptions): Promise<TuneStageSummary> {
  const { output, cacheDir } = options;
  const backend = await options.ensureBackend();
  let runner: ProgressTrialRunner | null = null;
  const { summary, trainRecords } = await tuneOnCache({
    config,
    cacheDir,
    cacheKey: options.cacheKey,
    backend,
    plan: options.plan,
    output,
    overwrite: options.overwrite,
    signal: options.signal,
    tunerLoop: options.tunerLoop,
    trainerOutput: output,
    batchBarDepth: 3, // under run's overall bar, the trials bar and the trial's epochs bar
    wrapRunner: (inner) => (runner = new ProgressTrialRunner(inner, output, config.tuner.maxTrials)),
  });
  const progress = runner as ProgressTrialRunner | null;
  progress?.finish(summary);
  if (!summary.best)
    output.warn(`no tuning trial scored (${summary.failed} failed); training with the config's model defaults`);
  return {
    skipped: summary.ranNow === 0,
    tuningDir: summary.tuningDir,
    trials: summary.trials,
    completed: summary.completed,
    failed: summary.failed,
    infeasible: summary.infeasible,
    ranNow: summary.ranNow,
    endReason: summary.endReason,
    best: summary.best,
    bestValues: summary.best?.values ?? {},
    imageEpochs: (progress?.epochsRun ?? 0) * trainRecords,
  };
}

/** Wraps the real runner with a trials bar and, under it, an epochs bar for the running trial. */
class ProgressTrialRunner implements TrialRunner {
  epochsRun = 0;
  private trialsBar: Progress | null = null;
  private finished = 0;

  constructor(
    private readonly inner: TrialRunner,
    private readonly output: Output,
    private readonly maxTrials: number,
  ) {}

  async run(request: TrialRunRequest): Promise<TrialRunResult> {
    this.trialsBar ??= this.output.progress('tune', this.maxTrials, 'trials', { everyUpdate: true, depth: 1 });
    const epochs = this.output.progress(`trial ${request.trialId}`, request.epochs, 'epochs', {
      everyUpdate: true,
      depth: 2,
    });
    if (request.initialEpoch > 0) epochs.update(request.initialEpoch, { resumed: 'yes' });
    try {
      return await this.inner.run({
        ...request,
        onEpochEnd: async (info) => {
          this.epochsRun += 1;
          const r = info.record;
          epochs.update(r.epoch, {
            loss: r.loss.toFixed(4),
            acc: r.accuracy.toFixed(3),
            val_loss: r.val_loss.toFixed(4),
            val_acc: r.val_accuracy.toFixed(3),
          });
          return request.onEpochEnd(info);
        },
      });
    } finally {
      epochs.clear();
      this.finished += 1;
      this.trialsBar.update(this.finished, { last: request.trialId });
    }
  }

  finish(summary: TuneSummary): void {
    this.trialsBar?.clear();
    this.trialsBar = null;
    if (summary.ranNow > 0)
      this.output.info(
        `tune: ${summary.completed}/${summary.trials} trials completed; best ${summary.best ? `${summary.best.score.toFixed(4)} (trial ${summary.best.trialId})` : 'none'}`,
      );
  }
}
