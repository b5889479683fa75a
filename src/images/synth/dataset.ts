import { writeJsonAtomicSync } from '../../core/atomic-file.ts';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { UsageError } from '../../core/errors.ts';
import { formatSeconds, type Output } from '../../core/console.ts';
import { writeCatalogues } from './catalogues.ts';
import { DatasetPlan } from './dataset-plan.ts';
import { expectedOutcome, minimumHazardCount, plantedHazardCount, type ExpectedOutcome } from './hazards.ts';
import { gz2CsvName, hazardsFileName, imagesDirName, mappingCsvName } from './layout.ts';
import { asOutputError, prepareOutputDir } from './output-dir.ts';
import { RenderPool } from './worker-pool.ts';

/**
 * `galactic synth` as a library call: renders a Galaxy Zoo 2 shaped data set (images, the
 * pre-joined CSV, the official two-file layout) and, on request, plants the hazards of
 * docs/interfaces.md §1. Images first, catalogues after (each renamed into place when
 * complete, galaxy_df_final.csv last), so an interrupted run never looks finished.
 */
export interface SynthOptions {
  out: string;
  count: number;
  seed: number;
  size: number;
  hazards: boolean;
  imbalance: boolean;
  force: boolean;
  /** render threads; defaults to one per core */
  threads?: number;
}

export interface SynthSummary {
  out: string;
  count: number;
  images: number;
  seconds: number;
  imagesPerSecond: number;
  hazards: { file: string; planted: number; expected: ExpectedOutcome } | null;
}

export function validateSynthOptions(options: SynthOptions): void {
  const positive = (flag: string, value: number, min = 1): void => {
    if (!Number.isInteger(value) || value < min)
      throw new UsageError(`${flag} must be an integer of at least ${min} (got ${value}).`);
  };
  positive('--count', options.count);
  positive('--size', options.size, 16);
  if (options.size > 4096) throw new UsageError(`--size must be at most 4096 (got ${options.size}).`);
  if (!Number.isInteger(options.seed) || options.seed < 0 || options.seed > 2 ** 31 - 1) {
    throw new UsageError(`--seed must be an integer from 0 to ${2 ** 31 - 1} (got ${options.seed}).`);
  }
  if (options.hazards && options.count < minimumHazardCount) {
    throw new UsageError(
      `--count must be at least ${minimumHazardCount} with --hazards, which plants ${plantedHazardCount} hazards (got ${options.count}).`,
    );
  }
}

export async function synthesizeDataset(options: SynthOptions, output: Output): Promise<SynthSummary> {
  validateSynthOptions(options);
  const out = path.resolve(options.out);
  prepareOutputDir(out, options.force);
  const started = performance.now();
  const plan = new DatasetPlan(options);
  const total = plan.imageCount();

  // a handful of images does not pay for starting a worker per core
  const pool = await RenderPool.start(
    Math.max(1, Math.min(options.threads ?? availableParallelism(), Math.ceil(total / 8))),
  );
  const progress = output.progress('synth', total, 'images');
  let images = 0;
  try {
    await pool.run(plan.jobs(path.join(out, imagesDirName)), () => {
      images++;
      progress.update(images);
    });
  } catch (error) {
    throw asOutputError(error, out);
  } finally {
    await pool.close();
  }
  const renderSeconds = (performance.now() - started) / 1000;
  progress.stop(
    `synth: ${images} images (${options.size}x${options.size}) in ${formatSeconds(renderSeconds)} on ${pool.threads} threads`,
  );

  let catalogues: ReturnType<typeof writeCatalogues>;
  try {
    catalogues = writeCatalogues(plan, out);
  } catch (error) {
    throw asOutputError(error, out);
  }
  let hazards: SynthSummary['hazards'] = null;
  if (options.hazards) {
    const expected = expectedOutcome(catalogues.joined, options.count);
    writeJsonAtomicSync(path.join(out, hazardsFileName), {
      seed: options.seed,
      count: options.count,
      hazards: catalogues.joined,
      expected,
      gz2: {
        csv: gz2CsvName,
        mappingCsv: mappingCsvName,
        note: 'the same records in the gz2 layout: rows line up with galaxy_df_final.csv; ids are dr7objid',
        hazards: catalogues.gz2,
        expected: expectedOutcome(catalogues.gz2, options.count),
      },
    });
    hazards = { file: path.join(out, hazardsFileName), planted: catalogues.joined.length, expected };
    output.info(
      `synth: planted ${catalogues.joined.length} hazards; expected outcomes in ${path.join(out, hazardsFileName)}`,
    );
  }
  catalogues.commit();
  const seconds = (performance.now() - started) / 1000;
  return {
    out,
    count: options.count,
    images,
    seconds: round(seconds, 3),
    imagesPerSecond: round(images / Math.max(renderSeconds, 1e-9), 1),
    hazards,
  };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
