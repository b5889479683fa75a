import { PartFileError, PartReader } from '../cache/part-file.ts';
import { ImageRejection } from '../core/reject-reasons.ts';
import { rangeOf, type RowRange } from './row-range.ts';
import type { Candidate } from './row-screen.ts';

/**
 * The chief's side of the part files: serves each candidate's pixels (or its image's rejection)
 * from the part file of its range, reading the files front to back in row order. The chief's
 * screen keeps a subset of the rows a worker decoded (it also applies the first-wins rules), so
 * entries of rows it rejected are skipped; a candidate without an entry means the part was
 * written from other data, and stops the build.
 */

export interface PartRanges {
  cacheKey: string;
  ranges: readonly RowRange[];
  rangeRows: number;
  /** The range's part file, once a worker has written it (waits for that). */
  ready(range: RowRange): Promise<string>;
}

export class PartPixels {
  /** Requests are served one after another, in the order they were made (row order). */
  private chain: Promise<unknown> = Promise.resolve();
  private reader: PartReader | null = null;
  private readerRange: RowRange | null = null;
  private lastRow = 0;

  constructor(private readonly parts: PartRanges) {}

  pixels(candidate: Candidate): Promise<Uint8Array> {
    const result = this.chain.then(() => this.take(candidate.row));
    this.chain = result.catch(() => undefined);
    return result;
  }

  async close(): Promise<void> {
    await this.chain;
    await this.reader?.close();
    this.reader = null;
  }

  private async take(row: number): Promise<Uint8Array> {
    if (row <= this.lastRow) throw new Error(`PartPixels: row ${row} asked for after row ${this.lastRow}`);
    this.lastRow = row;
    const range = rangeOf(row, this.parts.ranges, this.parts.rangeRows);
    if (this.readerRange !== range || !this.reader) {
      await this.reader?.close();
      this.reader = null;
      const reader = await PartReader.open(await this.parts.ready(range));
      this.reader = reader;
      this.readerRange = range;
      const { header } = reader;
      if (header.cacheKey !== this.parts.cacheKey || header.first !== range.first || header.end !== range.end)
        throw new PartFileError(
          reader.file,
          `holds rows ${header.first}-${header.end ?? 'end'} of cache ${header.cacheKey}, not rows ${range.first}-${range.end ?? 'end'} of ${this.parts.cacheKey}`,
        );
    }
    const reader = this.reader;
    for (;;) {
      const entry = await reader.next();
      if (!entry || entry.row > row)
        throw new PartFileError(
          reader.file,
          `has no entry for row ${row}, a row the chief keeps: the worker that wrote it saw other data (data.csv, data.imageDir) than the chief`,
        );
      if (entry.row < row) continue;
      if ('pixels' in entry) return entry.pixels;
      throw new ImageRejection(entry.reject.reason, entry.reject.detail);
    }
  }
}
