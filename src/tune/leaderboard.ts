import { formatSeconds, type Output } from '../core/console.ts';
import type { HyperparameterValues } from './hyperparameters.ts';
import { isBetter, type Objective } from './oracle.ts';
import type { TrialRecord } from './trial-store.ts';

/** Ranking and the human lines: one per finished trial, and the leaderboard at the end. */

export interface LeaderboardEntry {
  trialId: string;
  values: HyperparameterValues;
  score: number;
  bestEpoch: number | null;
  epochs: number;
}

/** Completed trials, best first (ties: the earlier trial first). */
export function rankTrials(records: readonly TrialRecord[], objective: Objective, size: number): LeaderboardEntry[] {
  const completed = records.filter((r) => r.status === 'COMPLETED' && r.score !== null);
  completed.sort((a, b) =>
    isBetter(a.score, b.score, objective.direction)
      ? -1
      : isBetter(b.score, a.score, objective.direction)
        ? 1
        : a.id.localeCompare(b.id),
  );
  return completed.slice(0, size).map((r) => ({
    trialId: r.id,
    values: r.values,
    score: r.score as number,
    bestEpoch: r.bestEpoch,
    epochs: r.initialEpoch + r.metrics.length,
  }));
}

export function describeTrial(output: Output | undefined, record: TrialRecord, objective: Objective): void {
  if (!output) return;
  const values = formatValues(record.values);
  const where =
    record.parentId !== null ? ` (from trial ${record.parentId}, epochs ${record.initialEpoch}->${record.epochs})` : '';
  if (record.status === 'COMPLETED') {
    output.info(
      `trial ${record.id}${where}: ${objective.name} ${record.score?.toFixed(4) ?? 'n/a'} at epoch ${record.bestEpoch ?? '-'} | ${values} | ${formatSeconds(record.seconds)}, peak ${record.peakRssMB ?? '?'} MB (est. ${record.estimateMB ?? '?'} MB)`,
    );
  } else {
    output.info(`trial ${record.id}${where}: ${record.status} (${record.reason ?? ''}) | ${values}`);
  }
}

export function formatValues(values: HyperparameterValues): string {
  return Object.keys(values)
    .sort()
    .map(
      (k) =>
        `${k}=${typeof values[k] === 'number' && !Number.isInteger(values[k]) ? (values[k] as number).toPrecision(3) : String(values[k])}`,
    )
    .join(' ');
}

/** The leaderboard as aligned lines for stderr. */
export function formatLeaderboard(summary: { leaderboard: readonly LeaderboardEntry[] }, objective: string): string {
  if (summary.leaderboard.length === 0) return 'no completed trials';
  const lines = [`rank  trial  ${objective.padEnd(12)}  epochs  values`];
  summary.leaderboard.forEach((e, i) => {
    lines.push(
      `${String(i + 1).padStart(4)}  ${e.trialId.padEnd(5)}  ${e.score.toFixed(4).padEnd(12)}  ${String(e.epochs).padStart(6)}  ${formatValues(e.values)}`,
    );
  });
  return lines.join('\n');
}
