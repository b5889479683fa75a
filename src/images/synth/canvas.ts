/**
 * A small linear-flux canvas for the synthetic sky: three planar Float32 channels that the
 * renderer adds light to, then adds sky noise to and stretches to 8-bit RGB. There is no
 * whole-canvas PSF convolution: every component is drawn already seen through the PSF
 * (Gaussian stamps of the seeing width, profiles with a softened core), which costs nothing.
 * Everything is typed-array math with lookup tables instead of per-pixel exp/pow, because
 * the synth target is 150+ images/s on two cores.
 */

export interface Colour {
  r: number;
  g: number;
  b: number;
}

/** Samples of a 1-D function on [0, max) for fast per-pixel evaluation. */
export class Lookup {
  readonly values: Float32Array;
  readonly scale: number;
  private readonly last: number;

  constructor(
    fn: (x: number) => number,
    readonly max: number,
    bins = 4096,
  ) {
    this.values = new Float32Array(bins + 1);
    for (let i = 0; i <= bins; i++) this.values[i] = fn((i / bins) * max);
    this.values[bins] = 0;
    this.scale = bins / max;
    this.last = bins;
  }

  /** f(x) for x >= 0 (nearest bin); 0 beyond max. */
  at(x: number): number {
    const i = (x * this.scale) | 0;
    return i < this.last ? this.values[i] : 0;
  }
}

/** Sky level and noise for `Canvas.toRgb8`; `noise` holds standard normals, its length a power of two. */
export interface SkyNoise {
  level: Colour;
  sigma: Colour;
  noise: Float32Array;
  offsets: [number, number, number];
  stride: number;
}

/** exp(-x) on [0, 20): shared by every Gaussian-like stamp. */
const expNeg = new Lookup((x) => Math.exp(-x), 20, 8192);

export class Canvas {
  readonly r: Float32Array;
  readonly g: Float32Array;
  readonly b: Float32Array;

  /** Back to black, for reuse: allocating 3 planes per image kept the garbage collector busy. */
  clear(): void {
    this.r.fill(0);
    this.g.fill(0);
    this.b.fill(0);
  }

  constructor(readonly size: number) {
    const n = size * size;
    this.r = new Float32Array(n);
    this.g = new Float32Array(n);
    this.b = new Float32Array(n);
  }

  /** Adds `flux * colour` at one pixel (ignored outside the canvas). */
  addPixel(x: number, y: number, flux: number, colour: Colour): void {
    const xi = Math.round(x);
    const yi = Math.round(y);
    if (xi < 0 || yi < 0 || xi >= this.size || yi >= this.size) return;
    const i = yi * this.size + xi;
    this.r[i] += flux * colour.r;
    this.g[i] += flux * colour.g;
    this.b[i] += flux * colour.b;
  }

  /**
   * An elliptical Gaussian blob: peak `flux`, sigma `sx` along angle `angle`, `sy` across it.
   * Used for stars, star-forming knots, bars and tiny background galaxies.
   */
  addGaussian(cx: number, cy: number, flux: number, sx: number, sy: number, angle: number, colour: Colour): void {
    const reach = Math.ceil(3.5 * Math.max(sx, sy));
    const x0 = Math.max(0, Math.floor(cx - reach));
    const x1 = Math.min(this.size - 1, Math.ceil(cx + reach));
    const y0 = Math.max(0, Math.floor(cy - reach));
    const y1 = Math.min(this.size - 1, Math.ceil(cy + reach));
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    const ax = 1 / (2 * sx * sx);
    const ay = 1 / (2 * sy * sy);
    const { r, g, b, size } = this;
    for (let y = y0; y <= y1; y++) {
      const dy = y - cy;
      let i = y * size + x0;
      for (let x = x0; x <= x1; x++, i++) {
        const dx = x - cx;
        const u = dx * c + dy * s;
        const v = dy * c - dx * s;
        const f = flux * expNeg.at(u * u * ax + v * v * ay);
        if (f === 0) continue;
        r[i] += f * colour.r;
        g[i] += f * colour.g;
        b[i] += f * colour.b;
      }
    }
  }

  /**
   * A thin straight line across the canvas (satellite trail, diffraction spike): Gaussian
   * profile of width `sigma` across it, flux falling as `1 / (1 + t / falloff)` along it.
   */
  addLine(
    cx: number,
    cy: number,
    angle: number,
    halfLength: number,
    flux: number,
    sigma: number,
    falloff: number,
    colour: Colour,
  ): void {
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    const a = 1 / (2 * sigma * sigma);
    const reach = Math.ceil(3 * sigma) + 1;
    // walk along the dominant axis so every pixel of the line is visited exactly once
    const steep = Math.abs(s) > Math.abs(c);
    const { r, g, b, size } = this;
    for (let k = 0; k < size; k++) {
      // position along the dominant axis and the line's crossing point on the other axis
      const t = steep ? (k - cy) / s : (k - cx) / c;
      if (Math.abs(t) > halfLength) continue;
      const along = falloff > 0 ? flux / (1 + Math.abs(t) / falloff) : flux;
      const centre = steep ? cx + t * c : cy + t * s;
      const lo = Math.max(0, Math.floor(centre - reach));
      const hi = Math.min(size - 1, Math.ceil(centre + reach));
      for (let m = lo; m <= hi; m++) {
        const x = steep ? m : k;
        const y = steep ? k : m;
        const dx = x - cx;
        const dy = y - cy;
        const perp = dy * c - dx * s;
        const f = along * expNeg.at(perp * perp * a);
        if (f === 0) continue;
        const i = y * size + x;
        r[i] += f * colour.r;
        g[i] += f * colour.g;
        b[i] += f * colour.b;
      }
    }
  }

  /**
   * Adds the sky (level plus Gaussian noise) and maps linear flux to interleaved 8-bit RGB
   * through `stretch`, in one pass. The noise comes from a shared table read at a random
   * offset with an odd stride, so each image gets its own noise without fresh normals.
   */
  toRgb8(stretch: Stretch, sky: SkyNoise, out: Uint8Array = new Uint8Array(this.size * this.size * 3)): Uint8Array {
    const n = this.size * this.size;
    const { table, offset, scale, last } = stretch;
    const { noise, stride } = sky;
    const mask = noise.length - 1;
    const planes = [this.r, this.g, this.b];
    const levels = [sky.level.r, sky.level.g, sky.level.b];
    const sigmas = [sky.sigma.r, sky.sigma.g, sky.sigma.b];
    for (let p = 0; p < 3; p++) {
      const plane = planes[p];
      const base = levels[p] + offset;
      const sd = sigmas[p];
      let k = sky.offsets[p] & mask;
      for (let i = 0, j = p; i < n; i++, j += 3) {
        const index = ((plane[i] + base + sd * noise[k]) * scale) | 0;
        out[j] = table[index < 0 ? 0 : index > last ? last : index];
        k = (k + stride) & mask;
      }
    }
    return out;
  }
}

/** A display curve from linear flux to 0..255, as a lookup table over [-offset, max). */
export interface Stretch {
  table: Uint8Array;
  offset: number;
  scale: number;
  last: number;
}

/**
 * SDSS colour images (and so Galaxy Zoo's) use an asinh stretch: linear near the sky,
 * logarithmic in bright cores, so faint arms and bright bulges both stay visible.
 */
export function asinhStretch(softening: number, max: number, bins = 8192): Stretch {
  const offset = 0.05 * max;
  const table = new Uint8Array(bins + 1);
  const top = Math.asinh(max / softening);
  for (let k = 0; k <= bins; k++) {
    const flux = (k / bins) * (max + offset) - offset;
    const v = flux <= 0 ? 0 : (255 * Math.asinh(flux / softening)) / top;
    table[k] = v >= 255 ? 255 : Math.round(v);
  }
  return { table, offset, scale: bins / (max + offset), last: bins };
}

/**
 * Doubles an interleaved RGB image (side `n` → `2n`) with bilinear weights 3/4 and 1/4, in
 * integers. Much cheaper than a libvips resize for this one fixed ratio.
 */
export function upsample2x(src: Uint8Array, n: number, wide: Uint16Array = new Uint16Array(n * 6 * n)): Uint8Array {
  const rowOut = 6 * n;
  const rowIn = 3 * n;
  // horizontal pass, kept at 4x scale so rounding happens once; j walks the interleaved bytes,
  // and byte j of pixel x (channel c = j % 3) lands on output pixels 2x and 2x + 1
  for (let y = 0; y < n; y++) {
    const s = y * rowIn;
    const d = y * rowOut;
    for (let c = 0; c < 3; c++) {
      const first = 3 * src[s + c];
      wide[d + c] = first + src[s + c];
      wide[d + 3 + c] = first + src[s + 3 + c];
    }
    for (let j = 3; j < rowIn - 3; j++) {
      const here = 3 * src[s + j];
      const o = d + 2 * j - (j % 3);
      wide[o] = here + src[s + j - 3];
      wide[o + 3] = here + src[s + j + 3];
    }
    for (let c = 0; c < 3; c++) {
      const j = rowIn - 3 + c;
      const here = 3 * src[s + j];
      const o = d + 2 * j - c;
      wide[o] = here + src[s + j - 3];
      wide[o + 3] = here + src[s + j];
    }
  }
  // vertical pass two bytes at a time: each 32-bit word holds two 16-bit lanes (at most
  // 4 x 1020 + 8, so no carry crosses lanes), written out as one little-endian 16-bit pair
  const out = new Uint8Array(2 * n * rowOut);
  const wide2 = new Uint32Array(wide.buffer, wide.byteOffset, (n * rowOut) >> 1);
  const out2 = new Uint16Array(out.buffer, out.byteOffset, out.length >> 1);
  const words = rowOut >> 1;
  for (let y = 0; y < n; y++) {
    const here = y * words;
    const above = (y > 0 ? y - 1 : 0) * words;
    const below = (y < n - 1 ? y + 1 : y) * words;
    const top = 2 * y * words;
    const bottom = top + words;
    for (let x = 0; x < words; x++) {
      const h = 3 * wide2[here + x] + 0x00080008;
      const a = ((h + wide2[above + x]) >>> 4) & 0x00ff00ff;
      const b = ((h + wide2[below + x]) >>> 4) & 0x00ff00ff;
      out2[top + x] = a | (a >>> 8);
      out2[bottom + x] = b | (b >>> 8);
    }
  }
  return out;
}
