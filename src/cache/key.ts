import { createHash } from 'node:crypto';
import { openSync, readSync, closeSync } from 'node:fs';
import path from 'node:path';
import type { LoadedConfig } from '../config/load.ts';
import { CACHE_FORMAT_VERSION } from './format.ts';
import { ImageIndex } from '../ingest/image-index.ts';
import { CsvNotFoundError } from '../ingest/csv-source.ts';

/**
 * The cache is content-addressed: its folder name is a hash of everything that changes the bytes
 * of the shards, and of nothing else. Training-only settings (model, feed, split, tuner, memory)
 * are left out, so changing them reuses the cache; paths are left out too (moving the data keeps
 * the cache). Image content is covered by name only: replacing an image file in place needs
 * `prepare --force` (hashing every image would cost a full read of the data set per run).
 */

export interface CacheKeyInputs {
  formatVersion: number;
  layout: string;
  idColumn: string;
  labelColumn: string;
  mappingObjectColumn: string | null;
  mappingImageColumn: string | null;
  fileName: string;
  classes: { name: string; match: string }[];
  limit: number | null;
  maxRowBytes: number;
  /** `kernel` only when not the default lanczos3, so caches built before the option keep their keys. */
  image: { width: number; height: number; channels: number; fit: string; maxInputPixels: number; kernel?: string };
  dtype: string;
  /** sha256 of the labels CSV bytes (and of the mapping CSV for the gz2 layout). */
  csvSha256: string;
  mappingSha256: string | null;
  /** sha256 over the sorted image names that fit data.fileName. */
  imageNamesSha256: string;
  imageCount: number;
}

export function fileSha256(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    throw new CsvNotFoundError(file, error as NodeJS.ErrnoException);
  }
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(1 << 20);
  try {
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) hash.update(chunk.subarray(0, n));
  } catch (error) {
    throw new CsvNotFoundError(file, error as NodeJS.ErrnoException);
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

export function cacheKeyInputs(
  config: LoadedConfig,
  index: ImageIndex,
  limit: number | null = config.data.limit,
): CacheKeyInputs {
  const gz2 = config.data.layout === 'gz2';
  const { width, height, channels, fit, maxInputPixels, kernel } = config.image;
  return {
    formatVersion: CACHE_FORMAT_VERSION,
    layout: config.data.layout,
    idColumn: config.data.idColumn,
    labelColumn: config.data.labelColumn,
    mappingObjectColumn: gz2 ? config.data.mappingObjectColumn : null,
    mappingImageColumn: gz2 ? config.data.mappingImageColumn : null,
    fileName: config.data.fileName,
    classes: config.data.classes.map(({ name, match }) => ({ name, match })),
    limit,
    maxRowBytes: config.data.maxRowBytes,
    image: { width, height, channels, fit, maxInputPixels, ...(kernel === 'lanczos3' ? {} : { kernel }) },
    dtype: config.cache.dtype,
    csvSha256: fileSha256(config.data.csv),
    mappingSha256: gz2 && config.data.mappingCsv ? fileSha256(config.data.mappingCsv) : null,
    imageNamesSha256: index.digest,
    imageCount: index.size,
  };
}

/** 16 hex digits of sha256 over the canonical JSON of the inputs: short enough for a folder name. */
export function cacheKey(inputs: CacheKeyInputs): string {
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16);
}

/** <cache.dir>/<cacheKey> for the config (reads the CSVs and lists the image folder to hash them). */
export function resolveCacheDir(config: LoadedConfig, options: { limit?: number | null } = {}): string {
  const index = ImageIndex.buildSync(config.data.imageDir, config.data.fileName);
  const inputs = cacheKeyInputs(config, index, options.limit === undefined ? config.data.limit : options.limit);
  return path.join(config.cache.dir, cacheKey(inputs));
}
