import type { Command } from 'commander';
import type { LoadedConfig } from '../config/load.ts';
import { Output } from '../core/console.ts';
import { closeOnInterrupt, interruptSignal, setInvokedCommand } from '../core/interrupt.ts';

/** Options every command accepts (defined once on the program). */
export interface GlobalOptions {
  config: string;
  json: boolean;
  quiet: boolean;
}

export interface CommandContext {
  options: GlobalOptions & Record<string, unknown>;
  output: Output;
  /** Aborted by the first Ctrl-C / SIGTERM (the CLI's one handler, core/interrupt.ts). */
  interrupt: AbortSignal;
  /** Loads and validates the config named by --config (lazily: not every command needs it). */
  config(): LoadedConfig;
}

// zod and the config schema load only once a command runs (cli.ts awaits this before every
// action), so `galactic --help` and `--version` never pay for them.
let configModule: typeof import('../config/load.ts') | null = null;
export async function loadConfigModule(): Promise<void> {
  configModule ??= await import('../config/load.ts');
}

export function commandContext(command: Command): CommandContext {
  const options = command.optsWithGlobals() as GlobalOptions & Record<string, unknown>;
  const output = new Output({ json: Boolean(options.json), quiet: Boolean(options.quiet) });
  setInvokedCommand(command.name());
  closeOnInterrupt(output);
  let cached: LoadedConfig | null = null;
  return {
    options,
    output,
    interrupt: interruptSignal,
    config: () => {
      if (!configModule) throw new Error('commandContext().config() before loadConfigModule()');
      const isDefault = command.getOptionValueSourceWithGlobals('config') === 'default';
      return (cached ??= configModule.loadConfig(options.config, { isDefault }));
    },
  };
}
