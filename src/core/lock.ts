import { createHash, randomBytes } from 'node:crypto';
import { closeSync, linkSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import { tempPathFor } from './atomic-file.ts';

/**
 * One process at a time in a folder (the tuner's tuning folder, prepare's cache folder). The lock
 * is a file holding pid, host, start time and a random token. It is created whole or not at all:
 * written under a temp name and hard-linked to its real name (link fails if the name exists).
 *
 * A lock whose process is gone (same host, `kill(pid, 0)` fails with ESRCH) is stale. Taking one
 * over is atomic: the taker first creates, exclusively, a marker named after the stale lock's
 * exact bytes (`<lock>.takeover-<hash>`), re-reads the lock under it and deletes it only if it
 * still holds those bytes. Of several processes that find the same stale lock, one gets the
 * marker; the others wait for the lock it then creates. Without the marker, two takers could
 * each delete the lock (the second deleting the first's fresh one) and both end up holding it.
 * A lock held on another host is never judged stale (its pid means nothing here).
 */

export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
  token?: string;
}

export interface FolderLock {
  readonly file: string;
  readonly holder: LockHolder;
  release(): void;
}

/** The lock is held by a live process (or one on another host, which cannot be checked). */
export interface LockBusy {
  holder: LockHolder;
  sameHost: boolean;
}

/** What acquiring reports along the way (a takeover is worth a warning). */
export interface LockEvents {
  onStaleTakeover?: (stale: LockHolder | null) => void;
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

export function describeHolder(holder: LockHolder): string {
  return `process ${holder.pid} on ${holder.host}, started ${holder.startedAt}`;
}

function parseHolder(raw: string): LockHolder | null {
  try {
    const parsed = JSON.parse(raw) as Partial<LockHolder>;
    if (typeof parsed.pid === 'number' && typeof parsed.host === 'string' && typeof parsed.startedAt === 'string')
      return parsed as LockHolder;
  } catch {
    // an empty or torn file (written by an older galactic that died between create and write)
  }
  return null;
}

/** The lock file's bytes, or null when there is none. */
function readRaw(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Creates `file` holding `text`, whole, unless it exists (false). */
function createWhole(file: string, text: string): boolean {
  const temp = tempPathFor(file);
  const fd = openSync(temp, 'w');
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temp, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    rmSync(temp, { force: true });
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(pause, 0, 0, ms);
}

/**
 * Deletes the stale lock whose bytes are `raw`, unless another process is already doing so or
 * has done so. Returns after the attempt either way; the caller then tries to create the lock.
 */
function removeStale(file: string, raw: string): void {
  const marker = `${file}.takeover-${createHash('sha1').update(raw).digest('hex').slice(0, 16)}`;
  let fd: number;
  try {
    fd = openSync(marker, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // another taker holds the marker; if it died inside its takeover (a rare window of a few
    // microseconds), the marker would stay forever: remove it so the takeover can be retried
    const taker = Number(readRaw(marker) ?? 'NaN');
    if (Number.isInteger(taker) && taker > 0 && !processIsAlive(taker)) rmSync(marker, { force: true });
    else sleepSync(5);
    return;
  }
  try {
    writeSync(fd, String(process.pid));
    closeSync(fd);
    // only the marker's holder deletes these bytes, so if they are still there, they are stale
    if (readRaw(file) === raw) rmSync(file, { force: true });
  } finally {
    rmSync(marker, { force: true });
  }
}

/** The lock, or who holds it. A stale lock is taken over (see the module comment). */
export function tryAcquireLock(file: string, events: LockEvents = {}): FolderLock | LockBusy {
  const holder: LockHolder = {
    pid: process.pid,
    host: os.hostname(),
    startedAt: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  const text = JSON.stringify(holder);
  let last: LockBusy | null = null;
  let warned = false;
  // bounded: each round either creates the lock, finds a live holder, or removes a stale one
  // (or waits 5 ms for another taker to); 400 rounds cover a takeover race of 2 s
  for (let round = 0; round < 400; round++) {
    if (createWhole(file, text)) return makeLock(file, holder);
    const raw = readRaw(file);
    if (raw === null) continue; // released between our attempt and our read
    const current = parseHolder(raw);
    if (current) {
      const sameHost = current.host === holder.host;
      last = { holder: current, sameHost };
      if (!sameHost || processIsAlive(current.pid)) return last;
    }
    if (!warned) events.onStaleTakeover?.(current);
    warned = true;
    removeStale(file, raw);
  }
  return last ?? { holder: { pid: 0, host: 'unknown', startedAt: 'unknown' }, sameHost: false };
}

export function isLock(attempt: FolderLock | LockBusy): attempt is FolderLock {
  return 'release' in attempt;
}

/**
 * Waits for the lock while a live process on this host holds it (polling every `pollMs`), calling
 * `onWait` once; a holder on another host is returned at once (it cannot be checked for life).
 */
export async function waitForLock(
  file: string,
  options: LockEvents & { onWait?: (holder: LockHolder) => void; pollMs?: number; signal?: AbortSignal } = {},
): Promise<FolderLock | LockBusy> {
  let told = false;
  for (;;) {
    const attempt = tryAcquireLock(file, options);
    if (isLock(attempt) || !attempt.sameHost) return attempt;
    if (!told) options.onWait?.(attempt.holder);
    told = true;
    options.signal?.throwIfAborted();
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 200));
  }
}

function makeLock(file: string, holder: LockHolder): FolderLock {
  let released = false;
  return {
    file,
    holder,
    release() {
      if (released) return;
      released = true;
      try {
        // only our own lock: never delete one a later process took over
        if (parseHolder(readRaw(file) ?? '')?.token === holder.token) rmSync(file, { force: true });
      } catch {
        // already gone
      }
    },
  };
}
