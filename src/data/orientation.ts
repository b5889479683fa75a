import type { Rng } from '../core/rng.ts';

/**
 * Exact augmentations for galaxies (no preferred orientation): an optional horizontal flip
 * followed by k counter-clockwise quarter turns, i.e. `np.rot90(np.fliplr(image), k)`.
 * Expressed as a linear map from output pixel (row i, column j) to input pixel index
 * `origin + i*rowStep + j*colStep`, so applying it costs nothing over a plain copy.
 */
export interface Orientation {
  flip: boolean;
  /** Counter-clockwise quarter turns, 0..3 (odd only for square images). */
  turns: number;
}

export const IDENTITY: Orientation = { flip: false, turns: 0 };

export interface PixelMap {
  origin: number;
  rowStep: number;
  colStep: number;
}

/** Source pixel of output pixel (i, j) for an H x W image. */
function sourcePixel(i: number, j: number, height: number, width: number, o: Orientation): number {
  let a: number;
  let b: number;
  switch (o.turns & 3) {
    case 0:
      a = i;
      b = j;
      break;
    case 1:
      a = j;
      b = width - 1 - i;
      break;
    case 2:
      a = height - 1 - i;
      b = width - 1 - j;
      break;
    default:
      a = height - 1 - j;
      b = i;
      break;
  }
  if (o.flip) b = width - 1 - b;
  return a * width + b;
}

export function pixelMap(height: number, width: number, o: Orientation): PixelMap {
  if ((o.turns & 1) === 1 && height !== width)
    throw new Error(`a quarter turn needs a square image, got ${height}x${width}`);
  const origin = sourcePixel(0, 0, height, width, o);
  return {
    origin,
    rowStep: sourcePixel(1, 0, height, width, o) - origin,
    colStep: sourcePixel(0, 1, height, width, o) - origin,
  };
}

/** A seeded random orientation per `feed.augment` (quarter turns limited to half turns on non-square images). */
export function randomOrientation(
  rng: Rng,
  augment: { flip: boolean; rotate90: boolean },
  square: boolean,
): Orientation {
  const flip = augment.flip ? rng.next() < 0.5 : false;
  const turns = augment.rotate90 ? (square ? rng.int(4) : 2 * rng.int(2)) : 0;
  return { flip, turns };
}
