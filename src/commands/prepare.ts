import { existsSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { commandContext } from './context.ts';
import { runPrepare } from '../prepare/run-prepare.ts';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/** Demo data is generated on first use when the synth module provides it (the demo config points at it). */
async function ensureDemo(config: Parameters<typeof runPrepare>[0], output: Parameters<typeof runPrepare>[1]['output']): Promise<void> {
  const demo = new URL('../images/synth/demo.ts', import.meta.url);
  if (!existsSync(demo)) return;
  const module = (await import(demo.href)) as { ensureDemoData?: (c: typeof config, o: typeof output) => Promise<unknown> };
  await module.ensureDemoData?.(config, output);
}

export function prepareCommand(): Command {
  return new Command('prepare')
    .description('stream the CSV and images into sharded msgpack tensor caches under the memory budget')
    .option('--limit <n>', 'keep only the first N usable records (overrides data.limit)', positiveInt)
    .option('--force', 'rebuild the cache even when a complete one exists', false)
    .action(async (_opts, command: Command) => {
      const ctx = commandContext(command);
      const config = ctx.config();
      await ensureDemo(config, ctx.output);
      const summary = await runPrepare(config, {
        output: ctx.output,
        force: Boolean(ctx.options.force),
        limit: (ctx.options.limit as number | undefined) ?? config.data.limit,
      });
      ctx.output.result(summary);
    });
}
