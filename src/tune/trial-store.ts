import { existsSync, readdirSync, rmSync } from 'node:fs';
import { z } from 'zod';
import { readJsonFileAs } from '../core/json-file.ts';
import { ensureDir, isTempName, writeJsonAtomicSync } from '../core/atomic-file.ts';
import path from 'node:path';
import { UserError } from '../core/errors.ts';
import type { HyperparameterValues } from './hyperparameters.ts';
import type { OracleStateBase, TrialStatus } from './oracle.ts';
import type { EpochRecord } from './trial-runner.ts';
import { probeWritableDir } from '../core/writable-dir.ts';

/**
 * The tuning directory on disk:
 *   oracle.json             search description + digest, oracle state (generator, hashes tried, schedule)
 *   tuner.lock              pid, host and start time of the tuner using the folder (core/lock.ts)
 *   best_hp.json            {values, score, trialId, objective}: what `train --from-tuner` reads
 *   trial_<id>/trial.json   values, status, per-epoch metrics, score, timings, memory figures
 *   trial_<id>/checkpoint-<n>/  weights + optimizer state after epoch n (the latest only)
 *   trial_<id>/best-<n>/        weights + optimizer state of the best epoch n (Hyperband promotion)
 * Every JSON file is replaced atomically (temp file, fsync, rename), and a checkpoint folder is
 * named by its epoch and written before the trial.json that points at it, so after a SIGKILL the
 * JSON never names a checkpoint that is missing or from another epoch.
 */

export interface TrialRecord {
  id: string;
  values: HyperparameterValues;
  status: TrialStatus;
  metrics: EpochRecord[];
  /** Epoch count (1-based, absolute) at which the objective was best; null before the first epoch. */
  bestEpoch: number | null;
  score: number | null;
  seconds: number;
  peakRssMB: number | null;
  estimateMB?: number;
  reason?: string;
  epochs: number;
  initialEpoch: number;
  parentId: string | null;
  bracket?: number;
  round?: number;
  /** Folder (inside the trial folder) with the latest epoch's checkpoint. */
  checkpoint: string | null;
  /** Folder (inside the trial folder) with the best epoch's checkpoint. */
  bestCheckpoint: string | null;
  /** The unexpected error (a bug) that stopped the search in this trial; the next run retries it. */
  error?: { name: string; message: string; stack: string | null };
}

/** Everything that makes two searches the same search; stored in oracle.json and compared on resume. */
export interface SearchDescription {
  algorithm: 'random' | 'hyperband' | 'bayesian';
  objective: string;
  direction: 'max' | 'min';
  space: unknown;
  epochs: number;
  patience: number | null;
  hyperband: { factor: number; iterations: number } | null;
  seed: number;
  /** Identity of the training data (the cache key). */
  data: string;
  batchSize: number;
  image: unknown;
}

export interface OracleFile {
  format: 'galactic-oracle';
  version: 1;
  search: SearchDescription;
  state: OracleStateBase;
  updatedAt: string;
}

export interface BestHyperparameters {
  values: HyperparameterValues;
  score: number | null;
  trialId: string;
  objective: string;
}

export class TuningStateCorruptError extends UserError {
  constructor(file: string, detail: string) {
    super(
      `tuning state file ${file} is unreadable (${detail}). Start the search afresh with 'galactic tune --overwrite' (this deletes the folder's trials).`,
    );
  }
}

/** After a refused write of the tuning state: the search resumes from the last trial saved. */
const TUNE_AGAIN = 'then rerun the same command: the search resumes from the last epoch saved';

/** Replaces `file` with the JSON of `value` so that a crash leaves either the old or the new file whole. */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeJsonAtomicSync(file, value, TUNE_AGAIN);
}

const num = z.number().nullable(); // NaN and Infinity are written as null
const valuesSchema = z.record(z.string(), z.union([z.number(), z.string(), z.boolean()]));
const statusSchema = z.enum(['RUNNING', 'COMPLETED', 'FAILED', 'INFEASIBLE', 'STOPPED']);
const trialRecordSchema = z.looseObject({
  id: z.string(),
  values: valuesSchema,
  status: statusSchema,
  metrics: z.array(z.looseObject({ epoch: z.number(), loss: num, accuracy: num, val_loss: num, val_accuracy: num })),
  bestEpoch: z.number().nullable(),
  score: num,
  seconds: z.number(),
  peakRssMB: num,
  epochs: z.number().int(),
  initialEpoch: z.number().int(),
  parentId: z.string().nullable(),
  checkpoint: z.string().nullable(),
  bestCheckpoint: z.string().nullable(),
});
const oracleFileSchema = z.looseObject({
  format: z.literal('galactic-oracle'),
  version: z.literal(1),
  search: z.looseObject({ algorithm: z.string(), objective: z.string(), seed: z.number() }),
  state: z.looseObject({
    algorithm: z.string(),
    rngState: z.number(),
    tried: z.array(z.string()),
    trials: z.array(z.looseObject({ id: z.string(), values: valuesSchema, status: statusSchema, score: num })),
  }),
});

function readJson<T>(file: string, schema: z.ZodType): T | null {
  return readJsonFileAs(file, schema, (detail) => new TuningStateCorruptError(file, detail)) as T | null;
}

export const LOCK_FILE = 'tuner.lock';

export class TuningDirNotWritableError extends UserError {
  constructor(dir: string, detail: string) {
    super(
      `tuning folder ${dir} cannot be created or written (${detail}). Set tuner.dir to a folder you can write to, or fix its permissions.`,
    );
  }
}

export class TrialStore {
  constructor(readonly dir: string) {
    const problem = probeWritableDir(dir);
    if (problem) throw new TuningDirNotWritableError(dir, problem);
  }

  get oracleFile(): string {
    return path.join(this.dir, 'oracle.json');
  }

  get bestHpFile(): string {
    return path.join(this.dir, 'best_hp.json');
  }

  readOracle(): OracleFile | null {
    return readJson<OracleFile>(this.oracleFile, oracleFileSchema);
  }

  writeOracle(search: SearchDescription, state: OracleStateBase): void {
    const file: OracleFile = {
      format: 'galactic-oracle',
      version: 1,
      search,
      state,
      updatedAt: new Date().toISOString(),
    };
    writeJsonAtomic(this.oracleFile, file);
  }

  trialDir(id: string): string {
    return path.join(this.dir, `trial_${id}`);
  }

  readTrial(id: string): TrialRecord | null {
    return readJson<TrialRecord>(path.join(this.trialDir(id), 'trial.json'), trialRecordSchema);
  }

  writeTrial(record: TrialRecord): void {
    ensureDir(this.trialDir(record.id), TUNE_AGAIN);
    writeJsonAtomic(path.join(this.trialDir(record.id), 'trial.json'), record);
  }

  /** Absolute path of a checkpoint folder named in a trial record. */
  checkpointPath(id: string, name: string): string {
    return path.join(this.trialDir(id), name);
  }

  /** Deletes checkpoint folders the record no longer names (older epochs, unfinished temp folders). */
  pruneCheckpoints(record: TrialRecord): void {
    const dir = this.trialDir(record.id);
    if (!existsSync(dir)) return;
    const keep = new Set([record.checkpoint, record.bestCheckpoint].filter((n): n is string => n !== null));
    for (const entry of readdirSync(dir)) {
      if (/^(checkpoint|best)-/.test(entry) && !keep.has(entry))
        rmSync(path.join(dir, entry), { recursive: true, force: true });
    }
  }

  writeBestHp(best: BestHyperparameters): void {
    writeJsonAtomic(this.bestHpFile, best);
  }

  /** `--overwrite`: removes every trial and the oracle state, but not the lock this process holds. */
  clear(): void {
    for (const entry of readdirSync(this.dir)) {
      if (entry === LOCK_FILE) continue;
      if (entry === 'oracle.json' || entry === 'best_hp.json' || entry.startsWith('trial_') || isTempName(entry)) {
        rmSync(path.join(this.dir, entry), { recursive: true, force: true });
      }
    }
  }
}
