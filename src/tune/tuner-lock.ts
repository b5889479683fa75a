import path from 'node:path';
import { UserError } from '../core/errors.ts';
import type { Output } from '../core/console.ts';
import { describeHolder, isLock, tryAcquireLock, type FolderLock, type LockHolder } from '../core/lock.ts';
import { LOCK_FILE } from './trial-store.ts';

/**
 * One tuner per tuning folder: two would interleave trials and overwrite each other's oracle
 * state. A second tuner is refused (a search takes hours; waiting for it is not what was asked).
 */

export class TunerLockedError extends UserError {
  readonly holder: LockHolder;
  constructor(dir: string, holder: LockHolder, sameHost: boolean) {
    const advice = sameHost
      ? 'Wait for it to finish or stop it, or give this run another tuner.dir.'
      : `If that tuner is no longer running on ${holder.host}, delete ${path.join(dir, LOCK_FILE)}; otherwise give this run another tuner.dir.`;
    super(`tuning folder ${dir} is in use by another tuner (${describeHolder(holder)}). ${advice}`);
    this.holder = holder;
  }
}

export function acquireTunerLock(dir: string, output?: Output): FolderLock {
  const file = path.join(dir, LOCK_FILE);
  const attempt = tryAcquireLock(file, {
    onStaleTakeover: (stale) =>
      output?.warn(
        stale
          ? `taking over the stale tuner lock in ${dir}: process ${stale.pid} (started ${stale.startedAt}) is no longer running`
          : `taking over the unreadable tuner lock ${file} (its writer stopped before finishing it)`,
      ),
  });
  if (isLock(attempt)) return attempt;
  throw new TunerLockedError(dir, attempt.holder, attempt.sameHost);
}
