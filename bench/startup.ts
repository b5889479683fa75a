/**
 * Start-up benchmarks (issue 14; figures in bench/README.md), every figure a whole process, the
 * median of --repeats runs:
 *  1. `galactic --help` (target <= 0.3 s);
 *  2. a warm `galactic prepare` (cache hit) over 20,000 images (target <= 0.6 s); the images are
 *     small (32x32): a cache hit lists the image folder and reads the manifest, never a pixel;
 *  3. the notebook's preprocessing loop (cv2.imread + cv2.resize to 128x128, serial, into one
 *     array) against a cold `galactic prepare` (128x128) of the same 3,000 424x424 JPEGs, back to
 *     back in alternating order (target: galactic >= 1.3x faster). The cv2 side runs in a venv
 *     at ~/.cache/galactic/cv2-venv (python3 -m venv ~/.cache/galactic/cv2-venv &&
 *     ~/.cache/galactic/cv2-venv/bin/pip install opencv-python-headless); without it, it is skipped.
 *
 *   npm run build && flock /work/bench.lock node --import tsx bench/startup.ts [--repeats 5] [--skip help,warm,cv2]
 *     [--kernel linear]   (image.kernel of the cold prepare; linear is what cv2.resize does)
 *
 * It runs bin/galactic.js, so dist/ must be current (the script refuses a stale one).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    repeats: { type: 'string', default: '5' },
    work: { type: 'string', default: '/tmp/galactic-bench/startup' },
    skip: { type: 'string', default: '' },
    // image.kernel of the cold prepare; linear is the interpolation of the notebook's cv2.resize
    kernel: { type: 'string', default: 'lanczos3' },
  },
});
const repeats = Number(values.repeats);
const work = path.resolve(values.work);
const skip = new Set(values.skip.split(',').filter(Boolean));
const root = fileURLToPath(new URL('../', import.meta.url));
const cli = path.join(root, 'bin', 'galactic.js');
const python = path.join(os.homedir(), '.cache', 'galactic', 'cv2-venv', 'bin', 'python');
const env = { ...process.env, GALACTIC_FROM_SOURCE: '', NO_COLOR: '1' };

function distIsCurrent(): boolean {
  const built = path.join(root, 'dist', 'cli.js');
  if (!existsSync(built)) return false;
  const at = statSync(built).mtimeMs;
  return readdirSync(path.join(root, 'src'), { recursive: true, withFileTypes: true }).every(
    (e) => !e.isFile() || statSync(path.join(e.parentPath, e.name)).mtimeMs <= at,
  );
}

interface Timed {
  seconds: number;
  /** CPU seconds (user + system) of the process and its own children. */
  cpu: number;
  stdout: string;
}

/** CPU seconds of this process's waited-for children (cutime + cstime of /proc/self/stat; 0 off Linux). */
function childrenCpu(): number {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return 0;
  }
}

/** Runs a whole process and times it from spawn to exit. */
function timed(command: string, args: string[]): Timed {
  const cpuBefore = childrenCpu();
  const started = performance.now();
  const r = spawnSync(command, args, { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const seconds = (performance.now() - started) / 1000;
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { seconds, cpu: childrenCpu() - cpuBefore, stdout: r.stdout };
}

function galactic(...args: string[]): Timed {
  return timed(process.execPath, [cli, ...args]);
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => {
  const s = sorted(xs);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (xs: number[]) =>
  `median ${median(xs).toFixed(3)} s (min ${sorted(xs)[0]!.toFixed(3)}, max ${sorted(xs).at(-1)!.toFixed(3)}, n=${xs.length})`;
const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

function dataset(name: string, count: number, size: number): string {
  const dir = path.join(work, name);
  if (!existsSync(path.join(dir, 'galaxy_df_final.csv'))) {
    console.error(`startup: synthesizing ${count} ${size}x${size} images into ${dir} (once)`);
    galactic('synth', '--out', dir, '--count', String(count), '--size', String(size), '--seed', '7', '--force', '-q');
  }
  return dir;
}

function config(name: string, data: string, side: number, kernel = 'lanczos3'): string {
  const file = path.join(work, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        data: { csv: path.join(data, 'galaxy_df_final.csv'), imageDir: path.join(data, 'images') },
        image: { width: side, height: side, channels: 3, fit: 'fill', kernel },
        cache: { dir: path.join(work, `cache-${name}`) },
        memory: { limitMB: 2048 },
      },
      null,
      2,
    ),
  );
  return file;
}

/** The notebook's loop, serial: read, resize to 128x128, collect, one float array scaled to [0, 1]. */
const NOTEBOOK_LOOP = `
import csv, os, sys, time
import cv2, numpy as np
cv2.setNumThreads(1)
data = sys.argv[1]
images, labels = [], []
with open(os.path.join(data, 'galaxy_df_final.csv')) as f:
    for row in csv.DictReader(f):
        img = cv2.imread(os.path.join(data, 'images', row['asset_id'] + '.jpg'))
        if img is None:
            continue
        img = cv2.resize(img, (128, 128))
        images.append(img)
        labels.append(row['gz2class'])
x = np.array(images, dtype=np.float32) / 255.0
print(len(images), x.shape)
`;

mkdirSync(work, { recursive: true });
if (!distIsCurrent()) {
  console.error(
    'startup: dist/ is missing or older than src/; run `npm run build` first (bin/galactic.js would run the sources through tsx)',
  );
  process.exit(2);
}
console.log(
  `startup bench: node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} cores; load average ${load()} before`,
);

if (!skip.has('help')) {
  galactic('--help'); // warm the file cache
  const runs = Array.from({ length: repeats }, () => galactic('--help').seconds);
  console.log(`galactic --help: ${fmt(runs)}; target <= 0.3 s; load ${load()}`);
}

if (!skip.has('warm')) {
  const data = dataset('synth-20000-32px', 20_000, 32);
  const file = config('warm', data, 32);
  galactic('prepare', '--config', file, '-q'); // builds the cache once (cold, not timed)
  const runs = Array.from({ length: repeats }, () => {
    const run = galactic('prepare', '--config', file, '--json', '-q');
    const summary = JSON.parse(run.stdout) as { cacheHit: boolean; images: number; seconds: number };
    if (!summary.cacheHit || summary.images < 19_000)
      throw new Error(`not a cache hit over 20,000 images: ${run.stdout}`);
    return run.seconds;
  });
  console.log(`warm prepare (cache hit), 20,000 images: ${fmt(runs)}; target <= 0.6 s; load ${load()}`);
}

if (!skip.has('cv2')) {
  if (!existsSync(python) || spawnSync(python, ['-c', 'import cv2, numpy'], { encoding: 'utf8' }).status !== 0) {
    console.log(
      `notebook loop vs cold prepare: skipped, no ${python} with opencv-python-headless (python3 -m venv ~/.cache/galactic/cv2-venv && ~/.cache/galactic/cv2-venv/bin/pip install opencv-python-headless)`,
    );
  } else {
    const data = dataset('synth-3000-424px', 3000, 424);
    const file = config('cold', data, 128, values.kernel);
    const script = path.join(work, 'notebook_loop.py');
    writeFileSync(script, NOTEBOOK_LOOP);
    const cv2: number[] = [];
    const ours: number[] = [];
    const cpu = { cv2: [] as number[], ours: [] as number[] };
    for (let r = 0; r < repeats; r++) {
      // alternate which side goes first, so a load that drifts does not favour one
      const pair = [
        () => {
          const run = timed(python, [script, data]);
          cv2.push(run.seconds);
          cpu.cv2.push(run.cpu);
        },
        () => {
          const run = galactic('prepare', '--config', file, '--force', '-q');
          ours.push(run.seconds);
          cpu.ours.push(run.cpu);
        },
      ];
      if (r % 2) pair.reverse();
      for (const run of pair) run();
    }
    const ratio = median(cv2) / median(ours);
    const perImage = (xs: number[]) => `CPU ${((median(xs) / 3000) * 1000).toFixed(2)} ms/image (median)`;
    console.log(
      `notebook loop (cv2, serial), 3,000 424x424 JPEGs: ${fmt(cv2)} = ${(3000 / median(cv2)).toFixed(0)} images/s, ${perImage(cpu.cv2)}`,
    );
    console.log(
      `galactic prepare (cold, --force, image.kernel ${values.kernel}), same files: ${fmt(ours)} = ${(3000 / median(ours)).toFixed(0)} images/s, ${perImage(cpu.ours)}`,
    );
    console.log(
      `galactic is ${ratio.toFixed(2)}x the notebook's speed (median over median); target >= 1.3x; load ${load()}`,
    );
  }
}
