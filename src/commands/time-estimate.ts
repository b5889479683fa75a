import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import type { LoadedConfig } from '../config/load.ts';
import type { Output } from '../core/console.ts';
import type { ImageCounts, TimePlan } from '../tune/time-plan.ts';
import type { MemoryPlan } from '../memory/plan.ts';
import type { EstimateBackend } from '../memory/trial-estimate.ts';

/**
 * `galactic plan`'s time plan (src/tune/time-plan.ts), made before anything is prepared when need
 * be: image counts from what exists (the prepared cache, else the CSV's rows, else the demo's
 * size), and the backend selected only when a rate must be measured, so a plan whose rates are
 * cached never loads tfjs.
 */

/** Data rows of a CSV (lines after the header, blank lines not counted), read in 1 MiB blocks. */
function countCsvRows(file: string): number {
  const fd = openSync(file, 'r');
  try {
    const block = Buffer.allocUnsafe(1 << 20);
    let last = 10;
    let blank = true;
    let nonBlank = 0;
    for (;;) {
      const n = readSync(fd, block, 0, block.length, null);
      if (n === 0) break;
      for (let i = 0; i < n; i++) {
        const c = block[i];
        if (c === 10) {
          if (!blank) nonBlank++;
          blank = true;
        } else if (c !== 13 && c !== 32) {
          blank = false;
        }
        last = c;
      }
    }
    if (last !== 10 && !blank) nonBlank++;
    return Math.max(0, nonBlank - 1);
  } finally {
    closeSync(fd);
  }
}

/** Counts for `galactic plan`, before anything is prepared when need be; null when nothing tells. */
async function countsBeforePrepare(
  config: LoadedConfig,
): Promise<{ images: ImageCounts; numClasses: number; cacheKey: string | null } | null> {
  const { imageCounts } = await import('../tune/time-plan.ts');
  const numClasses = config.data.classes.length;
  const limit = config.data.limit;
  try {
    const [{ resolveCacheDir }, { readManifestIfPresent }] = await Promise.all([
      import('../cache/key.ts'),
      import('../cache/manifest.ts'),
    ]);
    const cacheDir = resolveCacheDir(config);
    const manifest = readManifestIfPresent(cacheDir);
    const cacheKey = cacheDir.split(/[\\/]/).pop() ?? null;
    if (manifest?.complete) {
      return {
        images: imageCounts(manifest.totals.images, config, 'the prepared cache'),
        numClasses: manifest.classes.length,
        cacheKey,
      };
    }
  } catch {
    // no data yet (the demo before its first run) or unreadable: estimated below
  }
  if (existsSync(config.data.csv)) {
    const rows = countCsvRows(config.data.csv);
    const images = limit !== null ? Math.min(limit, rows) : rows;
    return {
      images: imageCounts(
        images,
        config,
        `up to ${images.toLocaleString('en-US')} CSV rows; not prepared yet, rows without a usable image drop out`,
      ),
      numClasses,
      cacheKey: null,
    };
  }
  if (config.data.synthesize !== null) {
    const images = limit !== null ? Math.min(limit, config.data.synthesize) : config.data.synthesize;
    return {
      images: imageCounts(images, config, 'synthetic data (data.synthesize), rendered on the first run'),
      numClasses,
      cacheKey: null,
    };
  }
  if (limit !== null)
    return {
      images: imageCounts(limit, config, `data.limit; ${config.data.csv} is not there yet`),
      numClasses,
      cacheKey: null,
    };
  return null;
}

/**
 * `galactic plan`: the time plan of `galactic run` (search + final training); null with the reason when it cannot be
 * made.
 */
export async function timePlanForPlan(
  config: LoadedConfig,
  memoryPlan: MemoryPlan,
  output: Output,
): Promise<{ plan: TimePlan | null; problem: string | null }> {
  const counts = await countsBeforePrepare(config);
  if (!counts)
    return {
      plan: null,
      problem: `no time plan: ${config.data.csv} does not exist yet, so the number of images is unknown (set data.limit, or prepare first)`,
    };
  const { fitsMemoryPlan, knownBackend, measureOn, planTime, rememberAutoBackend, searchProgress } =
    await import('../tune/time-plan.ts');
  let backend = knownBackend(config, config.backend);
  let selected = false;
  const select = async () => {
    if (selected) return;
    const { selectBackend } = await import('../model/backend.ts');
    const choice = await selectBackend(config.backend, undefined, { threads: config.threads });
    selected = true;
    if (config.backend === 'auto') await rememberAutoBackend(choice.name);
    backend = { name: choice.name, threads: choice.threads ?? null };
  };
  if (!backend) await select();
  const plan = await planTime({
    config,
    images: counts.images,
    numClasses: counts.numClasses,
    backend: backend!,
    search: { progress: searchProgress(config, counts.cacheKey) },
    train: { values: null, epochs: config.train.epochs },
    measure: async (values) => {
      await select();
      return (await measureOn(config, counts.numClasses))(values);
    },
    fits: fitsMemoryPlan(config, memoryPlan, counts.numClasses, backend?.name as EstimateBackend | undefined),
    output,
  });
  return { plan, problem: null };
}
