import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { MachineInfo } from './machine.ts';
import type { Spread } from './stats.ts';

/** One measured stage (a row of the table, a line of the results file). */
export interface StageResult {
  /** decode | prepare | prepareWarm | feed | shardRead | train (train: one per backend) */
  stage: string;
  /** Images per repeat. */
  images: number;
  /** Median images/s over the repeats (the headline figure). */
  imagesPerSecond: number;
  /** Input megabytes (MiB) per second where the stage reads files (JPEGs, shards); null otherwise. */
  mbPerSecond: number | null;
  /** What the megabytes are: 'JPEG read', 'shards written', 'shards read'. */
  mbOf: string | null;
  /** Largest resident set of the process and its children seen during any repeat, MiB. */
  peakRssMB: number;
  /** What `planMemory` budgets for this config (null when the stage is not planned, e.g. decode). */
  plannedMB: number | null;
  limitMB: number | null;
  /** The stage whose throughput bounds this one, measured in the same run. */
  ceiling: string | null;
  /** imagesPerSecond / the ceiling's imagesPerSecond (0..1, higher is better); null without a ceiling. */
  efficiency: number | null;
  repeats: { imagesPerSecond: Spread; seconds: Spread; mbPerSecond: Spread | null };
  /** Stage-specific facts (backend, epochs, cache hit, ...). */
  detail?: Record<string, unknown>;
}

export interface ResultRecord {
  /** 'stages' (galactic bench), 'scale' or 'sweep'. */
  kind: string;
  time: string;
  machine: MachineInfo;
  [key: string]: unknown;
}

/** bench/results/<YYYY-MM-DD>.jsonl under `root` (the current directory for the CLI). */
export function defaultResultsFile(root: string, date = new Date()): string {
  return path.join(root, 'bench', 'results', `${date.toISOString().slice(0, 10)}.jsonl`);
}

/** Appends records as JSON lines (one object per line, never rewriting earlier runs). */
export function appendResults(file: string, records: ResultRecord[]): void {
  if (records.length === 0) return;
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  appendFileSync(file, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
}
