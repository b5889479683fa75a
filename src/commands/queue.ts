import { Command } from 'commander';
import { commandContext } from './context.ts';

export function queueCommand(): Command {
  const queue = new Command('queue').description(
    'look at the Redis queues of distributed searches and cache builds (docs/distributed.md)',
  );
  queue.addCommand(
    new Command('status')
      .description('one line per queue (job counts), per worker and per running job')
      .requiredOption('--queue <url>', 'the Redis, e.g. redis://127.0.0.1:6379')
      .action(async (_opts, command: Command) => {
        const ctx = commandContext(command);
        const [{ parseQueueUrl }, { formatQueueStatus, queueStatus }] = await Promise.all([
          import('../distributed/redis-connection.ts'),
          import('../distributed/status.ts'),
        ]);
        const settings = parseQueueUrl(ctx.options.queue as string);
        const statuses = await queueStatus(settings);
        if (ctx.options.json) ctx.output.result({ url: settings.url, queues: statuses });
        else process.stdout.write(`${formatQueueStatus(statuses, settings.url)}\n`);
      })
      .exitOverride(),
  );
  return queue;
}
