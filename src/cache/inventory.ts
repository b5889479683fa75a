import { readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { readManifestIfPresent } from './manifest.ts';

/** What `galactic inspect` shows about each cache under cache.dir, and the pruning it offers. */
export interface CacheListing {
  key: string;
  dir: string;
  status: 'complete' | 'incomplete' | 'unreadable' | 'no manifest';
  shards: number;
  images: number;
  rows: number;
  rejected: number;
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

/** Every cache folder under `root`, newest first; `currentKey` marks the one the config uses. */
export function listCaches(root: string, currentKey: string | null): CacheListing[] {
  let names: string[];
  try {
    names = readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
  const listings = names.map((key): CacheListing => {
    const dir = path.join(root, key);
    const base = { key, dir, bytes: folderBytes(dir), matchesConfig: key === currentKey };
    try {
      const manifest = readManifestIfPresent(dir);
      if (!manifest) return { ...base, status: 'no manifest', shards: 0, images: 0, rows: 0, rejected: 0, image: null, classes: [], updatedAt: null };
      const { width, height, channels, fit } = manifest.image;
      return {
        ...base,
        status: manifest.complete ? 'complete' : 'incomplete',
        shards: manifest.shards.length,
        images: manifest.totals.images,
        rows: manifest.totals.rows,
        rejected: manifest.totals.rejected,
        image: `${width}x${height}x${channels} ${fit} ${manifest.dtype}`,
        classes: manifest.classes,
        updatedAt: manifest.updatedAt,
      };
    } catch {
      return { ...base, status: 'unreadable', shards: 0, images: 0, rows: 0, rejected: 0, image: null, classes: [], updatedAt: null };
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
