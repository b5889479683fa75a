import cliProgress from 'cli-progress';

/**
 * Where a command's words go: human progress on stderr (bars on a TTY, periodic single lines
 * otherwise), and with --json exactly one summary object on stdout. Nothing else touches stdout.
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
}

export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly tty: boolean;
  readonly color: boolean;
  private readonly stream: NodeJS.WritableStream;
  readonly lineIntervalMs: number;

  constructor(options: OutputOptions = {}) {
    this.json = options.json ?? false;
    this.quiet = options.quiet ?? false;
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? Boolean((this.stream as NodeJS.WriteStream).isTTY);
    this.color = this.tty && !process.env.NO_COLOR;
    this.lineIntervalMs = options.lineIntervalMs ?? 5000;
  }

  /** A line of human information on stderr (suppressed by --quiet). */
  info(message: string): void {
    if (!this.quiet) this.stream.write(`${message}\n`);
  }

  /** A warning on stderr; shown even with --quiet. */
  warn(message: string): void {
    this.stream.write(`${this.color ? '\x1b[33mwarning\x1b[0m' : 'warning'}: ${message}\n`);
  }

  /** The one machine-readable summary: printed on stdout only with --json. */
  result(summary: unknown): void {
    if (this.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  }

  /** A progress display for one stage; a no-op with --quiet. */
  progress(label: string, total: number | null, unit = 'items'): Progress {
    return new Progress(this, label, total, unit, this.stream);
  }
}

/** Stage progress: a cli-progress bar on a TTY, otherwise a plain line at most every few seconds. */
export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private lastLine = 0;
  private readonly started = Date.now();
  private value = 0;
  private fields: Record<string, string | number> = {};

  constructor(
    private readonly output: Output,
    private readonly label: string,
    private total: number | null,
    private readonly unit: string,
    private readonly stream: NodeJS.WritableStream,
  ) {
    if (output.quiet) return;
    if (output.tty) {
      this.bar = new cliProgress.SingleBar(
        {
          stream: stream as NodeJS.WritableStream & { isTTY: true },
          format: `${label} {bar} {percentage}% | {value}/{total} ${unit} | {rate}/s | ETA {eta_formatted} {extra}`,
          barCompleteChar: '#',
          barIncompleteChar: '-',
          hideCursor: true,
          clearOnComplete: false,
          etaBuffer: 50,
          fps: 5,
        },
        cliProgress.Presets.legacy,
      );
      this.bar.start(total ?? 0, 0, { rate: '0', extra: '' });
    }
  }

  setTotal(total: number): void {
    this.total = total;
    this.bar?.setTotal(total);
  }

  /** Moves to `value`; `fields` are shown after the counter (e.g. loss, RSS). */
  update(value: number, fields: Record<string, string | number> = {}): void {
    this.value = value;
    this.fields = { ...this.fields, ...fields };
    if (this.output.quiet) return;
    const seconds = (Date.now() - this.started) / 1000;
    const rate = seconds > 0 ? (value / seconds).toFixed(1) : '0';
    const extra = Object.entries(this.fields).map(([k, v]) => `${k} ${v}`).join(' ');
    if (this.bar) {
      this.bar.update(value, { rate, extra });
      return;
    }
    const now = Date.now();
    if (now - this.lastLine < this.output.lineIntervalMs) return;
    this.lastLine = now;
    this.stream.write(`${this.line(rate, extra)}\n`);
  }

  increment(by = 1, fields: Record<string, string | number> = {}): void {
    this.update(this.value + by, fields);
  }

  /** Ends the display with one final line (also when not on a TTY). */
  stop(summary?: string): void {
    if (this.output.quiet) return;
    const seconds = (Date.now() - this.started) / 1000;
    const rate = seconds > 0 ? (this.value / seconds).toFixed(1) : '0';
    if (this.bar) {
      this.bar.stop();
      this.bar = null;
    }
    this.stream.write(`${summary ?? this.line(rate, Object.entries(this.fields).map(([k, v]) => `${k} ${v}`).join(' '))}\n`);
  }

  private line(rate: string, extra: string): string {
    const of = this.total ? `/${this.total}` : '';
    return `${this.label}: ${this.value}${of} ${this.unit} (${rate}/s)${extra ? ` ${extra}` : ''}`;
  }
}
