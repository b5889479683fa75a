import type { LoadedConfig } from '../config/load.ts';
import type { FeedSettings } from '../data/feed.ts';
import type { Output } from '../core/console.ts';
import { disposeModel, trainClassifier, type TrainerResult } from '../train/trainer.ts';
import type { TrialRunner, TrialRunRequest, TrialRunResult } from './trial-runner.ts';

/**
 * The real TrialRunner: one trial = one `trainClassifier` call on the cached shards, through the
 * same feed as `galactic train`. The tuner owns early stopping (it sees the whole history across
 * resumes), so the trainer's own is off, and nothing is restored at the end: the best weights
 * are already saved as the trial's best checkpoint.
 */

export interface TrainerRunnerOptions {
  config: LoadedConfig;
  cacheDir: string;
  feedSettings?: FeedSettings;
  output?: Output;
}

export class TrainerTrialRunner implements TrialRunner {
  constructor(private readonly options: TrainerRunnerOptions) {}

  async run(request: TrialRunRequest): Promise<TrialRunResult> {
    const { config, cacheDir, feedSettings, output } = this.options;
    let result: TrainerResult | null = null;
    try {
      result = await trainClassifier({
        config,
        cacheDir,
        values: request.values,
        epochs: request.epochs,
        initialEpoch: request.initialEpoch,
        checkpoint: request.checkpoint,
        patience: null,
        restoreBestWeights: false,
        feedSettings,
        onEpochEnd: ({ record, saveCheckpoint }) => request.onEpochEnd({ record, saveCheckpoint }),
        output,
      });
      // The trainer reports the tuner's 'stop' as early stopping; both mean "ended on request".
      return { stopReason: result.stopReason === 'early-stopping' ? 'stopped' : result.stopReason };
    } finally {
      // Trials share one process: free the model and Adam's moment variables before the next.
      if (result) disposeModel(result.model);
    }
  }
}
