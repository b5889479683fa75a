import { opendir, readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import type { LoadedConfig } from '../../config/load.ts';
import type { StageResult } from '../results.ts';
import { measureRepeats, stageResult } from '../repeat.ts';

/**
 * The ceiling of prepare: sharp's bare decode + resize of the configured images with the same
 * concurrency prepare uses, and nothing else (no CSV, no validation, no shard writing, no
 * permits). Prepare cannot be faster than this on the same machine; its efficiency is the ratio.
 */

/** The first `count` files of imageDir (directory order) that match the configured file name. */
export async function listImages(config: LoadedConfig, count: number): Promise<string[]> {
  const [prefix, suffix] = config.data.fileName.split('{id}') as [string, string];
  const files: string[] = [];
  const dir = await opendir(config.data.imageDir);
  for await (const entry of dir) {
    if (!entry.isFile() || !entry.name.startsWith(prefix) || !entry.name.endsWith(suffix)) continue;
    files.push(path.join(config.data.imageDir, entry.name));
    if (files.length >= count) break;
  }
  return files;
}

/**
 * Decode + resize to raw pixels with the same sharp operations as src/images/decode.ts (resize
 * with the configured fit, sRGB or b-w, no alpha), but without its checks. Keep the two in step,
 * or the efficiency compares different work.
 */
export async function decodeResize(bytes: Buffer, image: LoadedConfig['image']): Promise<Buffer> {
  const { width, height, channels, fit, maxInputPixels } = image;
  return sharp(bytes, { failOn: 'truncated', limitInputPixels: maxInputPixels, sequentialRead: true })
    .resize(
      width,
      height,
      fit === 'inside' ? { fit: 'inside', withoutEnlargement: false } : { fit, background: { r: 0, g: 0, b: 0 } },
    )
    .toColourspace(channels === 3 ? 'srgb' : 'b-w')
    .removeAlpha()
    .raw()
    .toBuffer();
}

/** Runs `task` over `items` with at most `concurrency` in flight. */
async function pool<T>(items: T[], concurrency: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, async () => {
    while (next < items.length) await task(items[next++]!);
  });
  await Promise.all(workers);
}

export interface DecodeBenchOptions {
  files: string[];
  repeats: number;
  decodeConcurrency: number;
  sharpThreads: number;
}

export async function benchDecode(config: LoadedConfig, options: DecodeBenchOptions): Promise<StageResult> {
  const previousThreads = sharp.concurrency();
  sharp.concurrency(options.sharpThreads);
  try {
    const measured = await measureRepeats(options.repeats, async () => {
      let bytes = 0;
      let decoded = 0;
      let failed = 0;
      await pool(options.files, options.decodeConcurrency, async (file) => {
        // reading the file is part of the ceiling: prepare has to read it too
        const input = await readFile(file);
        bytes += input.byteLength;
        try {
          await decodeResize(input, config.image);
          decoded++;
        } catch {
          failed++; // corrupt files are prepare's rejects; the ceiling counts only what decodes
        }
      });
      return {
        images: decoded,
        bytes,
        detail: { failed, decodeConcurrency: options.decodeConcurrency, sharpThreads: options.sharpThreads },
      };
    });
    return stageResult('decode', measured, { limitMB: config.memory.limitMB, mbOf: 'JPEG read' });
  } finally {
    sharp.concurrency(previousThreads);
  }
}
