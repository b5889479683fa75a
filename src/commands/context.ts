import type { Command } from 'commander';
import { loadConfig, type LoadedConfig } from '../config/load.ts';
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

export function commandContext(command: Command): CommandContext {
  const options = command.optsWithGlobals() as GlobalOptions & Record<string, unknown>;
  const output = new Output({ json: Boolean(options.json), quiet: Boolean(options.quiet) });
  let cached: LoadedConfig | null = null;
  return {
    options,
    output,
    config: () => (cached ??= loadConfig(options.config)),
  };
}
