import type { StageResult } from './results.ts';
import { TreeRssSampler } from './rss.ts';
import { roundSpread, spread } from './stats.ts';

/** What one timed repeat of a stage did. */
export interface RepeatOutcome {
  images: number;
  /** Input bytes the repeat read (JPEGs or shards), for MB/s; omit when it does not apply. */
  bytes?: number;
  /**
   * Seconds of the measured part when the stage times itself (e.g. feed epochs without the split); default: the whole
   * call.
   */
  seconds?: number;
  detail?: Record<string, unknown>;
}

export interface Measured {
  images: number;
  seconds: number[];
  imagesPerSecond: number[];
  mbPerSecond: number[] | null;
  peakRssMB: number;
  /** detail of the last repeat */
  detail: Record<string, unknown>;
}

const MiB = 1024 * 1024;

/**
 * Runs a stage `repeats` times. `prepare` (untimed) resets state before each repeat, e.g. removes
 * the scratch cache so every cold prepare really is cold. Peak RSS is sampled per repeat and the
 * largest is kept: the budget must hold on every run, not on average.
 */
export async function measureRepeats(
  repeats: number,
  run: (repeat: number) => Promise<RepeatOutcome>,
  prepare?: (repeat: number) => Promise<void> | void,
): Promise<Measured> {
  const seconds: number[] = [];
  const ips: number[] = [];
  const mbps: number[] = [];
  let peak = 0;
  let images = 0;
  let detail: Record<string, unknown> = {};
  for (let i = 0; i < repeats; i++) {
    await prepare?.(i);
    const sampler = new TreeRssSampler().start();
    const started = process.hrtime.bigint();
    let outcome: RepeatOutcome;
    try {
      outcome = await run(i);
    } finally {
      peak = Math.max(peak, sampler.stop().peakMB);
    }
    const s = outcome.seconds ?? Number(process.hrtime.bigint() - started) / 1e9;
    seconds.push(s);
    ips.push(outcome.images / s);
    if (outcome.bytes !== undefined) mbps.push(outcome.bytes / MiB / s);
    images = outcome.images;
    detail = outcome.detail ?? {};
  }
  return {
    images,
    seconds,
    imagesPerSecond: ips,
    mbPerSecond: mbps.length === repeats ? mbps : null,
    peakRssMB: peak,
    detail,
  };
}

/** Turns measurements into a StageResult; efficiency is against `ceiling` measured in the same run. */
export function stageResult(
  stage: string,
  m: Measured,
  options: { plannedMB?: number | null; limitMB?: number | null; ceiling?: StageResult | null; mbOf?: string } = {},
): StageResult {
  const ipsSpread = spread(m.imagesPerSecond);
  const ceiling = options.ceiling ?? null;
  return {
    stage,
    images: m.images,
    imagesPerSecond: round(ipsSpread.median),
    mbPerSecond: m.mbPerSecond ? round(spread(m.mbPerSecond).median) : null,
    mbOf: m.mbPerSecond ? (options.mbOf ?? null) : null,
    peakRssMB: round(m.peakRssMB),
    plannedMB: options.plannedMB ?? null,
    limitMB: options.limitMB ?? null,
    ceiling: ceiling?.stage ?? null,
    efficiency:
      ceiling && ceiling.imagesPerSecond > 0
        ? Math.round((1000 * ipsSpread.median) / ceiling.imagesPerSecond) / 1000
        : null,
    repeats: {
      imagesPerSecond: roundSpread(ipsSpread),
      seconds: roundSpread(spread(m.seconds), 2),
      mbPerSecond: m.mbPerSecond ? roundSpread(spread(m.mbPerSecond)) : null,
    },
    ...(Object.keys(m.detail).length > 0 ? { detail: m.detail } : {}),
  };
}

const round = (x: number) => Math.round(x * 10) / 10;
