import { Command } from 'commander';
import { backendOption, positiveInt } from '../core/cli-options.ts';
import { commandContext } from './context.ts';
import type { BackendName } from '../model/backend.ts';
import type { Prediction } from '../predict/predict.ts';
import { checkModelFolder } from '../predict/model-folder.ts';

function table(predictions: Prediction[], classes: string[]): string {
  const width = Math.max(4, ...predictions.map((p) => p.file.length));
  const header = `${'file'.padEnd(width)}  ${'class'.padEnd(12)}  ${classes.map((c) => c.padStart(10)).join('  ')}`;
  const rows = predictions.map((p) =>
    'error' in p
      ? `${p.file.padEnd(width)}  error: ${p.error}`
      : `${p.file.padEnd(width)}  ${p.class.padEnd(12)}  ${classes.map((c) => p.probabilities[c].toFixed(4).padStart(10)).join('  ')}`,
  );
  return [header, ...rows].join('\n');
}

export function predictCommand(): Command {
  return new Command('predict')
    .description('classify images (files or folders) with a trained model folder (runs/<name>)')
    .requiredOption('--model <dir>', 'run folder written by galactic train')
    .addOption(backendOption('tfjs backend', 'auto'))
    .option('--batch-size <n>', 'images per prediction batch', positiveInt, 32)
    .argument('<images...>', 'image files or folders of images')
    .action(async (images: string[], _opts, command: Command) => {
      const ctx = commandContext(command);
      const { output, options } = ctx;
      checkModelFolder(options.model as string); // a wrong --model fails before a backend loads
      const [{ selectBackend }, { loadTrainedModel, predictFiles }] = await Promise.all([
        import('../model/backend.ts'),
        import('../predict/predict.ts'),
      ]);
      await selectBackend(options.backend as 'auto' | BackendName, output);
      const trained = await loadTrainedModel(options.model as string);
      try {
        const predictions = await predictFiles(trained, images, { batchSize: options.batchSize as number });
        const failed = predictions.filter((p) => 'error' in p).length;
        output.print(table(predictions, trained.metadata.classes));
        if (failed > 0) output.warn(`${failed} of ${predictions.length} image(s) could not be classified`);
        output.result({ predictions });
      } finally {
        trained.model.dispose();
      }
    });
}
