import type { LoadedConfig } from '../config/load.ts';
import type { FeedSettings } from '../data/feed.ts';
import type { Output, Progress } from '../core/console.ts';
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
  feedSettings: FeedSettings;
  /** Where the trainer's lines go, and a batch bar per epoch on a terminal; omitted, trials train silently. */
  output?: Output;
  /** Indentation of the batch bar under the caller's own bars (trials, epochs). */
  batchBarDepth?: number;
}

export class TrainerTrialRunner implements TrialRunner {
  constructor(private readonly options: TrainerRunnerOptions) {}

  async run(request: TrialRunRequest): Promise<TrialRunResult> {
    const { config, cacheDir, feedSettings, output } = this.options;
    let result: TrainerResult | null = null;
    let batches: Progress | null = null;
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
        onBatchEnd:
          output &&
          (({ epoch, batch, batches: total, loss, accuracy }) => {
            if (batch === 1) {
              batches?.clear();
              batches = output.progress(`trial ${request.trialId} epoch ${epoch}/${request.epochs}`, total, 'batches', {
                ttyOnly: true,
                depth: this.options.batchBarDepth ?? 1,
              });
            }
            batches?.update(batch, { loss: loss.toFixed(4), acc: accuracy.toFixed(3) });
          }),
        onEpochEnd: ({ record, saveCheckpoint }) => {
          batches?.clear();
          batches = null;
          return request.onEpochEnd({ record, saveCheckpoint });
        },
        output,
      });
      // The trainer reports the tuner's 'stop' as early stopping; both mean "ended on request".
      return { stopReason: result.stopReason === 'early-stopping' ? 'stopped' : result.stopReason };
    } finally {
      (batches as Progress | null)?.clear();
      // Trials share one process: free the model and Adam's moment variables before the next.
      if (result) disposeModel(result.model);
    }
  }
}
