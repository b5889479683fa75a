/**
 * The one sampler of this process's resident set size: on a timer, it keeps the peak plus a
 * timeline (for `--json` summaries, the run's timeline.json and the report; bench/rss.ts samples
 * other processes' /proc files, and gives its own process's figure from here). The peak also
 * takes the kernel's high-water mark (getrusage maxRSS) when asked, so a spike between two
 * samples is not missed; that mark covers the whole process so far. The timeline stays bounded:
 * past `maxSamples` every other sample is dropped and the interval doubles. Unref'd, so it never
 * keeps the process alive.
 */
export interface RssSample {
  seconds: number;
  rssBytes: number;
  tag?: string;
}

/** This process's resident set size now, in bytes. */
export function currentRssBytes(): number {
  return process.memoryUsage.rss();
}

export class RssSampler {
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt = performance.now();
  peakBytes = 0;
  readonly timeline: RssSample[] = [];

  constructor(
    private intervalMs = 100,
    private readonly maxSamples = 10_000,
    /**
     * processHighWater: also count the kernel's whole-process high-water mark (right for a
     * one-command process, wrong for per-epoch peaks); tag: labels each sample (the run's stage).
     */
    private readonly options: { processHighWater?: boolean; tag?: () => string } = {},
  ) {}

  get started(): number {
    return this.startedAt;
  }

  start(): this {
    this.sample();
    this.schedule();
    return this;
  }

  private schedule(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  /** Takes one sample now (also call it at interesting moments, e.g. after a flush). */
  sample(): number {
    const rssBytes = currentRssBytes();
    // the kernel's high-water mark catches peaks between samples (it covers the whole process life)
    const highWater = this.options.processHighWater ? process.resourceUsage().maxRSS * 1024 : 0;
    this.peakBytes = Math.max(this.peakBytes, rssBytes, highWater);
    if (this.timeline.length >= this.maxSamples) {
      // keep the timeline bounded on long runs: drop every other sample, sample half as often
      const kept = this.timeline.filter((_, i) => i % 2 === 0);
      this.timeline.splice(0, this.timeline.length, ...kept);
      this.intervalMs *= 2;
      if (this.timer) this.schedule();
    }
    const tag = this.options.tag?.();
    this.timeline.push({
      seconds: (performance.now() - this.startedAt) / 1000,
      rssBytes,
      ...(tag === undefined ? {} : { tag }),
    });
    return rssBytes;
  }

  get peakMB(): number {
    return Math.round((this.peakBytes / (1024 * 1024)) * 10) / 10;
  }

  stop(): this {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sample();
    return this;
  }
}
