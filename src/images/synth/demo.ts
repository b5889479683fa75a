import { existsSync } from 'node:fs';
import path from 'node:path';
import type { LoadedConfig } from '../../config/load.ts';
import { UserError } from '../../core/errors.ts';
import type { Output } from '../../core/console.ts';
import { synthesizeDataset } from './dataset.ts';
import { gz2CsvName, joinedCsvName } from './layout.ts';

/**
 * The folder to synthesize into when the config asks for synthetic data (`data.synthesize`), or
 * null when it does not. A config that asks for it with paths synth cannot write is refused: the
 * CSV must be one of synth's catalogue names and every data path must lie in the CSV's folder.
 */
export function synthesisRoot(config: LoadedConfig): string | null {
  const { csv, imageDir, mappingCsv, synthesize } = config.data;
  if (synthesize === null) return null;
  const root = path.dirname(csv);
  const inside = (p: string): boolean => p === root || p.startsWith(`${root}${path.sep}`);
  if (
    ![joinedCsvName, gz2CsvName].includes(path.basename(csv)) ||
    !inside(imageDir) ||
    (mappingCsv !== null && !inside(mappingCsv))
  ) {
    throw new UserError(
      `data.synthesize is set, but synth can only write data.csv as ${joinedCsvName} or ${gz2CsvName} with data.imageDir (and data.mappingCsv) in the same folder ` +
        `(data.csv is ${csv}, data.imageDir ${imageDir}). Fix those paths, or set data.synthesize to null for real data.`,
    );
  }
  return root;
}

/**
 * Makes `npm start` work on a fresh clone: if the configured labels CSV is missing and the
 * config asks for synthetic data (`data.synthesize: N`), renders N images there first (seed =
 * config.seed, 424x424, balanced classes, no hazards). Anything else is left alone: a missing
 * real data set is the caller's error to report, never something to fake.
 */
export async function ensureDemoData(
  config: LoadedConfig,
  output: Output,
  options: { count?: number } = {},
): Promise<{ synthesized: boolean }> {
  if (existsSync(config.data.csv)) return { synthesized: false };
  const root = synthesisRoot(config);
  if (!root) return { synthesized: false };
  const count = options.count ?? config.data.synthesize!;
  output.info(
    `demo data: ${config.data.csv} is missing, so synthesizing ${count} images into ${root} (seed ${config.seed}; once only)`,
  );
  // force: a previous interrupted run may have left images without catalogues; only synth's own files are replaced
  await synthesizeDataset(
    {
      out: root,
      count,
      seed: config.seed,
      size: 424,
      hazards: false,
      imbalance: false,
      force: true,
    },
    output,
  );
  return { synthesized: true };
}
