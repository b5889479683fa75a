import { closeSync, openSync, readFileSync, rmSync, statSync, utimesSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { processIsAlive } from '../core/lock.ts';

/**
 * A worker's claim on one trial, in the trial's folder in the shared tuning folder: the guard that
 * no trial trains twice at once even when the queue hands a job out again while its first worker
 * still runs (a lease lost while the event loop was busy, Redis restarted without its data). The
 * file is created exclusively and its mtime is the heartbeat; a claim is stale when its process
 * is gone (same host) or its heartbeat is older than `staleAfterMs` (any host).
 */

export const LEASE_FILE = 'worker.lease';

export interface LeaseHolder {
  worker: string;
  pid: number;
  host: string;
  startedAt: string;
}

export interface TrialLease {
  readonly holder: LeaseHolder;
  release(): void;
}

function readHolder(file: string): LeaseHolder | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LeaseHolder;
  } catch {
    return null;
  }
}

function isStale(file: string, staleAfterMs: number): boolean {
  let mtimeMs: number;
  try {
    mtimeMs = statSync(file).mtimeMs;
  } catch {
    return true; // gone meanwhile
  }
  const holder = readHolder(file);
  if (holder && holder.host === os.hostname() && !processIsAlive(holder.pid)) return true;
  // an unreadable file younger than the heartbeat is a claim being written
  return Date.now() - mtimeMs > staleAfterMs;
}

/**
 * Claims the trial folder for this worker, or returns the current holder's claim (null if unreadable) when another live
 * worker has it.
 */
export function claimTrial(
  trialDir: string,
  worker: string,
  heartbeatMs: number,
): TrialLease | { busy: LeaseHolder | null } {
  const file = path.join(trialDir, LEASE_FILE);
  const holder: LeaseHolder = { worker, pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (!isStale(file, heartbeatMs * 3)) return { busy: readHolder(file) };
      rmSync(file, { force: true });
      continue;
    }
    try {
      writeSync(fd, JSON.stringify(holder));
    } finally {
      closeSync(fd);
    }
    const beat = setInterval(() => {
      try {
        const now = new Date();
        utimesSync(file, now, now);
      } catch {
        // taken over or removed; release() checks ownership
      }
    }, heartbeatMs);
    beat.unref();
    return {
      holder,
      release() {
        clearInterval(beat);
        const current = readHolder(file);
        if (
          current &&
          current.pid === holder.pid &&
          current.host === holder.host &&
          current.startedAt === holder.startedAt
        )
          rmSync(file, { force: true });
      },
    };
  }
  return { busy: readHolder(file) };
}
