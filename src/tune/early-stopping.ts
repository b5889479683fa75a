import type { Monitor } from '../train/early-stopping.ts';
import type { EpochRecord } from './trial-runner.ts';

/**
 * Per-trial early stopping, decided by the tuner from the trial's whole epoch history (so a
 * resumed trial stops exactly where an uninterrupted one would, which a callback restarted at
 * resume could not). Same rule as Keras' EarlyStopping with min_delta 0: stop once `patience`
 * epochs in a row brought no strict improvement of the monitored metric.
 */

/** The notebook's `EarlyStopping(patience=5)` used Keras' default monitor, val_loss. */
export const TRIAL_MONITOR: Monitor = 'val_loss';

export function monitorDirection(monitor: Monitor): 'max' | 'min' {
  return monitor.endsWith('loss') ? 'min' : 'max';
}

/** Epochs since the best epoch of `history` (0 when the last epoch is the best). */
export function epochsSinceBest(history: readonly EpochRecord[], monitor: Monitor): number {
  const direction = monitorDirection(monitor);
  let bestIndex = -1;
  let best = Number.NaN;
  history.forEach((record, i) => {
    const value = record[monitor];
    if (Number.isNaN(value)) return;
    if (bestIndex < 0 || (direction === 'max' ? value > best : value < best)) {
      best = value;
      bestIndex = i;
    }
  });
  return bestIndex < 0 ? history.length : history.length - 1 - bestIndex;
}

export function shouldStopEarly(history: readonly EpochRecord[], monitor: Monitor, patience: number | null): boolean {
  if (patience === null || history.length === 0) return false;
  const since = epochsSinceBest(history, monitor);
  return since > 0 && since >= patience;
}
