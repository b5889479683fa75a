import { writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The tiny search the distributed test files run (32x32 synthetic images, wasm with one thread in
 * every process, so they give the same result with or without tfjs-node), as a config file per
 * tuning folder. Trials and epochs differ per file: the fault tests need longer
 * trials to kill one mid-way.
 */
export function distributedConfigWriter(root: string, search: { maxTrials: number; epochs: number }) {
  const base = {
    data: { csv: 'data/galaxy_df_final.csv', imageDir: 'data/images' },
    image: { width: 32, height: 32 },
    cache: { dir: 'cache' },
    memory: { limitMB: 2048 },
    threads: 1,
    backend: 'wasm',
    train: { batchSize: 16 },
    model: { filters: [4, 8, 8], denseUnits: 8 },
    tuner: {
      ...search,
      patience: null,
      dir: 'tuning',
      space: {
        filters_1: { type: 'choice', values: [4, 8] },
        dense_units: { type: 'int', min: 8, max: 16, step: 8 },
        learning_rate: { type: 'float', min: 0.001, max: 0.01, sampling: 'log' },
      },
    },
  };
  /** Writes `<root>/<dir>.config.json` whose tuning folder is `dir`; returns its path. */
  return (dir: string, extra: Record<string, unknown> = {}): string => {
    const file = path.join(root, `${dir}.config.json`);
    writeFileSync(file, JSON.stringify({ ...base, ...extra, tuner: { ...base.tuner, dir } }));
    return file;
  };
}
