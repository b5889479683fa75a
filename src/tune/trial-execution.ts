import { cpSync, existsSync } from 'node:fs';
import { replaceDirAtomicSync } from '../core/atomic-file.ts';
import { classifyTrialError, errorRecord } from './trial-failure.ts';
import type { Output } from '../core/console.ts';
import { shouldStopEarly, TRIAL_MONITOR } from './early-stopping.ts';
import type { HyperparameterValues } from './hyperparameters.ts';
import { isBetter, type Objective, type OracleTrial } from './oracle.ts';
import type { EpochRecord, TrialRunner } from './trial-runner.ts';
import type { TrialRecord, TrialStore } from './trial-store.ts';

/**
 * One trial from memory check to final status: estimate its peak memory (INFEASIBLE if it cannot
 * fit), find where it starts (its own latest checkpoint, its Hyperband parent's best, or fresh
 * weights), run it through the TrialRunner and persist every epoch in crash-safe order:
 * checkpoint folder named by the epoch → best-epoch copy → trial.json naming both → prune old folders.
 */

export interface TrialExecutionOptions {
  runner: TrialRunner;
  /**
   * A trial's peak-memory estimate in MB, made before its model is built, and why the memory plan
   * refuses it (memory/refusals.ts: over memory.limitMB, or past the wasm heap), or null; may throw
   * for values that cannot make a model.
   */
  estimate: (values: HyperparameterValues) => { estimateMB: number; refusal: string | null };
  /** Per-trial early-stopping patience (tuner.patience); null = off. */
  patience: number | null;
  output?: Output;
  /** Aborting stops after the current epoch; the trial is saved as STOPPED. */
  signal?: AbortSignal;
  /** How many times a transient failure is retried from the last saved epoch (tuner.trialRetries). */
  trialRetries?: number;
}

export function newTrialRecord(plan: OracleTrial): TrialRecord {
  return {
    id: plan.id,
    values: plan.values,
    status: 'RUNNING',
    metrics: [],
    bestEpoch: null,
    score: null,
    seconds: 0,
    peakRssMB: null,
    epochs: plan.epochs,
    initialEpoch: plan.initialEpoch,
    parentId: plan.parentId,
    ...(plan.bracket !== undefined ? { bracket: plan.bracket, round: plan.round } : {}),
    checkpoint: null,
    bestCheckpoint: null,
  };
}

/** Where a trial starts: its own latest checkpoint (resume), its parent's best (promotion), or fresh weights. */
function startingPoint(
  store: TrialStore,
  record: TrialRecord,
  output?: Output,
): { initialEpoch: number; checkpoint: string | null } {
  if (record.checkpoint) {
    return {
      initialEpoch: record.initialEpoch + record.metrics.length,
      checkpoint: store.checkpointPath(record.id, record.checkpoint),
    };
  }
  if (record.parentId !== null) {
    const parent = store.readTrial(record.parentId);
    if (parent?.bestCheckpoint && existsSync(store.checkpointPath(parent.id, parent.bestCheckpoint))) {
      return { initialEpoch: record.initialEpoch, checkpoint: store.checkpointPath(parent.id, parent.bestCheckpoint) };
    }
    output?.warn(
      `trial ${record.id}: the best checkpoint of its parent trial ${record.parentId} is missing; training it from scratch`,
    );
    record.initialEpoch = 0;
  }
  return { initialEpoch: record.initialEpoch, checkpoint: null };
}

function objectiveValue(record: EpochRecord, objective: Objective): number {
  return record[objective.name];
}

function finish(record: TrialRecord, status: TrialRecord['status'], reason?: string): TrialRecord {
  record.status = status;
  if (reason !== undefined) record.reason = reason;
  else delete record.reason;
  return record;
}

export async function executeTrial(
  store: TrialStore,
  plan: OracleTrial,
  record: TrialRecord,
  objective: Objective,
  options: TrialExecutionOptions,
): Promise<TrialRecord> {
  const started = Date.now();
  const secondsBefore = record.seconds;
  const elapsed = () => secondsBefore + (Date.now() - started) / 1000;

  if (refusedBeforeModel(store, plan, record, options, elapsed)) return record;
  const retries = options.trialRetries ?? 2;
  for (let attempt = 0; ; attempt++) {
    try {
      return await runTrial(store, plan, record, objective, options, elapsed);
    } catch (error) {
      record.seconds = elapsed();
      if (settleFailure(store, record, error, { attempt, retries, output: options.output }) === 'retry') continue;
      return record;
    }
  }
}

/** The memory check before any model exists: whether the trial was recorded INFEASIBLE. */
function refusedBeforeModel(
  store: TrialStore,
  plan: OracleTrial,
  record: TrialRecord,
  options: TrialExecutionOptions,
  elapsed: () => number,
): boolean {
  let estimate: { estimateMB: number; refusal: string | null };
  try {
    estimate = options.estimate(plan.values);
  } catch (error) {
    record.seconds = elapsed();
    store.writeTrial(
      finish(record, 'INFEASIBLE', `cannot build a model from these values: ${(error as Error).message}`),
    );
    return true;
  }
  record.estimateMB = estimate.estimateMB;
  const refusal = estimate.refusal;
  if (!refusal) return false;
  record.seconds = elapsed();
  store.writeTrial(finish(record, 'INFEASIBLE', refusal));
  return true;
}

/**
 * What an attempt's failure makes of the trial: a transient one is retried (up to `retries`), a user's error
 * is rethrown, a bug is kept with the trial and rethrown with its stack, anything else ends it INFEASIBLE or FAILED.
 */
function settleFailure(
  store: TrialStore,
  record: TrialRecord,
  error: unknown,
  attempts: { attempt: number; retries: number; output?: Output },
): 'retry' | 'settled' {
  const { attempt, retries, output } = attempts;
  const kind = classifyTrialError(error);
  if (kind === 'transient' && attempt < retries) {
    output?.warn(
      `trial ${record.id}: ${(error as Error).message} (a transient failure); retrying from its last saved epoch (${attempt + 1} of ${retries})`,
    );
    return 'retry';
  }
  if (kind === 'user') throw error;
  if (kind === 'bug') {
    // fatal: kept with the trial (the next run retries it from its last saved epoch), then the stack is printed
    record.error = errorRecord(error);
    store.writeTrial(finish(record, 'FAILED', `unexpected error (a bug): ${(error as Error).message}`));
    throw error;
  }
  const reason = (error as Error).message || String(error);
  finish(
    record,
    kind === 'infeasible' ? 'INFEASIBLE' : 'FAILED',
    kind === 'infeasible' ? `does not fit: ${reason}` : `${reason} (after ${retries} retries)`,
  );
  store.writeTrial(record);
  store.pruneCheckpoints(record);
  return 'settled';
}

/** One attempt: from the trial's starting point to its end, each epoch saved as it ends. */
async function runTrial(
  store: TrialStore,
  plan: OracleTrial,
  record: TrialRecord,
  objective: Objective,
  options: TrialExecutionOptions,
  elapsed: () => number,
): Promise<TrialRecord> {
  const { output } = options;
  const start = startingPoint(store, record, output);
  if (
    record.initialEpoch + record.metrics.length >= record.epochs ||
    shouldStopEarly(record.metrics, TRIAL_MONITOR, options.patience)
  ) {
    // Killed after its last epoch was saved but before it was marked finished.
    record.checkpoint = null;
    store.writeTrial(finish(record, 'COMPLETED'));
    store.pruneCheckpoints(record);
    return record;
  }
  record.status = 'RUNNING';
  delete record.error;
  delete record.reason;
  store.writeTrial(record);
  if (start.checkpoint && record.metrics.length > 0) {
    output?.info(`trial ${record.id}: resuming from epoch ${start.initialEpoch} of ${record.epochs}`);
  }

  const progress: AttemptProgress = { peakRss: record.peakRssMB ?? 0, nanAt: null, interrupted: false };
  try {
    const result = await options.runner.run({
      trialId: record.id,
      values: plan.values,
      epochs: record.epochs,
      initialEpoch: start.initialEpoch,
      checkpoint: start.checkpoint,
      onEpochEnd: ({ record: epoch, saveCheckpoint }) =>
        saveEpoch(store, record, epoch, saveCheckpoint, { objective, options, elapsed, progress }),
    });
    record.seconds = elapsed();
    record.peakRssMB = Math.round(progress.peakRss);
    if (result.stopReason === 'nan-loss' || progress.nanAt !== null) {
      const at = progress.nanAt ?? record.initialEpoch + record.metrics.length;
      finish(record, 'FAILED', `loss became NaN at epoch ${at}`);
    } else if (progress.interrupted) {
      finish(record, 'STOPPED', 'interrupted by the user');
    } else {
      finish(record, 'COMPLETED');
      // finished: only the best checkpoint matters now (Hyperband promotion); pruning removes the latest
      record.checkpoint = null;
    }
  } catch (error) {
    record.peakRssMB = progress.peakRss > 0 ? Math.round(progress.peakRss) : null;
    throw error;
  }
  store.writeTrial(record);
  store.pruneCheckpoints(record);
  return record;
}

/** What an attempt's epochs have seen so far. */
interface AttemptProgress {
  peakRss: number;
  /** The epoch whose loss became NaN. */
  nanAt: number | null;
  interrupted: boolean;
}

/**
 * One finished epoch, in crash-safe order: its checkpoint, the best-epoch copy when it is the best,
 * then trial.json naming both, then old folders pruned. Answers whether training goes on.
 */
async function saveEpoch(
  store: TrialStore,
  record: TrialRecord,
  epoch: EpochRecord,
  saveCheckpoint: (dir: string) => Promise<void>,
  attempt: { objective: Objective; options: TrialExecutionOptions; elapsed: () => number; progress: AttemptProgress },
): Promise<'stop' | 'continue'> {
  const { objective, options, progress } = attempt;
  record.metrics.push(epoch);
  const done = record.initialEpoch + record.metrics.length;
  progress.peakRss = Math.max(progress.peakRss, epoch.peakRssMB ?? 0, process.memoryUsage().rss / (1024 * 1024));
  if (Number.isNaN(epoch.loss)) {
    progress.nanAt = done;
    return 'stop';
  }
  const latest = `checkpoint-${done}`;
  await saveCheckpoint(store.checkpointPath(record.id, latest));
  record.checkpoint = latest;
  const value = objectiveValue(epoch, objective);
  if (isBetter(value, record.score, objective.direction)) {
    record.score = value;
    record.bestEpoch = done;
    const best = `best-${done}`;
    copyCheckpoint(store.checkpointPath(record.id, latest), store.checkpointPath(record.id, best));
    record.bestCheckpoint = best;
  }
  record.seconds = attempt.elapsed();
  record.peakRssMB = Math.round(progress.peakRss);
  store.writeTrial(record);
  store.pruneCheckpoints(record);
  if (options.signal?.aborted) {
    progress.interrupted = true;
    return 'stop';
  }
  return shouldStopEarly(record.metrics, TRIAL_MONITOR, options.patience) ? 'stop' : 'continue';
}

/**
 * Copies a checkpoint folder under a temp name, then renames it: a half-copied best checkpoint never carries the real
 * name.
 */
function copyCheckpoint(from: string, to: string): void {
  replaceDirAtomicSync(to, (temp) => cpSync(from, temp, { recursive: true }));
}
