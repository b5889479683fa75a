import { existsSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { readManifestIfPresent } from '../cache/manifest.ts';
import { readShard } from '../cache/reader.ts';

/**
 * Small PNG thumbnails of validation samples, as data: URIs so report.html needs no other file.
 * Pixels come from the cache shards (exactly what the model saw) and, for ids the cache does not
 * hold, from the image folder.
 */

export interface SamplePixels {
  width: number;
  height: number;
  channels: 1 | 3;
  /** height*width*channels uint8, row-major. */
  data: Uint8Array;
}

/** Finds pixels for as many of `ids` as it can; ids it cannot find are simply absent from the map. */
export type PixelSource = (ids: ReadonlySet<string>) => Promise<Map<string, SamplePixels>>;

/**
 * Scans the cache's shards in order (one in memory at a time) and stops as soon as every wanted
 * id is found. A missing or damaged cache only costs thumbnails, never the report.
 */
export function cachePixelSource(cacheDir: string): PixelSource {
  return async (ids) => {
    const found = new Map<string, SamplePixels>();
    if (ids.size === 0) return found;
    let manifest;
    try {
      manifest = readManifestIfPresent(cacheDir);
    } catch {
      return found;
    }
    for (const entry of manifest?.shards ?? []) {
      if (found.size === ids.size) break;
      let shard;
      try {
        shard = await readShard(cacheDir, entry);
      } catch {
        continue;
      }
      const [, h, w, c] = shard.shape;
      const size = h * w * c;
      shard.ids.forEach((id, i) => {
        if (!ids.has(id) || found.has(id)) return;
        const data =
          shard.dtype === 'uint8'
            ? shard.data.slice(i * size, (i + 1) * size)
            : floatToBytes(new Float32Array(shard.data.slice(i * size * 4, (i + 1) * size * 4).buffer));
        found.set(id, { width: w, height: h, channels: c === 1 ? 1 : 3, data });
      });
    }
    return found;
  };
}

/** Reads `imageDir/fileName` for each id (any format sharp decodes), resized to `size` pixels. */
export function imageFolderPixelSource(imageDir: string, fileName: string, size: number): PixelSource {
  return async (ids) => {
    const found = new Map<string, SamplePixels>();
    for (const id of ids) {
      const file = path.join(imageDir, fileName.replaceAll('{id}', id));
      // ids are validated by prepare; this guards a hand-edited metrics.json reaching outside the folder
      if (!file.startsWith(path.resolve(imageDir) + path.sep) || !existsSync(file)) continue;
      try {
        const { data, info } = await sharp(file)
          .removeAlpha()
          .toColourspace('srgb')
          .resize(size, size, { fit: 'fill' })
          .raw()
          .toBuffer({ resolveWithObject: true });
        found.set(id, {
          width: info.width,
          height: info.height,
          channels: info.channels === 1 ? 1 : 3,
          data: new Uint8Array(data),
        });
      } catch {
        // an unreadable image just has no thumbnail
      }
    }
    return found;
  };
}

/** float32 cache values: either 0..1 (scaled) or 0..255; both map to bytes. */
function floatToBytes(values: Float32Array): Uint8Array {
  let max = 0;
  for (const v of values) max = Math.max(max, v);
  const scale = max <= 1 ? 255 : 1;
  return Uint8Array.from(values, (v) => Math.max(0, Math.min(255, Math.round(v * scale))));
}

/** Encodes pixels as a PNG data: URI, scaled (nearest neighbour, so small inputs stay crisp) to about `displaySize`. */
export async function thumbnailDataUri(pixels: SamplePixels, displaySize = 96): Promise<string> {
  const factor = Math.max(1, Math.floor(displaySize / Math.max(pixels.width, pixels.height)));
  let image = sharp(Buffer.from(pixels.data), {
    raw: { width: pixels.width, height: pixels.height, channels: pixels.channels },
  });
  if (factor > 1) image = image.resize(pixels.width * factor, pixels.height * factor, { kernel: 'nearest' });
  else if (Math.max(pixels.width, pixels.height) > displaySize)
    image = image.resize(displaySize, displaySize, { fit: 'inside' });
  const png = await image.png({ compressionLevel: 9 }).toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

/** Thumbnails for `ids`, trying each source in turn for the ids still missing. */
export async function sampleThumbnails(
  ids: string[],
  sources: PixelSource[],
  displaySize = 96,
): Promise<Map<string, string>> {
  const wanted = new Set(ids);
  const uris = new Map<string, string>();
  for (const source of sources) {
    const missing = new Set([...wanted].filter((id) => !uris.has(id)));
    if (missing.size === 0) break;
    for (const [id, pixels] of await source(missing)) uris.set(id, await thumbnailDataUri(pixels, displaySize));
  }
  return uris;
}
