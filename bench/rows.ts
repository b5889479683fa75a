/**
 * Row-count scale (issue 13, item 10): peak RSS of `galactic prepare` as the labels CSV grows
 * while the images stay few. 1,000 small JPEGs; CSVs of 2k, 100k and 1M rows in which the 1,000
 * good rows are spread evenly and every other row names a missing image; 32x32 under a fixed
 * memory.limitMB (default 1024). Each size runs in a fresh child process; its peak RSS is the
 * process high-water mark prepare reports (VmHWM). Prints one JSON line per size and a table.
 *
 *   flock /work/bench.lock node --import tsx bench/rows.ts [--rows 2000,100000,1000000] [--limit-mb 1024]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { validateConfig } from '../src/config/load.ts';
import { measureData } from '../src/ingest/data-facts.ts';
import { planMemory } from '../src/memory/plan.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '2000,100000,1000000' },
    'limit-mb': { type: 'string', default: '1024' },
    images: { type: 'string', default: '1000' },
  },
});
const sizes = values.rows.split(',').map(Number);
const limitMB = Number(values['limit-mb']);
const images = Number(values.images);
const cli = path.resolve(import.meta.dirname, '..', 'bin', 'galactic.js');
const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-rows-'));

async function writeCsv(file: string, rows: number): Promise<void> {
  const out = createWriteStream(file);
  const write = (line: string) =>
    new Promise<void>((resolve) => (out.write(line) ? resolve() : out.once('drain', resolve)));
  await write('asset_id,gz2class\n');
  const every = Math.floor(rows / images);
  let good = 0;
  for (let r = 0; r < rows; r++) {
    if (r % every === 0 && good < images) await write(`g${good++},Ei\n`);
    else await write(`58772298${String(1741363294 + r).padStart(10, '0')},Sc\n`); // distinct gz2-style 18-digit object ids, no image
  }
  await new Promise((resolve) => out.end(resolve));
}

try {
  mkdirSync(path.join(root, 'images'));
  const jpeg = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 20, g: 30, b: 40 } } })
    .jpeg()
    .toBuffer();
  for (let i = 0; i < images; i++) writeFileSync(path.join(root, 'images', `g${i}.jpg`), jpeg);
  const results = [];
  for (const rows of sizes) {
    const csv = path.join(root, `rows-${rows}.csv`);
    await writeCsv(csv, rows);
    const raw = {
      data: { csv, imageDir: 'images' },
      image: { width: 32, height: 32 },
      cache: { dir: `cache-${rows}` },
      memory: { limitMB },
    };
    const configFile = path.join(root, `c-${rows}.json`);
    writeFileSync(configFile, JSON.stringify(raw));
    const config = validateConfig(raw, configFile, root);
    const plannedMB = Math.round(planMemory(config, measureData(config)).prepare.totalBytes / 1048576);
    const load = os.loadavg()[0];
    const out = execFileSync(process.execPath, [cli, 'prepare', '--config', configFile, '--json', '-q'], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    const s = JSON.parse(out) as { rows: number; images: number; peakRssMB: number; seconds: number };
    const result = {
      rows: s.rows,
      images: s.images,
      plannedMB,
      peakRssMB: s.peakRssMB,
      limitMB,
      seconds: s.seconds,
      rowsPerSecond: Math.round(s.rows / s.seconds),
      load1: Number(load.toFixed(1)),
    };
    console.log(JSON.stringify(result));
    results.push(result);
    rmSync(path.join(root, `cache-${rows}`), { recursive: true, force: true });
  }
  console.log(
    '\n| CSV rows | images cached | planned prepare MB | peak RSS MB | limitMB | seconds | rows/s | load (1 min) |\n|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const r of results)
    console.log(
      `| ${r.rows} | ${r.images} | ${r.plannedMB} | ${r.peakRssMB} | ${r.limitMB} | ${r.seconds.toFixed(1)} | ${r.rowsPerSecond} | ${r.load1} |`,
    );
} finally {
  rmSync(root, { recursive: true, force: true });
}
