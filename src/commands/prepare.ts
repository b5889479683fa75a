import { Command } from 'commander';
import { positiveInt } from '../core/cli-options.ts';
import { UsageError } from '../core/errors.ts';
import { commandContext } from './context.ts';

export function prepareCommand(): Command {
  return new Command('prepare')
    .description('stream the CSV and images into sharded msgpack tensor caches under the memory budget')
    .option('--limit <n>', 'keep only the first N usable records (overrides data.limit)', positiveInt)
    .option('--force', 'rebuild the cache even when a complete one exists', false)
    .option(
      '--queue <url>',
      'build it with workers (galactic worker) over Redis, e.g. redis://10.0.0.5:6379; cache.dir must be shared (docs/distributed.md)',
    )
    .option('--range-rows <n>', 'with --queue: CSV rows per worker job', positiveInt, 2000)
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
      const queueUrl = ctx.options.queue as string | undefined;
      if (queueUrl !== undefined && ctx.options.limit !== undefined)
        throw new UsageError(
          '--limit cannot be combined with --queue: the workers find the build by the cache key of their config, which --limit changes. Set data.limit in the config every machine uses instead.',
        );
      const config = ctx.config();
      // an impossible budget is refused before anything, demo data included
      let plan = planMemory(config, measureData(config));
      refusePhases(config, plan, ['prepare']);
      if ((await ensureDemoData(config, ctx.output)).synthesized) plan = planMemory(config, measureData(config)); // the data is new
      const prepareOptions = {
        output: ctx.output,
        plan,
        force: Boolean(ctx.options.force),
        limit: (ctx.options.limit as number | undefined) ?? config.data.limit,
      };
      let summary;
      if (queueUrl === undefined) summary = await runPrepare(config, prepareOptions);
      else {
        const [{ runQueuePrepare }, { parseQueueUrl }] = await Promise.all([
          import('../distributed/prepare-chief.ts'),
          import('../distributed/redis-connection.ts'),
        ]);
        summary = await runQueuePrepare(config, prepareOptions, {
          queue: parseQueueUrl(queueUrl),
          rangeRows: ctx.options.rangeRows as number,
        });
      }
      ctx.output.result(summary);
    });
}
