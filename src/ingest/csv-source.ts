import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import csvParser from 'csv-parser';
import { UserError } from '../core/errors.ts';

/**
 * The CSV as a pull source: rows are read through an async iterator, so the file is read only
 * as fast as the consumer asks (plus the streams' own small buffers, whose sizes are fixed here
 * and reported by `bufferBound`). A line longer than data.maxRowBytes is cut at the limit by
 * LineGuard before the parser sees it, and its row is flagged so the pipeline rejects it
 * `malformed-row` instead of buffering a hostile line whole.
 */

export class CsvNotFoundError extends UserError {
  constructor(file: string, error: NodeJS.ErrnoException) {
    const what =
      error.code === 'ENOENT'
        ? 'does not exist'
        : error.code === 'EISDIR'
          ? 'is a folder'
          : `cannot be read (${error.code ?? error.message})`;
    super(
      `CSV file ${file} ${what}. Check data.csv (and data.mappingCsv) in the config; paths are relative to the config file.`,
    );
  }
}

export class CsvColumnsError extends UserError {
  constructor(file: string, missing: string[], found: string[], knob: string) {
    super(
      `CSV file ${file} has no column ${missing.map((c) => `"${c}"`).join(', ')}; the columns found are: ${found.map((c) => `"${c}"`).join(', ') || '(none: the file is empty)'}. Set ${knob} to one of them.`,
    );
  }
}

export class CsvNotTextError extends UserError {
  constructor(file: string) {
    super(
      `CSV file ${file} is not a text CSV: its first line holds binary data (an image, an archive or a compressed file?). Point data.csv (or data.mappingCsv) at the labels CSV, extracted if it came zipped.`,
    );
  }
}

/** Control characters (but tab, CR, LF) or U+FFFD (bytes that are not UTF-8): no CSV header has them. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this looks for
const BINARY = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffd]/;

/** A line with no fields, or one empty field: a blank line, which is no data row. */
function isBlank(cells: Record<string, string>): boolean {
  const values = Object.values(cells);
  return values.length === 0 || (values.length === 1 && values[0].trim() === '');
}

export class CsvReadError extends UserError {
  constructor(file: string, detail: string) {
    super(`CSV file ${file} could not be read: ${detail}.`);
  }
}

/** One data row: its 1-based number (header not counted), the named cells, and what was wrong with its shape. */
export interface CsvRow {
  row: number;
  cells: Record<string, string>;
  /** Number of fields the line had (a row with fewer fields than the header is malformed). */
  fields: number;
  /** Set when the line was longer than maxRowBytes and was cut. */
  overlong: boolean;
}

export const READ_CHUNK_BYTES = 4 * 1024;
/** csv-parser's readable side holds at most this many parsed rows. */
export const PARSER_ROW_BUFFER = 16;

/**
 * Counts lines passing through and cuts any line at maxRowBytes (tracking quotes, so a quoted
 * newline does not end a line). Also the instrument for the backpressure test: `lines` is the
 * number of lines that have left the file for the parser.
 */
export class LineGuard extends Transform {
  lines = 0;
  private lineBytes = 0;
  private quoted = false;
  private cutting = false;
  /** 0-based line numbers (header = 0) that were cut. */
  readonly cutLines = new Set<number>();

  constructor(private readonly maxRowBytes: number) {
    super({ highWaterMark: READ_CHUNK_BYTES });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let keepFrom = 0;
    const parts: Buffer[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte === 0x22) this.quoted = !this.quoted;
      if (byte === 0x0a && !this.quoted) {
        if (this.cutting) {
          keepFrom = i; // resume passing bytes at the newline that ends the cut line
          this.cutting = false;
        }
        this.lines++;
        this.lineBytes = 0;
        continue;
      }
      if (this.cutting) continue;
      this.lineBytes++;
      if (this.lineBytes > this.maxRowBytes) {
        parts.push(chunk.subarray(keepFrom, i));
        this.cutting = true;
        this.quoted = false;
        this.cutLines.add(this.lines);
      }
    }
    if (!this.cutting) parts.push(chunk.subarray(keepFrom));
    done(null, parts.length === 1 ? parts[0] : Buffer.concat(parts));
  }
}

export interface CsvSource {
  rows: AsyncIterableIterator<CsvRow>;
  /** Lines read from the file so far (header included). */
  linesRead(): number;
  /** Columns in the header. */
  headerCount: number;
  /** Bytes that can sit read from the file but not yet pulled: the streams' own buffers. */
  bufferBytes: number;
  /** Parsed rows the parser can hold on top of those bytes. */
  bufferRows: number;
  close(): void;
}

/**
 * Opens the CSV and checks its header has `required` columns (each with the config knob that
 * named it, for the error). Resolves once the header is read.
 */
export async function openCsv(
  file: string,
  required: { column: string; knob: string }[],
  maxRowBytes: number,
): Promise<CsvSource> {
  const stream = createReadStream(file, { highWaterMark: READ_CHUNK_BYTES });
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', (error) => reject(new CsvNotFoundError(file, error as NodeJS.ErrnoException)));
  });
  const guard = new LineGuard(maxRowBytes);
  // the guard already cut long lines; the parser's own limit is a backstop against quoting tricks
  const parser = csvParser({ maxRowBytes: maxRowBytes * 2 + 1024, mapHeaders: ({ header }) => header.trim() });
  let headers: string[] | null = null;
  parser.once('headers', (h: string[]) => (headers = h));
  stream.on('error', (error) => parser.destroy(new CsvReadError(file, error.message)));
  stream.pipe(guard).pipe(parser);

  const iterator = parser[Symbol.asyncIterator]() as AsyncIterator<Record<string, string>>;
  let rowNumber = 0;
  /** Records parsed, blank lines included: LineGuard numbers the lines it cut this way. */
  let lineNumber = 0;
  let pending: IteratorResult<Record<string, string>> | null = null;
  const next = async (): Promise<IteratorResult<Record<string, string>>> => {
    try {
      return await iterator.next();
    } catch (error) {
      if (error instanceof UserError) throw error;
      throw new CsvReadError(file, (error as Error).message);
    }
  };
  // the header arrives with (or before) the first row: read one row ahead to validate it
  pending = await next();
  const found = ((headers ?? []) as (string | null)[]).filter((h): h is string => typeof h === 'string');
  if (found.some((h) => BINARY.test(h))) {
    // never echo the bytes: the column list would print them
    stream.destroy();
    parser.destroy();
    throw new CsvNotTextError(file);
  }
  const missing = required.filter((r) => !found.includes(r.column));
  if (missing.length > 0) {
    stream.destroy();
    parser.destroy();
    throw new CsvColumnsError(
      file,
      missing.map((m) => m.column),
      found,
      missing[0].knob,
    );
  }
  const headerCount = (headers ?? []).length;

  // a plain iterator object rather than an async generator: one promise less per row
  const rows: AsyncIterableIterator<CsvRow> = {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next(): Promise<IteratorResult<CsvRow>> {
      for (;;) {
        const result = pending ?? (await next());
        pending = null;
        if (result.done) {
          close();
          return { done: true, value: undefined };
        }
        lineNumber++;
        const cells = result.value;
        // blank lines (a trailing newline or two, a gap) are no rows: not numbered, not rejected
        if (isBlank(cells) && !guard.cutLines.has(lineNumber)) continue;
        rowNumber++;
        // csv-parser names surplus fields _N; a short row simply lacks the trailing keys
        return {
          done: false,
          value: { row: rowNumber, cells, fields: Object.keys(cells).length, overlong: guard.cutLines.has(lineNumber) },
        };
      }
    },
    async return(): Promise<IteratorResult<CsvRow>> {
      close();
      return { done: true, value: undefined };
    },
  };
  function close(): void {
    stream.destroy();
    parser.destroy();
  }

  return {
    rows,
    linesRead: () => guard.lines,
    headerCount,
    // file stream + guard (in and out) + parser's object-mode writable queue (16 chunks) + the chunk being parsed
    bufferBytes: READ_CHUNK_BYTES * (1 + 2 + 16 + 1),
    bufferRows: PARSER_ROW_BUFFER,
    close,
  };
}
