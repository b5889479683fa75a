import { Rng } from '../../core/rng.ts';
import { asinhStretch, Canvas, Lookup, upsample2x, type Colour, type Stretch } from './canvas.ts';
import { parseGz2Class, type Morphology } from './morphology.ts';

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
  const pixels = canvas.toRgb8(displayStretch(rng.int(5), rng.int(6)), {
    level: jitter(rng, { r: 0.5, g: 0.45, b: 0.55 }, 0.3),
    sigma: jitter(rng, { r: 1, g: 0.9, b: 1.15 }, 0.2),
    noise,
    offsets: [rng.int(noise.length), rng.int(noise.length), rng.int(noise.length)],
    stride: 1 + 2 * rng.int(1000),
  }, n === size ? undefined : rgb);
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

/** What every drawing step needs: the canvas, the record's random stream and the seeing. */
interface Scene {
  canvas: Canvas;
  rng: Rng;
  /** PSF sigma in canvas pixels */
  psf: number;
  n: number;
  /** where the catalogue position (the main object) lands */
  cx: number;
  cy: number;
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

function mix(a: Colour, b: Colour, t: number): Colour {
  return { r: a.r + (b.r - a.r) * t, g: a.g + (b.g - a.g) * t, b: a.b + (b.b - a.b) * t };
}

function jitter(rng: Rng, colour: Colour, amount: number): Colour {
  return {
    r: colour.r * (1 + rng.uniform(-amount, amount)),
    g: colour.g * (1 + rng.uniform(-amount, amount)),
    b: colour.b * (1 + rng.uniform(-amount, amount)),
  };
}

/** Black-body-ish star colours from hot blue-white to cool orange. */
function starColour(rng: Rng): Colour {
  const t = rng.next();
  return { r: 0.75 + 0.35 * t, g: 0.85 + 0.1 * t, b: 1.15 - 0.55 * t };
}

/** Elliptical colours: old red stars (yellow-red in gri composites). */
const ellipticalColour: Colour = { r: 1.0, g: 0.78, b: 0.55 };
const bulgeColour: Colour = { r: 1.0, g: 0.82, b: 0.62 };
const diskColour: Colour = { r: 0.72, g: 0.82, b: 1.0 };
const knotColour: Colour = { r: 0.6, g: 0.78, b: 1.2 };

/** Sérsic b_n (Ciotti & Bertin approximation). */
function sersicB(n: number): number {
  return 2 * n - 1 / 3 + 4 / (405 * n);
}

/**
 * A Sérsic profile I(r) = exp(-b_n ((r/re)^(1/n) - 1)) tabulated over r/re in [0, 8), with the
 * centre capped so one pixel cannot hold the whole light (the PSF would smear it anyway).
 */
function sersicLookup(n: number): Lookup {
  const b = sersicB(n);
  return new Lookup((x) => Math.exp(-b * (Math.pow(Math.max(x, 0.04), 1 / n) - 1)), 8, 2048);
}

interface Ellipse {
  cx: number;
  cy: number;
  /** radius unit (re or scale length) in canvas pixels */
  scale: number;
  /** minor/major axis ratio */
  q: number;
  angle: number;
}

/**
 * Adds `amplitude * profile(r / scale) * colour` over an ellipse, optionally modulated by
 * `modulate(u, v, r)` (u, v in the galaxy's own frame, r in scale units), which is how arms
 * and dust lanes are drawn in the same pass. The radius is softened by the PSF width,
 * sqrt(r^2 + psf^2), which rounds the core off the way seeing does, at no per-pixel cost.
 */
function addProfile(scene: Scene, shape: Ellipse, profile: Lookup, amplitude: number, colour: Colour,
  modulate?: (u: number, v: number, r: number) => number): void {
  const { canvas } = scene;
  const n = canvas.size;
  const soft = scene.psf / shape.scale;
  const soft2 = soft * soft;
  const reach = Math.min(profile.max * shape.scale, n);
  const x0 = Math.max(0, Math.floor(shape.cx - reach));
  const x1 = Math.min(n - 1, Math.ceil(shape.cx + reach));
  const y0 = Math.max(0, Math.floor(shape.cy - reach));
  const y1 = Math.min(n - 1, Math.ceil(shape.cy + reach));
  const c = Math.cos(shape.angle);
  const s = Math.sin(shape.angle);
  const inv = 1 / shape.scale;
  const invQ = 1 / shape.q;
  const { r, g, b } = canvas;
  const cr = amplitude * colour.r;
  const cg = amplitude * colour.g;
  const cb = amplitude * colour.b;
  for (let y = y0; y <= y1; y++) {
    const dy = y - shape.cy;
    let i = y * n + x0;
    for (let x = x0; x <= x1; x++, i++) {
      const dx = x - shape.cx;
      const u = (dx * c + dy * s) * inv;
      const v = (dy * c - dx * s) * inv * invQ;
      const radius = Math.sqrt(u * u + v * v + soft2);
      let f = profile.at(radius);
      if (f < 1e-4) continue;
      if (modulate) f *= modulate(u, v, radius);
      r[i] += f * cr;
      g[i] += f * cg;
      b[i] += f * cb;
    }
  }
}

/** Faint field stars and tiny background galaxies; now and then a bright foreground star. */
function drawBackground(scene: Scene, morphology: Morphology): void {
  const { canvas, rng, n, psf } = scene;
  const stars = rng.int(7);
  for (let k = 0; k < stars; k++) {
    canvas.addGaussian(rng.uniform(0, n), rng.uniform(0, n), Math.exp(rng.uniform(1, 4.2)), psf, psf, 0, starColour(rng));
  }
  const galaxies = rng.int(4);
  for (let k = 0; k < galaxies; k++) {
    const sx = psf + rng.uniform(0.5, 2) * (n / 212);
    canvas.addGaussian(rng.uniform(0, n), rng.uniform(0, n), rng.uniform(1.5, 6), sx, Math.max(psf, sx * rng.uniform(0.3, 1)), rng.uniform(0, Math.PI),
      jitter(rng, ellipticalColour, 0.2));
  }
  // a bright star near a galaxy is a classic confuser for the artifact class
  if (morphology.kind !== 'artifact' && rng.next() < 0.07) {
    const angle = rng.uniform(0, 2 * Math.PI);
    const distance = rng.uniform(0.3, 0.45) * n;
    drawBrightStar(scene, n / 2 + Math.cos(angle) * distance, n / 2 + Math.sin(angle) * distance, rng.uniform(0.2, 0.6));
  }
}

function drawElliptical(scene: Scene, m: Extract<Morphology, { kind: 'elliptical' }>): void {
  const { rng, n, cx, cy } = scene;
  const q = m.roundness === 'r' ? rng.uniform(0.82, 1) : m.roundness === 'i' ? rng.uniform(0.5, 0.82) : rng.uniform(0.25, 0.5);
  const sersic = rng.uniform(2.5, 5);
  const shape: Ellipse = { cx, cy, scale: rng.uniform(0.045, 0.1) * n, q, angle: rng.uniform(0, Math.PI) };
  addProfile(scene, shape, sersicLookup(sersic), rng.uniform(2.5, 10), jitter(rng, ellipticalColour, 0.1));
  if (m.odd === '(m)') {
    // a smaller merging companion
    const angle = rng.uniform(0, 2 * Math.PI);
    const d = shape.scale * rng.uniform(1.5, 3);
    addProfile(scene, { cx: cx + Math.cos(angle) * d, cy: cy + Math.sin(angle) * d, scale: shape.scale * 0.5, q: rng.uniform(0.5, 1), angle: rng.uniform(0, Math.PI) },
      sersicLookup(rng.uniform(2, 4)), rng.uniform(2, 6), jitter(rng, ellipticalColour, 0.1));
  }
}

const bulgeToTotal: Record<string, number> = { a: 0.75, b: 0.45, c: 0.22, d: 0.05 };
const pitchDegrees: Record<string, [number, number]> = { t: [9, 15], m: [16, 25], l: [26, 38] };
/** Mean of ((1 + cos)/2)^4 over a period: keeps the disk's total light when arms are added. */
const armPowerMean = 35 / 128;

function drawFaceOnDisk(scene: Scene, m: Extract<Morphology, { kind: 'spiral'; edgeOn: false }>): void {
  const { canvas, rng, n, cx, cy, psf } = scene;
  const h = rng.uniform(0.06, 0.11) * n;
  const q = rng.uniform(0.4, 1);
  const angle = rng.uniform(0, Math.PI);
  const centralDisk = rng.uniform(3, 9);
  const bt = bulgeToTotal[m.bulge] * rng.uniform(0.7, 1.3);
  const bulgeRe = h * rng.uniform(0.2, 0.4);

  const barLength = m.barred ? h * rng.uniform(1.1, 2) : 0;
  const barAngle = rng.uniform(0, Math.PI);
  const armCount = m.arms === null ? 2 : m.arms === '+' ? 5 : m.arms === '?' ? 2 + rng.int(2) : m.arms;
  const contrast = m.arms === null ? rng.uniform(0, 0.15) : m.arms === '?' ? rng.uniform(0.3, 0.5) : rng.uniform(0.6, 0.95);
  const [pLo, pHi] = pitchDegrees[m.winding ?? 'm'];
  const pitch = (rng.uniform(pLo, pHi) * Math.PI) / 180;
  const windingRate = 1 / Math.tan(pitch);
  const phase = rng.uniform(0, 2 * Math.PI);
  const armStart = Math.max(barLength, bulgeRe * 2) / h;
  const ring = m.odd === '(r)';

  // arm phase m(θ - k ln r) + φ0, as cos(m θ + g(r)) with g tabulated: the per-pixel cost is a
  // complex power and a lookup instead of atan2, log and cos
  const radial = armPhaseTable(armCount, windingRate, phase);
  const modulate = (u: number, v: number, r: number): number => {
    let f = 1;
    const rr = Math.sqrt(u * u + v * v);
    if (contrast > 0 && r > armStart && rr > 0) {
      const onset = Math.min(1, (r - armStart) / Math.max(armStart, 0.4));
      // e^{i m θ} from the unit vector (u, v) / rr
      const er = u / rr;
      const ei = v / rr;
      let pr = er;
      let pi = ei;
      for (let j = 1; j < armCount; j++) {
        const t = pr * er - pi * ei;
        pi = pr * ei + pi * er;
        pr = t;
      }
      const k = Math.min(radial.last, (r * radial.scale) | 0);
      const w = 0.5 + 0.5 * (pr * radial.cos[k] - pi * radial.sin[k]);
      const w2 = w * w;
      const c = contrast * onset;
      f = 1 - c + (c * w2 * w2) / armPowerMean;
    }
    if (ring) {
      const d = r - armStart * 1.3 - 0.6;
      f += 1.5 * Math.exp(-d * d * 8);
    }
    return f;
  };
  // a fifth of disks are red and dead (passive spirals, S0-like): colour alone must not give the class away
  const colour = rng.next() < 0.2 ? mix(diskColour, ellipticalColour, rng.uniform(0.5, 1)) : diskColour;
  addProfile(scene, { cx, cy, scale: h, q, angle }, exponentialLookup(), centralDisk * (1 - bt * 0.5), colour, modulate);
  addProfile(scene, { cx, cy, scale: bulgeRe, q: Math.min(1, q + 0.3), angle }, sersicLookup(rng.uniform(1.5, 3.5)),
    centralDisk * bt * rng.uniform(0.6, 1.2), jitter(rng, bulgeColour, 0.08));
  if (m.barred) {
    canvas.addGaussian(cx, cy, centralDisk * rng.uniform(0.5, 0.9), barLength * 0.55, Math.max(psf, barLength * rng.uniform(0.12, 0.2)), barAngle, bulgeColour);
  }
  // star-forming knots along the arms
  if (m.arms !== null) {
    const knots = 4 + rng.int(14);
    for (let k = 0; k < knots; k++) {
      const r = rng.uniform(Math.max(armStart, 0.6), 3.5);
      const arm = rng.int(armCount);
      const theta = (2 * Math.PI * arm - phase) / armCount + Math.log(r) * windingRate;
      const u = r * Math.cos(theta) * h;
      const v = r * Math.sin(theta) * h * q;
      const x = cx + u * Math.cos(angle) - v * Math.sin(angle);
      const y = cy + u * Math.sin(angle) + v * Math.cos(angle);
      canvas.addGaussian(x, y, rng.uniform(1, 5), psf * 1.3, psf * 1.3, 0, knotColour);
    }
  }
  if (m.odd === '(m)') {
    const a = rng.uniform(0, 2 * Math.PI);
    const d = h * rng.uniform(2, 4);
    addProfile(scene, { cx: cx + Math.cos(a) * d, cy: cy + Math.sin(a) * d, scale: h * 0.4, q: rng.uniform(0.5, 1), angle: rng.uniform(0, Math.PI) },
      sersicLookup(2), rng.uniform(2, 5), jitter(rng, bulgeColour, 0.1));
  }
}

/** cos and sin of φ0 - m k ln r over r in [0, 8) disk scale lengths. */
function armPhaseTable(arms: number, windingRate: number, phase: number): { cos: Float32Array; sin: Float32Array; scale: number; last: number } {
  const bins = 4096;
  const max = 8;
  const cos = new Float32Array(bins + 1);
  const sin = new Float32Array(bins + 1);
  for (let i = 0; i <= bins; i++) {
    const r = Math.max((i + 0.5) / bins * max, 1e-3);
    const g = phase - arms * windingRate * Math.log(r);
    cos[i] = Math.cos(g);
    sin[i] = Math.sin(g);
  }
  return { cos, sin, scale: bins / max, last: bins };
}

let exponential: Lookup | null = null;
function exponentialLookup(): Lookup {
  return (exponential ??= new Lookup((x) => Math.exp(-x), 8, 2048));
}

function drawEdgeOnDisk(scene: Scene, m: Extract<Morphology, { kind: 'spiral'; edgeOn: true }>): void {
  const { rng, n, cx, cy } = scene;
  const h = rng.uniform(0.07, 0.12) * n;
  const angle = rng.uniform(0, Math.PI);
  const q = rng.uniform(0.08, 0.2);
  const central = rng.uniform(4, 10);
  const dust = m.odd === '(d)' || rng.next() < 0.6;
  const laneOffset = rng.uniform(-0.3, 0.3);
  const laneWidth = rng.uniform(0.25, 0.5);
  const laneDepth = rng.uniform(0.45, 0.85);
  // v is in units of the disk's thickness here, so the lane follows the mid-plane
  const lane = dust
    ? (_u: number, v: number): number => {
      const d = (v - laneOffset) / laneWidth;
      return 1 - laneDepth * Math.exp(-d * d);
    }
    : undefined;
  addProfile(scene, { cx, cy, scale: h, q, angle }, exponentialLookup(), central, diskColour, lane);
  if (m.bulge !== 'n') {
    const re = h * rng.uniform(0.25, 0.45);
    const bulgeQ = m.bulge === 'b' ? rng.uniform(0.45, 0.65) : rng.uniform(0.75, 1);
    // a bulge seen through the lane is dimmed along the plane too
    const bulgeLane = lane ? (u: number, v: number): number => lane(u, (v * bulgeQ * re) / (q * h)) : undefined;
    addProfile(scene, { cx, cy, scale: re, q: bulgeQ, angle }, sersicLookup(m.bulge === 'b' ? 1.2 : 2.5), central * rng.uniform(0.5, 1.2),
      jitter(rng, bulgeColour, 0.08), bulgeLane);
  }
}

/** A saturated star with a halo and the four diffraction spikes of the telescope's spider. */
function drawBrightStar(scene: Scene, x: number, y: number, brightness: number): void {
  const { canvas, rng, n, psf } = scene;
  const k = n / 212;
  const colour = starColour(rng);
  canvas.addGaussian(x, y, 400 * brightness * rng.uniform(0.5, 2), psf, psf, 0, colour);
  const halo = rng.uniform(3, 7) * k;
  canvas.addGaussian(x, y, 12 * brightness * rng.uniform(0.5, 2), halo, halo, 0, colour);
  const length = rng.uniform(0.1, 0.35) * n * (0.5 + brightness);
  const spikeFlux = rng.uniform(15, 50) * brightness;
  const falloff = rng.uniform(0.05, 0.15) * n;
  for (const a of [0, Math.PI / 2]) canvas.addLine(x, y, a, length, spikeFlux, psf * 0.7, falloff, colour);
  if (brightness > 0.7 && rng.next() < 0.5) {
    // charge bleeding along the CCD columns
    canvas.addLine(x, y, Math.PI / 2, rng.uniform(0.05, 0.15) * n, 200 * brightness, psf * 0.8, 0, colour);
  }
}

/** Stars, satellite trails, detector defects and near-empty fields: Galaxy Zoo's "star or artifact". */
function drawArtifact(scene: Scene): void {
  const { canvas, rng, n, psf, cx, cy } = scene;
  const k = n / 212;
  const kind = rng.next();
  if (kind < 0.46) {
    drawBrightStar(scene, cx, cy, rng.uniform(0.5, 1.5));
  } else if (kind < 0.71) {
    // SDSS exposes g, r and i at different moments: a satellite leaves three offset coloured lines
    const angle = rng.uniform(0, Math.PI);
    const offset = rng.uniform(-0.25, 0.25) * n;
    const flux = rng.uniform(8, 40);
    const shift = rng.uniform(2, 6) * k;
    const colours: Colour[] = [{ r: 0, g: 0, b: 1 }, { r: 0, g: 1, b: 0 }, { r: 1, g: 0, b: 0 }];
    colours.forEach((colour, band) => {
      const d = offset + (band - 1) * shift;
      canvas.addLine(cx - Math.sin(angle) * d, cy + Math.cos(angle) * d, angle, n * 1.5, flux, psf * rng.uniform(0.7, 1.1), 0, colour);
    });
    if (rng.next() < 0.5) canvas.addGaussian(cx, cy, rng.uniform(5, 40), psf, psf, 0, starColour(rng));
  } else if (kind < 0.86) {
    // hot pixels (single detector pixels: never blurred by the PSF) and a bad column
    const hot = 15 + rng.int(40);
    for (let j = 0; j < hot; j++) canvas.addPixel(rng.uniform(0, n), rng.uniform(0, n), rng.uniform(60, 400), starColour(rng));
    const column = rng.uniform(0.2, 0.8) * n;
    canvas.addLine(column, n / 2, Math.PI / 2, n, rng.uniform(5, 30), 0.5 * k + 0.2, 0, jitter(rng, { r: 1, g: 1, b: 1 }, 0.3));
    canvas.addGaussian(cx, cy, rng.uniform(20, 200), psf, psf, 0, starColour(rng));
  } else {
    // an almost empty field around a faint point source: the hard case next to compact ellipticals
    canvas.addGaussian(cx, cy, rng.uniform(10, 80), psf, psf, 0, starColour(rng));
    if (rng.next() < 0.5) {
      // an out-of-focus reflection ghost: a faint coloured ring
      const r = rng.uniform(0.08, 0.2) * n;
      const colour = jitter(rng, { r: 0.6, g: 1, b: 0.8 }, 0.3);
      const x = rng.uniform(0.2, 0.8) * n;
      const y = rng.uniform(0.2, 0.8) * n;
      canvas.addGaussian(x, y, 2.5, r, r, 0, colour);
      canvas.addGaussian(x, y, -2, r * 0.7, r * 0.7, 0, colour);
    }
  }
}
