import { Command } from 'commander';
import { backendOption } from '../core/cli-options.ts';
import { commandContext } from './context.ts';

export function runCommand(): Command {
  return new Command('run')
    .description(
      'the main job: prepare, tune, train, evaluate and report, skipping every stage whose outputs are current',
    )
    .addOption(backendOption('tfjs backend (overrides the config)'))
    .option(
      '--overwrite',
      'delete the trials in tuner.dir and start the search afresh (when it holds a different search)',
      false,
    )
    .option(
      '--queue <url>',
      'run the tune stage as the chief of a distributed search over `galactic worker`s, e.g. redis://127.0.0.1:6379 (docs/distributed.md)',
    )
    .action(async (_opts, command: Command) => {
      const { runPipeline } = await import('../run/pipeline.ts');
      const ctx = commandContext(command);
      const distributed = ctx.options.queue === undefined ? null : await import('../distributed/chief.ts');
      const queue = distributed ? distributed.parseQueueUrl(ctx.options.queue as string) : null;
      const config = ctx.config();
      // an unreachable Redis is refused before any work
      if (queue) await distributed?.probeRedis(queue);
      const summary = await runPipeline(config, {
        output: ctx.output,
        backend: ctx.options.backend as 'auto' | 'node' | 'wasm' | 'cpu' | undefined,
        overwriteSearch: Boolean(ctx.options.overwrite),
        signal: ctx.interrupt,
        ...(distributed && queue ? { tunerLoop: distributed.queueTunerLoop({ queue }) } : {}),
      });
      ctx.output.result(summary);
    });
}
