import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../core/errors.ts';
import type { LoadedConfig } from '../config/load.ts';
import type { Output } from '../core/console.ts';
import { machineInfo, type MachineInfo } from './machine.ts';
import type { StageResult } from './results.ts';
import { benchDecode, listImages } from './stages/decode.ts';
import { benchFeed } from './stages/feed.ts';
import { benchPrepare, plannedMB } from './stages/prepare.ts';
import { benchShardRead } from './stages/shard-read.ts';
import { planMemory, type MemoryPlan } from '../memory/plan.ts';
import { refusePhases } from '../memory/refusals.ts';
import { measureData } from '../ingest/data-facts.ts';
import { feedSettings } from '../data/feed.ts';

/**
 * `galactic bench [stage...]`: runs the chosen stages in pipeline order on the user's config,
 * each against its ceiling measured in the same run (prepare vs decode, feed vs shard read),
 * so an efficiency figure never compares two different machines or two different loads.
 */
export const SUITE_STAGES = ['decode', 'prepare', 'feed', 'train'] as const;
export type SuiteStage = (typeof SUITE_STAGES)[number];

export interface SuiteSettings {
  /** Images per repeat (a subset of the data set: data.limit for prepare, the first N files for decode). */
  images: number;
  repeats: number;
  /** Feed epochs per repeat. */
  epochs: number;
  quick: boolean;
}

/** --quick keeps `bench all` within minutes on 2 cores: a small subset and two repeats. */
export function suiteSettings(
  config: LoadedConfig,
  options: { quick: boolean; images?: number; repeats?: number; epochs?: number },
): SuiteSettings {
  const images = options.images ?? (options.quick ? 256 : (config.data.limit ?? 2000));
  return {
    images,
    repeats: options.repeats ?? (options.quick ? 2 : 3),
    epochs: options.epochs ?? 1,
    quick: options.quick,
  };
}

/** Expands `all` and checks the names; returns stages in pipeline order. */
export function selectStages(names: string[]): SuiteStage[] {
  const wanted = names.length === 0 || names.includes('all') ? [...SUITE_STAGES] : names;
  for (const name of wanted) {
    if (!(SUITE_STAGES as readonly string[]).includes(name)) {
      throw new UsageError(
        `unknown bench stage '${name}'. Stages: ${SUITE_STAGES.join(', ')}, all; or 'galactic bench scale' / 'galactic bench sweep'.`,
      );
    }
  }
  return SUITE_STAGES.filter((s) => wanted.includes(s));
}

/** Runs the train stage on a prepared scratch cache; supplied by the train bench (per backend). */
export type TrainStageRunner = (context: {
  config: LoadedConfig;
  cacheDir: string;
  settings: SuiteSettings;
  feed: StageResult | null;
  output: Output;
  plan: MemoryPlan;
}) => Promise<{ result: StageResult | Record<string, unknown>; backend: string | null }>;

export interface SuiteReport {
  machine: MachineInfo;
  config: string;
  settings: SuiteSettings;
  plannedMB: number;
  limitMB: number;
  stages: Record<string, StageResult | Record<string, unknown>>;
}

export async function runSuite(
  config: LoadedConfig,
  stages: SuiteStage[],
  settings: SuiteSettings,
  output: Output,
  trainStage: TrainStageRunner | null,
): Promise<SuiteReport> {
  // refuses an impossible budget before any work; the model only matters when the suite trains
  const plan = planMemory(config, measureData(config));
  refusePhases(config, plan, trainStage && stages.includes('train') ? ['prepare', 'train'] : ['prepare']);
  const scratchDir = mkdtempSync(path.join(os.tmpdir(), 'galactic-bench-'));
  const results: Record<string, StageResult | Record<string, unknown>> = {};
  let backend: string | null = null;
  try {
    let decode: StageResult | null = null;
    if (stages.includes('decode')) {
      const files = await listImages(config, settings.images);
      output.info(`bench decode: ${files.length} images x ${settings.repeats} repeats (sharp decode + resize only)`);
      decode = await benchDecode(config, {
        files,
        repeats: settings.repeats,
        decodeConcurrency: plan.decodeConcurrency,
        sharpThreads: plan.sharpThreads,
      });
      results.decode = decode;
    }
    // feed and train need a cache: build one into scratch (timed only when prepare was asked for)
    let prepared: { cacheDir: string; config: LoadedConfig } | null = null;
    const needsCache = stages.some((s) => s === 'feed' || s === 'train');
    if (stages.includes('prepare') || needsCache) {
      const timed = stages.includes('prepare');
      output.info(
        timed
          ? `bench prepare: ${settings.images} images x ${settings.repeats} repeats cold (scratch cache), then warm`
          : `bench: preparing ${settings.images} images into a scratch cache for the feed (not timed)`,
      );
      const prep = await benchPrepare(config, {
        plan,
        repeats: timed ? settings.repeats : 1,
        limit: settings.images,
        scratchDir,
        ceiling: decode,
      });
      prepared = { cacheDir: prep.cacheDir, config: prep.config };
      if (timed) {
        results.prepare = prep.cold;
        results.prepareWarm = prep.warm;
      }
    }
    let feed: StageResult | null = null;
    if (stages.includes('feed') && prepared) {
      output.info(`bench feed: shard read ceiling, then ${settings.epochs} epoch(s) x ${settings.repeats} repeats`);
      const shardRead = await benchShardRead(prepared.cacheDir, settings.repeats, config.memory.limitMB);
      results.shardRead = shardRead;
      feed = await benchFeed(prepared.config, prepared.cacheDir, {
        settings: feedSettings(plan),
        repeats: settings.repeats,
        epochs: settings.epochs,
        ceiling: shardRead,
        plannedMB: plannedMB(plan, 'feed'),
      });
      results.feed = feed;
    }
    if (stages.includes('train') && prepared) {
      if (!trainStage) throw new Error('runSuite: the train stage was asked for without a runner');
      const train = await trainStage({
        config: prepared.config,
        cacheDir: prepared.cacheDir,
        settings,
        feed,
        output,
        plan,
      });
      // the train peak is compared with the plan's train phase (model, pool, feed)
      results.train =
        'plannedMB' in train.result && train.result.plannedMB == null
          ? { ...train.result, plannedMB: plannedMB(plan, 'train') }
          : train.result;
      backend = train.backend;
    }
  } finally {
    rmSync(scratchDir, { recursive: true, force: true });
  }
  return {
    machine: machineInfo(backend),
    config: config.configPath,
    settings,
    plannedMB: Math.round(plan.totalBytes / (1024 * 1024)),
    limitMB: config.memory.limitMB,
    stages: results,
  };
}
