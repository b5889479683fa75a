import { Command } from 'commander';
import { UsageError } from '../core/errors.ts';
import { formatSeconds } from '../core/console.ts';
import { synthOutputList } from '../images/synth/layout.ts';
import { minimumHazardCount } from '../images/synth/hazards.ts';
import { commandContext } from './context.ts';

/** Parses an integer flag strictly: "12abc", "1.5" and "" are refused with the flag named. */
function integerFlag(flag: string, min: number): (value: string) => number {
  return (value: string) => {
    const number = /^\s*[+-]?\d+\s*$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(number) || number < min) {
      throw new UsageError(`${flag} must be an integer of at least ${min} (got ${JSON.stringify(value)}).`);
    }
    return number;
  };
}

export function synthCommand(): Command {
  return new Command('synth')
    .description(
      'render a synthetic Galaxy Zoo 2 data set (images, galaxy_df_final.csv, gz2_hart16.csv + gz2_filename_mapping.csv)',
    )
    .requiredOption('-o, --out <dir>', 'folder to write into (must be new or empty unless --force)')
    .requiredOption('-n, --count <n>', 'number of records (CSV rows)', integerFlag('--count', 1))
    .option('--seed <n>', 'random seed: same seed and count, byte-identical files', integerFlag('--seed', 0), 42)
    .option('--size <px>', 'image side in pixels', integerFlag('--size', 16), 424)
    .option(
      '--hazards',
      `plant bad records (missing, empty, truncated, non-image, PNG, grayscale, CMYK, huge images, duplicate ids, bad labels and ids, short rows) and list them in hazards.json; needs --count >= ${minimumHazardCount}`,
      false,
    )
    .option(
      '--imbalance',
      'Galaxy Zoo 2 class proportions (about 45% E, 53% S, 2% A) instead of balanced classes',
      false,
    )
    .option(
      '--force',
      `write into a non-empty --out, first removing only what synth writes there (${synthOutputList})`,
      false,
    )
    .option('--threads <n>', 'render threads (default: one per core)', integerFlag('--threads', 1))
    .action(async (_options: unknown, command: Command) => {
      const { options, output } = commandContext(command);
      const { synthesizeDataset } = await import('../images/synth/dataset.ts');
      const summary = await synthesizeDataset(
        {
          out: String(options.out),
          count: options.count as number,
          seed: options.seed as number,
          size: options.size as number,
          hazards: Boolean(options.hazards),
          imbalance: Boolean(options.imbalance),
          force: Boolean(options.force),
          threads: options.threads as number | undefined,
        },
        output,
      );
      output.info(
        `synth: wrote ${summary.images} images and the catalogues to ${summary.out} in ${formatSeconds(summary.seconds)} (${summary.imagesPerSecond} images/s)`,
      );
      output.result(summary);
    });
}
