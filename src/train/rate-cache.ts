import { mkdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { replaceFileAtomic } from '../core/atomic-file.ts';
import { GALACTIC_VERSION } from '../core/version.ts';
import type { StepCosts } from './training-rate.ts';

/**
 * Measured training costs, kept per machine and backend so the time plan measures a model only
 * once: `$XDG_CACHE_HOME/galactic/training-rates.json` (default `~/.cache/galactic/`). Keys name
 * the machine (host, CPU model, cores, memory), the backend and its threads, galactic's version,
 * and what the step cost depends on (architecture, image shape, classes, batch size). tfjs-free.
 */

export interface CachedStepCosts extends StepCosts {
  backend: string;
  threads: number | null;
  measuredAt: string;
}

interface RateFile {
  format: 'galactic-training-rates';
  version: 1;
  entries: Record<string, CachedStepCosts>;
  /** What `backend: "auto"` resolved to on a machine (keyed by machine + installed backends). */
  auto: Record<string, string>;
}

export function rateCacheFile(): string {
  const base =
    process.env.XDG_CACHE_HOME && path.isAbsolute(process.env.XDG_CACHE_HOME)
      ? process.env.XDG_CACHE_HOME
      : path.join(os.homedir(), '.cache');
  return path.join(base, 'galactic', 'training-rates.json');
}

export function machineId(): string {
  const cpus = os.cpus();
  return [
    os.hostname(),
    cpus[0]?.model ?? 'cpu',
    os.availableParallelism(),
    Math.round(os.totalmem() / 2 ** 20),
    process.arch,
    process.version,
  ].join('|');
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 24);
}

export interface StepCostKey {
  backend: string;
  threads: number | null;
  /** What the step depends on: architecture (no learning rate), input shape, classes, batch size. */
  model: unknown;
}

export function stepCostKey(key: StepCostKey): string {
  return hash(JSON.stringify([machineId(), GALACTIC_VERSION, key.backend, key.threads, key.model]));
}

function read(): RateFile {
  try {
    const json = JSON.parse(readFileSync(rateCacheFile(), 'utf8')) as RateFile;
    if (json.format === 'galactic-training-rates' && json.version === 1) return json;
  } catch {
    // missing or unreadable: measured again
  }
  return { format: 'galactic-training-rates', version: 1, entries: {}, auto: {} };
}

async function write(update: (file: RateFile) => void): Promise<void> {
  const file = rateCacheFile();
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    const json = read();
    update(json);
    await replaceFileAtomic(file, Buffer.from(`${JSON.stringify(json, null, 1)}\n`));
  } catch {
    // a cache that cannot be written only means measuring again next time
  }
}

export function cachedStepCosts(key: string): CachedStepCosts | null {
  return read().entries[key] ?? null;
}

export function storeStepCosts(key: string, costs: CachedStepCosts): Promise<void> {
  return write((json) => {
    json.entries[key] = costs;
  });
}

/** The backend `auto` chose on this machine when a plan last measured, or null. */
export function cachedAutoBackend(fingerprint: string): string | null {
  return read().auto[hash(`${machineId()}|${fingerprint}`)] ?? null;
}

export function storeAutoBackend(fingerprint: string, backend: string): Promise<void> {
  return write((json) => {
    json.auto[hash(`${machineId()}|${fingerprint}`)] = backend;
  });
}
