import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { readManifest } from '../src/cache/manifest.ts';
import { readShard } from '../src/cache/reader.ts';
import { cliPath, runCli } from './support/run-cli.ts';

/** The memory budget end to end (issues 13 and 15): rows without images, duplicates, resumes under a lower limit. */

async function tinyJpeg(seed: number): Promise<Buffer> {
  return sharp({
    create: { width: 24, height: 24, channels: 3, background: { r: (seed * 37) % 256, g: (seed * 91) % 256, b: 40 } },
  })
    .jpeg()
    .toBuffer();
}

async function idsInShards(cacheDir: string): Promise<string[]> {
  const ids: string[] = [];
  for (const entry of readManifest(cacheDir).shards) ids.push(...(await readShard(cacheDir, entry)).ids);
  return ids;
}

test('100,000 consecutive rows without an image between good rows: every good row is cached, exit 0', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'galactic-missing-run-'));
  try {
    mkdirSync(path.join(dir, 'images'));
    const lines = ['asset_id,gz2class'];
    const good: string[] = [];
    const addGood = async (n: number) => {
      const id = `g${n}`;
      writeFileSync(path.join(dir, 'images', `${id}.jpg`), await tinyJpeg(n));
      lines.push(`${id},Ei`);
      good.push(id);
    };
    for (let n = 0; n < 5; n++) await addGood(n);
    for (let n = 0; n < 100_000; n++) lines.push(`m${n},Sc`);
    for (let n = 5; n < 10; n++) await addGood(n);
    writeFileSync(path.join(dir, 'rows.csv'), `${lines.join('\n')}\n`);
    writeFileSync(
      path.join(dir, 'c.json'),
      JSON.stringify({
        data: { csv: 'rows.csv', imageDir: 'images' },
        image: { width: 32, height: 32 },
        cache: { dir: 'cache' },
        memory: { limitMB: 1024 },
      }),
    );
    const r = await runCli(['prepare', '--config', path.join(dir, 'c.json'), '--json', '-q']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as {
      cacheDir: string;
      rows: number;
      images: number;
      rejected: Record<string, number>;
      peakRssMB: number;
    };
    assert.equal(summary.rows, 100_010);
    assert.equal(summary.images, 10);
    assert.deepEqual(summary.rejected, { 'missing-image': 100_000 });
    assert.deepEqual(await idsInShards(summary.cacheDir), good);
    assert.ok(summary.peakRssMB <= 1024, `peak RSS ${summary.peakRssMB} MB`);
    const rejectRows = readFileSync(path.join(summary.cacheDir, 'rejects.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { row: number }).row);
    assert.deepEqual([rejectRows[0], rejectRows.at(-1), rejectRows.length], [6, 100_005, 100_000]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function writeImages(dir: string, ids: string[]): Promise<void> {
  mkdirSync(path.join(dir, 'images'), { recursive: true });
  for (const [n, id] of ids.entries()) writeFileSync(path.join(dir, 'images', `${id}.jpg`), await tinyJpeg(n));
}

test('gz2 layout: one image under two objects is cached once, for the first object in the labels CSV, whichever order the mapping lists them', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'galactic-gz2-dup-'));
  try {
    await writeImages(dir, ['101', '102', '103']);
    writeFileSync(path.join(dir, 'labels.csv'), 'dr7objid,gz2_class\n9001,Sc4l\n9002,Ei\n9003,Ei\n9004,Sc\n');
    const config = (mapping: string) =>
      JSON.stringify({
        data: {
          layout: 'gz2',
          csv: 'labels.csv',
          mappingCsv: mapping,
          imageDir: 'images',
          idColumn: 'dr7objid',
          labelColumn: 'gz2_class',
        },
        image: { width: 16, height: 16 },
        cache: { dir: `cache-${mapping}` },
        memory: { limitMB: 1024 },
      });
    // 9001 and 9003 both point at image 101; the second mapping lists 9003 first
    writeFileSync(path.join(dir, 'm1.csv'), 'objid,sample,asset_id\n9001,x,101\n9002,x,102\n9003,x,101\n9004,x,103\n');
    writeFileSync(path.join(dir, 'm2.csv'), 'objid,sample,asset_id\n9003,x,101\n9004,x,103\n9002,x,102\n9001,x,101\n');
    for (const mapping of ['m1.csv', 'm2.csv']) {
      writeFileSync(path.join(dir, `${mapping}.json`), config(mapping));
      const r = await runCli(['prepare', '--config', path.join(dir, `${mapping}.json`), '--json', '-q']);
      assert.equal(r.code, 0, r.stderr);
      const summary = JSON.parse(r.stdout) as { cacheDir: string; images: number; rejected: Record<string, number> };
      assert.deepEqual(summary.rejected, { 'duplicate-id': 1 });
      assert.deepEqual(await idsInShards(summary.cacheDir), ['101', '102', '103']);
      const rejects = readFileSync(path.join(summary.cacheDir, 'rejects.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(rejects, [
        {
          row: 3,
          id: '9003',
          reason: 'duplicate-id',
          detail: 'image 101 of object 9003 is already the image of object 9001, in an earlier row (the first wins)',
        },
      ]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Summary {
  cacheDir: string;
  images: number;
  shards: number;
  peakRssMB: number;
  limitMB: number;
}

function killedAfterFirstShard(configFile: string, cacheRoot: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, 'prepare', '--config', configFile, '-q'], { stdio: 'ignore' });
    const poll = setInterval(() => {
      try {
        for (const key of readdirSync(cacheRoot)) {
          if (readdirSync(path.join(cacheRoot, key)).includes('manifest.json')) {
            child.kill('SIGKILL');
            clearInterval(poll);
          }
        }
      } catch {
        // not created yet
      }
    }, 1);
    child.on('error', reject);
    child.on('exit', () => {
      clearInterval(poll);
      resolve();
    });
  });
}

test('a prepare killed under a large limit and resumed under a lower one: refused with the limit its shards need, then resumed there within it', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'galactic-resume-lower-'));
  try {
    const ids = Array.from({ length: 800 }, (_, n) => String(5000 + n));
    await writeImages(dir, ids);
    writeFileSync(
      path.join(dir, 'rows.csv'),
      `asset_id,gz2class\n${ids.map((id, n) => `${id},${n % 2 ? 'Ei' : 'Sc'}`).join('\n')}\n`,
    );
    const write = (name: string, limitMB: number, cache: string) => {
      writeFileSync(
        path.join(dir, name),
        JSON.stringify({
          data: { csv: 'rows.csv', imageDir: 'images' },
          image: { width: 128, height: 128 },
          cache: { dir: cache },
          memory: { limitMB },
        }),
      );
      return path.join(dir, name);
    };
    const clean = await runCli(['prepare', '--config', write('clean.json', 2048, 'clean'), '--json', '-q']);
    assert.equal(clean.code, 0, clean.stderr);
    const cleanSummary = JSON.parse(clean.stdout) as Summary;
    assert.ok(cleanSummary.shards >= 2, `${cleanSummary.shards} shards`);

    await killedAfterFirstShard(write('big.json', 2048, 'cache'), path.join(dir, 'cache'));
    const refused = await runCli(['prepare', '--config', write('low.json', 400, 'cache'), '-q']);
    assert.equal(refused.code, 1, refused.stderr);
    const minimum = Number(
      /^galactic: memory plan does not fit: the interrupted cache .* was written with \d+-image shards, but memory\.limitMB 400 holds \d+-image shards at most\. Raise memory\.limitMB to at least (\d+) to resume it, or run prepare with --force to start it over\.$/m.exec(
        refused.stderr,
      )?.[1],
    );
    assert.ok(minimum > 400 && minimum < 2048, refused.stderr);

    const resumed = await runCli(['prepare', '--config', write('min.json', minimum, 'cache'), '--json']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /resuming .* after row \d+/);
    const summary = JSON.parse(resumed.stdout) as Summary;
    assert.ok(summary.peakRssMB <= minimum, `peak RSS ${summary.peakRssMB} MB of ${minimum} MB`);
    assert.equal(summary.images, 800);
    for (const name of readdirSync(cleanSummary.cacheDir).filter((f) => f.startsWith('shard-'))) {
      assert.ok(
        readFileSync(path.join(summary.cacheDir, name)).equals(readFileSync(path.join(cleanSummary.cacheDir, name))),
        `${name} is byte-identical`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the minimum limit a refusal names runs within itself', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'galactic-minimum-'));
  try {
    const ids = Array.from({ length: 300 }, (_, n) => String(7000 + n));
    await writeImages(dir, ids);
    writeFileSync(path.join(dir, 'rows.csv'), `asset_id,gz2class\n${ids.map((id) => `${id},Ei`).join('\n')}\n`);
    const write = (limitMB: number) => {
      writeFileSync(
        path.join(dir, 'c.json'),
        JSON.stringify({
          data: { csv: 'rows.csv', imageDir: 'images' },
          image: { width: 32, height: 32 },
          cache: { dir: 'cache' },
          memory: { limitMB },
        }),
      );
      return path.join(dir, 'c.json');
    };
    const refused = await runCli(['prepare', '--config', write(100), '-q']);
    assert.equal(refused.code, 1);
    const minimum = Number(
      /Raise memory\.limitMB to at least (\d+) \(or choose a smaller image size\)\.$/m.exec(refused.stderr)?.[1],
    );
    assert.ok(minimum > 100, refused.stderr);
    const again = await runCli(['prepare', '--config', write(minimum - 1), '-q']);
    assert.match(
      again.stderr,
      new RegExp(`Raise memory\\.limitMB to at least ${minimum} `),
      'the same minimum from just below',
    );
    const run = await runCli(['prepare', '--config', write(minimum), '--json', '-q']);
    assert.equal(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout) as Summary;
    assert.equal(summary.images, 300);
    assert.ok(summary.peakRssMB <= minimum, `peak RSS ${summary.peakRssMB} MB of ${minimum} MB`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
