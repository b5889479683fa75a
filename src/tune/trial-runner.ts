import type { EpochRecord } from '../train/trainer.ts';
import type { HyperparameterValues } from './hyperparameters.ts';

/**
 * The seam between the tuner and training. The tuner (oracle, persistence, resume, lock, memory
 * checks) only ever talks to a TrialRunner; `trainer-runner.ts` adapts the real trainer, and the
 * tests use a fake one, so everything above training is testable without tfjs.
 */

// One finished epoch, as the trainer reports it (docs/interfaces.md §6); a type-only import, so tfjs is not loaded.
export type { EpochRecord };

export interface EpochEndInfo {
  record: EpochRecord;
  /** Writes the model's weights and optimizer state to `dir` (atomic). */
  saveCheckpoint: (dir: string) => Promise<void>;
}

/** What the tuner wants after an epoch: go on, or stop (early stopping or a user interrupt). */
export type EpochVerdict = 'continue' | 'stop';

export interface TrialRunRequest {
  trialId: string;
  values: HyperparameterValues;
  /** Train until this epoch count. */
  epochs: number;
  /** Epochs already done (resume, or the parent's epochs for a Hyperband promotion). */
  initialEpoch: number;
  /** A folder written by `saveCheckpoint`: start from its weights and optimizer state; null = fresh weights. */
  checkpoint: string | null;
  /** Called after every epoch; the runner ends the trial when it answers 'stop'. */
  onEpochEnd: (info: EpochEndInfo) => Promise<EpochVerdict>;
}

export interface TrialRunResult {
  /** Why training ended: all epochs done, the tuner said stop, or the loss became NaN. */
  stopReason: 'completed' | 'stopped' | 'early-stopping' | 'nan-loss';
}

export interface TrialRunner {
  /**
   * Trains one trial. Must release everything it allocated (models, optimizers, datasets) before
   * it resolves or rejects: the tuner runs many trials in one process. Throws on failure.
   */
  run(request: TrialRunRequest): Promise<TrialRunResult>;
}
