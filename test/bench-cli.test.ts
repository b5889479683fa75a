import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from './support/run-cli.ts';
import { writeFixture } from './support/prepare-fixture.ts';

// A tiny data set (48 small JPEGs) so the real stages run end to end in seconds.
let dir = '';
let configFile = '';

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bench-cli-'));
  await writeFixture(path.join(dir, 'data'), { good: 48, size: 96 });
  configFile = path.join(dir, 'bench.config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      data: { csv: 'data/galaxy_df_final.csv', imageDir: 'data/images' },
      image: { width: 32, height: 32, channels: 3 },
      cache: { dir: 'cache' },
      memory: { limitMB: 1024 },
      train: { batchSize: 8 },
    }),
  );
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('bench decode prepare feed --json: one object with every stage, efficiency against its ceiling', async () => {
  const out = path.join(dir, 'results.jsonl');
  const r = await runCli([
    'bench',
    'decode',
    'prepare',
    'feed',
    '--config',
    configFile,
    '--json',
    '--repeats',
    '2',
    '--images',
    '40',
    '--out',
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as {
    machine: { cores: number; cpuModel: string };
    stages: Record<
      string,
      { imagesPerSecond: number; peakRssMB: number; efficiency: number | null; ceiling: string | null; images: number }
    >;
  };
  assert.ok(summary.machine.cores >= 1 && summary.machine.cpuModel);
  for (const key of ['decode', 'prepare', 'prepareWarm', 'shardRead', 'feed']) {
    const s = summary.stages[key];
    assert.ok(s, `stage ${key} missing`);
    assert.ok(s.imagesPerSecond > 0 && s.peakRssMB > 0, `${key}: ${JSON.stringify(s)}`);
  }
  assert.equal(summary.stages.prepare!.ceiling, 'decode');
  assert.ok(summary.stages.prepare!.efficiency! > 0);
  assert.equal(summary.stages.feed!.ceiling, 'shardRead');
  assert.equal(summary.stages.prepare!.images, 40);
  const lines = readFileSync(out, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { kind: string; key: string });
  assert.deepEqual(lines.map((l) => l.key).sort(), ['decode', 'feed', 'prepare', 'prepareWarm', 'shardRead']);
  // the user's cache folder is never touched: prepare ran into a scratch folder
  assert.throws(() => readFileSync(path.join(dir, 'cache', 'x')), /ENOENT/);
});

test('bench decode without --json prints the machine and a markdown table on stdout', async () => {
  const r = await runCli(['bench', 'decode', '--config', configFile, '--repeats', '1', '--images', '10', '--no-save']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /cores/);
  assert.match(r.stdout, /\| stage \| images \|/);
  assert.match(r.stdout, /\| decode \| 10 \|/);
});

test('an unknown stage is a usage error', async () => {
  const r = await runCli(['bench', 'frobnicate', '--config', configFile, '--no-save']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown bench stage 'frobnicate'/);
});

test('bench scale: one fresh process per size, points + chart + JSON lines; sweep reports a refused budget', async () => {
  const out = path.join(dir, 'scale.jsonl');
  const chart = path.join(dir, 'scale.svg');
  const dataDir = path.join(dir, 'scale-data');
  const r = await runCli(
    [
      'bench',
      'scale',
      '--config',
      configFile,
      '--sizes',
      '16,32',
      '--image-size',
      '32',
      '--limit-mb',
      '1024',
      '--data-dir',
      dataDir,
      '--json',
      '--out',
      out,
      '--chart',
      chart,
    ],
    { timeoutMs: 240_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as {
    points: {
      images: number;
      limitMB: number;
      peakRssMB: number;
      prepare: { imagesPerSecond: number } | null;
      feed: unknown;
      error: string | null;
    }[];
    peakRssSpread: number | null;
  };
  assert.deepEqual(
    summary.points.map((p) => [p.images, p.limitMB, p.error]),
    [
      [16, 1024, null],
      [32, 1024, null],
    ],
  );
  for (const p of summary.points) assert.ok(p.peakRssMB > 0 && p.prepare!.imagesPerSecond > 0 && p.feed);
  assert.equal(typeof summary.peakRssSpread, 'number');
  assert.match(readFileSync(chart, 'utf8'), /^<svg[\s\S]*<\/svg>\s*$/);
  assert.equal(readFileSync(out, 'utf8').trim().split('\n').length, 2);

  // the second run reuses the synthesized set; 64 MB cannot hold even the runtime
  const sweep = await runCli(
    [
      'bench',
      'sweep',
      '--config',
      configFile,
      '--limits',
      '64',
      '--size',
      '16',
      '--image-size',
      '32',
      '--data-dir',
      dataDir,
      '--no-save',
      '--chart',
      path.join(dir, 'sweep.svg'),
    ],
    { timeoutMs: 120_000 },
  );
  assert.equal(sweep.code, 0, sweep.stderr);
  assert.match(sweep.stderr, /reusing 16 synthetic images/);
  assert.match(sweep.stdout, /\| 64 \| 16 \|.*memory plan does not fit/);
});
