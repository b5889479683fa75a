import { rmSync } from 'node:fs';
import path from 'node:path';
import { readManifest } from '../../cache/manifest.ts';
import type { LoadedConfig } from '../../config/load.ts';
import type { MemoryPlan } from '../../memory/plan.ts';
import { runPrepare, type PrepareSummary } from '../../prepare/run-prepare.ts';
import { Output } from '../../core/console.ts';
import type { StageResult } from '../results.ts';
import { measureRepeats, stageResult } from '../repeat.ts';

/**
 * prepare, cold and warm. Cold: a scratch cache folder that is emptied before every repeat, so
 * each repeat streams the CSV, decodes every image and writes every shard. Warm: the same
 * config again, answered from the cache it just built (what every later run of a user pays).
 * The budget is the config's own memory.limitMB; the plan is printed beside the measured peak.
 */
export interface PrepareBenchResult {
  cold: StageResult;
  warm: StageResult;
  /** The scratch cache the cold run built (the feed and train stages read it). */
  cacheDir: string;
  /** The config with cache.dir pointing at the scratch folder. */
  config: LoadedConfig;
}

const MiB = 1024 * 1024;

/** The config with its cache moved into `scratchDir` (the user's own cache is never touched). */
export function scratchConfig(config: LoadedConfig, scratchDir: string): LoadedConfig {
  return { ...config, cache: { ...config.cache, dir: path.join(scratchDir, 'cache') } };
}

/**
 * What the plan allows the stage: prepare its phase; the feed the runtime and the feed's own
 * buffers (it runs without a model); train the whole train phase.
 */
export function plannedMB(plan: MemoryPlan, stage: 'prepare' | 'feed' | 'train' = 'prepare'): number {
  if (stage === 'prepare') return Math.round(plan.prepare.totalBytes / MiB);
  if (stage === 'train') return Math.round(plan.train.totalBytes / MiB);
  return Math.round((plan.runtime.bytes + plan.train.prefetch.bytes + plan.train.shuffle.bytes) / MiB);
}

export async function benchPrepare(
  config: LoadedConfig,
  options: { plan: MemoryPlan; repeats: number; limit: number | null; scratchDir: string; ceiling: StageResult | null },
): Promise<PrepareBenchResult> {
  const cfg = scratchConfig(config, options.scratchDir);
  // prepare's own progress lines would interleave with the bench's; its warnings still show
  const quiet = new Output({ quiet: true });
  const planned = plannedMB(options.plan);
  let last: PrepareSummary | null = null;
  const detail = (s: PrepareSummary) => ({
    cacheHit: s.cacheHit,
    rows: s.rows,
    rejected: s.rejected,
    shards: s.shards,
    prepareOwnPeakRssMB: s.peakRssMB,
  });

  const cold = await measureRepeats(
    options.repeats,
    async () => {
      last = await runPrepare(cfg, { output: quiet, force: true, limit: options.limit, plan: options.plan });
      const bytes = last.shards > 0 ? cacheBytes(last) : undefined;
      return { images: last.images, bytes, detail: { ...detail(last), cacheMB: Math.round((bytes ?? 0) / MiB) } };
    },
    () => rmSync(cfg.cache.dir, { recursive: true, force: true }),
  );
  const warm = await measureRepeats(options.repeats, async () => {
    const s = await runPrepare(cfg, { output: quiet, limit: options.limit, plan: options.plan });
    return { images: s.images, detail: detail(s) };
  });
  const summary = last as PrepareSummary | null;
  if (!summary) throw new Error('benchPrepare: no repeat ran');
  return {
    cold: stageResult('prepare', cold, {
      plannedMB: planned,
      limitMB: cfg.memory.limitMB,
      ceiling: options.ceiling,
      mbOf: 'shards written',
    }),
    warm: stageResult('prepareWarm', warm, { plannedMB: planned, limitMB: cfg.memory.limitMB }),
    cacheDir: summary.cacheDir,
    config: cfg,
  };
}

/** Bytes of the shards the run wrote (from its manifest). */
function cacheBytes(summary: PrepareSummary): number {
  return readManifest(summary.cacheDir).shards.reduce((s, e) => s + e.bytes, 0);
}
