/**
 * prepare benchmarks (figures in docs/prepare.md):
 *  1. throughput: cold prepare vs sharp's bare decode+resize of the same files, same concurrency
 *     and thread settings, alternated in the same run (target: prepare >= 90% of bare);
 *  2. memory: peak RSS of `galactic prepare` (a child process each) with memory.limitMB 1024 over
 *     2,000 and 20,000 images (target: under 1024 MB, within 10% of each other);
 *  3. warm: the same 20,000-image prepare again, answered from the cache (target: < 1 s).
 *
 *   node bin/galactic.js synth --out /tmp/galactic-bench/synth-20000 --count 20000 --size 424 --seed 7
 *   node --import tsx bench/prepare.ts [--data /tmp/galactic-bench/synth-20000] [--throughput 2000] [--repeats 2]
 */
import { planMemory } from '../src/memory/plan.ts';
import { measureData } from '../src/ingest/data-facts.ts';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pLimit from 'p-limit';
import sharp from 'sharp';
import { loadConfig, type LoadedConfig } from '../src/config/load.ts';
import { runPrepare, type PrepareSummary } from '../src/prepare/run-prepare.ts';
import { Output } from '../src/core/console.ts';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: '/tmp/galactic-bench/synth-20000' },
    throughput: { type: 'string', default: '2000' },
    repeats: { type: 'string', default: '2' },
    skip: { type: 'string', default: '' },
  },
});
const dataDir = path.resolve(values.data);
const work = path.join(path.dirname(dataDir), 'prepare-bench');
mkdirSync(work, { recursive: true });
const cliPath = new URL('../bin/galactic.js', import.meta.url).pathname;
const skip = new Set(values.skip.split(',').filter(Boolean));

function writeConfig(name: string, over: Record<string, unknown> = {}): string {
  const file = path.join(work, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        data: { csv: path.join(dataDir, 'galaxy_df_final.csv'), imageDir: path.join(dataDir, 'images') },
        image: { width: 128, height: 128, channels: 3, fit: 'fill' },
        cache: { dir: path.join(work, `cache-${name}`) },
        memory: { limitMB: 1024 },
        ...over,
      },
      null,
      2,
    ),
  );
  return file;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The first `count` image files of the CSV (in row order), exactly what prepare --limit decodes. */
function firstFiles(config: LoadedConfig, count: number): string[] {
  const lines = readFileSync(config.data.csv, 'utf8').split('\n').slice(1).filter(Boolean);
  return lines.slice(0, count).map((l) => path.join(config.data.imageDir, `${l.split(',')[0]}.jpg`));
}

/**
 * Wall-clock rate, process CPU (all threads, libvips included) per image, and the cores other
 * processes kept busy meanwhile (machine busy time from /proc/stat minus this process's CPU):
 * on a shared machine a pair whose two runs saw different foreign load is not a fair pair.
 */
interface Rate {
  imagesPerSecond: number;
  cpuMsPerImage: number;
  foreignCores: number | null;
}

/** Busy CPU milliseconds of the whole machine (all cores), or null off Linux. */
function machineBusyMs(): number | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = fields[3] + fields[4]; // idle + iowait
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0); // user..steal
    return ((total - idle) * 1000) / 100; // USER_HZ = 100
  } catch {
    return null;
  }
}

async function measure(images: () => Promise<number>): Promise<Rate> {
  const cpu = process.cpuUsage();
  const busy = machineBusyMs();
  const started = performance.now();
  const n = await images();
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const busyAfter = machineBusyMs();
  const ownMs = (used.user + used.system) / 1000;
  const foreignCores = busy === null || busyAfter === null ? null : Math.max(0, (busyAfter - busy - ownMs) / wallMs);
  return { imagesPerSecond: n / (wallMs / 1000), cpuMsPerImage: ownMs / n, foreignCores };
}

async function bareDecode(files: string[], config: LoadedConfig, concurrency: number): Promise<number> {
  const limit = pLimit(concurrency);
  await Promise.all(
    files.map((file) =>
      limit(() =>
        sharp(file)
          .resize(config.image.width, config.image.height, { fit: config.image.fit })
          .toColourspace('srgb')
          .removeAlpha()
          .raw()
          .toBuffer(),
      ),
    ),
  );
  return files.length;
}

function cli(args: string[]): Promise<{ summary: PrepareSummary; wallSeconds: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`galactic ${args.join(' ')} failed (${code}): ${stderr}`));
      resolve({
        summary: JSON.parse(stdout) as PrepareSummary,
        wallSeconds: (performance.now() - started) / 1000,
        stderr,
      });
    });
  });
}

const results: Record<string, unknown> = {};

if (!skip.has('throughput')) {
  const count = Number(values.throughput);
  const config = loadConfig(writeConfig('throughput'));
  const plan = planMemory(config, measureData(config)); // the plan prepare itself runs with
  sharp.cache(false);
  sharp.concurrency(plan.sharpThreads);
  const files = firstFiles(config, count);
  const quiet = new Output({ quiet: true });
  const bare: Rate[] = [];
  const prep: Rate[] = [];
  for (const file of files) readFileSync(file); // every file in the page cache, for both sides alike
  await bareDecode(files.slice(0, 100), config, plan.decodeConcurrency); // warm libvips
  // alternated, so load from other processes hits both alike; CPU per image is the steadier figure on a shared machine
  for (let r = 0; r < Number(values.repeats); r++) {
    bare.push(await measure(() => bareDecode(files, config, plan.decodeConcurrency)));
    prep.push(
      await measure(async () => (await runPrepare(config, { output: quiet, force: true, limit: count })).images),
    );
    const foreign = (rate: Rate) =>
      rate.foreignCores === null ? '' : `, other processes ${rate.foreignCores.toFixed(2)} cores`;
    console.error(
      `repeat ${r + 1}: bare ${bare.at(-1)!.imagesPerSecond.toFixed(1)} images/s (${bare.at(-1)!.cpuMsPerImage.toFixed(2)} CPU ms/image${foreign(bare.at(-1)!)}), prepare ${prep.at(-1)!.imagesPerSecond.toFixed(1)} images/s (${prep.at(-1)!.cpuMsPerImage.toFixed(2)} CPU ms/image${foreign(prep.at(-1)!)})`,
    );
  }
  const wall = median(prep.map((p) => p.imagesPerSecond)) / median(bare.map((b) => b.imagesPerSecond));
  const cpu = median(bare.map((b) => b.cpuMsPerImage)) / median(prep.map((p) => p.cpuMsPerImage));
  const pairs = prep.map((p, i) => p.imagesPerSecond / bare[i].imagesPerSecond);
  results.throughput = {
    images: count,
    decodeConcurrency: plan.decodeConcurrency,
    sharpThreads: plan.sharpThreads,
    wallRatio: wall,
    cpuRatio: cpu,
    pairRatios: pairs,
    bare,
    prepare: prep,
  };
  console.error(
    `throughput: prepare/bare = ${(100 * wall).toFixed(1)}% by wall-clock medians, ${(100 * median(pairs)).toFixed(1)}% median of pairs, ${(100 * cpu).toFixed(1)}% by CPU per image`,
  );
}

if (!skip.has('memory')) {
  const file = writeConfig('memory');
  const points: Record<string, unknown> = {};
  for (const count of [2000, 20000]) {
    const run = await cli(['prepare', '--config', file, '--json', '--quiet', '--force', '--limit', String(count)]);
    points[count] = {
      peakRssMB: run.summary.peakRssMB,
      seconds: run.summary.seconds,
      imagesPerSecond: run.summary.imagesPerSecond,
      images: run.summary.images,
      shards: run.summary.shards,
    };
    console.error(
      `memory: ${count} images -> peak RSS ${run.summary.peakRssMB} MB of ${run.summary.limitMB} MB (${run.summary.imagesPerSecond} images/s, ${run.summary.shards} shards)`,
    );
  }
  const small = (points[2000] as { peakRssMB: number }).peakRssMB;
  const large = (points[20000] as { peakRssMB: number }).peakRssMB;
  results.memory = { limitMB: 1024, points, growth: large / small - 1 };
  console.error(
    `memory: 20,000 vs 2,000 images peak ${large} vs ${small} MB (${(100 * (large / small - 1)).toFixed(1)}%)`,
  );

  if (!skip.has('warm')) {
    const warm: { seconds: number; wall: number }[] = [];
    for (let r = 0; r < 3; r++) {
      const run = await cli(['prepare', '--config', file, '--json', '--quiet', '--limit', '20000']);
      if (!run.summary.cacheHit) throw new Error('the warm run was not a cache hit');
      warm.push({ seconds: run.summary.seconds, wall: run.wallSeconds });
    }
    results.warm = {
      images: 20000,
      prepareSeconds: median(warm.map((w) => w.seconds)),
      processWallSeconds: median(warm.map((w) => w.wall)),
      runs: warm,
    };
    console.error(
      `warm: cache hit over 20,000 images in ${median(warm.map((w) => w.seconds))} s (whole process incl. node/tsx start-up ${median(warm.map((w) => w.wall)).toFixed(2)} s)`,
    );
  }
  rmSync(path.join(work, 'cache-memory'), { recursive: true, force: true });
}

console.log(JSON.stringify(results, null, 2));
