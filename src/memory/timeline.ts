import { ensureDir, replaceFileAtomicSync } from '../core/atomic-file.ts';
import { RssSampler } from './rss-sampler.ts';
import path from 'node:path';

/**
 * `runs/<name>/timeline.json`: resident memory sampled through a `galactic run`, tagged with the
 * stage running at the time, plus each stage's time and throughput. The report draws it as the
 * memory timeline (RSS against the budget) and the throughput chart.
 */
export interface TimelineSample {
  /** Seconds since the run started. */
  t: number;
  rssMB: number;
  stage: string;
}

export interface TimelineStage {
  name: string;
  seconds: number;
  /** Work units the stage handled: images for prepare/report thumbnails, image-epochs for tune/train. */
  items: number;
  itemsPerSecond: number;
  /** True when the stage's outputs were current and it did no work. */
  skipped: boolean;
}

export interface Timeline {
  limitMB: number;
  startedAt: string;
  samples: TimelineSample[];
  stages: TimelineStage[];
}

const MB = 1024 * 1024;
/** Above this many samples every other one is dropped and the interval doubles, so long runs stay small. */
const MAX_SAMPLES = 2000;

/** Samples RSS on a timer (unref'd: it never keeps the process alive) and records stage outcomes. */
export class TimelineRecorder {
  private readonly startedAt = new Date().toISOString();
  private readonly stages: TimelineStage[] = [];
  private stage = 'start';
  private readonly sampler: RssSampler;

  constructor(
    readonly limitMB: number,
    options: { intervalMs?: number } = {},
  ) {
    this.sampler = new RssSampler(options.intervalMs ?? 250, MAX_SAMPLES, { tag: () => this.stage });
  }

  /** Starts sampling, tagging samples with `stage` until the next `enter`. */
  start(stage = 'start'): this {
    this.stage = stage;
    this.sampler.start();
    return this;
  }

  /** Tags the following samples with `name` (and takes one sample at the boundary). */
  enter(name: string): void {
    this.sample();
    this.stage = name;
    this.sample();
  }

  /** Records a finished (or skipped) stage. */
  finishStage(name: string, result: { seconds: number; items: number; skipped: boolean }): TimelineStage {
    const stage: TimelineStage = {
      name,
      seconds: round(result.seconds, 3),
      items: result.items,
      itemsPerSecond: result.skipped || result.seconds <= 0 ? 0 : round(result.items / result.seconds, 2),
      skipped: result.skipped,
    };
    this.stages.push(stage);
    this.sample();
    return stage;
  }

  /** Seconds since the recorder was created. */
  elapsed(): number {
    return (performance.now() - this.sampler.started) / 1000;
  }

  /** Current RSS in MiB, sampled now. */
  rssMB(): number {
    return round(this.sample() / MB, 1);
  }

  get peakRssMB(): number {
    return round(this.sampler.peakBytes / MB, 1);
  }

  stop(): Timeline {
    this.sampler.stop();
    return this.snapshot();
  }

  snapshot(): Timeline {
    const samples = this.sampler.timeline.map((s) => ({
      t: round(s.seconds, 3),
      rssMB: round(s.rssBytes / MB, 1),
      stage: s.tag ?? 'start',
    }));
    return { limitMB: this.limitMB, startedAt: this.startedAt, samples, stages: [...this.stages] };
  }

  private sample(): number {
    return this.sampler.sample();
  }
}

/** Writes the timeline atomically so a reader never sees half a file. */
export function writeTimeline(runDir: string, timeline: Timeline): string {
  ensureDir(runDir);
  const file = path.join(runDir, 'timeline.json');
  replaceFileAtomicSync(file, `${JSON.stringify(timeline)}\n`);
  return file;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
