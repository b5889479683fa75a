import type { CsvRow, CsvSource } from '../ingest/csv-source.ts';

/**
 * Row ranges of a distributed prepare: the CSV's data rows cut into consecutive ranges of
 * `rangeRows` rows (numbered as CsvRow.row, from 1), the last one open-ended so rows past an
 * estimated count are never lost. Which range a row is in decides only which worker decodes it:
 * shards are numbered by the chief, which takes the ranges' records back in row order.
 */

export interface RowRange {
  index: number;
  first: number;
  /** First row after the range; null: to the end of the CSV. */
  end: number | null;
}

/** The ranges covering a CSV of about `estimatedRows` rows (at least one). */
export function rowRanges(estimatedRows: number, rangeRows: number): RowRange[] {
  const count = Math.max(1, Math.ceil(estimatedRows / rangeRows));
  return Array.from({ length: count }, (_, index) => ({
    index,
    first: 1 + index * rangeRows,
    end: index === count - 1 ? null : 1 + (index + 1) * rangeRows,
  }));
}

/** The range holding `row`. */
export function rangeOf(row: number, ranges: readonly RowRange[], rangeRows: number): RowRange {
  return ranges[Math.min(ranges.length - 1, Math.floor((row - 1) / rangeRows))];
}

export function rangeName(range: Pick<RowRange, 'first' | 'end'>): string {
  return `rows-${range.first}-${range.end === null ? 'end' : range.end - 1}`;
}

/**
 * The CSV source cut to one range: rows before it are read and dropped (the CSV has no index,
 * so a range costs a parse of the rows before it), the source ends at the range's end.
 */
export function csvRange(csv: CsvSource, range: Pick<RowRange, 'first' | 'end'>): CsvSource {
  const rows: AsyncIterableIterator<CsvRow> = {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next(): Promise<IteratorResult<CsvRow>> {
      for (;;) {
        const next = await csv.rows.next();
        if (next.done) return next;
        if (next.value.row < range.first) continue;
        if (range.end !== null && next.value.row >= range.end) {
          csv.close();
          return { done: true, value: undefined };
        }
        return next;
      }
    },
  };
  return { ...csv, rows, linesRead: () => csv.linesRead(), close: () => csv.close() };
}
