import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { spread, formatSpread } from '../src/bench/stats.ts';
import { markdownTable, stageTable } from '../src/bench/table.ts';
import { appendResults, defaultResultsFile, type StageResult } from '../src/bench/results.ts';
import { TreeRssSampler } from '../src/bench/rss.ts';
import { machineInfo, describeMachine } from '../src/bench/machine.ts';
import { benchChartSpec, renderBenchChart } from '../src/bench/chart.ts';
import { stageResult } from '../src/bench/repeat.ts';
import { peakSpread, pointTable, type PointResult } from '../src/bench/points.ts';

test('spread: median of odd and even counts, min and max', () => {
  assert.deepEqual(spread([3, 1, 2]), { median: 2, min: 1, max: 3, n: 3 });
  assert.deepEqual(spread([4, 1, 2, 3]), { median: 2.5, min: 1, max: 4, n: 4 });
  assert.equal(formatSpread(spread([10, 12, 11])), '11.0 [10.0–12.0]');
  assert.equal(formatSpread(spread([10])), '10.0');
});

test('markdownTable: header, alignment row, escaped pipes, dashes for null', () => {
  const t = markdownTable(
    ['a', 'b'],
    [
      ['x|y', null],
      ['z', 3],
    ],
    [false, true],
  );
  assert.equal(t, '| a | b |\n|---|---:|\n| x\\|y | – |\n| z | 3 |');
});

function fakeStage(stage: string, ips: number[], ceiling?: StageResult): StageResult {
  return stageResult(
    stage,
    {
      images: 100,
      seconds: ips.map((v) => 100 / v),
      imagesPerSecond: ips,
      mbPerSecond: null,
      peakRssMB: 321.26,
      detail: {},
    },
    { plannedMB: 900, limitMB: 1024, ceiling: ceiling ?? null },
  );
}

test('stageResult: median figure, efficiency against the ceiling, table row', () => {
  const decode = fakeStage('decode', [100, 90, 110]);
  const prepare = fakeStage('prepare', [45, 50, 55], decode);
  assert.equal(prepare.imagesPerSecond, 50);
  assert.equal(prepare.efficiency, 0.5);
  assert.equal(prepare.ceiling, 'decode');
  assert.equal(prepare.peakRssMB, 321.3);
  const table = stageTable([decode, prepare]).split('\n');
  assert.equal(table.length, 4);
  assert.match(
    table[3]!,
    /^\| prepare \| 100 \| 50\.0 \[45\.0–55\.0\] \| – \| 321 \| 900 \| 1024 \| 50% \| decode \|$/,
  );
});

test('appendResults: JSON lines appended, never rewritten', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-results-'));
  try {
    const file = path.join(dir, 'sub', 'r.jsonl');
    const machine = machineInfo();
    appendResults(file, [{ kind: 'stage', time: 't1', machine, key: 'decode' }]);
    appendResults(file, [
      { kind: 'stage', time: 't2', machine, key: 'prepare' },
      { kind: 'stage', time: 't2', machine, key: 'feed' },
    ]);
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { key: string });
    assert.deepEqual(
      lines.map((l) => l.key),
      ['decode', 'prepare', 'feed'],
    );
    assert.match(defaultResultsFile('/x', new Date('2026-12-01T10:00:00Z')), /\/x\/bench\/results\/2026-12-01\.jsonl$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('machineInfo names the CPU, cores, memory, node and library versions', () => {
  const m = machineInfo('wasm');
  assert.ok(m.cores >= 1 && m.memoryMB > 0);
  assert.equal(m.node, process.version);
  assert.ok(m.versions.sharp && m.versions['@tensorflow/tfjs']);
  assert.match(describeMachine(m), /cores.*backend wasm.*sharp/);
});

test('TreeRssSampler sees memory held by a child process', { skip: process.platform !== 'linux' }, async () => {
  const sampler = new TreeRssSampler({ intervalMs: 20 }).start();
  const child = spawn(process.execPath, [
    '-e',
    'const b = Buffer.alloc(150 * 1024 * 1024, 1); setTimeout(() => b.length, 600)',
  ]);
  await new Promise((resolve) => child.on('exit', resolve));
  const peak = sampler.stop();
  assert.equal(peak.source, 'proc');
  assert.ok(peak.childrenPeakMB >= 140, `children peak ${peak.childrenPeakMB} MB`);
  assert.ok(peak.peakMB >= peak.childrenPeakMB);
});

const point = (images: number, peak: number, error: string | null = null): PointResult => ({
  images,
  limitMB: 1024,
  plannedMB: 900,
  peakRssMB: peak,
  seconds: 10,
  cacheMB: 90,
  error,
  prepare: error ? null : { imagesPerSecond: 50, peakRssMB: peak - 10, seconds: 5, efficiency: 0.8 },
  feed: error ? null : { imagesPerSecond: 900, peakRssMB: peak - 20, seconds: 1, efficiency: 0.5 },
  dataset: { dir: '/d', diskMB: 60, synthSeconds: 12 },
});

test('scale table and peak spread ignore refused points', () => {
  const points = [point(2000, 400), point(10000, 420), point(50000, 0, 'memory plan does not fit')];
  assert.equal(peakSpread(points), 0.05);
  const lines = pointTable(points, 'images').split('\n');
  assert.equal(lines.length, 5);
  assert.match(lines[4]!, /\| 50000 \| 1024 \|.*memory plan does not fit \|$/);
});

test('bench chart renders to a standalone SVG with both panels', async () => {
  const points = [2000, 10000].flatMap((x) => [
    { x, stage: 'prepare', imagesPerSecond: 50, peakRssMB: 400, limitMB: 1024 },
    { x, stage: 'feed', imagesPerSecond: 900, peakRssMB: 380, limitMB: 1024 },
  ]);
  const spec = benchChartSpec(points, 'data set size (images)', 'scale');
  assert.equal((spec as { hconcat: unknown[] }).hconcat.length, 2);
  const svg = await renderBenchChart(points, 'data set size (images)', 'scale');
  assert.match(svg, /^<svg[^>]+xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /images\/s/);
  assert.match(svg, /<\/svg>\s*$/);
});

test('pointConfig keeps the base image/model settings and replaces data paths, cache and budget', async () => {
  const { validateConfig } = await import('../src/config/load.ts');
  const { pointConfig } = await import('../src/bench/points.ts');
  const base = validateConfig(
    { data: { csv: 'a.csv', imageDir: 'img', limit: 5 }, image: { width: 32, height: 32 }, memory: { limitMB: 4096 } },
    'base',
    '/base',
  );
  const dataset = {
    dir: '/d',
    csv: '/d/galaxy_df_final.csv',
    imageDir: '/d/images',
    count: 100,
    imageSize: 424,
    seed: 7,
    synthSeconds: 1,
    diskBytes: 1,
  };
  const raw = pointConfig(base, dataset, 1024, '/scratch/cache');
  const loaded = validateConfig(raw, 'point', '/');
  assert.equal(loaded.image.width, 32);
  assert.equal(loaded.memory.limitMB, 1024);
  assert.equal(loaded.data.csv, '/d/galaxy_df_final.csv');
  assert.equal(loaded.data.limit, null);
  assert.equal(loaded.cache.dir, '/scratch/cache');
  const fromDefaults = validateConfig(pointConfig(null, dataset, 768, '/c'), 'point', '/');
  assert.equal(fromDefaults.image.width, 128);
});

test('combinePasses: median images/s with min and max, the largest peak', async () => {
  const { combinePasses } = await import('../src/bench/points.ts');
  const a = point(2000, 400);
  const b = {
    ...point(2000, 430),
    prepare: { imagesPerSecond: 70, peakRssMB: 300, seconds: 6, efficiency: null },
    feed: { imagesPerSecond: 600, peakRssMB: 410, seconds: 2, efficiency: null },
  };
  const c = {
    ...point(2000, 410),
    prepare: { imagesPerSecond: 30, peakRssMB: 320, seconds: 9, efficiency: null },
    feed: null,
  };
  const combined = combinePasses([a, b, c]);
  assert.equal(combined.peakRssMB, 430);
  assert.deepEqual(combined.passes?.prepareImagesPerSecond, { median: 50, min: 30, max: 70, n: 3 });
  assert.deepEqual(combined.passes?.feedImagesPerSecond, { median: 750, min: 600, max: 900, n: 2 });
  assert.equal(combined.prepare?.imagesPerSecond, 50);
  assert.equal(combined.prepare?.peakRssMB, 390);
  assert.match(pointTable([combined], 'images'), /50\.0 \[30\.0–70\.0\].*430 \(median 410\)/);
  assert.equal(combinePasses([a]), a);
});
