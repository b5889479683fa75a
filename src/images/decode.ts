import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import sharp from 'sharp';
import type { LoadedConfig } from '../config/load.ts';
import { ImageRejection } from '../core/reject-reasons.ts';

/**
 * Image decoding for the cache and for `predict`: any format sharp reads (decided by content, not
 * the file name), converted to sRGB (or grey for channels=1), alpha removed, resized with the
 * configured fit, returned as h*w*c uint8 NHWC bytes. Every failure an input can cause becomes an
 * ImageRejection with a reason from the fixed list, so one bad file never stops a run.
 */

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

/** Bytes read for the magic-number sniff (the SVG test looks at up to 64). */
const HEAD_BYTES = 64;

/**
 * The cheap checks before a decode, on the file itself: it exists, is not empty, is not larger
 * than any image within the limit, and starts with a known image signature. Returns its format.
 * Synchronous on purpose: open + fstat + a 64-byte read + close take ~10 us on a local disk,
 * where the promise-based FileHandle round trips through the thread pool cost 150-350 us of CPU
 * per file (the cores are busy decoding), and sharp then reads the file itself, as it does for
 * `sharp(path)`: the file is never read into a JS buffer.
 */
function sniffFile(file: string, image: ImageSettings): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    throw openRejection(file, error as NodeJS.ErrnoException);
  }
  try {
    const stats = fstatSync(fd);
    if (stats.isDirectory()) throw new ImageRejection('not-an-image', `${file} is a directory`);
    if (stats.size === 0) throw new ImageRejection('empty-file', `${file} has 0 bytes`);
    if (stats.size > maxFileBytes(image)) throw new ImageRejection('too-large', `${file} has ${stats.size} bytes, more than any image within image.maxInputPixels`);
    const head = Buffer.allocUnsafe(Math.min(HEAD_BYTES, stats.size));
    const read = readSync(fd, head, 0, head.length, 0);
    return sniffOrReject(head.subarray(0, read), file);
  } catch (error) {
    if (error instanceof ImageRejection) throw error;
    throw new ImageRejection('corrupt-image', `${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  } finally {
    closeSync(fd);
  }
}

function openRejection(file: string, error: NodeJS.ErrnoException): ImageRejection {
  const code = error.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new ImageRejection('missing-image', `${file} does not exist`);
  if (code === 'EISDIR') return new ImageRejection('not-an-image', `${file} is a directory`);
  return new ImageRejection('corrupt-image', `${file} cannot be read (${code ?? error.message})`);
}

function sniffOrReject(head: Uint8Array, name: string): string {
  if (head.length === 0) throw new ImageRejection('empty-file', `${name} has 0 bytes`);
  const format = sniffImageFormat(head.subarray(0, HEAD_BYTES));
  if (!format) throw new ImageRejection('not-an-image', `${name} starts with bytes ${Buffer.from(head.subarray(0, 8)).toString('hex')}, no image format sharp reads`);
  return format;
}

/**
 * Turns a sharp failure into a reason. libvips' error text is not reliable (its error buffer is
 * process-wide: a later failure can read "Unknown error"), so the reason comes from the header
 * alone, and the detail is fixed text: rejects.jsonl must be the same bytes on every run.
 */
async function classifySharpError(input: string | Buffer, name: string, format: string, image: ImageSettings): Promise<ImageRejection> {
  try {
    const { width, height } = await sharp(input, { limitInputPixels: false }).metadata();
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
  const name = typeof input === 'string' ? input : '<buffer>';
  // a path goes to sharp as a path (libvips reads the file itself, like sharp(path) anywhere else)
  const format = typeof input === 'string' ? sniffFile(input, image) : sniffOrReject(input, name);
  const { width, height, channels, fit, maxInputPixels } = image;
  try {
    // failOn 'truncated': a JPEG cut short is corrupt, not silently grey at the bottom.
    // sharp's limitInputPixels rejects from the header alone, before any pixel is decoded.
    // no EXIF auto-orientation: survey cutouts carry none, and it costs ~10% of a decode
    let pipeline = sharp(input, { failOn: 'truncated', limitInputPixels: maxInputPixels, sequentialRead: true })
      // contain letterboxes on sharp's default background, opaque black; passing it explicitly
      // would have sharp parse the colour again for every image
      .resize(width, height, fit === 'inside' ? { fit: 'inside', withoutEnlargement: false } : { fit });
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
    throw await classifySharpError(input, name, format, image);
  }
}
