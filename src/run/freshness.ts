import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { LoadedConfig } from '../config/load.ts';

/**
 * When `galactic run` may skip a stage. Prepare and tune answer that themselves (a cache hit; a
 * search whose oracle has nothing left to run). Training and the report are judged here:
 *
 * - train is current when `run-state.json` in the run folder records the same cache key, the same
 *   training-config digest and the same hyperparameters, and the model files it stamped are still
 *   the ones on disk (same size and modification time, so a `galactic train` into the same folder
 *   since then makes the stamp stale);
 * - the report is current when every stage before it was skipped and report.html is newer than
 *   each file it is drawn from.
 */

export const RUN_STATE_FILE = 'run-state.json';

/** Files a finished training leaves in the run folder (docs/interfaces.md §7). */
export const TRAINED_FILES = ['model.json', 'weights.bin', 'metadata.json', 'history.json', 'metrics.json'] as const;

export interface TrainingStamp {
  cacheKey: string;
  configDigest: string;
  values: Record<string, number | string | boolean>;
  /** size:mtimeMs of each trained file when the stamp was written. */
  files: Record<string, string>;
  trainedAt: string;
}

/**
 * Digest of the settings that change what training produces. Data identity is the cache key, so
 * data paths are left out; the memory budget is in because it sizes the shuffle buffer, which
 * changes the batch order.
 */
export function trainingConfigDigest(config: LoadedConfig): string {
  const relevant = {
    classes: config.data.classes,
    image: config.image,
    seed: config.seed,
    split: config.split,
    feed: config.feed,
    model: config.model,
    train: config.train,
    memory: config.memory,
  };
  return createHash('sha256').update(stableJson(relevant)).digest('hex').slice(0, 16);
}

/** JSON with object keys sorted, so equal settings give equal text. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function fileSignature(file: string): string | null {
  try {
    const s = statSync(file);
    return `${s.size}:${Math.round(s.mtimeMs)}`;
  } catch {
    return null;
  }
}

/** The stamp for a training that just finished in `runDir`. */
export function trainingStamp(runDir: string, cacheKey: string, config: LoadedConfig, values: TrainingStamp['values']): TrainingStamp {
  const files: Record<string, string> = {};
  for (const name of TRAINED_FILES) {
    const signature = fileSignature(path.join(runDir, name));
    if (signature) files[name] = signature;
  }
  return { cacheKey, configDigest: trainingConfigDigest(config), values, files, trainedAt: new Date().toISOString() };
}

export function readTrainingStamp(runDir: string): TrainingStamp | null {
  const file = path.join(runDir, RUN_STATE_FILE);
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as TrainingStamp;
  } catch {
    return null;
  }
}

/** Why the trained model in `runDir` cannot be reused, or null when it is current. */
export function staleTrainingReason(runDir: string, cacheKey: string, config: LoadedConfig, values: TrainingStamp['values']): string | null {
  const stamp = readTrainingStamp(runDir);
  if (!stamp) return 'no trained model recorded';
  if (stamp.cacheKey !== cacheKey) return 'the cache (data) changed';
  if (stamp.configDigest !== trainingConfigDigest(config)) return 'the training settings changed';
  if (stableJson(stamp.values) !== stableJson(values)) return 'the hyperparameters changed';
  for (const name of TRAINED_FILES) {
    const signature = fileSignature(path.join(runDir, name));
    if (!signature) return `${name} is missing`;
    if (stamp.files[name] !== signature) return `${name} was replaced since`;
  }
  return null;
}

/** True when report.html exists and is newer than every input it draws. */
export function reportIsCurrent(runDir: string, tuningDir: string | null): boolean {
  const report = fileMtime(path.join(runDir, 'report.html'));
  if (report === null) return false;
  const inputs = ['history.json', 'metrics.json', 'metadata.json', 'timeline.json'].map((f) => path.join(runDir, f));
  if (tuningDir) inputs.push(path.join(tuningDir, 'oracle.json'), path.join(tuningDir, 'best_hp.json'));
  return inputs.every((file) => {
    const mtime = fileMtime(file);
    return mtime === null || mtime <= report;
  });
}

function fileMtime(file: string): number | null {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return null;
  }
}
