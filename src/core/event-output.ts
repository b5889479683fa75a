import { Writable } from 'node:stream';
import { Output, Progress, type ProgressOptions } from './console.ts';

/**
 * What the library reports instead of printing: every line and progress update the CLI would
 * show, as plain objects. A caller that passes no listener gets nothing (silent by default).
 */
export type GalacticEvent =
  | { type: 'info'; message: string }
  | { type: 'warning'; message: string }
  /** A progress display started, moved or ended (`done`); `total` is null while unknown. */
  | {
      type: 'progress';
      label: string;
      value: number;
      total: number | null;
      unit: string;
      fields: Record<string, string | number>;
      done: boolean;
      /** The closing line, when the display ended with one. */
      summary?: string;
    };

export type EventListener = (event: GalacticEvent) => void;

const nowhere = new Writable({ write: (_chunk, _encoding, callback) => callback() });

/** An Output that hands every message to `listener` (or drops it) and never touches stdout or stderr. */
export class EventOutput extends Output {
  constructor(private readonly listener: EventListener | undefined) {
    super({ quiet: true, tty: false, stream: nowhere });
  }

  override info(message: string): void {
    this.listener?.({ type: 'info', message });
  }

  override warn(message: string): void {
    this.listener?.({ type: 'warning', message });
  }

  override print(text: string): void {
    this.listener?.({ type: 'info', message: text.replace(/\n$/, '') });
  }

  override result(): void {}

  override progress(label: string, total: number | null, unit = 'items', options: ProgressOptions = {}): Progress {
    return new EventProgress(this, label.trim(), total, unit, options, this.listener);
  }
}

class EventProgress extends Progress {
  private current = 0;
  private known: number | null;
  private latest: Record<string, string | number> = {};
  private ended = false;

  constructor(
    output: Output,
    private readonly name: string,
    total: number | null,
    private readonly units: string,
    options: ProgressOptions,
    private readonly listener: EventListener | undefined,
  ) {
    super(output, name, total, units, nowhere, options);
    this.known = total;
    this.emit(false);
  }

  override setTotal(total: number): void {
    this.known = total;
    this.emit(false);
  }

  override update(value: number, fields: Record<string, string | number> = {}): void {
    this.current = value;
    this.latest = { ...this.latest, ...fields };
    this.emit(false);
  }

  override increment(by = 1, fields: Record<string, string | number> = {}): void {
    this.update(this.current + by, fields);
  }

  override stop(summary?: string): void {
    this.emit(true, summary);
  }

  override clear(): void {
    this.emit(true);
  }

  private emit(done: boolean, summary?: string): void {
    if (this.ended || !this.listener) return;
    if (done) this.ended = true;
    this.listener({
      type: 'progress',
      label: this.name,
      value: this.current,
      total: this.known,
      unit: this.units,
      fields: { ...this.latest },
      done,
      ...(summary === undefined ? {} : { summary }),
    });
  }
}
