import { AtomicFileWriter } from '../../core/atomic-file.ts';

/**
 * A CSV written through a temporary name and renamed into place when complete, so a reader
 * never sees a half-written catalogue. Lines are buffered and flushed in ~1 MB writes.
 */
export class CsvFile {
  private readonly out: AtomicFileWriter;
  private chunks: string[] = [];
  private buffered = 0;
  rows = 0;

  constructor(file: string, header: readonly string[]) {
    this.out = new AtomicFileWriter(file);
    this.write(header);
    this.rows = 0;
  }

  /** Writes one row; `fields` may be shorter than the header (the too-few-columns hazard). */
  write(fields: readonly string[]): void {
    const line = `${fields.map(csvField).join(',')}\n`;
    this.chunks.push(line);
    this.buffered += line.length;
    this.rows++;
    if (this.buffered >= 1 << 20) this.flush();
  }

  close(): void {
    this.flush();
    this.out.commit();
  }

  private flush(): void {
    if (this.chunks.length === 0) return;
    this.out.write(this.chunks.join(''));
    this.chunks = [];
    this.buffered = 0;
  }
}

/** Quotes a field only when it must be (comma, quote or line break). */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
