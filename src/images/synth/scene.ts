import type { Rng } from '../../core/rng.ts';
import type { Canvas, Colour } from './canvas.ts';

/** What every drawing step needs: the canvas, the record's random stream and the seeing. */
export interface Scene {
  canvas: Canvas;
  rng: Rng;
  /** PSF sigma in canvas pixels */
  psf: number;
  n: number;
  /** where the catalogue position (the main object) lands */
  cx: number;
  cy: number;
}

export function mix(a: Colour, b: Colour, t: number): Colour {
  return { r: a.r + (b.r - a.r) * t, g: a.g + (b.g - a.g) * t, b: a.b + (b.b - a.b) * t };
}

export function jitter(rng: Rng, colour: Colour, amount: number): Colour {
  return {
    r: colour.r * (1 + rng.uniform(-amount, amount)),
    g: colour.g * (1 + rng.uniform(-amount, amount)),
    b: colour.b * (1 + rng.uniform(-amount, amount)),
  };
}

/** Black-body-ish star colours from hot blue-white to cool orange. */
export function starColour(rng: Rng): Colour {
  const t = rng.next();
  return { r: 0.75 + 0.35 * t, g: 0.85 + 0.1 * t, b: 1.15 - 0.55 * t };
}

/** Elliptical colours: old red stars (yellow-red in gri composites). */
export const ellipticalColour: Colour = { r: 1.0, g: 0.78, b: 0.55 };
export const bulgeColour: Colour = { r: 1.0, g: 0.82, b: 0.62 };
export const diskColour: Colour = { r: 0.72, g: 0.82, b: 1.0 };
export const knotColour: Colour = { r: 0.6, g: 0.78, b: 1.2 };
