import { existsSync } from 'node:fs';
import path from 'node:path';
import type { LoadedConfig } from '../../config/load.ts';
import type { Output } from '../../core/console.ts';
import { synthesizeDataset } from './dataset.ts';
import { gz2CsvName, joinedCsvName } from './layout.ts';

/** Records in the built-in demo data set: enough to train on in minutes on two cores. */
export const demoImageCount = 1500;

/**
 * The folder of the built-in demo data set when `config` points at it: every data path lies
 * inside a folder named data/demo and the labels CSV is one synth writes. Otherwise null.
 */
export function demoDataRoot(config: LoadedConfig): string | null {
  const { csv, imageDir, mappingCsv } = config.data;
  const marker = `${path.sep}data${path.sep}demo`;
  const at = csv.lastIndexOf(`${marker}${path.sep}`);
  if (at < 0) return null;
  const root = csv.slice(0, at + marker.length);
  const inside = (p: string): boolean => p === root || p.startsWith(`${root}${path.sep}`);
  if (!inside(imageDir) || (mappingCsv !== null && !inside(mappingCsv))) return null;
  if (path.dirname(csv) !== root || ![joinedCsvName, gz2CsvName].includes(path.basename(csv))) return null;
  return root;
}

/**
 * Makes `npm start` work on a fresh clone: if the configured labels CSV is missing and the
 * config points at the built-in demo folder, synthesizes ~1,500 images there first (seed =
 * config.seed, 424x424, balanced classes, no hazards). Anything else is left alone: a missing
 * real data set is the caller's error to report, never something to fake.
 */
export async function ensureDemoData(config: LoadedConfig, output: Output, options: { count?: number } = {}): Promise<{ synthesized: boolean }> {
  if (existsSync(config.data.csv)) return { synthesized: false };
  const root = demoDataRoot(config);
  if (!root) return { synthesized: false };
  const count = options.count ?? demoImageCount;
  output.info(`demo data: ${config.data.csv} is missing, so synthesizing ${count} images into ${root} (seed ${config.seed}; once only)`);
  // force: a previous interrupted run may have left images without catalogues; only synth's own files are replaced
  await synthesizeDataset({
    out: root, count, seed: config.seed, size: 424, hazards: false, imbalance: false, force: true,
  }, output);
  return { synthesized: true };
}
