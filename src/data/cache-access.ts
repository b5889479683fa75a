import { UserError } from '../core/errors.ts';
import type { Manifest, Shard, ShardEntry } from '../cache/format.ts';
import { readManifest } from '../cache/manifest.ts';
import { readShard } from '../cache/reader.ts';

/**
 * The feed's only door into the cache (prepare's readers, contract §4): the manifest and one
 * shard at a time. Kept in one place so the feed, the split and the trainer read a cache alike.
 */

export class EmptyCacheError extends UserError {
  constructor(cacheDir: string) {
    super(
      `the tensor cache in ${cacheDir} holds no images, so there is nothing to train on. Check data.csv, data.imageDir and the rejects in 'galactic inspect'.`,
    );
  }
}

export function loadManifest(cacheDir: string): Manifest {
  const manifest = readManifest(cacheDir);
  if (manifest.shards.length === 0) throw new EmptyCacheError(cacheDir);
  return manifest;
}

/** Reads and checks one shard; its `data` is a view into the file bytes (no pixel copy). */
export function loadShard(cacheDir: string, entry: ShardEntry): Promise<Shard> {
  return readShard(cacheDir, entry);
}
