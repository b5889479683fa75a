import { closeSync, existsSync, openSync, readdirSync, readSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { readManifestIfPresent, REJECTS_FILE } from './manifest.ts';
import { readShard } from './reader.ts';

/** What `galactic inspect` shows about each cache under cache.dir, and the pruning it offers. */
export interface CacheListing {
  key: string;
  dir: string;
  status: 'complete' | 'incomplete' | 'unreadable' | 'no manifest';
  shards: number;
  images: number;
  rows: number;
  rejected: number;
  /**
   * Rejected rows by reason: the manifest's counts, or counted from rejects.jsonl when there is no manifest (a refused
   * or interrupted prepare).
   */
  rejects: Record<string, number>;
  /** rejects.jsonl of this cache, when there is one. */
  rejectsFile: string | null;
  /** Why the manifest is unreadable (status 'unreadable'). */
  problem: string | null;
  bytes: number;
  image: string | null;
  classes: string[];
  updatedAt: string | null;
  matchesConfig: boolean;
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    total += entry.isDirectory() ? folderBytes(full) : statSync(full).size;
  }
  return total;
}

/** Counts rejects.jsonl's lines by reason, reading it in 1 MB pieces (it can hold a line per CSV row). */
function countRejects(file: string): Record<string, number> {
  const counts: Record<string, number> = {};
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(1 << 20);
    let carry = '';
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) {
      const lines = (carry + chunk.toString('utf8', 0, n)).split('\n');
      carry = lines.pop()!;
      for (const line of lines) {
        const reason = /"reason":"([a-z-]+)"/.exec(line)?.[1];
        if (reason) counts[reason] = (counts[reason] ?? 0) + 1;
      }
    }
  } finally {
    closeSync(fd);
  }
  return counts;
}

/** Every cache folder under `root`, newest first; `currentKey` marks the one the config uses. */
export function listCaches(root: string, currentKey: string | null): CacheListing[] {
  let names: string[];
  try {
    names = readdirSync(root, { withFileTypes: true })
      // hidden folders are no caches (.parts: a distributed prepare's work in progress)
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name);
  } catch {
    return [];
  }
  const listings = names.map((key): CacheListing => {
    const dir = path.join(root, key);
    const rejectsFile = existsSync(path.join(dir, REJECTS_FILE)) ? path.join(dir, REJECTS_FILE) : null;
    const base = { key, dir, bytes: folderBytes(dir), matchesConfig: key === currentKey, rejectsFile, problem: null };
    const fromLog = (): Pick<CacheListing, 'rejects' | 'rejected'> => {
      const rejects = rejectsFile ? countRejects(rejectsFile) : {};
      return { rejects, rejected: Object.values(rejects).reduce((a, b) => a + b, 0) };
    };
    try {
      const manifest = readManifestIfPresent(dir);
      if (!manifest)
        return {
          ...base,
          status: 'no manifest',
          shards: 0,
          images: 0,
          rows: 0,
          ...fromLog(),
          image: null,
          classes: [],
          updatedAt: null,
        };
      const { width, height, channels, fit } = manifest.image;
      return {
        ...base,
        status: manifest.complete ? 'complete' : 'incomplete',
        shards: manifest.shards.length,
        images: manifest.totals.images,
        rows: manifest.totals.rows,
        ...(manifest.complete ? { rejected: manifest.totals.rejected, rejects: { ...manifest.rejects } } : fromLog()),
        image: `${width}x${height}x${channels} ${fit} ${manifest.dtype}`,
        classes: manifest.classes,
        updatedAt: manifest.updatedAt,
      };
    } catch (error) {
      return {
        ...base,
        status: 'unreadable',
        problem: (error as Error).message,
        shards: 0,
        images: 0,
        rows: 0,
        ...fromLog(),
        image: null,
        classes: [],
        updatedAt: null,
      };
    }
  });
  return listings.sort((a, b) => (b.updatedAt ?? '').localeCompare(a.updatedAt ?? '') || a.key.localeCompare(b.key));
}

/** Removes the listed caches; returns the bytes freed. */
export function removeCaches(caches: CacheListing[]): number {
  let freed = 0;
  for (const cache of caches) {
    rmSync(cache.dir, { recursive: true, force: true });
    freed += cache.bytes;
  }
  return freed;
}

export interface CacheVerification {
  shards: number;
  /** One line per damaged shard (or the unreadable manifest); empty when everything matches. */
  problems: string[];
}

/**
 * Reads every shard the manifest lists, one at a time, and checks its size, its file CRC and the
 * data CRC inside (readShard): what a cache hit cannot afford to do on every run.
 */
export async function verifyCache(cache: CacheListing): Promise<CacheVerification> {
  let manifest;
  try {
    manifest = readManifestIfPresent(cache.dir);
  } catch (error) {
    return { shards: 0, problems: [(error as Error).message] };
  }
  if (!manifest) return { shards: 0, problems: [] };
  const problems: string[] = [];
  for (const entry of manifest.shards) {
    try {
      await readShard(cache.dir, entry);
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  return { shards: manifest.shards.length, problems };
}
