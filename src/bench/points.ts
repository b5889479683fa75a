import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { validateConfig, type LoadedConfig } from '../config/load.ts';
import { UserError } from '../core/errors.ts';
import { planMemory } from '../memory/plan.ts';
import { refusePhases } from '../memory/refusals.ts';
import { measureData } from '../ingest/data-facts.ts';
import type { ChartPoint } from './chart.ts';
import { runPointInChild } from './child-point.ts';
import type { SynthDataset } from './datasets.ts';
import { formatSpread, roundSpread, spread, type Spread } from './stats.ts';
import { markdownTable } from './table.ts';

/**
 * A scale or sweep measurement: prepare (cold) and one feed epoch of one data set under one
 * memory.limitMB, in its own child process. Shared by `bench scale` (x = data set size) and
 * `bench sweep` (x = budget).
 */
export interface PointResult {
  images: number;
  limitMB: number;
  plannedMB: number | null;
  prepare: { imagesPerSecond: number; peakRssMB: number; seconds: number; efficiency: number | null } | null;
  feed: { imagesPerSecond: number; peakRssMB: number; seconds: number; efficiency: number | null } | null;
  /** Peak RSS of the child process tree over the whole point (prepare + feed + runtime), MiB. */
  peakRssMB: number;
  seconds: number;
  /** Size of the shards prepare wrote, MiB. */
  cacheMB: number | null;
  dataset: { dir: string; diskMB: number; synthSeconds: number };
  /** The planner's refusal or the child's error; the other figures are then empty. */
  error: string | null;
  /** With --passes > 1: median [min-max] over the passes (the figures above are then medians, peak RSS the max). */
  passes?: {
    n: number;
    prepareImagesPerSecond: Spread | null;
    feedImagesPerSecond: Spread | null;
    peakRssMB: Spread | null;
  };
}

/** The config a point runs with: the base config's image/model/feed settings, the data set, the budget. */
export function pointConfig(
  base: LoadedConfig | null,
  dataset: SynthDataset,
  limitMB: number,
  cacheDir: string,
): Record<string, unknown> {
  const rest: Record<string, unknown> = base ? { ...base } : {};
  delete rest.configPath;
  delete rest.configDir;
  delete rest.$schema;
  const baseData = (base?.data ?? {}) as Record<string, unknown>;
  return {
    ...rest,
    data: {
      ...(base ? { classes: baseData.classes } : {}),
      layout: 'joined',
      csv: dataset.csv,
      imageDir: dataset.imageDir,
      idColumn: 'asset_id',
      labelColumn: 'gz2class',
      fileName: '{id}.jpg',
      limit: null,
    },
    cache: { ...((base?.cache ?? {}) as object), dir: cacheDir },
    memory: { ...((base?.memory ?? {}) as object), limitMB },
  };
}

const MiB = 1024 * 1024;

/** Runs one point in a fresh child process (which prepares into a cold scratch cache it removes afterwards). */
export async function measurePoint(
  base: LoadedConfig | null,
  dataset: SynthDataset,
  limitMB: number,
  scratchRoot: string,
): Promise<PointResult> {
  const scratch = path.join(scratchRoot, `point-${dataset.count}-${limitMB}MB`);
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  // the child prepares into its own temp scratch cache; this folder only names where it would go
  const cacheDir = path.join(scratch, 'cache');
  const configFile = path.join(scratch, 'config.json');
  const raw = pointConfig(base, dataset, limitMB, cacheDir);
  writeFileSync(configFile, `${JSON.stringify(raw, null, 2)}\n`);
  const dataInfo = {
    dir: dataset.dir,
    diskMB: Math.round(dataset.diskBytes / MiB),
    synthSeconds: dataset.synthSeconds,
  };
  // a budget the planner refuses is a result of the sweep (with the planner's words), not a crash
  let planned: number;
  try {
    const config = validateConfig(raw, configFile, scratch);
    const plan = planMemory(config, measureData(config));
    refusePhases(config, plan, ['prepare']);
    planned = Math.round(plan.prepare.totalBytes / MiB);
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    rmSync(scratch, { recursive: true, force: true });
    return {
      images: dataset.count,
      limitMB,
      plannedMB: null,
      prepare: null,
      feed: null,
      peakRssMB: 0,
      seconds: 0,
      cacheMB: null,
      dataset: dataInfo,
      error: error.message,
    };
  }
  try {
    const outcome = await runPointInChild(configFile, ['prepare', 'feed'], { images: dataset.count, epochs: 1 });
    const prep = outcome.stages.prepare;
    const feed = outcome.stages.feed;
    const pick = (s: typeof prep) =>
      s
        ? {
            imagesPerSecond: s.imagesPerSecond,
            peakRssMB: s.peakRssMB,
            seconds: s.repeats.seconds.median,
            efficiency: s.efficiency,
          }
        : null;
    return {
      images: prep?.images ?? dataset.count,
      limitMB,
      plannedMB: prep?.plannedMB ?? planned,
      prepare: pick(prep),
      feed: pick(feed),
      // the parent samples every 100 ms; the child's own figures include the kernel's high-water mark
      peakRssMB: Math.max(outcome.peakRssMB, prep?.peakRssMB ?? 0, feed?.peakRssMB ?? 0),
      seconds: outcome.seconds,
      cacheMB: typeof prep?.detail?.cacheMB === 'number' ? prep.detail.cacheMB : null,
      dataset: dataInfo,
      error: outcome.error,
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * One point measured in several passes → one row: median images/s with min and max, and the
 * largest peak (a budget must hold on every pass). A pass that failed makes the point failed.
 */
export function combinePasses(passes: PointResult[]): PointResult {
  const first = passes[0]!;
  if (passes.length === 1) return first;
  const failed = passes.find((p) => p.error);
  if (failed)
    return {
      ...failed,
      passes: { n: passes.length, prepareImagesPerSecond: null, feedImagesPerSecond: null, peakRssMB: null },
    };
  const of = (values: (number | undefined)[]) => {
    const v = values.filter((x): x is number => typeof x === 'number');
    return v.length > 0 ? roundSpread(spread(v)) : null;
  };
  const prepareIps = of(passes.map((p) => p.prepare?.imagesPerSecond));
  const feedIps = of(passes.map((p) => p.feed?.imagesPerSecond));
  const peak = of(passes.map((p) => p.peakRssMB))!;
  const stage = (key: 'prepare' | 'feed', ips: Spread | null) => {
    const all = passes.map((p) => p[key]).filter((x) => x !== null);
    if (all.length === 0 || !ips) return null;
    return {
      imagesPerSecond: ips.median,
      peakRssMB: Math.max(...all.map((x) => x.peakRssMB)),
      seconds: spread(all.map((x) => x.seconds)).median,
      efficiency: all[0]!.efficiency,
    };
  };
  return {
    ...first,
    prepare: stage('prepare', prepareIps),
    feed: stage('feed', feedIps),
    peakRssMB: peak.max,
    seconds: spread(passes.map((p) => p.seconds)).median,
    passes: { n: passes.length, prepareImagesPerSecond: prepareIps, feedImagesPerSecond: feedIps, peakRssMB: peak },
  };
}

const fixed = (x: number | null | undefined, d = 0) => (x === null || x === undefined ? null : x.toFixed(d));

/** The scale/sweep table; `by` picks the first column. */
export function pointTable(points: PointResult[], by: 'images' | 'limitMB'): string {
  return markdownTable(
    [
      by === 'images' ? 'images' : 'limit MB',
      by === 'images' ? 'limit MB' : 'images',
      'planned MB',
      'prepare images/s',
      'prepare peak RSS MB',
      'feed images/s',
      'feed peak RSS MB',
      'process peak RSS MB',
      'wall s',
      'cache MB',
      'note',
    ],
    points.map((p) => [
      by === 'images' ? p.images : p.limitMB,
      by === 'images' ? p.limitMB : p.images,
      fixed(p.plannedMB),
      p.passes?.prepareImagesPerSecond
        ? formatSpread(p.passes.prepareImagesPerSecond)
        : fixed(p.prepare?.imagesPerSecond, 1),
      fixed(p.prepare?.peakRssMB),
      p.passes?.feedImagesPerSecond ? formatSpread(p.passes.feedImagesPerSecond) : fixed(p.feed?.imagesPerSecond, 1),
      fixed(p.feed?.peakRssMB),
      p.error
        ? null
        : p.passes?.peakRssMB
          ? `${fixed(p.peakRssMB)} (median ${fixed(p.passes.peakRssMB.median)})`
          : fixed(p.peakRssMB),
      p.error && !p.prepare ? null : fixed(p.seconds),
      fixed(p.cacheMB),
      p.error ?? '',
    ]),
    [true, true, true, true, true, true, true, true, true, true, false],
  );
}

/** (max - min) / min of the values, or null with fewer than 2 values. */
export function relativeSpread(values: number[]): number | null {
  if (values.length < 2) return null;
  const min = Math.min(...values);
  return min > 0 ? (Math.max(...values) - min) / min : null;
}

/** How flat the whole-process peaks are across the successful points. */
export function peakSpread(points: PointResult[]): number | null {
  return relativeSpread(points.filter((p) => !p.error).map((p) => p.peakRssMB));
}

/** How constant a stage's throughput is across the successful points. */
export function throughputSpread(points: PointResult[], stage: 'prepare' | 'feed'): number | null {
  return relativeSpread(points.flatMap((p) => (p.error || !p[stage] ? [] : [p[stage].imagesPerSecond])));
}

export function chartPoints(points: PointResult[], by: 'images' | 'limitMB'): ChartPoint[] {
  const out: ChartPoint[] = [];
  for (const p of points) {
    if (p.error) continue;
    const x = by === 'images' ? p.images : p.limitMB;
    if (p.prepare)
      out.push({
        x,
        stage: 'prepare',
        imagesPerSecond: p.prepare.imagesPerSecond,
        peakRssMB: p.prepare.peakRssMB,
        limitMB: p.limitMB,
      });
    if (p.feed)
      out.push({
        x,
        stage: 'feed',
        imagesPerSecond: p.feed.imagesPerSecond,
        peakRssMB: p.feed.peakRssMB,
        limitMB: p.limitMB,
      });
    out.push({
      x,
      stage: 'whole process',
      imagesPerSecond: null,
      peakRssMB: p.peakRssMB,
      limitMB: p.limitMB,
      plannedMB: p.plannedMB,
    });
  }
  return out;
}
