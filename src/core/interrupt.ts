import { writeSync } from 'node:fs';

/**
 * The one Ctrl-C (SIGINT) / SIGTERM handler, installed by the CLI for every command. The first
 * signal aborts `interruptSignal` (work that can stop at a safe point does: the tuner saves the
 * trial as stopped if its epoch ends in time), stops every progress display, says how to continue,
 * and ends the process with code 130 within GRACE_MS whatever is still running: everything the
 * commands save is saved at safe points already (shards, epochs), so nothing waits for more. A
 * second signal ends it at once.
 */

/** How long the work has after the first signal before the process ends anyway. */
export const GRACE_MS = 1500;
export const INTERRUPTED_EXIT_CODE = 130;

interface Closable {
  close(): void;
}

const controller = new AbortController();
/** Aborted by the first SIGINT/SIGTERM. */
export const interruptSignal: AbortSignal = controller.signal;
const displays = new Set<Closable>();
let subcommand: string | null = null;
let installed = false;

/** Records the subcommand the user ran, for messages that say what to rerun. */
export function setInvokedCommand(name: string): void {
  subcommand = name;
}

/**
 * The command the user typed to get here: `npm start` / `npm run <script>` when run through npm
 * (npm_lifecycle_event), else `galactic <subcommand>`.
 */
export function invokedCommand(): string {
  const event = process.env.npm_lifecycle_event;
  if (event) return event === 'start' || event === 'test' ? `npm ${event}` : `npm run ${event}`;
  return subcommand ? `galactic ${subcommand}` : 'galactic';
}

/** A progress display (the console) to stop on interrupt, so a TTY is left clean. */
export function closeOnInterrupt(display: Closable): void {
  displays.add(display);
}

function closeDisplays(): void {
  for (const display of displays) {
    try {
      display.close();
    } catch {
      // a display that cannot stop must not keep the process alive
    }
  }
}

function say(text: string): void {
  try {
    writeSync(2, text);
  } catch {
    // stderr gone (closed pipe): nothing to tell
  }
}

function onSignal(signal: NodeJS.Signals): void {
  closeDisplays();
  if (controller.signal.aborted) {
    say(`galactic: ${signal} again: quitting now.\n`);
    process.exit(INTERRUPTED_EXIT_CODE);
  }
  say(
    `galactic: ${signal === 'SIGINT' ? 'interrupted (Ctrl-C)' : `stopped by ${signal}`}; what is saved stays saved. Rerun '${invokedCommand()}' to continue where it stopped.\n`,
  );
  controller.abort(new Error(`interrupted by ${signal}`));
  setTimeout(() => {
    closeDisplays();
    process.exit(INTERRUPTED_EXIT_CODE);
  }, GRACE_MS).unref();
}

/** Installs the handler (once per process). */
export function installInterruptHandler(): void {
  if (installed) return;
  installed = true;
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
