import sharp from 'sharp';
import { uniformGreyJpeg } from './huge-jpeg.ts';
import type { RenderedImage } from './render.ts';

/**
 * How a record's image reaches the disk. `jpeg` is the normal case; the others are the
 * planted hazards of docs/interfaces.md §1 (`none` = the file is not written at all).
 */
export type ImageEncoding =
  'jpeg' | 'png' | 'grayscale-jpeg' | 'cmyk-jpeg' | 'truncated-jpeg' | 'empty' | 'text' | 'huge-jpeg' | 'none';

export const jpegQuality = 90;
/** Huffman optimisation would halve the encoder's speed for 5% smaller files: not worth it here. */
const jpegOptions = { quality: jpegQuality, optimiseCoding: false } as const;
export const hugeImageSide = 12000;

/** What a failed download typically leaves behind under an image's name. */
const notAnImageText =
  '<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n' +
  '<body><h1>Not Found</h1><p>The requested image was not found on this server.</p></body></html>\n';

function pixelsOf(image: RenderedImage): sharp.Sharp {
  return sharp(Buffer.from(image.pixels.buffer, image.pixels.byteOffset, image.pixels.byteLength), {
    raw: { width: image.size, height: image.size, channels: 3 },
  });
}

/** The file bytes for `encoding`; depends only on the rendered pixels (no time stamps, no randomness). */
export async function encodeImage(image: RenderedImage | null, encoding: ImageEncoding): Promise<Buffer | null> {
  switch (encoding) {
    case 'none':
      return null;
    case 'empty':
      return Buffer.alloc(0);
    case 'text':
      return Buffer.from(notAnImageText, 'utf8');
    case 'huge-jpeg':
      return uniformGreyJpeg(hugeImageSide);
    default:
      break;
  }
  if (!image) throw new Error(`synth: encoding ${encoding} needs rendered pixels`);
  switch (encoding) {
    case 'jpeg':
      return pixelsOf(image).jpeg(jpegOptions).toBuffer();
    case 'png':
      return pixelsOf(image).png({ compressionLevel: 6 }).toBuffer();
    case 'grayscale-jpeg':
      return pixelsOf(image).toColourspace('b-w').jpeg(jpegOptions).toBuffer();
    case 'cmyk-jpeg':
      return pixelsOf(image).toColourspace('cmyk').jpeg(jpegOptions).toBuffer();
    case 'truncated-jpeg': {
      const whole = await pixelsOf(image).jpeg(jpegOptions).toBuffer();
      return whole.subarray(0, Math.floor(whole.length / 2));
    }
  }
}

/** Whether an encoding needs the record's pixels rendered first. */
export function needsPixels(encoding: ImageEncoding): boolean {
  return (
    encoding === 'jpeg' ||
    encoding === 'png' ||
    encoding === 'grayscale-jpeg' ||
    encoding === 'cmyk-jpeg' ||
    encoding === 'truncated-jpeg'
  );
}
