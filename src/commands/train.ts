import { planMemory } from '../memory/plan.ts';
import { measureData } from '../ingest/data-facts.ts';
import path from 'node:path';
import { Command } from 'commander';
import { backendOption, positiveInt } from '../core/cli-options.ts';
import { UsageError } from '../core/errors.ts';
import { commandContext } from './context.ts';
import type { BackendName } from '../model/backend.ts';
import type { HyperparameterValues } from '../model/architecture.ts';

export function trainCommand(): Command {
  return new Command('train')
    .description(
      'train the classifier on the cached shards (prepares the cache first when needed) and save runs/<name>/',
    )
    .option('--epochs <n>', 'epochs (overrides train.epochs)', positiveInt)
    .option('--hp <file>', 'hyperparameter values: a JSON map, or a best_hp.json')
    .option('--from-tuner', "use the tuner's best values (<tuner.dir>/best_hp.json)", false)
    .option('--name <run>', 'run folder name under runs.dir (overrides runs.name)')
    .addOption(backendOption('tfjs backend (overrides backend)'))
    .action(async (_opts, command: Command) => {
      const ctx = commandContext(command);
      const { options, output } = ctx;
      if (options.hp && options.fromTuner) throw new UsageError('use either --hp FILE or --from-tuner, not both');
      if (options.name !== undefined && !/^[A-Za-z0-9._-]+$/.test(options.name as string)) {
        throw new UsageError(`--name must use only letters, digits, ., - and _ (got '${String(options.name)}')`);
      }
      const config = ctx.config();
      const [{ selectBackend }, { runPrepare }, { readHyperparameters, trainRun, tunerBestValues }] = await Promise.all(
        [import('../model/backend.ts'), import('../prepare/run-prepare.ts'), import('../train/run-training.ts')],
      );
      let values: HyperparameterValues = {};
      if (options.hp) values = readHyperparameters(path.resolve(options.hp as string));
      else if (options.fromTuner) values = tunerBestValues(config);
      const backend = await selectBackend(
        ((options.backend as string | undefined) ?? config.backend) as 'auto' | BackendName,
        output,
        { threads: config.threads },
      );
      const plan = planMemory(config, measureData(config));
      const prepared = await runPrepare(config, { output, plan });
      const { announceTime } = await import('../tune/time-plan.ts');
      await announceTime(config, output, {
        backend,
        cacheDir: prepared.cacheDir,
        cacheKey: prepared.cacheKey,
        train: { values, epochs: (options.epochs as number | undefined) ?? config.train.epochs },
        plan,
        what: 'galactic train',
      });
      const summary = await trainRun(config, {
        cacheDir: prepared.cacheDir,
        cacheKey: prepared.cacheKey,
        backend,
        values,
        plan,
        epochs: options.epochs as number | undefined,
        name: options.name as string | undefined,
        output,
      });
      output.result(summary);
    });
}
