import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { z } from 'zod';
import { readJsonFileAs } from '../core/json-file.ts';
import path from 'node:path';
import { canonicalJson } from '../core/canonical-json.ts';
import { UserError } from '../core/errors.ts';
import { MANIFEST_FORMAT, CACHE_FORMAT_VERSION, type Manifest } from './format.ts';
import { replaceFileAtomic, type WriteFileFn } from '../core/atomic-file.ts';

export const MANIFEST_FILE = 'manifest.json';
export const REJECTS_FILE = 'rejects.jsonl';

/** What to do after a refused cache write (FileWriteError's `then`). */
export const PREPARE_AGAIN = "then run 'galactic prepare' again: it resumes after the last complete shard";

export class CacheNotFoundError extends UserError {
  constructor(cacheDir: string) {
    super(
      `no prepared cache at ${cacheDir} (manifest.json is missing). Run 'galactic prepare' with the same config first.`,
    );
  }
}

export class CacheIncompleteError extends UserError {
  constructor(cacheDir: string, images: number) {
    super(
      `the cache at ${cacheDir} is incomplete (a prepare run stopped after ${images} images). Run 'galactic prepare' again to finish it.`,
    );
  }
}

export class ManifestUnreadableError extends UserError {
  constructor(file: string, detail: string) {
    super(`cache manifest ${file} is unreadable (${detail}). Run 'galactic prepare --force' to rebuild the cache.`);
  }
}

const count = z.number().int().nonnegative();
/** What a reader relies on; other fields pass through (written by this version, read as they are). */
const manifestSchema = z.looseObject({
  format: z.literal(MANIFEST_FORMAT, { error: 'not a galactic manifest' }),
  version: z.number(),
  cacheKey: z.string(),
  classes: z.array(z.string()),
  image: z.looseObject({ width: count, height: count, channels: count }),
  dtype: z.enum(['uint8', 'float32']),
  shardImages: count,
  shards: z.array(
    z.looseObject({
      file: z.string().regex(/^[^/\\]+$/, 'a file name inside the cache folder'),
      count,
      bytes: count,
      crc32: count,
    }),
  ),
  classCounts: z.array(count),
  totals: z.looseObject({ rows: count, images: count, rejected: count, bytes: count }),
  rejects: z.record(z.string(), count),
  complete: z.boolean(),
});

/** The manifest if one is there (complete or not); null when absent. Throws when it is damaged. */
export function readManifestIfPresent(cacheDir: string): Manifest | null {
  const file = path.join(cacheDir, MANIFEST_FILE);
  const manifest = readJsonFileAs(
    file,
    manifestSchema,
    (detail) => new ManifestUnreadableError(file, detail),
  ) as Manifest | null;
  if (!manifest) return null;
  if (manifest.version !== CACHE_FORMAT_VERSION) {
    throw new ManifestUnreadableError(
      file,
      `format version ${manifest.version}, this galactic writes ${CACHE_FORMAT_VERSION}`,
    );
  }
  if (typeof manifest.checksum !== 'string')
    throw new ManifestUnreadableError(file, 'it carries no checksum, so its counts cannot be trusted');
  if (manifest.checksum !== manifestChecksum(manifest)) {
    throw new ManifestUnreadableError(
      file,
      'its checksum does not match its content: it was edited or damaged after galactic wrote it',
    );
  }
  return manifest;
}

/**
 * sha256 over the canonical JSON of everything but the checksum itself: an edited count, shard
 * entry or class list no longer matches. (Numbers survive the JSON round trip exactly.)
 */
export function manifestChecksum(manifest: Manifest): string {
  const { checksum: _checksum, ...content } = manifest;
  return `sha256:${createHash('sha256').update(canonicalJson(content)).digest('hex')}`;
}

/** The manifest with its checksum set, as written to disk (tests that write caches by hand use it too). */
export function sealManifest(manifest: Manifest): Manifest {
  return { ...manifest, checksum: manifestChecksum(manifest) };
}

/**
 * The cheap checks of a cache hit: every shard file the manifest lists is there with the size it
 * records (the manifest's own checksum was checked when it was read). Returns what is wrong, or
 * null. A same-size change inside a shard is caught by its CRC when it is read, or by
 * `galactic inspect --verify`, which reads every shard.
 */
export function shardFilesProblem(cacheDir: string, manifest: Manifest): string | null {
  for (const entry of manifest.shards) {
    let size: number;
    try {
      size = statSync(path.join(cacheDir, entry.file)).size;
    } catch {
      return `${entry.file} is missing`;
    }
    if (size !== entry.bytes) return `${entry.file} has ${size} bytes, the manifest says ${entry.bytes}`;
  }
  return null;
}

/** A complete cache's manifest; throws a UserError when absent or incomplete. */
export function readManifest(cacheDir: string): Manifest {
  const manifest = readManifestIfPresent(cacheDir);
  if (!manifest) throw new CacheNotFoundError(cacheDir);
  if (!manifest.complete) throw new CacheIncompleteError(cacheDir, manifest.totals.images);
  return manifest;
}

/** Replaces manifest.json atomically (stable key order: it is compared across runs). */
export async function writeManifest(cacheDir: string, manifest: Manifest, write?: WriteFileFn): Promise<void> {
  await replaceFileAtomic(path.join(cacheDir, MANIFEST_FILE), `${JSON.stringify(sealManifest(manifest), null, 2)}\n`, {
    write,
    then: PREPARE_AGAIN,
  });
}
