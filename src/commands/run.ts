import { Command, Option } from 'commander';
import { commandContext } from './context.ts';

export function runCommand(): Command {
  return new Command('run')
    .description('the main job: prepare, tune, train, evaluate and report, skipping every stage whose outputs are current')
    .addOption(new Option('--backend <name>', 'tfjs backend (overrides the config)').choices(['auto', 'node', 'wasm', 'cpu']))
    .option('--overwrite', 'delete the trials in tuner.dir and start the search afresh (when it holds a different search)', false)
    .action(async (_opts, command: Command) => {
      const { runPipeline } = await import('../run/pipeline.ts');
      const ctx = commandContext(command);
      const config = ctx.config();
      const summary = await runPipeline(config, {
        output: ctx.output,
        backend: ctx.options.backend as 'auto' | 'node' | 'wasm' | 'cpu' | undefined,
        overwriteSearch: Boolean(ctx.options.overwrite),
        signal: ctx.interrupt,
      });
      ctx.output.result(summary);
    });
}
