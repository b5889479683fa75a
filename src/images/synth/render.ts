import { Rng } from '../../core/rng.ts';
import { asinhStretch, Canvas, upsample2x, type Stretch } from './canvas.ts';
import { drawArtifact, drawBackground } from './field.ts';
import { drawEdgeOnDisk, drawElliptical, drawFaceOnDisk } from './galaxies.ts';
import { parseGz2Class } from './morphology.ts';
import { jitter, type Scene } from './scene.ts';

/**
 * Renders one synthetic SDSS-like cutout for a record. Everything random comes from
 * `Rng(seed, "render:<index>")`, so the pixels depend only on (seed, index, class) and never
 * on which worker drew them or when.
 *
 * Large even sizes are drawn on a canvas of half the side and doubled bilinearly: that
 * quarters the per-pixel work, and real Galaxy Zoo cutouts are resampled too, so their sky
 * noise is spatially correlated in the same way.
 */
export interface RenderedImage {
  /** Interleaved 8-bit RGB, `size` x `size`. */
  pixels: Uint8Array;
  size: number;
}

export function canvasSizeFor(size: number): number {
  return size > 160 && size % 2 === 0 ? size / 2 : size;
}

export function renderRecord(seed: number, index: number, gz2class: string, size: number): RenderedImage {
  const rng = new Rng(seed, `render:${index}`);
  const n = canvasSizeFor(size);
  const { canvas, rgb, wide } = scratchFor(n);
  const morphology = parseGz2Class(gz2class);
  // small random centring errors, like real cutouts centred on a catalogue position
  const cx = n / 2 + rng.uniform(-0.03, 0.03) * n;
  const cy = n / 2 + rng.uniform(-0.03, 0.03) * n;
  // seeing varies from night to night: the PSF's sigma in canvas pixels
  const psf = rng.uniform(0.6, 1.1) * (n / 212);

  const scene: Scene = { canvas, rng, psf, n, cx, cy };
  drawBackground(scene, morphology);
  switch (morphology.kind) {
    case 'elliptical':
      drawElliptical(scene, morphology);
      break;
    case 'spiral':
      if (morphology.edgeOn) drawEdgeOnDisk(scene, morphology);
      else drawFaceOnDisk(scene, morphology);
      break;
    case 'artifact':
      drawArtifact(scene);
      break;
  }
  const noise = skyNoise();
  // the encoder holds on to the returned pixels asynchronously, so they are never scratch
  const pixels = canvas.toRgb8(
    displayStretch(rng.int(5), rng.int(6)),
    {
      level: jitter(rng, { r: 0.5, g: 0.45, b: 0.55 }, 0.3),
      sigma: jitter(rng, { r: 1, g: 0.9, b: 1.15 }, 0.2),
      noise,
      offsets: [rng.int(noise.length), rng.int(noise.length), rng.int(noise.length)],
      stride: 1 + 2 * rng.int(1000),
    },
    n === size ? undefined : rgb,
  );
  return { pixels: n === size ? pixels : upsample2x(pixels, n, wide), size };
}

const stretches = new Map<number, Stretch>();

/** One of 30 asinh display curves (softening x range), built once per thread. */
function displayStretch(softeningStep: number, rangeStep: number): Stretch {
  const key = softeningStep * 100 + rangeStep;
  let stretch = stretches.get(key);
  if (!stretch) {
    stretch = asinhStretch(1.6 + 0.3 * softeningStep, 140 + 36 * rangeStep);
    stretches.set(key, stretch);
  }
  return stretch;
}

interface Scratch {
  canvas: Canvas;
  rgb: Uint8Array;
  wide: Uint16Array;
}
let scratch: Scratch | null = null;

/** Per-thread working buffers, reused from image to image (rendering is synchronous). */
function scratchFor(n: number): Scratch {
  if (scratch?.canvas.size === n) {
    scratch.canvas.clear();
    return scratch;
  }
  scratch = { canvas: new Canvas(n), rgb: new Uint8Array(n * n * 3), wide: new Uint16Array(n * 6 * n) };
  return scratch;
}

let noiseTable: Float32Array | null = null;

/** 2^16 standard normals from a fixed seed, shared by every image (built once per thread). */
function skyNoise(): Float32Array {
  if (noiseTable) return noiseTable;
  const rng = new Rng(0x5eed, 'sky-noise');
  noiseTable = new Float32Array(1 << 16);
  for (let i = 0; i < noiseTable.length; i++) noiseTable[i] = rng.normal();
  return noiseTable;
}
