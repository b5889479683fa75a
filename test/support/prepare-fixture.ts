import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

/**
 * A small labelled data set in the joined layout, written with sharp, with the hazards of
 * contract §1 planted at known rows. Used by the prepare tests so they do not depend on synth.
 */

export interface FixtureHazard {
  kind: string;
  id: string;
  row: number;
  outcome: 'accepted' | 'rejected';
  reason?: string;
}
export interface Fixture {
  dir: string;
  csv: string;
  imageDir: string;
  /** ids expected in the shards, in row order. */
  accepted: string[];
  hazards: FixtureHazard[];
  rows: number;
}

const LABELS = ['Ei', 'Sc', 'Er', 'SBb', 'A', 'Ser'];

async function jpeg(seed: number, size: number): Promise<Buffer> {
  const r = (seed * 37) % 256;
  const g = (seed * 91) % 256;
  const b = (seed * 53) % 256;
  const pixels = Buffer.alloc(size * size * 3);
  for (let i = 0; i < size * size; i++) {
    const x = i % size;
    const y = Math.floor(i / size);
    pixels[i * 3] = (r + x * 3) % 256;
    pixels[i * 3 + 1] = (g + y * 5) % 256;
    pixels[i * 3 + 2] = (b + x + y) % 256;
  }
  return sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

export async function writeFixture(
  dir: string,
  options: { good: number; hazards?: boolean; size?: number },
): Promise<Fixture> {
  const size = options.size ?? 32;
  const imageDir = path.join(dir, 'images');
  mkdirSync(imageDir, { recursive: true });
  const lines = ['asset_id,dr7objid,gz2class'];
  const accepted: string[] = [];
  const hazards: FixtureHazard[] = [];
  let row = 0;
  const add = (id: string, label: string, extra = ''): number => {
    row++;
    lines.push(extra || `${id},${1000 + row},${label}`);
    return row;
  };
  const good = async (n: number) => {
    const id = String(100000 + n);
    writeFileSync(path.join(imageDir, `${id}.jpg`), await jpeg(n, size));
    add(id, LABELS[n % LABELS.length]);
    accepted.push(id);
  };
  const hazard = (kind: string, id: string, r: number, outcome: 'accepted' | 'rejected', reason?: string) =>
    hazards.push({ kind, id, row: r, outcome, ...(reason ? { reason } : {}) });

  const total = options.good;
  const plantEvery = options.hazards ? Math.max(1, Math.floor(total / 16)) : Infinity;
  let planted = 0;
  const plants: (() => Promise<void>)[] = [
    async () => {
      const id = '900001';
      hazard('missing-image', id, add(id, 'Ei'), 'rejected', 'missing-image');
    },
    async () => {
      const id = '900002';
      writeFileSync(path.join(imageDir, `${id}.jpg`), '');
      hazard('empty-file', id, add(id, 'Sc'), 'rejected', 'empty-file');
    },
    async () => {
      const id = '900003';
      const bytes = await jpeg(3, 64);
      writeFileSync(path.join(imageDir, `${id}.jpg`), bytes.subarray(0, bytes.length >> 1));
      hazard('truncated-jpeg', id, add(id, 'Er'), 'rejected', 'corrupt-image');
    },
    async () => {
      const id = '900004';
      writeFileSync(path.join(imageDir, `${id}.jpg`), 'this is not a JPEG\n');
      hazard('not-an-image', id, add(id, 'Sc'), 'rejected', 'not-an-image');
    },
    async () => {
      const id = '900005';
      writeFileSync(
        path.join(imageDir, `${id}.jpg`),
        await sharp({
          create: { width: size, height: size, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 1 } },
        })
          .png()
          .toBuffer(),
      );
      hazard('png-as-jpg', id, add(id, 'Ei'), 'accepted');
      accepted.push(id);
    },
    async () => {
      const id = '900006';
      writeFileSync(
        path.join(imageDir, `${id}.jpg`),
        await sharp(Buffer.alloc(size * size, 120), { raw: { width: size, height: size, channels: 1 } })
          .toColourspace('b-w')
          .jpeg()
          .toBuffer(),
      );
      hazard('grayscale-jpeg', id, add(id, 'Sc'), 'accepted');
      accepted.push(id);
    },
    async () => {
      const id = '900007';
      writeFileSync(
        path.join(imageDir, `${id}.jpg`),
        await sharp({ create: { width: size, height: size, channels: 3, background: { r: 200, g: 10, b: 30 } } })
          .toColourspace('cmyk')
          .jpeg()
          .toBuffer(),
      );
      hazard('cmyk-jpeg', id, add(id, 'Er'), 'accepted');
      accepted.push(id);
    },
    async () => {
      // bigger than the tests' image.maxInputPixels (set to 1,000,000)
      const id = '900008';
      writeFileSync(
        path.join(imageDir, `${id}.jpg`),
        await sharp({ create: { width: 1200, height: 1000, channels: 3, background: 'black' } })
          .jpeg()
          .toBuffer(),
      );
      hazard('huge-image', id, add(id, 'Ei'), 'rejected', 'too-large');
    },
    async () => {
      const id = accepted[0];
      hazard('duplicate-id', id, add(id, 'Sc'), 'rejected', 'duplicate-id');
    },
    async () => {
      const id = '900010';
      writeFileSync(path.join(imageDir, `${id}.jpg`), await jpeg(10, size));
      hazard('empty-label', id, add(id, ''), 'rejected', 'unlabelled');
    },
    async () => {
      const id = '900011';
      writeFileSync(path.join(imageDir, `${id}.jpg`), await jpeg(11, size));
      hazard('unknown-label', id, add(id, 'Xz'), 'rejected', 'unknown-label');
    },
    async () => {
      const id = '../etc/passwd';
      hazard('id-with-slash', id, add(id, 'Ei'), 'rejected', 'invalid-id');
    },
    async () => {
      const id = '..';
      hazard('id-with-dotdot', id, add(id, 'Sc'), 'rejected', 'invalid-id');
    },
    async () => {
      const id = '900014';
      hazard('too-few-columns', id, add(id, '', `${id},1`), 'rejected', 'malformed-row');
    },
  ];
  for (let n = 0; n < total; n++) {
    await good(n);
    if (options.hazards && (n + 1) % plantEvery === 0 && planted < plants.length) await plants[planted++]();
  }
  while (options.hazards && planted < plants.length) await plants[planted++]();
  const csv = path.join(dir, 'galaxy_df_final.csv');
  writeFileSync(csv, `${lines.join('\n')}\n`);
  return { dir, csv, imageDir, accepted, hazards, rows: row };
}

/** A config file for the fixture; `overrides` are merged per top-level section. */
export function writeFixtureConfig(dir: string, overrides: Record<string, Record<string, unknown>> = {}): string {
  const config = {
    data: { csv: 'galaxy_df_final.csv', imageDir: 'images', ...overrides.data },
    image: { width: 16, height: 16, channels: 3, fit: 'fill', maxInputPixels: 1_000_000, ...overrides.image },
    cache: { dir: 'cache', shardImages: 8, ...overrides.cache },
    memory: { limitMB: 2048, ...overrides.memory },
    ...Object.fromEntries(Object.entries(overrides).filter(([k]) => !['data', 'image', 'cache', 'memory'].includes(k))),
  };
  const file = path.join(dir, 'galactic.config.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}
