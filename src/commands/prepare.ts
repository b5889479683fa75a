import { Command } from 'commander';
import { positiveInt } from '../core/cli-options.ts';
import { commandContext } from './context.ts';

export function prepareCommand(): Command {
  return new Command('prepare')
    .description('stream the CSV and images into sharded msgpack tensor caches under the memory budget')
    .option('--limit <n>', 'keep only the first N usable records (overrides data.limit)', positiveInt)
    .option('--force', 'rebuild the cache even when a complete one exists', false)
    .action(async (_opts, command: Command) => {
      const [{ runPrepare }, { planMemory }, { refusePhases }, { measureData }, { ensureDemoData }] = await Promise.all(
        [
          import('../prepare/run-prepare.ts'),
          import('../memory/plan.ts'),
          import('../memory/refusals.ts'),
          import('../ingest/data-facts.ts'),
          import('../images/synth/demo.ts'),
        ],
      );
      const ctx = commandContext(command);
      const config = ctx.config();
      // an impossible budget is refused before anything, demo data included
      let plan = planMemory(config, measureData(config));
      refusePhases(config, plan, ['prepare']);
      if ((await ensureDemoData(config, ctx.output)).synthesized) plan = planMemory(config, measureData(config)); // the data is new
      const summary = await runPrepare(config, {
        output: ctx.output,
        plan,
        force: Boolean(ctx.options.force),
        limit: (ctx.options.limit as number | undefined) ?? config.data.limit,
      });
      ctx.output.result(summary);
    });
}
