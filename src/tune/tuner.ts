import { cpSync, existsSync, renameSync, rmSync } from 'node:fs';
import { UserError } from '../core/errors.ts';
import type { Output } from '../report/output.ts';
import { shouldStopEarly, TRIAL_MONITOR } from './early-stopping.ts';
import { collectHeap } from './heap-collection.ts';
import type { HyperparameterValues } from './hyperparameters.ts';
import { acquireTunerLock } from './lock.ts';
import { isBetter, type Objective, type Oracle, type OracleStateBase, type OracleTrial } from './oracle.ts';
import { searchDifferences, TuningDirMismatchError } from './search-setup.ts';
import type { EpochRecord, TrialRunner } from './trial-runner.ts';
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

export class TuneInterruptedError extends UserError {
  constructor(trialId: string, epochs: number) {
    super(`tuning interrupted during trial ${trialId} after epoch ${epochs}; its checkpoint is saved. Rerun 'galactic tune' to resume it.`, 130);
  }
}

export interface TunerOptions {
  dir: string;
  search: SearchDescription;
  /** Builds the oracle, from saved state when resuming. */
  createOracle: (state?: OracleStateBase) => Oracle;
  runner: TrialRunner;
  /** Peak-memory estimate of a trial in MB, made before its model is built; may throw for values that cannot make a model. */
  estimateMB: (values: HyperparameterValues) => number;
  limitMB: number;
  /** Why the backend cannot hold a trial whatever the budget (e.g. wasm's 4 GiB heap), or null. */
  backendRefusal?: (values: HyperparameterValues) => string | null;
  overwrite?: boolean;
  output?: Output;
  /** Aborting stops after the current epoch; the trial is saved as STOPPED and resumes on the next run. */
  signal?: AbortSignal;
  maxConsecutiveFailures?: number;
  leaderboardSize?: number;
}

export interface LeaderboardEntry {
  trialId: string;
  values: HyperparameterValues;
  score: number;
  bestEpoch: number | null;
  epochs: number;
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

function openOracle(store: TrialStore, options: TunerOptions): Oracle {
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
  const objective: Objective = { name: options.search.objective as Objective['name'], direction: options.search.direction };
  const maxFailures = options.maxConsecutiveFailures ?? 3;
  let consecutiveFailures = 0;
  let ranNow = 0;
  let endReason = '';

  for (;;) {
    const decision = oracle.next();
    if (decision.kind === 'done') {
      endReason = decision.reason;
      break;
    }
    const plan = decision.trial;
    if (options.signal?.aborted) throw new TuneInterruptedError(plan.id, plan.initialEpoch);
    // The schedule (and the generator position) reaches disk before the trial starts.
    store.writeOracle(options.search, oracle.getState());

    let record = store.readTrial(plan.id) ?? newRecord(plan);
    if (record.status === 'RUNNING' || record.status === 'STOPPED') {
      ranNow++;
      record = await runTrial(store, plan, record, objective, options);
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

    if (record.status === 'FAILED') {
      consecutiveFailures++;
      if (consecutiveFailures >= maxFailures) throw new TooManyFailuresError(consecutiveFailures, record, options.dir);
    } else if (record.status === 'COMPLETED') {
      consecutiveFailures = 0;
    }
  }

  const summary = summarize(store, oracle, objective, options, ranNow, endReason);
  if (summary.best) {
    const best: BestHyperparameters = { values: summary.best.values, score: summary.best.score, trialId: summary.best.trialId, objective: objective.name };
    store.writeBestHp(best);
  }
  return summary;
}

function newRecord(plan: OracleTrial): TrialRecord {
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
function startingPoint(store: TrialStore, record: TrialRecord, output?: Output): { initialEpoch: number; checkpoint: string | null } {
  if (record.checkpoint) {
    return { initialEpoch: record.initialEpoch + record.metrics.length, checkpoint: store.checkpointPath(record.id, record.checkpoint) };
  }
  if (record.parentId !== null) {
    const parent = store.readTrial(record.parentId);
    if (parent?.bestCheckpoint && existsSync(store.checkpointPath(parent.id, parent.bestCheckpoint))) {
      return { initialEpoch: record.initialEpoch, checkpoint: store.checkpointPath(parent.id, parent.bestCheckpoint) };
    }
    output?.warn(`trial ${record.id}: the best checkpoint of its parent trial ${record.parentId} is missing; training it from scratch`);
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

async function runTrial(store: TrialStore, plan: OracleTrial, record: TrialRecord, objective: Objective, options: TunerOptions): Promise<TrialRecord> {
  const { output } = options;
  const started = Date.now();
  const secondsBefore = record.seconds;
  const elapsed = () => secondsBefore + (Date.now() - started) / 1000;

  // Memory check before any model exists.
  let estimateMB: number;
  try {
    estimateMB = options.estimateMB(plan.values);
  } catch (error) {
    record.seconds = elapsed();
    store.writeTrial(finish(record, 'FAILED', `cannot build a model from these values: ${(error as Error).message}`));
    return record;
  }
  record.estimateMB = estimateMB;
  const refusal = estimateMB > options.limitMB
    ? `estimated peak ${estimateMB} MB exceeds memory.limitMB ${options.limitMB}`
    : (options.backendRefusal?.(plan.values) ?? null);
  if (refusal) {
    record.seconds = elapsed();
    store.writeTrial(finish(record, 'INFEASIBLE', refusal));
    return record;
  }

  const start = startingPoint(store, record, output);
  if (record.initialEpoch + record.metrics.length >= record.epochs || shouldStopEarly(record.metrics, TRIAL_MONITOR, options.search.patience)) {
    // Killed after its last epoch was saved but before it was marked finished.
    store.writeTrial(finish(record, 'COMPLETED'));
    return record;
  }
  record.status = 'RUNNING';
  store.writeTrial(record);
  if (start.checkpoint && record.metrics.length > 0) {
    output?.info(`trial ${record.id}: resuming from epoch ${start.initialEpoch} of ${record.epochs}`);
  }

  let peakRss = record.peakRssMB ?? 0;
  let nanAt: number | null = null;
  let interrupted = false;
  try {
    const result = await options.runner.run({
      trialId: record.id,
      values: plan.values,
      epochs: record.epochs,
      initialEpoch: start.initialEpoch,
      checkpoint: start.checkpoint,
      onEpochEnd: async ({ record: epoch, saveCheckpoint }) => {
        record.metrics.push(epoch);
        const done = record.initialEpoch + record.metrics.length;
        peakRss = Math.max(peakRss, epoch.peakRssMB ?? 0, process.memoryUsage().rss / (1024 * 1024));
        if (Number.isNaN(epoch.loss)) {
          nanAt = done;
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
        record.seconds = elapsed();
        record.peakRssMB = Math.round(peakRss);
        store.writeTrial(record);
        store.pruneCheckpoints(record);
        if (options.signal?.aborted) {
          interrupted = true;
          return 'stop';
        }
        return shouldStopEarly(record.metrics, TRIAL_MONITOR, options.search.patience) ? 'stop' : 'continue';
      },
    });
    record.seconds = elapsed();
    record.peakRssMB = Math.round(peakRss);
    if (result.stopReason === 'nan-loss' || nanAt !== null) {
      finish(record, 'FAILED', `loss became NaN at epoch ${nanAt ?? record.initialEpoch + record.metrics.length}`);
    } else if (interrupted) {
      finish(record, 'STOPPED', 'interrupted by the user');
    } else {
      finish(record, 'COMPLETED');
      // finished: only the best checkpoint matters now (Hyperband promotion); pruning removes the latest
      record.checkpoint = null;
    }
  } catch (error) {
    record.seconds = elapsed();
    record.peakRssMB = peakRss > 0 ? Math.round(peakRss) : null;
    finish(record, 'FAILED', (error as Error).message || String(error));
  }
  store.writeTrial(record);
  store.pruneCheckpoints(record);
  return record;
}

/** Copies a checkpoint folder under a temp name, then renames it: a half-copied best checkpoint never carries the real name. */
function copyCheckpoint(from: string, to: string): void {
  const temp = `${to}.tmp-${process.pid}`;
  rmSync(temp, { recursive: true, force: true });
  cpSync(from, temp, { recursive: true });
  rmSync(to, { recursive: true, force: true });
  renameSync(temp, to);
}

function describeTrial(output: Output | undefined, record: TrialRecord, objective: Objective): void {
  if (!output) return;
  const values = formatValues(record.values);
  const where = record.parentId !== null ? ` (from trial ${record.parentId}, epochs ${record.initialEpoch}->${record.epochs})` : '';
  if (record.status === 'COMPLETED') {
    output.info(`trial ${record.id}${where}: ${objective.name} ${record.score?.toFixed(4) ?? 'n/a'} at epoch ${record.bestEpoch ?? '-'} | ${values} | ${record.seconds.toFixed(1)} s, peak ${record.peakRssMB ?? '?'} MB (est. ${record.estimateMB ?? '?'} MB)`);
  } else {
    output.info(`trial ${record.id}${where}: ${record.status} (${record.reason ?? ''}) | ${values}`);
  }
}

export function formatValues(values: HyperparameterValues): string {
  return Object.keys(values).sort()
    .map((k) => `${k}=${typeof values[k] === 'number' && !Number.isInteger(values[k]) ? (values[k] as number).toPrecision(3) : String(values[k])}`)
    .join(' ');
}

function summarize(store: TrialStore, oracle: Oracle, objective: Objective, options: TunerOptions, ranNow: number, endReason: string): TuneSummary {
  const records = oracle.allTrials.map((t) => store.readTrial(t.id)).filter((r): r is TrialRecord => r !== null);
  const completed = records.filter((r) => r.status === 'COMPLETED' && r.score !== null);
  completed.sort((a, b) => (isBetter(a.score, b.score, objective.direction) ? -1 : isBetter(b.score, a.score, objective.direction) ? 1 : a.id.localeCompare(b.id)));
  const leaderboard = completed.slice(0, options.leaderboardSize ?? 10).map((r) => ({
    trialId: r.id, values: r.values, score: r.score as number, bestEpoch: r.bestEpoch, epochs: r.initialEpoch + r.metrics.length,
  }));
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

/** The leaderboard as aligned lines for stderr. */
export function formatLeaderboard(summary: TuneSummary, objective: string): string {
  if (summary.leaderboard.length === 0) return 'no completed trials';
  const lines = [`rank  trial  ${objective.padEnd(12)}  epochs  values`];
  summary.leaderboard.forEach((e, i) => {
    lines.push(`${String(i + 1).padStart(4)}  ${e.trialId.padEnd(5)}  ${e.score.toFixed(4).padEnd(12)}  ${String(e.epochs).padStart(6)}  ${formatValues(e.values)}`);
  });
  return lines.join('\n');
}
