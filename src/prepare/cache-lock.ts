import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../core/errors.ts';
import type { Output } from '../core/console.ts';
import { describeHolder, isLock, processIsAlive, waitForLock, type FolderLock, type LockHolder } from '../core/lock.ts';

/**
 * One prepare per cache folder (`<cache.dir>/<key>/prepare.lock`, the shared core/lock.ts). A
 * second prepare of the same key on this host waits for the first to finish and then answers from
 * its cache (a cache hit, or a resume if the first stopped early); it never writes a shard or a
 * reject the first wrote. A holder on another host cannot be checked for life, so that is refused.
 */

export const PREPARE_LOCK_FILE = 'prepare.lock';

export class CacheLockedError extends UserError {
  constructor(cacheDir: string, holder: LockHolder) {
    super(
      `cache folder ${cacheDir} is being prepared by ${describeHolder(holder)}. If that prepare is no longer running on ${holder.host}, delete ${path.join(cacheDir, PREPARE_LOCK_FILE)}; otherwise wait for it or set cache.dir to another folder.`,
    );
  }
}

/**
 * True for the lock file and the transient files live takers are making (not stray files); a
 * lock temp file whose writer is dead (killed while creating the lock) is stray.
 */
export function isPrepareLockFile(name: string): boolean {
  if (!name.startsWith(PREPARE_LOCK_FILE)) return false;
  const temp = /^prepare\.lock\.(\d+)\.tmp$/.exec(name);
  return temp ? processIsAlive(Number(temp[1])) : true;
}

/**
 * The cache folder's lock, after waiting for another prepare on this host. Null when the folder
 * cannot be created or written: a read-only cache can still be a cache hit, and a build needing
 * to write there is refused afterwards with the folder named.
 */
export async function lockCacheDir(cacheDir: string, output: Output): Promise<FolderLock | null> {
  try {
    mkdirSync(cacheDir, { recursive: true });
  } catch {
    return null;
  }
  let attempt;
  try {
    attempt = await waitForLock(path.join(cacheDir, PREPARE_LOCK_FILE), {
      onWait: (holder) =>
        output.info(
          `waiting for another prepare of this cache (${describeHolder(holder)}) to finish; its cache is used then`,
        ),
      onStaleTakeover: (stale) =>
        output.warn(
          `taking over the lock of a prepare that stopped${stale ? ` (process ${stale.pid}, started ${stale.startedAt})` : ''}; its cache is resumed`,
        ),
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') return null;
    throw error;
  }
  if (isLock(attempt)) return attempt;
  throw new CacheLockedError(cacheDir, attempt.holder);
}
