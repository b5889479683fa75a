import { currentRssBytes } from '../memory/rss-sampler.ts';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';

/**
 * Peak resident memory of a process and all its descendants (sharp's libvips threads live in the
 * process; worker pools and child processes do not, and a budget is about all of them).
 *
 * Two sources, because each misses something:
 * - sampling /proc/<pid>/status VmRSS of the process tree every few ms sees children, but can
 *   miss a spike between samples (and in-process samples are late while the event loop is busy);
 * - the kernel's high-water mark VmHWM (reset through /proc/<pid>/clear_refs) never misses a
 *   spike of the process itself, but knows nothing of children.
 * The reported peak is the larger of the two. Without /proc (not Linux) it falls back to
 * process.memoryUsage() samples of this process only, and says so in `source`.
 */
export interface RssPeak {
  /** Largest resident set of the whole tree seen, in MB (MiB). */
  peakMB: number;
  /** The process's own high-water mark since start(), when the kernel exposes it. */
  selfHighWaterMB: number | null;
  /** Largest sum over descendants seen in one sample. */
  childrenPeakMB: number;
  samples: number;
  source: 'proc' | 'memoryUsage';
}

const MiB = 1024 * 1024;
const hasProc = (() => {
  try {
    readFileSync('/proc/self/status', 'utf8');
    return true;
  } catch {
    return false;
  }
})();

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null; // the process exited between listing and reading
  }
}

/** Resident bytes of one process, or null when it is gone. */
export function residentBytes(pid: number): number | null {
  return statusField(pid, 'VmRSS');
}

/** Direct children of `pid` from /proc/<pid>/task/<tid>/children (every thread can be a parent). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) for (const c of text.split(/\s+/)) out.push(Number(c));
    } catch {
      // thread exited, or the kernel lacks CONFIG_PROC_CHILDREN: children are then not counted
    }
  }
  return out;
}

/** All descendants of `pid` (children, grandchildren, ...). */
export function descendantsOf(pid: number): number[] {
  const all: number[] = [];
  const queue = childrenOf(pid);
  while (queue.length > 0) {
    const next = queue.shift()!;
    all.push(next);
    queue.push(...childrenOf(next));
  }
  return all;
}

export class TreeRssSampler {
  private readonly pid: number;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | null = null;
  private peakBytes = 0;
  private childrenPeakBytes = 0;
  private samples = 0;
  private highWaterReset = false;

  constructor(options: { pid?: number; intervalMs?: number } = {}) {
    this.pid = options.pid ?? process.pid;
    this.intervalMs = options.intervalMs ?? 50;
  }

  start(): this {
    this.highWaterReset = hasProc && resetHighWater(this.pid);
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  /** Takes one sample now (also useful right before a stage ends). */
  sample(): void {
    this.samples++;
    if (!hasProc) {
      if (this.pid === process.pid) this.peakBytes = Math.max(this.peakBytes, currentRssBytes());
      return;
    }
    let total = residentBytes(this.pid) ?? 0;
    let children = 0;
    for (const child of descendantsOf(this.pid)) children += residentBytes(child) ?? 0;
    total += children;
    this.peakBytes = Math.max(this.peakBytes, total);
    this.childrenPeakBytes = Math.max(this.childrenPeakBytes, children);
  }

  /** Current peak without stopping. */
  peak(): RssPeak {
    const hwm = hasProc && this.highWaterReset ? statusField(this.pid, 'VmHWM') : null;
    const peak = Math.max(this.peakBytes, hwm ?? 0);
    return {
      peakMB: round(peak / MiB),
      selfHighWaterMB: hwm === null ? null : round(hwm / MiB),
      childrenPeakMB: round(this.childrenPeakBytes / MiB),
      samples: this.samples,
      source: hasProc ? 'proc' : 'memoryUsage',
    };
  }

  stop(): RssPeak {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return this.peak();
  }
}

/** Resets the kernel's VmHWM of `pid` to its current RSS (Linux >= 4.0); false when not allowed. */
function resetHighWater(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

const round = (x: number) => Math.round(x * 10) / 10;
