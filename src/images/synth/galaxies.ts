import { Lookup, type Colour } from './canvas.ts';
import type { Morphology } from './morphology.ts';
import { bulgeColour, diskColour, ellipticalColour, jitter, knotColour, mix, type Scene } from './scene.ts';

/** The galaxies: Sérsic ellipticals, face-on disks with bars and spiral arms, edge-on disks with dust lanes. */

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
function addProfile(
  scene: Scene,
  shape: Ellipse,
  profile: Lookup,
  amplitude: number,
  colour: Colour,
  modulate?: (u: number, v: number, r: number) => number,
): void {
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

export function drawElliptical(scene: Scene, m: Extract<Morphology, { kind: 'elliptical' }>): void {
  const { rng, n, cx, cy } = scene;
  const q =
    m.roundness === 'r' ? rng.uniform(0.82, 1) : m.roundness === 'i' ? rng.uniform(0.5, 0.82) : rng.uniform(0.25, 0.5);
  const sersic = rng.uniform(2.5, 5);
  const shape: Ellipse = { cx, cy, scale: rng.uniform(0.045, 0.1) * n, q, angle: rng.uniform(0, Math.PI) };
  addProfile(scene, shape, sersicLookup(sersic), rng.uniform(2.5, 10), jitter(rng, ellipticalColour, 0.1));
  if (m.odd === '(m)') {
    // a smaller merging companion
    const angle = rng.uniform(0, 2 * Math.PI);
    const d = shape.scale * rng.uniform(1.5, 3);
    addProfile(
      scene,
      {
        cx: cx + Math.cos(angle) * d,
        cy: cy + Math.sin(angle) * d,
        scale: shape.scale * 0.5,
        q: rng.uniform(0.5, 1),
        angle: rng.uniform(0, Math.PI),
      },
      sersicLookup(rng.uniform(2, 4)),
      rng.uniform(2, 6),
      jitter(rng, ellipticalColour, 0.1),
    );
  }
}

const bulgeToTotal: Record<string, number> = { a: 0.75, b: 0.45, c: 0.22, d: 0.05 };
const pitchDegrees: Record<string, [number, number]> = { t: [9, 15], m: [16, 25], l: [26, 38] };
/** Mean of ((1 + cos)/2)^4 over a period: keeps the disk's total light when arms are added. */
const armPowerMean = 35 / 128;

type FaceOnSpiral = Extract<Morphology, { kind: 'spiral'; edgeOn: false }>;

export function drawFaceOnDisk(scene: Scene, m: FaceOnSpiral): void {
  const { canvas, rng, cx, cy, psf } = scene;
  const disk = faceOnDiskShape(scene, m);
  const { h, q, angle, centralDisk, bt, bulgeRe, barLength, barAngle } = disk;
  // a fifth of disks are red and dead (passive spirals, S0-like): colour alone must not give the class away
  const colour = rng.next() < 0.2 ? mix(diskColour, ellipticalColour, rng.uniform(0.5, 1)) : diskColour;
  addProfile(
    scene,
    { cx, cy, scale: h, q, angle },
    exponentialLookup(),
    centralDisk * (1 - bt * 0.5),
    colour,
    armModulation(disk),
  );
  addProfile(
    scene,
    { cx, cy, scale: bulgeRe, q: Math.min(1, q + 0.3), angle },
    sersicLookup(rng.uniform(1.5, 3.5)),
    centralDisk * bt * rng.uniform(0.6, 1.2),
    jitter(rng, bulgeColour, 0.08),
  );
  if (m.barred) {
    canvas.addGaussian(
      cx,
      cy,
      centralDisk * rng.uniform(0.5, 0.9),
      barLength * 0.55,
      Math.max(psf, barLength * rng.uniform(0.12, 0.2)),
      barAngle,
      bulgeColour,
    );
  }
  if (m.arms !== null) addArmKnots(scene, disk);
  if (m.odd === '(m)') addMergingCompanion(scene, h);
}

/**
 * A face-on disk's geometry, bulge, bar and arms, drawn from the scene's generator (in this
 * order: the image depends on it).
 */
function faceOnDiskShape(scene: Scene, m: FaceOnSpiral) {
  const { rng, n } = scene;
  const h = rng.uniform(0.06, 0.11) * n;
  const q = rng.uniform(0.4, 1);
  const angle = rng.uniform(0, Math.PI);
  const centralDisk = rng.uniform(3, 9);
  const bt = bulgeToTotal[m.bulge] * rng.uniform(0.7, 1.3);
  const bulgeRe = h * rng.uniform(0.2, 0.4);

  const barLength = m.barred ? h * rng.uniform(1.1, 2) : 0;
  const barAngle = rng.uniform(0, Math.PI);
  const armCount = m.arms === null ? 2 : m.arms === '+' ? 5 : m.arms === '?' ? 2 + rng.int(2) : m.arms;
  const contrast =
    m.arms === null ? rng.uniform(0, 0.15) : m.arms === '?' ? rng.uniform(0.3, 0.5) : rng.uniform(0.6, 0.95);
  const [pLo, pHi] = pitchDegrees[m.winding ?? 'm'];
  const pitch = (rng.uniform(pLo, pHi) * Math.PI) / 180;
  const windingRate = 1 / Math.tan(pitch);
  const phase = rng.uniform(0, 2 * Math.PI);
  const armStart = Math.max(barLength, bulgeRe * 2) / h;
  const ring = m.odd === '(r)';
  return {
    h,
    q,
    angle,
    centralDisk,
    bt,
    bulgeRe,
    barLength,
    barAngle,
    armCount,
    contrast,
    windingRate,
    phase,
    armStart,
    ring,
  };
}

type FaceOnDisk = ReturnType<typeof faceOnDiskShape>;

/**
 * The disk's brightness factor at (u, v), radius r: the arms and the ring. Arm phase
 * m(θ - k ln r) + φ0, as cos(m θ + g(r)) with g tabulated: the per-pixel cost is a complex power
 * and a lookup instead of atan2, log and cos.
 */
function armModulation(disk: FaceOnDisk): (u: number, v: number, r: number) => number {
  const { armCount, contrast, armStart, ring } = disk;
  const radial = armPhaseTable(armCount, disk.windingRate, disk.phase);
  return (u, v, r) => {
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
}

/** Star-forming knots along the arms. */
function addArmKnots(scene: Scene, disk: FaceOnDisk): void {
  const { canvas, rng, cx, cy, psf } = scene;
  const { h, q, angle, armCount, armStart, windingRate, phase } = disk;
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

/** The "(m)" odd feature: a small companion galaxy beside the disk of scale length `h`. */
function addMergingCompanion(scene: Scene, h: number): void {
  const { rng, cx, cy } = scene;
  const a = rng.uniform(0, 2 * Math.PI);
  const d = h * rng.uniform(2, 4);
  addProfile(
    scene,
    {
      cx: cx + Math.cos(a) * d,
      cy: cy + Math.sin(a) * d,
      scale: h * 0.4,
      q: rng.uniform(0.5, 1),
      angle: rng.uniform(0, Math.PI),
    },
    sersicLookup(2),
    rng.uniform(2, 5),
    jitter(rng, bulgeColour, 0.1),
  );
}

const phaseBins = 4096;
const phaseMax = 8;
const turnBins = 4096;
let logRadius: Float64Array | null = null;
let unitCircle: { cos: Float32Array; sin: Float32Array } | null = null;

/**
 * cos and sin of φ0 - m k ln r over r in [0, 8) disk scale lengths, from per-thread tables of
 * ln r and of one turn of the unit circle: per image, a multiply and two lookups per bin.
 */
function armPhaseTable(
  arms: number,
  windingRate: number,
  phase: number,
): { cos: Float32Array; sin: Float32Array; scale: number; last: number } {
  if (!logRadius || !unitCircle) {
    logRadius = new Float64Array(phaseBins + 1);
    for (let i = 0; i <= phaseBins; i++) logRadius[i] = Math.log(((i + 0.5) / phaseBins) * phaseMax);
    unitCircle = { cos: new Float32Array(turnBins), sin: new Float32Array(turnBins) };
    for (let k = 0; k < turnBins; k++) {
      unitCircle.cos[k] = Math.cos((2 * Math.PI * k) / turnBins);
      unitCircle.sin[k] = Math.sin((2 * Math.PI * k) / turnBins);
    }
  }
  const cos = new Float32Array(phaseBins + 1);
  const sin = new Float32Array(phaseBins + 1);
  const rate = arms * windingRate;
  const perTurn = turnBins / (2 * Math.PI);
  for (let i = 0; i <= phaseBins; i++) {
    const turns = (phase - rate * logRadius[i]) * perTurn;
    const k = (turns - Math.floor(turns / turnBins) * turnBins) | 0;
    cos[i] = unitCircle.cos[k & (turnBins - 1)];
    sin[i] = unitCircle.sin[k & (turnBins - 1)];
  }
  return { cos, sin, scale: phaseBins / phaseMax, last: phaseBins };
}

let exponential: Lookup | null = null;
function exponentialLookup(): Lookup {
  return (exponential ??= new Lookup((x) => Math.exp(-x), 8, 2048));
}

export function drawEdgeOnDisk(scene: Scene, m: Extract<Morphology, { kind: 'spiral'; edgeOn: true }>): void {
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
    addProfile(
      scene,
      { cx, cy, scale: re, q: bulgeQ, angle },
      sersicLookup(m.bulge === 'b' ? 1.2 : 2.5),
      central * rng.uniform(0.5, 1.2),
      jitter(rng, bulgeColour, 0.08),
      bulgeLane,
    );
  }
}
