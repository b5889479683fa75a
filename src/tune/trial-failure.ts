import { UserError } from '../core/errors.ts';

/**
 * What a trial's error means, as keras-tuner separates them:
 * - `infeasible`: the values cannot make a model that fits (the backend ran out of memory, the
 *   values cannot build a model); the trial is INFEASIBLE and the search goes on.
 * - `transient`: the machine, not the trial (a busy resource, too many open files, a lost
 *   connection); the trial is retried from its last saved epoch up to `trialRetries` times.
 * - `user`: a UserError (a damaged checkpoint, a refused write): the search stops with its message.
 * - `bug`: anything else. The search stops; the stack is printed and kept in trial.json, and the
 *   next run retries the trial (after the fix) from its last saved epoch.
 */
export type TrialFailureKind = 'infeasible' | 'transient' | 'user' | 'bug';

/** Thrown by a runner for a failure worth retrying (e.g. a worker process that went away). */
export class TransientTrialError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientTrialError';
  }
}

const TRANSIENT_CODES = new Set([
  'EAGAIN',
  'EBUSY',
  'EMFILE',
  'ENFILE',
  'ETIMEDOUT',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
]);
const OUT_OF_MEMORY =
  /out of memory|array buffer allocation failed|cannot allocate|failed to allocate|memory access out of bounds|OOM/i;

export function classifyTrialError(error: unknown): TrialFailureKind {
  if (error instanceof UserError) return 'user';
  if (error instanceof TransientTrialError) return 'transient';
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code && TRANSIENT_CODES.has(code)) return 'transient';
  if (error instanceof Error && OUT_OF_MEMORY.test(error.message)) return 'infeasible';
  return 'bug';
}

/** The error as trial.json keeps it (a bug's stack stays with the trial it broke). */
export function errorRecord(error: unknown): { name: string; message: string; stack: string | null } {
  const e = error instanceof Error ? error : new Error(String(error));
  return { name: e.name, message: e.message, stack: e.stack ?? null };
}
