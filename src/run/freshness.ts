import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { LoadedConfig } from '../config/load.ts';
import { canonicalJson } from '../core/canonical-json.ts';
import type { HyperparameterValues } from '../model/architecture.ts';
import { configDigest, readRunMetadata } from '../train/run-directory.ts';

/**
 * When `galactic run` may skip a stage. Prepare and tune answer that themselves (a cache hit; a
 * search whose oracle has nothing left to run). Training and the report are judged here:
 *
 * - train (+ evaluate) is current when the run folder's metadata.json, which the trainer writes
 *   together with the model, records the same cache key, the same config digest and the same
 *   final hyperparameters, and the model, history and metrics files are all there;
 * - the report is current when every stage before it was skipped and report.html is newer than
 *   each file it is drawn from.
 */

/** Files a finished training leaves in the run folder (docs/interfaces.md §7). */
export const TRAINED_FILES = ['model.json', 'weights.bin', 'metadata.json', 'history.json', 'metrics.json'] as const;

/** Why the trained model in `runDir` cannot be reused for these inputs, or null when it is current. */
export function staleTrainingReason(
  runDir: string,
  inputs: { cacheKey: string; config: LoadedConfig; values: HyperparameterValues },
): string | null {
  for (const name of TRAINED_FILES) {
    if (!existsSync(path.join(runDir, name))) return `${name} is missing`;
  }
  let metadata;
  try {
    metadata = readRunMetadata(runDir);
  } catch {
    return 'metadata.json is unreadable';
  }
  if (!metadata) return 'metadata.json is missing';
  if (metadata.cacheKey !== inputs.cacheKey) return 'the prepared data changed (cache key)';
  if (metadata.configDigest !== configDigest(inputs.config)) return 'the config changed';
  if (canonicalJson(metadata.hyperparameters) !== canonicalJson(inputs.values)) return 'the hyperparameters changed';
  return null;
}

/**
 * True when report.html exists and is newer than the trained model's files (a `galactic train`
 * into the run folder since the last report makes it stale). Tuning files and timeline.json are
 * not compared: they change only in a run whose tune stage did work, and such a run rewrites the
 * report anyway (the tuner rewrites best_hp.json even when it had nothing left to run).
 */
export function reportIsCurrent(runDir: string): boolean {
  const report = fileMtime(path.join(runDir, 'report.html'));
  if (report === null) return false;
  const inputs = ['history.json', 'metrics.json', 'metadata.json'].map((f) => path.join(runDir, f));
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
