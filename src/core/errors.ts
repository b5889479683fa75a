/**
 * A failure the user caused and can fix. The CLI prints its message alone (no stack trace)
 * and exits with `exitCode`. Each failure a user can cause gets its own subclass so tests and
 * library callers can tell them apart; the message names the input, what was wrong and what to do.
 */
export class UserError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** Wrong command-line usage (unknown command, bad flag value). */
export class UsageError extends UserError {
  constructor(message: string) {
    super(message, 2);
  }
}
