import { UserError } from '../core/errors.ts';
import { invokedCommand } from '../core/interrupt.ts';
import { collectHeap } from './heap-collection.ts';
import type { HyperparameterValues } from './hyperparameters.ts';
import { describeTrial, rankTrials, type LeaderboardEntry } from './leaderboard.ts';
import { acquireTunerLock } from './tuner-lock.ts';
import type { Objective, Oracle, OracleStateBase } from './oracle.ts';
import { searchDifferences, TuningDirMismatchError } from './search-setup.ts';
import { executeTrial, newTrialRecord, type TrialExecutionOptions } from './trial-execution.ts';
import { TrialStore, type BestHyperparameters, type SearchDescription, type TrialRecord } from './trial-store.ts';

/**
 * The tuner loop: ask the oracle for a trial, check it fits the memory budget, run it through the
 * TrialRunner while persisting every epoch (metrics, latest and best checkpoints), report the
 * outcome, repeat. Everything needed to continue after a SIGKILL is on disk before the next step
 * starts, so a rerun resumes the unfinished trial from its last epoch and then asks the restored
 * oracle, whose generator is where it was: the same trials as an uninterrupted run.
 */

export class TooManyFailuresError extends UserError {
  constructor(count: number, last: TrialRecord, dir: string) {
    super(
      `the search stopped: ${count} trials failed in a row (last: trial ${last.id}, ${last.reason ?? 'no reason recorded'}). ` +
        `Fix the cause (details in ${dir}/trial_${last.id}/trial.json), then rerun 'galactic tune' to continue where it stopped.`,
    );
  }
}

/** Failed trials in a row: a completed one ends the streak; at `max` the search stops. */
export class FailureStreak {
  private count = 0;
  constructor(
    private readonly max: number,
    private readonly dir: string,
  ) {}

  note(record: TrialRecord): void {
    if (record.status === 'FAILED') {
      this.count++;
      if (this.count >= this.max) throw new TooManyFailuresError(this.count, record, this.dir);
    } else if (record.status === 'COMPLETED') {
      this.count = 0;
    }
  }
}

export class TuneInterruptedError extends UserError {
  /** `epochs` null: interrupted before the trial started. */
  constructor(trialId: string, epochs: number | null) {
    super(
      epochs === null
        ? `tuning interrupted before trial ${trialId} started. Rerun '${invokedCommand()}' to continue.`
        : `tuning interrupted during trial ${trialId} after epoch ${epochs}; its checkpoint is saved. Rerun '${invokedCommand()}' to resume it.`,
      130,
    );
  }
}

export interface TunerOptions extends Omit<TrialExecutionOptions, 'patience'> {
  dir: string;
  /** The search; its patience is the per-trial early stopping. */
  search: SearchDescription;
  /** Builds the oracle, from saved state when resuming. */
  createOracle: (state?: OracleStateBase) => Oracle;
  overwrite?: boolean;
  maxConsecutiveFailures?: number;
  leaderboardSize?: number;
}

export interface TuneSummary {
  tuningDir: string;
  algorithm: string;
  /** Trials the oracle scheduled so far (all statuses). */
  trials: number;
  completed: number;
  failed: number;
  infeasible: number;
  /** Trials run (or resumed) by this invocation. */
  ranNow: number;
  best: { trialId: string; values: HyperparameterValues; score: number } | null;
  leaderboard: LeaderboardEntry[];
  endReason: string;
}

export async function runTuner(options: TunerOptions): Promise<TuneSummary> {
  const store = new TrialStore(options.dir);
  const lock = acquireTunerLock(options.dir, options.output);
  try {
    return await tuneLocked(store, options);
  } finally {
    lock.release();
  }
}

/** The oracle for the folder: fresh, or restored from oracle.json after checking it holds the same search. */
export function openOracle(
  store: TrialStore,
  options: Pick<TunerOptions, 'dir' | 'search' | 'createOracle' | 'overwrite'>,
): Oracle {
  if (options.overwrite) store.clear();
  const saved = store.readOracle();
  if (!saved) {
    if (store.readTrial(trialIdZero) !== null) {
      // trials without an oracle: a folder from elsewhere; refusing beats silently mixing them in
      throw new TuningDirMismatchError(options.dir, ['it has trial folders but no oracle.json']);
    }
    return options.createOracle();
  }
  const differences = searchDifferences(saved.search, options.search);
  if (differences.length > 0) throw new TuningDirMismatchError(options.dir, differences);
  return options.createOracle(saved.state);
}

const trialIdZero = '0000';

async function tuneLocked(store: TrialStore, options: TunerOptions): Promise<TuneSummary> {
  const output = options.output;
  const oracle = openOracle(store, options);
  const objective: Objective = {
    name: options.search.objective as Objective['name'],
    direction: options.search.direction,
  };
  const failures = new FailureStreak(options.maxConsecutiveFailures ?? 3, options.dir);
  let ranNow = 0;
  let endReason = '';

  for (;;) {
    const decision = oracle.next();
    if (decision.kind === 'done') {
      endReason = decision.reason;
      break;
    }
    const plan = decision.trial;
    if (options.signal?.aborted) throw new TuneInterruptedError(plan.id, null);
    // The schedule (and the generator position) reaches disk before the trial starts.
    store.writeOracle(options.search, oracle.getState());

    let record = store.readTrial(plan.id) ?? newTrialRecord(plan);
    // RUNNING/STOPPED: interrupted; FAILED with an error: stopped by a bug, retried after the fix
    if (record.status === 'RUNNING' || record.status === 'STOPPED' || record.error !== undefined) {
      ranNow++;
      record = await executeTrial(store, plan, record, objective, { ...options, patience: options.search.patience });
      collectHeap();
      if (record.status === 'STOPPED') {
        store.writeOracle(options.search, oracle.getState());
        throw new TuneInterruptedError(record.id, record.initialEpoch + record.metrics.length);
      }
    }
    // else: the trial finished but the process died before the oracle heard of it
    oracle.report(record.id, record.status as 'COMPLETED' | 'FAILED' | 'INFEASIBLE', record.score);
    store.writeOracle(options.search, oracle.getState());
    describeTrial(output, record, objective);
    failures.note(record);
  }

  return finishSearch(store, oracle, objective, options, ranNow, endReason);
}

/** The summary of a search that has ended, and its best_hp.json. */
export function finishSearch(
  store: TrialStore,
  oracle: Oracle,
  objective: Objective,
  options: Pick<TunerOptions, 'dir' | 'search' | 'leaderboardSize'>,
  ranNow: number,
  endReason: string,
): TuneSummary {
  const summary = summarize(store, oracle, objective, options, ranNow, endReason);
  if (summary.best) {
    const best: BestHyperparameters = {
      values: summary.best.values,
      score: summary.best.score,
      trialId: summary.best.trialId,
      objective: objective.name,
    };
    store.writeBestHp(best);
  }
  return summary;
}

function summarize(
  store: TrialStore,
  oracle: Oracle,
  objective: Objective,
  options: Pick<TunerOptions, 'dir' | 'search' | 'leaderboardSize'>,
  ranNow: number,
  endReason: string,
): TuneSummary {
  const records = oracle.allTrials.map((t) => store.readTrial(t.id)).filter((r): r is TrialRecord => r !== null);
  const leaderboard = rankTrials(records, objective, options.leaderboardSize ?? 10);
  const top = leaderboard[0];
  return {
    tuningDir: options.dir,
    algorithm: options.search.algorithm,
    trials: oracle.allTrials.length,
    completed: records.filter((r) => r.status === 'COMPLETED').length,
    failed: records.filter((r) => r.status === 'FAILED').length,
    infeasible: records.filter((r) => r.status === 'INFEASIBLE').length,
    ranNow,
    best: top ? { trialId: top.trialId, values: top.values, score: top.score } : null,
    leaderboard,
    endReason,
  };
}
