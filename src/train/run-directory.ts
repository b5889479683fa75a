import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { jsonText, replaceDirAtomic } from '../core/atomic-file.ts';
import { UserError } from '../core/errors.ts';
import { readJsonFileAs } from '../core/json-file.ts';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { LoadedConfig } from '../config/load.ts';
import type { Normalization } from '../data/normalization.ts';
import type { HyperparameterValues } from '../model/architecture.ts';
import { saveModel } from '../model/io.ts';
import type { ValidationMetrics } from './metrics.ts';
import type { EpochRecord } from './trainer.ts';

/**
 * A run folder (contract §7): model.json + weights.bin, metadata.json, history.json,
 * metrics.json. Written into a temporary sibling folder and renamed into place, so
 * `runs/<name>` is always a whole run (the previous one, or the new one).
 */

export { GALACTIC_VERSION } from '../core/version.ts';

export interface RunMetadata {
  format: 'galactic-run';
  version: 1;
  name: string;
  createdAt: string;
  classes: string[];
  /** The image settings predict decodes with (same as prepare's). */
  image: LoadedConfig['image'];
  normalization: Normalization;
  cacheDtype: string;
  backend: { name: string; reason: string };
  versions: { galactic: string; tfjs: string; node: string };
  configDigest: string;
  configPath: string;
  cacheKey: string;
  hyperparameters: HyperparameterValues;
  /** Where the learning rate came from: the tuner/--hp values, train.learningRate, or model.learningRate. */
  learningRate: { value: number; source: 'hyperparameters' | 'train.learningRate' | 'model.learningRate' };
  seed: number;
  split: { validation: number; stratify: boolean; trainImages: number; validationImages: number };
  epochs: number;
  bestEpoch: number;
  stopReason: string;
}

/** sha256 of the config's canonical JSON (sorted keys, without where it was loaded from). */
export function configDigest(config: LoadedConfig): string {
  const { configPath: _path, configDir: _dir, ...rest } = config;
  const canonical = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(canonical);
    if (value && typeof value === 'object') {
      return Object.fromEntries(
        Object.keys(value)
          .sort()
          .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
      );
    }
    return value;
  };
  return `sha256:${createHash('sha256')
    .update(JSON.stringify(canonical(rest)))
    .digest('hex')}`;
}

export interface RunContents {
  model: tf.LayersModel;
  metadata: RunMetadata;
  history: EpochRecord[];
  metrics: ValidationMetrics;
}

export async function writeRunDirectory(runDir: string, contents: RunContents): Promise<void> {
  await replaceDirAtomic(
    runDir,
    async (dir) => {
      await saveModel(contents.model, dir);
      writeFileSync(path.join(dir, 'metadata.json'), jsonText(contents.metadata));
      writeFileSync(path.join(dir, 'history.json'), jsonText(contents.history));
      writeFileSync(path.join(dir, 'metrics.json'), jsonText(contents.metrics));
    },
    'then run the training again',
  );
}

export class RunMetadataError extends UserError {
  constructor(file: string, detail: string) {
    super(
      `run metadata ${file} is unreadable (${detail}). Train the run again ('galactic train' or 'galactic run') to rewrite its folder.`,
    );
  }
}

const runMetadataSchema = z.looseObject({
  format: z.literal('galactic-run', { error: 'not a galactic run folder' }),
  version: z.literal(1),
  classes: z.array(z.string()).min(1),
  image: z.looseObject({
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    channels: z.number().int().positive(),
  }),
  normalization: z.looseObject({}),
  configDigest: z.string(),
  cacheKey: z.string(),
  hyperparameters: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])),
  split: z.looseObject({
    trainImages: z.number().int().nonnegative(),
    validationImages: z.number().int().nonnegative(),
  }),
});

export function readRunMetadata(runDir: string): RunMetadata | null {
  const file = path.join(runDir, 'metadata.json');
  return readJsonFileAs(
    file,
    runMetadataSchema,
    (detail) => new RunMetadataError(file, detail),
  ) as unknown as RunMetadata | null;
}
