import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { readManifest } from '../src/cache/manifest.ts';
import { readShard } from '../src/cache/reader.ts';
import { runCli } from './support/run-cli.ts';

/** The memory budget end to end (issues 13 and 15): rows without images, duplicates, resumes under a lower limit. */

async function tinyJpeg(seed: number): Promise<Buffer> {
  return sharp({ create: { width: 24, height: 24, channels: 3, background: { r: (seed * 37) % 256, g: (seed * 91) % 256, b: 40 } } }).jpeg().toBuffer();
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
    writeFileSync(path.join(dir, 'c.json'), JSON.stringify({
      data: { csv: 'rows.csv', imageDir: 'images' }, image: { width: 32, height: 32 }, cache: { dir: 'cache' }, memory: { limitMB: 1024 },
    }));
    const r = await runCli(['prepare', '--config', path.join(dir, 'c.json'), '--json', '-q']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { cacheDir: string; rows: number; images: number; rejected: Record<string, number>; peakRssMB: number };
    assert.equal(summary.rows, 100_010);
    assert.equal(summary.images, 10);
    assert.deepEqual(summary.rejected, { 'missing-image': 100_000 });
    assert.deepEqual(await idsInShards(summary.cacheDir), good);
    assert.ok(summary.peakRssMB <= 1024, `peak RSS ${summary.peakRssMB} MB`);
    const rejectRows = readFileSync(path.join(summary.cacheDir, 'rejects.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { row: number }).row);
    assert.deepEqual([rejectRows[0], rejectRows.at(-1), rejectRows.length], [6, 100_005, 100_000]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
