import { closeSync, readSync } from 'node:fs';
import sharp from 'sharp';
import type { LoadedConfig } from '../config/load.ts';
import { ImageRejection } from '../core/reject-reasons.ts';
import { openImageFile } from './image-file.ts';
import { readJpegColour } from './jpeg-header.ts';

/**
 * Image decoding for the cache and for `predict`: any format sharp reads (decided by content, not
 * the file name), converted to sRGB (or grey for channels=1), alpha removed, resized with the
 * configured fit, returned as h*w*c uint8 NHWC bytes. Every failure an input can cause becomes an
 * ImageRejection with a reason from the fixed list, so one bad file never stops a run.
 */

/** config.image; `kernel` may be left out (lanczos3, the config's default). */
export type ImageSettings = Omit<LoadedConfig['image'], 'kernel'> & { kernel?: LoadedConfig['image']['kernel'] };

/** Magic numbers of the formats sharp can decode; anything else is not an image at all. */
const SIGNATURES: { format: string; test: (b: Uint8Array) => boolean }[] = [
  { format: 'jpeg', test: (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { format: 'png', test: (b) => b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 },
  { format: 'gif', test: (b) => b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x38 },
  { format: 'webp', test: (b) => ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP' },
  {
    format: 'tiff',
    test: (b) =>
      (b[0] === 0x49 && b[1] === 0x49 && b[2] === 0x2a && b[3] === 0) ||
      (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 0x2a),
  },
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

/**
 * Bytes read for the magic-number sniff (the SVG test looks at up to 64); a JPEG's header
 * segments up to the frame header usually fit too, so the colour check needs no second read.
 */
const HEAD_BYTES = 1024;

/**
 * Files up to this size are read whole and decoded from memory (sniffFile says why); the buffer
 * lives as long as its decode, within the plan's DECODE_SLOT_BYTES per concurrent decode.
 */
export const WHOLE_FILE_BYTES = 4 * 1024 * 1024;

/** What the cheap checks found: the format, and for the decode the path and head to use. */
interface Sniffed {
  format: string;
  /** CMYK without an embedded profile: converted the way other decoders do (see cmykToRgb). */
  plainCmyk: boolean;
  /** What sharp is given: the real path (links resolved once, here) or the buffer. */
  input: string | Buffer;
}

export interface DecodeOptions {
  /**
   * Real path of the folder every image must stay inside (prepare: data.imageDir; predict: a
   * folder it was given); a file whose real path leaves it is `outside-image-dir`, unread.
   * Omitted for a file named explicitly, which may be a link to anywhere.
   */
  within?: string | null;
}

/**
 * The cheap checks before a decode, on the file itself: it is a regular file (inside `within`),
 * is not empty, is not larger than any image within the limit, and starts with a known image
 * signature. Synchronous on purpose: realpath + open + fstat + one read + close take ~10-20 us on
 * a local disk, where the promise-based FileHandle round trips through the thread pool cost
 * 150-350 us of CPU per file (the cores are busy decoding). A file of up to WHOLE_FILE_BYTES is
 * read whole by that one read and handed to sharp as a buffer: given a path, libvips opens and
 * reads the file twice (header, then the shrink-on-load reload), which cost about 0.3 ms of CPU
 * per 424x424 JPEG (bench/README.md); a larger file goes to sharp as its real path.
 */
function sniffFile(file: string, image: ImageSettings, within: string | null): Sniffed {
  const { fd, real, size } = openImageFile(file, within);
  try {
    if (size === 0) throw new ImageRejection('empty-file', `${file} has 0 bytes`);
    if (size > maxFileBytes(image))
      throw new ImageRejection(
        'too-large',
        `${file} has ${size} bytes, more than any image within image.maxInputPixels`,
      );
    const whole = size <= WHOLE_FILE_BYTES;
    const head = Buffer.allocUnsafe(whole ? size : HEAD_BYTES);
    const got = readSync(fd, head, 0, head.length, 0);
    const format = sniffOrReject(head.subarray(0, got), file);
    const read = (offset: number, length: number): Uint8Array => {
      if (offset + length <= got) return head.subarray(offset, offset + length);
      const more = Buffer.allocUnsafe(length);
      return more.subarray(0, readSync(fd, more, 0, length, offset));
    };
    return {
      format,
      plainCmyk: format === 'jpeg' && isPlainCmykJpeg(read),
      input: whole ? head.subarray(0, got) : real,
    };
  } catch (error) {
    if (error instanceof ImageRejection) throw error;
    throw new ImageRejection(
      'corrupt-image',
      `${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  } finally {
    closeSync(fd);
  }
}

function sniffBuffer(input: Buffer): Sniffed {
  const format = sniffOrReject(input, '<buffer>');
  const read = (offset: number, length: number) => input.subarray(offset, offset + length);
  return { format, plainCmyk: format === 'jpeg' && isPlainCmykJpeg(read), input };
}

function isPlainCmykJpeg(read: (offset: number, length: number) => Uint8Array): boolean {
  const colour = readJpegColour(read);
  return colour !== null && colour.components === 4 && !colour.icc;
}

/** The detail names the format problem only: no bytes of the file ever reach a message. */
function sniffOrReject(head: Uint8Array, name: string): string {
  if (head.length === 0) throw new ImageRejection('empty-file', `${name} has 0 bytes`);
  const format = sniffImageFormat(head.subarray(0, 64));
  if (!format) throw new ImageRejection('not-an-image', `${name} is not an image format sharp reads`);
  return format;
}

/**
 * CMYK to RGB the way PIL, OpenCV, ImageMagick and browsers do for a CMYK JPEG without an
 * embedded profile: R = (255 - C)(255 - K) / 255 and likewise for G, B. libvips would instead
 * assume its own press (SWOP-like) profile, which turns a dark sky (7,7,7) written by such a
 * tool into (39,23,44). With an embedded profile sharp converts through it, as the others do.
 */
function cmykToRgb(cmyk: Buffer, bands: number, pixels: number): Buffer {
  const rgb = Buffer.allocUnsafe(pixels * 3);
  for (let i = 0, j = 0; i < pixels; i++, j += bands) {
    const k = 255 - cmyk[j + 3];
    rgb[i * 3] = Math.round(((255 - cmyk[j]) * k) / 255);
    rgb[i * 3 + 1] = Math.round(((255 - cmyk[j + 1]) * k) / 255);
    rgb[i * 3 + 2] = Math.round(((255 - cmyk[j + 2]) * k) / 255);
  }
  return rgb;
}

/**
 * Turns a sharp failure into a reason. libvips' error text is not reliable (its error buffer is
 * process-wide: a later failure can read "Unknown error"), so the reason comes from the header
 * alone, and the detail is fixed text: rejects.jsonl must be the same bytes on every run.
 */
async function classifySharpError(
  input: string | Buffer,
  name: string,
  format: string,
  image: ImageSettings,
): Promise<ImageRejection> {
  try {
    const { width, height } = await sharp(input, { limitInputPixels: false }).metadata();
    if (width && height && width * height > image.maxInputPixels) {
      return new ImageRejection(
        'too-large',
        `${name} is ${width}x${height} = ${width * height} pixels, more than image.maxInputPixels (${image.maxInputPixels})`,
      );
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
export async function decodeImage(
  source: string | Buffer,
  image: ImageSettings,
  options: DecodeOptions = {},
): Promise<Uint8Array> {
  const name = typeof source === 'string' ? source : '<buffer>';
  // a path goes to sharp as a path (libvips reads the file itself, like sharp(path) anywhere else)
  const { input, format, plainCmyk } =
    typeof source === 'string' ? sniffFile(source, image, options.within ?? null) : sniffBuffer(source);
  const { width, height, channels, fit, kernel = 'lanczos3', maxInputPixels } = image;
  try {
    // failOn 'truncated': a JPEG cut short is corrupt, not silently grey at the bottom.
    // sharp's limitInputPixels rejects from the header alone, before any pixel is decoded.
    // no EXIF auto-orientation: survey cutouts carry none, and it costs ~10% of a decode
    const pipeline = sharp(input, { failOn: 'truncated', limitInputPixels: maxInputPixels, sequentialRead: true });
    if (plainCmyk) return await decodePlainCmyk(pipeline, image);
    // contain letterboxes on sharp's default background, opaque black; passing it explicitly
    // would have sharp parse the colour again for every image
    pipeline.resize(
      width,
      height,
      fit === 'inside' ? { fit: 'inside', withoutEnlargement: false, kernel } : { fit, kernel },
    );
    pipeline.toColourspace(channels === 3 ? 'srgb' : 'b-w');
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

/**
 * A CMYK JPEG without a profile: resized in CMYK (shrink-on-load keeps memory at the target
 * size), converted with cmykToRgb, then grey if asked, then letterboxed like `contain`.
 */
async function decodePlainCmyk(pipeline: sharp.Sharp, image: ImageSettings): Promise<Uint8Array> {
  const { width, height, channels, fit, kernel = 'lanczos3' } = image;
  const boxed = fit === 'inside' || fit === 'contain';
  const { data, info } = await pipeline
    .pipelineColourspace('cmyk')
    .resize(width, height, boxed ? { fit: 'inside', withoutEnlargement: false, kernel } : { fit, kernel })
    .toColourspace('cmyk')
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels < 4) throw new Error(`CMYK decoded to ${info.channels} channels`);
  let pixels = cmykToRgb(data, info.channels, info.width * info.height);
  if (channels === 1) {
    pixels = await sharp(pixels, { raw: { width: info.width, height: info.height, channels: 3 } })
      .toColourspace('b-w')
      .raw()
      .toBuffer();
  }
  if (info.width !== width || info.height !== height)
    return padToSize(pixels, info.width, info.height, channels, width, height);
  return new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength);
}
