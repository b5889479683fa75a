import cliProgress from 'cli-progress';

/**
 * Where a command's words go: human progress and diagnostics on stderr (bars on a TTY, periodic
 * single lines otherwise); a command's human-readable result (the plan, the cache listing, the
 * prediction table) on stdout, so it can be redirected or piped; with --json exactly one summary
 * object on stdout instead. --quiet silences progress, never results or warnings.
 *
 * On a TTY every live Progress is one bar of a shared cli-progress MultiBar, so a stage bar, an
 * epoch bar and a batch bar can show at once, and `info` lines print above the bars instead of
 * tearing them. Off a TTY (CI, pipes, files) each Progress prints a plain line at most every
 * `lineIntervalMs`, never a carriage return or an escape code. Colour only on a TTY without NO_COLOR.
 */
export interface OutputOptions {
  json?: boolean;
  quiet?: boolean;
  /** Defaults to process.stderr.isTTY. */
  tty?: boolean;
  /** Where human lines go; defaults to process.stderr. */
  stream?: NodeJS.WritableStream;
  /** Minimum milliseconds between periodic lines when not on a TTY. */
  lineIntervalMs?: number;
  /** Memory budget: when set, every progress display shows RSS against it. */
  limitMB?: number | null;
  /** Colour override; defaults to tty && !NO_COLOR. */
  color?: boolean;
}

export interface ProgressOptions {
  /** Print a line at every update when not on a TTY (for rare, important updates such as epochs). */
  everyUpdate?: boolean;
  /** Indentation level of a nested display (an epoch bar under the training stage, batches under epochs). */
  depth?: number;
  /**
   * Show only as a TTY bar: off a TTY the caller prints its own lines (e.g. an overall bar over stages that log as they
   * end).
   */
  ttyOnly?: boolean;
  /** Show rate and ETA (default true); off for displays whose steps differ too much in length (stages). */
  rate?: boolean;
}

const ANSI = { cyan: '\x1b[36m', yellow: '\x1b[33m', green: '\x1b[32m', dim: '\x1b[2m', reset: '\x1b[0m' };
const MB = 1024 * 1024;

export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly tty: boolean;
  readonly color: boolean;
  private readonly stream: NodeJS.WritableStream;
  readonly lineIntervalMs: number;
  private limit: number | null;
  private multibar: cliProgress.MultiBar | null = null;
  private liveBars = 0;

  constructor(options: OutputOptions = {}) {
    this.json = options.json ?? false;
    this.quiet = options.quiet ?? false;
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? Boolean((this.stream as NodeJS.WriteStream).isTTY);
    this.color = options.color ?? (this.tty && !process.env.NO_COLOR);
    this.lineIntervalMs = options.lineIntervalMs ?? 5000;
    this.limit = options.limitMB ?? null;
  }

  /** Sets the memory budget that progress displays compare RSS against. */
  setMemoryLimit(limitMB: number | null): void {
    this.limit = limitMB;
  }

  get limitMB(): number | null {
    return this.limit;
  }

  /** `RSS 312/2048 MB` (or `RSS 312 MB` without a budget): the memory field every display carries. */
  memoryField(): string {
    const rss = Math.round(process.memoryUsage.rss() / MB);
    return this.limit ? `${rss}/${this.limit} MB` : `${rss} MB`;
  }

  /** A line of human information on stderr (suppressed by --quiet). */
  info(message: string): void {
    if (!this.quiet) this.write(`${message}\n`);
  }

  /** A warning on stderr; shown even with --quiet. */
  warn(message: string): void {
    this.write(`${this.paint('yellow', 'warning')}: ${message}\n`);
  }

  /**
   * A human-readable result on stdout (`galactic plan > plan.txt`); not with --json, whose object is all stdout holds.
   */
  print(text: string): void {
    if (!this.json) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** The one machine-readable summary: printed on stdout only with --json. */
  result(summary: unknown): void {
    if (this.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  }

  /** A progress display for one stage; a no-op with --quiet. */
  progress(label: string, total: number | null, unit = 'items', options: ProgressOptions = {}): Progress {
    return new Progress(this, label, total, unit, this.stream, options);
  }

  /** Wraps text in a colour code when colour is on. */
  paint(colour: keyof typeof ANSI, text: string): string {
    return this.color ? `${ANSI[colour]}${text}${ANSI.reset}` : text;
  }

  /** @internal A bar in the shared TTY display. */
  createBar(total: number, format: string, payload: Record<string, unknown>): cliProgress.SingleBar {
    this.multibar ??= new cliProgress.MultiBar(
      {
        stream: this.stream as NodeJS.WritableStream & { isTTY: true },
        barCompleteChar: '#',
        barIncompleteChar: '-',
        hideCursor: true,
        // lines logged above the bars land on rows a bar drew before: every bar redraws after them
        forceRedraw: true,
        clearOnComplete: true,
        stopOnComplete: false,
        etaBuffer: 50,
        fps: 5,
        autopadding: true,
        formatValue: (v, options, type) => (type === 'percentage' ? String(v).padStart(3) : String(v)),
      },
      cliProgress.Presets.legacy,
    );
    this.liveBars += 1;
    return this.multibar.create(total, 0, payload, { format });
  }

  /** @internal Removes a bar; the shared display ends with the last bar. */
  removeBar(bar: cliProgress.SingleBar): void {
    if (!this.multibar) return;
    this.multibar.remove(bar);
    this.liveBars -= 1;
    if (this.liveBars <= 0) {
      this.multibar.stop();
      this.multibar = null;
      this.liveBars = 0;
    }
  }

  /** Ends any live bars (and gives the cursor back) before the process leaves early, e.g. on Ctrl-C. */
  close(): void {
    this.multibar?.stop();
    this.multibar = null;
    this.liveBars = 0;
  }

  /** Writes above live bars on a TTY (so they are not torn), directly otherwise. */
  private write(text: string): void {
    // each line erases the bar row it is written over, so no tail of a longer bar stays behind
    if (this.multibar) this.multibar.log(text.replace(/^|\n(?=.)/g, (m) => `${m}\x1b[2K`));
    else this.stream.write(text);
  }
}

/**
 * Progress of one stage or sub-stage: a bar on a TTY with rate, ETA, RSS against the budget and
 * free fields (loss, accuracy…), otherwise a plain line at most every few seconds.
 */
export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private lastLine = 0;
  private readonly started = Date.now();
  private value = 0;
  private fields: Record<string, string | number> = {};
  private stopped = false;
  private readonly indent: string;

  constructor(
    private readonly output: Output,
    private readonly label: string,
    private total: number | null,
    private readonly unit: string,
    private readonly stream: NodeJS.WritableStream,
    private readonly options: ProgressOptions = {},
  ) {
    this.indent = '  '.repeat(options.depth ?? 0);
    if (output.quiet) return;
    if (options.ttyOnly && !output.tty) {
      this.stopped = true;
      return;
    }
    if (output.tty) {
      const name = output.paint('cyan', `${this.indent}${label}`);
      // a bar without a known total shows a counter instead of a meaningless percentage
      // our own ETA: cli-progress's {eta_formatted} reads "0s" before the first step is done
      const timing = options.rate === false ? '' : total === null ? ' | {rate}' : ' | {rate} | ETA {remaining}';
      const format =
        total === null
          ? `${name} {value} ${unit}${timing} | RSS {rss} {extra}`
          : `${name} {bar} {percentage}% | {value}/{total} ${unit}${timing} | RSS {rss} {extra}`;
      this.bar = output.createBar(total ?? 0, format, {
        rate: this.rate(),
        remaining: '–',
        rss: output.memoryField(),
        extra: '',
      });
    }
  }

  setTotal(total: number): void {
    this.total = total;
    this.bar?.setTotal(total);
    this.bar?.update({ remaining: this.eta() ?? '–' });
  }

  /** Moves to `value`; `fields` are shown after the counter (e.g. loss, accuracy). */
  update(value: number, fields: Record<string, string | number> = {}): void {
    this.value = value;
    this.fields = { ...this.fields, ...fields };
    if (this.output.quiet || this.stopped) return;
    if (this.bar) {
      this.bar.update(value, {
        rate: this.rate(),
        remaining: this.eta() ?? '–',
        rss: this.output.memoryField(),
        extra: this.extra(),
      });
      return;
    }
    const now = Date.now();
    if (!this.options.everyUpdate && now - this.lastLine < this.output.lineIntervalMs) return;
    this.lastLine = now;
    this.stream.write(`${this.line()}\n`);
  }

  increment(by = 1, fields: Record<string, string | number> = {}): void {
    this.update(this.value + by, fields);
  }

  /** Ends the display with one final line (also when not on a TTY). */
  stop(summary?: string): void {
    if (this.output.quiet || this.stopped) return;
    this.stopped = true;
    const text = summary === undefined ? this.line(true) : `${this.indent}${summary}`;
    if (this.bar) {
      this.output.removeBar(this.bar);
      this.bar = null;
    }
    // through Output so the line lands above any bars that are still live
    this.output.info(text);
  }

  /** Ends the display without a final line (a nested bar whose parent reports the outcome). */
  clear(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.bar) {
      this.output.removeBar(this.bar);
      this.bar = null;
    }
  }

  /** Items per second, or per minute for slow items (trials, epochs), so it never reads 0.0/s. */
  private rate(): string {
    const seconds = (Date.now() - this.started) / 1000;
    if (seconds < 1 || this.value <= 0) return `– ${this.unit}/s`;
    const perSecond = this.value / seconds;
    return perSecond >= 1
      ? `${perSecond.toFixed(1)} ${this.unit}/s`
      : `${(perSecond * 60).toFixed(1)} ${this.unit}/min`;
  }

  private extra(): string {
    return Object.entries(this.fields)
      .map(([k, v]) => `${k} ${v}`)
      .join(' ');
  }

  private eta(): string | null {
    const seconds = (Date.now() - this.started) / 1000;
    // before a second has passed the estimate is noise
    if (!this.total || this.value <= 0 || this.value >= this.total || seconds < 1) return null;
    return formatDuration((seconds / this.value) * (this.total - this.value));
  }

  private line(final = false): string {
    const of = this.total ? `/${this.total}` : '';
    const timed = this.options.rate !== false;
    const eta = final || !timed ? null : this.eta();
    const extra = this.extra();
    return (
      `${this.indent}${this.label}: ${this.value}${of} ${this.unit}${timed ? ` (${this.rate()})` : ''}` +
      `${eta ? ` ETA ${eta}` : ''} RSS ${this.output.memoryField()}${extra ? ` ${extra}` : ''}`
    );
  }
}

/** A duration for people: 0.042 -> "0.04 s", 3.21 -> "3.2 s", 42.4 -> "42 s", 75 -> "1m15s". */
export function formatSeconds(seconds: number): string {
  if (seconds < 0.995) return `${seconds.toFixed(2)} s`;
  if (seconds < 9.95) return `${seconds.toFixed(1)} s`;
  if (seconds < 59.5) return `${Math.round(seconds)} s`;
  return formatDuration(seconds);
}

/** 75 -> "1m15s", 3700 -> "1h01m". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
