import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../core/errors.ts';
import type { Output } from '../core/console.ts';

/**
 * Synthetic data sets for the scale and sweep runs, made by `galactic synth` and kept between
 * runs (synthesizing 50,000 424x424 JPEGs takes minutes): a folder with a marker file written
 * only after synth succeeded, so an interrupted synthesis is redone rather than half reused.
 */
export interface SynthDataset {
  dir: string;
  csv: string;
  imageDir: string;
  count: number;
  imageSize: number;
  seed: number;
  /** Seconds the synthesis took when it ran (the first time). */
  synthSeconds: number;
  /** Bytes on disk (CSV files + images). */
  diskBytes: number;
}

const MARKER = 'bench-dataset.json';
const cliPath = fileURLToPath(new URL('../../bin/galactic.js', import.meta.url));

export class SynthFailedError extends UserError {
  constructor(dir: string, detail: string) {
    super(
      `synthesizing the bench data set in ${dir} failed: ${detail}. Check free disk space and that 'galactic synth' works, then rerun (the set is rebuilt).`,
    );
  }
}

/** Total size of the regular files under `dir`. */
export function diskBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += diskBytes(full);
    else if (entry.isFile()) total += statSync(full).size;
  }
  return total;
}

export async function ensureSynthDataset(
  root: string,
  count: number,
  options: { imageSize: number; seed: number; output: Output },
): Promise<SynthDataset> {
  const dir = path.resolve(root, `synth-${count}-${options.imageSize}px-seed${options.seed}`);
  const marker = path.join(dir, MARKER);
  if (existsSync(marker)) {
    const cached = JSON.parse(readFileSync(marker, 'utf8')) as SynthDataset;
    options.output.info(`bench: reusing ${count} synthetic images in ${dir}`);
    return { ...cached, dir, csv: path.join(dir, 'galaxy_df_final.csv'), imageDir: path.join(dir, 'images') };
  }
  mkdirSync(dir, { recursive: true });
  options.output.info(
    `bench: synthesizing ${count} images of ${options.imageSize} px into ${dir} (once; reused by later runs)`,
  );
  const started = Date.now();
  const args = [
    cliPath,
    'synth',
    '--out',
    dir,
    '--count',
    String(count),
    '--size',
    String(options.imageSize),
    '--seed',
    String(options.seed),
    '--force',
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', resolve);
  });
  if (code !== 0) throw new SynthFailedError(dir, stderr.trim().split('\n').pop() ?? `exit code ${code}`);
  const dataset: SynthDataset = {
    dir,
    csv: path.join(dir, 'galaxy_df_final.csv'),
    imageDir: path.join(dir, 'images'),
    count,
    imageSize: options.imageSize,
    seed: options.seed,
    synthSeconds: Math.round((Date.now() - started) / 100) / 10,
    diskBytes: diskBytes(dir),
  };
  writeFileSync(marker, `${JSON.stringify(dataset, null, 2)}\n`);
  return dataset;
}
