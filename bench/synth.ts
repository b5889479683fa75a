/**
 * Synth throughput: `node --import tsx bench/synth.ts [--count 600] [--size 424] [--threads N] [--repeats 3]`.
 * Renders full data sets into a scratch folder and reports images/s (workers started once per
 * repeat, as in `galactic synth`), plus a single-thread breakdown of render vs. encode time.
 * Prints one JSON line on stdout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Output } from '../src/core/console.ts';
import { synthesizeDataset } from '../src/images/synth/dataset.ts';
import { renderRecord } from '../src/images/synth/render.ts';
import { encodeImage } from '../src/images/synth/encode.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '600' },
    size: { type: 'string', default: '424' },
    threads: { type: 'string' },
    repeats: { type: 'string', default: '3' },
  },
});
const count = Number(values.count);
const size = Number(values.size);
const threads = values.threads ? Number(values.threads) : availableParallelism();
const repeats = Number(values.repeats);

/** CPU milliseconds (user + system, all threads of this process) spent by `fn`. */
async function cpuMs(fn: () => Promise<void> | void): Promise<number> {
  const before = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

async function breakdown(): Promise<{ renderMs: number; encodeMs: number; renderCpuMs: number; encodeCpuMs: number }> {
  const classes = ['Ei', 'Sc2m', 'A', 'SBb3t', 'Ser', 'Er'];
  for (let i = 0; i < 30; i++) await encodeImage(renderRecord(1, i, classes[i % 6], size), 'jpeg');
  let render = 0;
  let encode = 0;
  const n = 60;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const image = renderRecord(1, 1000 + i, classes[i % 6], size);
    const t1 = performance.now();
    await encodeImage(image, 'jpeg');
    render += t1 - t0;
    encode += performance.now() - t1;
  }
  const images = Array.from({ length: n }, (_, i) => renderRecord(1, 2000 + i, classes[i % 6], size));
  const renderCpu = await cpuMs(() => {
    for (let i = 0; i < n; i++) renderRecord(1, 2000 + i, classes[i % 6], size);
  });
  const encodeCpu = await cpuMs(async () => {
    for (const image of images) await encodeImage(image, 'jpeg');
  });
  return {
    renderMs: +(render / n).toFixed(2),
    encodeMs: +(encode / n).toFixed(2),
    renderCpuMs: +(renderCpu / n).toFixed(2),
    encodeCpuMs: +(encodeCpu / n).toFixed(2),
  };
}

const runs: { seconds: number; imagesPerSecond: number; cpuMsPerImage: number }[] = [];
for (let r = 0; r < repeats; r++) {
  const dir = mkdtempSync(path.join(tmpdir(), 'galactic-bench-synth-'));
  try {
    const before = process.cpuUsage();
    const summary = await synthesizeDataset(
      { out: dir, count, seed: 100 + r, size, hazards: false, imbalance: false, force: false, threads },
      new Output({ quiet: true }),
    );
    const used = process.cpuUsage(before);
    const cpuMsPerImage = +((used.user + used.system) / 1000 / summary.images).toFixed(2);
    runs.push({ seconds: summary.seconds, imagesPerSecond: summary.imagesPerSecond, cpuMsPerImage });
    process.stderr.write(
      `synth bench: repeat ${r + 1}: ${summary.images} images ${size}x${size} in ${summary.seconds} s = ${summary.imagesPerSecond} images/s ` +
        `(${threads} threads; ${cpuMsPerImage} CPU ms per image, so ${((cpus().length * 1000) / cpuMsPerImage).toFixed(0)} images/s if the cores were idle)\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const rates = runs.map((r) => r.imagesPerSecond).sort((a, b) => a - b);
const single = await breakdown();
const result = {
  bench: 'synth',
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  count,
  size,
  threads,
  runs,
  medianImagesPerSecond: rates[Math.floor(rates.length / 2)],
  singleThread: single,
};
process.stderr.write(
  `synth bench: median ${result.medianImagesPerSecond} images/s; one thread: render ${single.renderMs} ms (${single.renderCpuMs} CPU ms) + encode ${single.encodeMs} ms (${single.encodeCpuMs} CPU ms) per image\n`,
);
process.stdout.write(`${JSON.stringify(result)}\n`);
