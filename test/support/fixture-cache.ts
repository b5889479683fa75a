import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CACHE_FORMAT_VERSION, MANIFEST_FORMAT, encodeShard, type Manifest } from '../../src/cache/format.ts';
import { crc32 } from '../../src/cache/crc32.ts';
import { Rng } from '../../src/core/rng.ts';
import { sealManifest } from '../../src/cache/manifest.ts';

/**
 * Writes a tensor cache (shards + manifest.json) directly, so feed and trainer tests do not
 * depend on `prepare`. Records are given as uint8 HWC pixels.
 */
export interface FixtureRecord {
  id: string;
  label: number;
  pixels: Uint8Array;
}

export interface FixtureOptions {
  classes: string[];
  height: number;
  width: number;
  channels: number;
  shardImages: number;
  /** float32 caches store these values instead of the uint8 pixels (e.g. to plant a NaN). */
  dtype?: 'uint8' | 'float32';
  floatValues?: (record: FixtureRecord) => Float32Array;
}

export function writeFixtureCache(dir: string, records: FixtureRecord[], options: FixtureOptions): Manifest {
  mkdirSync(dir, { recursive: true });
  const { height, width, channels, shardImages } = options;
  const size = height * width * channels;
  const shards: Manifest['shards'] = [];
  const classCounts = new Array<number>(options.classes.length).fill(0);
  const sum = new Float64Array(channels);
  const sumSq = new Float64Array(channels);
  for (let start = 0, k = 0; start < records.length; start += shardImages, k++) {
    const chunk = records.slice(start, start + shardImages);
    const float = options.dtype === 'float32';
    const data = new Uint8Array(chunk.length * size * (float ? 4 : 1));
    chunk.forEach((r, i) => {
      if (float) {
        const values = options.floatValues ? options.floatValues(r) : Float32Array.from(r.pixels);
        data.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), i * size * 4);
      } else {
        data.set(r.pixels, i * size);
      }
      classCounts[r.label]++;
      for (let p = 0; p < size; p++) {
        sum[p % channels] += r.pixels[p];
        sumSq[p % channels] += r.pixels[p] * r.pixels[p];
      }
    });
    const bytes = encodeShard({
      dtype: float ? 'float32' : 'uint8',
      shape: [chunk.length, height, width, channels],
      ids: chunk.map((r) => r.id),
      labels: Int32Array.from(chunk.map((r) => r.label)),
      data,
    });
    const file = `shard-${String(k).padStart(5, '0')}.msgpack`;
    writeFileSync(path.join(dir, file), bytes);
    shards.push({ file, count: chunk.length, bytes: bytes.byteLength, crc32: crc32(bytes) });
  }
  const pixels = (records.length * size) / channels;
  const mean = Array.from(sum, (s) => s / pixels);
  const std = Array.from(sumSq, (s, c) => Math.sqrt(Math.max(0, s / pixels - mean[c] * mean[c])));
  const now = new Date(0).toISOString();
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    version: CACHE_FORMAT_VERSION,
    cacheKey: path.basename(dir),
    inputs: { fixture: true },
    classes: options.classes,
    image: { width, height, channels, fit: 'fill' },
    dtype: options.dtype ?? 'uint8',
    shardImages,
    shards,
    classCounts,
    channelStats: { mean, std },
    totals: {
      rows: records.length,
      images: records.length,
      rejected: 0,
      bytes: shards.reduce((s, e) => s + e.bytes, 0),
    },
    rejects: {},
    complete: true,
    toolVersion: 'fixture',
    createdAt: now,
    updatedAt: now,
  };
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(sealManifest(manifest), null, 2));
  return manifest;
}

/**
 * Easy-to-separate synthetic images: class 0 a bright round blob, class 1 a bright bar through
 * the centre at a random angle, class 2 faint noise; all with noise so no two are equal.
 */
export function patternRecords(count: number, size: number, seed: number, classes = 3): FixtureRecord[] {
  const rng = new Rng(seed, 'fixture-patterns');
  const records: FixtureRecord[] = [];
  for (let n = 0; n < count; n++) {
    const label = n % classes;
    const pixels = new Uint8Array(size * size * 3);
    const angle = rng.uniform(0, Math.PI);
    const radius = size * rng.uniform(0.2, 0.35);
    const c = (size - 1) / 2 + rng.uniform(-2, 2);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const dx = x - c;
        const dy = y - c;
        let v: number;
        if (label === 0) v = Math.hypot(dx, dy) < radius ? 200 : 20;
        else if (label === 1)
          v =
            Math.abs(dx * Math.sin(angle) - dy * Math.cos(angle)) < size * 0.08 && Math.hypot(dx, dy) < size * 0.45
              ? 200
              : 20;
        else v = 60;
        for (let ch = 0; ch < 3; ch++)
          pixels[(y * size + x) * 3 + ch] = Math.max(0, Math.min(255, Math.round(v + rng.normal() * 25 + ch * 5)));
      }
    }
    records.push({ id: `g${String(n).padStart(5, '0')}`, label, pixels });
  }
  return records;
}
