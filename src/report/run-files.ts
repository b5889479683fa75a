import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Timeline } from '../memory/timeline.ts';
import type { ClassMetric, EpochPoint, TrialPoint } from './charts.ts';

/**
 * Reads what the report draws: the run directory (docs/interfaces.md §7), the tuning directory
 * and the run's timeline. Every file is optional: a report of a `galactic train` run without
 * tuning or timeline still shows what exists and says what is missing.
 */

export interface EpochRecordFile extends EpochPoint {
  seconds?: number;
  imagesPerSecond?: number;
  peakRssMB?: number;
}

export interface MetricsSample {
  id: string;
  label: number;
  predicted: number;
  probabilities: number[];
}

export interface MetricsFile {
  classes: string[];
  confusion: number[][];
  perClass: ClassMetric[];
  accuracy: number;
  samples: MetricsSample[];
}

export interface TrialFile extends TrialPoint {
  metrics?: EpochRecordFile[];
  bestEpoch?: number | null;
  seconds?: number;
  peakRssMB?: number;
  estimateMB?: number;
  reason?: string;
}

export interface RunFiles {
  runDir: string;
  history: EpochRecordFile[] | null;
  metrics: MetricsFile | null;
  metadata: Record<string, unknown> | null;
  timeline: Timeline | null;
}

export interface TuningFiles {
  tuningDir: string;
  trials: TrialFile[];
  bestValues: Record<string, number | string | boolean> | null;
  oracle: Record<string, unknown> | null;
}

function readJson<T>(file: string): T | null {
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    // a half-written or foreign file: the report shows the section as missing rather than failing
    return null;
  }
}

export function readRunFiles(runDir: string): RunFiles {
  return {
    runDir,
    history: readJson<EpochRecordFile[]>(path.join(runDir, 'history.json')),
    metrics: readJson<MetricsFile>(path.join(runDir, 'metrics.json')),
    metadata: readJson<Record<string, unknown>>(path.join(runDir, 'metadata.json')),
    timeline: readJson<Timeline>(path.join(runDir, 'timeline.json')),
  };
}

export function readTuningFiles(tuningDir: string | null): TuningFiles {
  const empty: TuningFiles = { tuningDir: tuningDir ?? '', trials: [], bestValues: null, oracle: null };
  if (!tuningDir || !existsSync(tuningDir)) return empty;
  const trials = readdirSync(tuningDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name.startsWith('trial_'))
    .map((d) => readJson<TrialFile>(path.join(tuningDir, d.name, 'trial.json')))
    .filter((t): t is TrialFile => t !== null && typeof t.id === 'string' && typeof t.values === 'object')
    .map((t) => ({ ...t, score: typeof t.score === 'number' && Number.isFinite(t.score) ? t.score : null }))
    .sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
  const best = readJson<Record<string, unknown>>(path.join(tuningDir, 'best_hp.json'));
  // best_hp.json may be the values themselves or wrap them as {values: ...}
  const bestValues =
    best && typeof best.values === 'object' && best.values !== null
      ? (best.values as Record<string, number | string | boolean>)
      : (best as Record<string, number | string | boolean> | null);
  return {
    tuningDir,
    trials,
    bestValues,
    oracle: readJson<Record<string, unknown>>(path.join(tuningDir, 'oracle.json')),
  };
}
