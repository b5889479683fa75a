import { Command, InvalidArgumentError, Option } from 'commander';
import { backendOption, positiveInt } from '../core/cli-options.ts';
import type { BackendName } from '../model/backend.ts';
import { commandContext } from './context.ts';

function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 1) throw new InvalidArgumentError('must be a number of seconds, at least 1');
  return n;
}

export function workerCommand(): Command {
  return new Command('worker')
    .description(
      'take tuning trials of the search in --config, and row ranges of a prepare --queue of its cache, from a Redis queue (BullMQ) and run them on this machine; see docs/distributed.md',
    )
    .requiredOption('--queue <url>', 'Redis the chief uses, e.g. redis://10.0.0.5:6379')
    .option('--concurrency <n>', 'jobs (trials or prepare row ranges) run at once in this process', positiveInt, 1)
    .addOption(
      new Option('--algorithm <name>', "the chief's --algorithm, when it overrides tuner.algorithm").choices([
        'random',
        'hyperband',
        'bayesian',
      ]),
    )
    .addOption(backendOption('tfjs backend (overrides backend)'))
    .option(
      '--lease-seconds <s>',
      'a job is handed to another worker when this one has not renewed it for this long (it died)',
      positiveSeconds,
      30,
    )
    .action(async (_opts, command: Command) => {
      const ctx = commandContext(command);
      const { options, output } = ctx;
      const [{ runWorker }, { parseQueueUrl }] = await Promise.all([
        import('../distributed/worker.ts'),
        import('../distributed/redis-connection.ts'),
      ]);
      const queue = parseQueueUrl(options.queue as string);
      const config = ctx.config();
      const summary = await runWorker({
        config,
        queue,
        output,
        concurrency: options.concurrency as number,
        leaseSeconds: options.leaseSeconds as number,
        algorithm: options.algorithm as 'random' | 'hyperband' | 'bayesian' | undefined,
        backend: options.backend as 'auto' | BackendName | undefined,
        signal: ctx.interrupt,
      });
      output.result(summary);
    });
}
