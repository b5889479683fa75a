import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../core/errors.ts';
import type { Output } from '../core/console.ts';
import { LOCK_FILE } from './trial-store.ts';

/**
 * One tuner per tuning folder: two would interleave trials and overwrite each other's oracle
 * state. The lock is a file created exclusively (O_EXCL) holding pid, host and start time; a lock
 * whose process is gone (same host, `kill(pid, 0)` fails with ESRCH) is stale and taken over.
 */

export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
}

export class TunerLockedError extends UserError {
  readonly holder: LockHolder;
  constructor(dir: string, holder: LockHolder, sameHost: boolean) {
    const who = `process ${holder.pid} on ${holder.host}, started ${holder.startedAt}`;
    const advice = sameHost
      ? 'Wait for it to finish or stop it, or give this run another tuner.dir.'
      : `If that tuner is no longer running on ${holder.host}, delete ${path.join(dir, LOCK_FILE)}; otherwise give this run another tuner.dir.`;
    super(`tuning folder ${dir} is in use by another tuner (${who}). ${advice}`);
    this.holder = holder;
  }
}

export interface TunerLock {
  readonly file: string;
  readonly holder: LockHolder;
  release(): void;
}

/** True unless the process certainly does not exist (EPERM means it exists under another user). */
export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(file: string): LockHolder | null {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockHolder>;
    if (typeof parsed.pid === 'number' && typeof parsed.host === 'string' && typeof parsed.startedAt === 'string') {
      return parsed as LockHolder;
    }
    return null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw error;
    return null; // empty or torn file: its writer died between create and write
  }
}

function tryCreate(file: string, holder: LockHolder): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    writeSync(fd, JSON.stringify(holder));
  } finally {
    closeSync(fd);
  }
  return true;
}

export function acquireTunerLock(dir: string, output?: Output): TunerLock {
  const file = path.join(dir, LOCK_FILE);
  const holder: LockHolder = { pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() };
  // Two rounds at most: the second follows the removal of a stale lock.
  for (let attempt = 0; attempt < 2; attempt++) {
    if (tryCreate(file, holder)) return makeLock(file, holder);
    let current: LockHolder | null;
    try {
      current = readHolder(file);
    } catch {
      continue; // released between our create and our read
    }
    if (current) {
      const sameHost = current.host === holder.host;
      if (!sameHost || processIsAlive(current.pid)) throw new TunerLockedError(dir, current, sameHost);
      output?.warn(`taking over the stale tuner lock in ${dir}: process ${current.pid} (started ${current.startedAt}) is no longer running`);
    } else {
      output?.warn(`taking over the unreadable tuner lock ${file} (its writer stopped before finishing it)`);
    }
    rmSync(file, { force: true });
  }
  const current = readHolder(file) ?? holder;
  throw new TunerLockedError(dir, current, current.host === holder.host);
}

function makeLock(file: string, holder: LockHolder): TunerLock {
  let released = false;
  return {
    file,
    holder,
    release() {
      if (released) return;
      released = true;
      try {
        const current = readHolder(file);
        // Only our own lock: never delete one a later tuner took over.
        if (current && current.pid === holder.pid && current.startedAt === holder.startedAt) rmSync(file, { force: true });
      } catch {
        // already gone
      }
    },
  };
}
