/**
 * Samples the process's resident set size on a timer and keeps the peak plus a timeline (for
 * `--json` summaries, benches and the report). The peak also takes the kernel's high-water mark
 * (getrusage maxRSS) when asked, so a spike between two samples is not missed; that mark covers
 * the whole process so far. Unref'd, so it never keeps the process alive.
 */
export interface RssSample { seconds: number; rssBytes: number }

export class RssSampler {
  private timer: NodeJS.Timeout | null = null;
  private readonly started = performance.now();
  peakBytes = 0;
  readonly timeline: RssSample[] = [];

  constructor(
    private readonly intervalMs = 100,
    private readonly maxSamples = 10_000,
    /** Also count the kernel's whole-process high-water mark (right for a one-command process, wrong for per-epoch peaks). */
    private readonly options: { processHighWater?: boolean } = {},
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  /** Takes one sample now (also call it at interesting moments, e.g. after a flush). */
  sample(): number {
    const rssBytes = process.memoryUsage.rss();
    // the kernel's high-water mark catches peaks between samples (it covers the whole process life)
    const highWater = this.options.processHighWater ? process.resourceUsage().maxRSS * 1024 : 0;
    this.peakBytes = Math.max(this.peakBytes, rssBytes, highWater);
    if (this.timeline.length >= this.maxSamples) {
      // keep the timeline bounded on long runs: drop every other sample
      for (let i = 1; i < this.timeline.length; i += 1) this.timeline.splice(i, 1);
    }
    this.timeline.push({ seconds: (performance.now() - this.started) / 1000, rssBytes });
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
