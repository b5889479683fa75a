import { open } from 'node:fs/promises';
import sharp from 'sharp';
import type { LoadedConfig } from '../config/load.ts';

/**
 * Image decoding for the cache and for `predict`: any format sharp reads (decided by content, not
 * the file name), converted to sRGB (or grey for channels=1), alpha removed, resized with the
 * configured fit, returned as h*w*c uint8 NHWC bytes. Every failure an input can cause becomes an
 * ImageRejection with a reason from the fixed list, so one bad file never stops a run.
 */

export type RejectReason = 'missing-image' | 'empty-file' | 'corrupt-image' | 'not-an-image' | 'too-large'
  | 'unlabelled' | 'unknown-label' | 'duplicate-id' | 'invalid-id' | 'malformed-row' | 'unmapped-id';

export const REJECT_REASONS: readonly RejectReason[] = [
  'missing-image', 'empty-file', 'corrupt-image', 'not-an-image', 'too-large',
  'unlabelled', 'unknown-label', 'duplicate-id', 'invalid-id', 'malformed-row', 'unmapped-id',
];

export class ImageRejection extends Error {
  readonly reason: RejectReason;
  readonly detail: string;
  constructor(reason: RejectReason, detail: string) {
    super(`${reason}: ${detail}`);
    this.name = 'ImageRejection';
    this.reason = reason;
    this.detail = detail;
  }
}

export type ImageSettings = LoadedConfig['image'];

/** Magic numbers of the formats sharp can decode; anything else is not an image at all. */
const SIGNATURES: { format: string; test: (b: Uint8Array) => boolean }[] = [
  { format: 'jpeg', test: (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { format: 'png', test: (b) => b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 },
  { format: 'gif', test: (b) => b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x38 },
  { format: 'webp', test: (b) => ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP' },
  { format: 'tiff', test: (b) => (b[0] === 0x49 && b[1] === 0x49 && b[2] === 0x2a && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 0x2a) },
  { format: 'avif/heif', test: (b) => ascii(b, 4, 8) === 'ftyp' },
  { format: 'svg', test: (b) => /^\s*(<\?xml|<svg)/i.test(ascii(b, 0, 64)) },
];

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, Math.min(end, bytes.length)));
}

/** The image format the leading bytes announce, or null when they are no image sharp reads. */
export function sniffImageFormat(head: Uint8Array): string | null {
  return SIGNATURES.find((s) => s.test(head))?.format ?? null;
}

/**
 * Largest file accepted before even reading it: an image within maxInputPixels compresses to far
 * less than 4 bytes per pixel, so a bigger file is too large whatever its content.
 */
function maxFileBytes(image: ImageSettings): number {
  return Math.max(64 * 1024 * 1024, image.maxInputPixels * 4);
}

async function readInput(file: string, image: ImageSettings): Promise<Buffer> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new ImageRejection('missing-image', `${file} does not exist`);
    if (code === 'EISDIR') throw new ImageRejection('not-an-image', `${file} is a directory`);
    throw new ImageRejection('corrupt-image', `${file} cannot be read (${code ?? (error as Error).message})`);
  }
  try {
    const { size } = await handle.stat();
    if (size === 0) throw new ImageRejection('empty-file', `${file} has 0 bytes`);
    if (size > maxFileBytes(image)) throw new ImageRejection('too-large', `${file} has ${size} bytes, more than any image within image.maxInputPixels`);
    const buffer = Buffer.allocUnsafe(size);
    let offset = 0;
    while (offset < size) {
      const { bytesRead } = await handle.read(buffer, offset, size - offset, offset);
      if (bytesRead === 0) break;
      offset += bytesRead;
    }
    return offset === size ? buffer : buffer.subarray(0, offset);
  } finally {
    await handle.close();
  }
}

/**
 * Turns a sharp failure into a reason. libvips' error text is not reliable (its error buffer is
 * process-wide: a later failure can read "Unknown error"), so the reason comes from the header
 * alone, and the detail is fixed text: rejects.jsonl must be the same bytes on every run.
 */
async function classifySharpError(bytes: Buffer, name: string, format: string, image: ImageSettings): Promise<ImageRejection> {
  try {
    const { width, height } = await sharp(bytes, { limitInputPixels: false }).metadata();
    if (width && height && width * height > image.maxInputPixels) {
      return new ImageRejection('too-large', `${name} is ${width}x${height} = ${width * height} pixels, more than image.maxInputPixels (${image.maxInputPixels})`);
    }
  } catch {
    // an unreadable header is corrupt like the rest
  }
  return new ImageRejection('corrupt-image', `${name} could not be decoded as ${format} (damaged or truncated data)`);
}

/** Pads a smaller `inside` result to the full size, centred on black, so every record has one shape. */
function padToSize(data: Buffer, w: number, h: number, c: number, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height * c);
  const left = Math.floor((width - w) / 2);
  const top = Math.floor((height - h) / 2);
  for (let y = 0; y < h; y++) {
    out.set(data.subarray(y * w * c, (y + 1) * w * c), ((top + y) * width + left) * c);
  }
  return out;
}

/** sRGB, alpha removed, resized with fit; returns h*w*c uint8 NHWC bytes. Throws ImageRejection. */
export async function decodeImage(input: string | Buffer, image: ImageSettings): Promise<Uint8Array> {
  const bytes = typeof input === 'string' ? await readInput(input, image) : input;
  const name = typeof input === 'string' ? input : '<buffer>';
  if (bytes.length === 0) throw new ImageRejection('empty-file', `${name} has 0 bytes`);
  const format = sniffImageFormat(bytes.subarray(0, 64));
  if (!format) throw new ImageRejection('not-an-image', `${name} starts with bytes ${Buffer.from(bytes.subarray(0, 8)).toString('hex')}, no image format sharp reads`);
  const { width, height, channels, fit, maxInputPixels } = image;
  try {
    // failOn 'truncated': a JPEG cut short is corrupt, not silently grey at the bottom.
    // sharp's limitInputPixels rejects from the header alone, before any pixel is decoded.
    // no EXIF auto-orientation: survey cutouts carry none, and it costs ~10% of a decode
    let pipeline = sharp(bytes, { failOn: 'truncated', limitInputPixels: maxInputPixels, sequentialRead: true })
      .resize(width, height, fit === 'inside' ? { fit: 'inside', withoutEnlargement: false } : { fit, background: { r: 0, g: 0, b: 0 } });
    pipeline = channels === 3 ? pipeline.toColourspace('srgb') : pipeline.toColourspace('b-w');
    const { data, info } = await pipeline.removeAlpha().raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== channels) {
      throw new ImageRejection('corrupt-image', `${name} decoded to ${info.channels} channels, expected ${channels}`);
    }
    if (info.width !== width || info.height !== height) {
      return padToSize(data, info.width, info.height, channels, width, height);
    }
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (error) {
    if (error instanceof ImageRejection) throw error;
    throw await classifySharpError(bytes, name, format, image);
  }
}
