import type { Command } from 'commander';
import type { LoadedConfig } from '../config/load.ts';
import { Output } from '../core/console.ts';

/** Options every command accepts (defined once on the program). */
export interface GlobalOptions {
  config: string;
  json: boolean;
  quiet: boolean;
}

export interface CommandContext {
  options: GlobalOptions & Record<string, unknown>;
  output: Output;
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
  let cached: LoadedConfig | null = null;
  return {
    options,
    output,
    config: () => {
      if (!configModule) throw new Error('commandContext().config() before loadConfigModule()');
      return (cached ??= configModule.loadConfig(options.config));
    },
  };
}
