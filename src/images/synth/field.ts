import type { Colour } from './canvas.ts';
import type { Morphology } from './morphology.ts';
import { ellipticalColour, jitter, starColour, type Scene } from './scene.ts';

/** Field stars, background galaxies, bright stars and the artifact class's detector and satellite defects. */

/** Faint field stars and tiny background galaxies; now and then a bright foreground star. */
export function drawBackground(scene: Scene, morphology: Morphology): void {
  const { canvas, rng, n, psf } = scene;
  const stars = rng.int(7);
  for (let k = 0; k < stars; k++) {
    canvas.addGaussian(
      rng.uniform(0, n),
      rng.uniform(0, n),
      Math.exp(rng.uniform(1, 4.2)),
      psf,
      psf,
      0,
      starColour(rng),
    );
  }
  const galaxies = rng.int(4);
  for (let k = 0; k < galaxies; k++) {
    const sx = psf + rng.uniform(0.5, 2) * (n / 212);
    canvas.addGaussian(
      rng.uniform(0, n),
      rng.uniform(0, n),
      rng.uniform(1.5, 6),
      sx,
      Math.max(psf, sx * rng.uniform(0.3, 1)),
      rng.uniform(0, Math.PI),
      jitter(rng, ellipticalColour, 0.2),
    );
  }
  // a bright star near a galaxy is a classic confuser for the artifact class
  if (morphology.kind !== 'artifact' && rng.next() < 0.07) {
    const angle = rng.uniform(0, 2 * Math.PI);
    const distance = rng.uniform(0.3, 0.45) * n;
    drawBrightStar(
      scene,
      n / 2 + Math.cos(angle) * distance,
      n / 2 + Math.sin(angle) * distance,
      rng.uniform(0.2, 0.6),
    );
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
export function drawArtifact(scene: Scene): void {
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
    const colours: Colour[] = [
      { r: 0, g: 0, b: 1 },
      { r: 0, g: 1, b: 0 },
      { r: 1, g: 0, b: 0 },
    ];
    colours.forEach((colour, band) => {
      const d = offset + (band - 1) * shift;
      canvas.addLine(
        cx - Math.sin(angle) * d,
        cy + Math.cos(angle) * d,
        angle,
        n * 1.5,
        flux,
        psf * rng.uniform(0.7, 1.1),
        0,
        colour,
      );
    });
    if (rng.next() < 0.5) canvas.addGaussian(cx, cy, rng.uniform(5, 40), psf, psf, 0, starColour(rng));
  } else if (kind < 0.86) {
    // hot pixels (single detector pixels: never blurred by the PSF) and a bad column
    const hot = 15 + rng.int(40);
    for (let j = 0; j < hot; j++)
      canvas.addPixel(rng.uniform(0, n), rng.uniform(0, n), rng.uniform(60, 400), starColour(rng));
    const column = rng.uniform(0.2, 0.8) * n;
    canvas.addLine(
      column,
      n / 2,
      Math.PI / 2,
      n,
      rng.uniform(5, 30),
      0.5 * k + 0.2,
      0,
      jitter(rng, { r: 1, g: 1, b: 1 }, 0.3),
    );
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
