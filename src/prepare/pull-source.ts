import { Observable } from 'rxjs';
import type { CsvRow, CsvSource } from '../ingest/csv-source.ts';
import type { PermitPool } from './permits.ts';
import type { LimitGate } from './limit-gate.ts';

/**
 * The CSV as an Observable that only emits rows it holds a permit of every pool for: it takes
 * them (in the order given), then pulls one row from the parser's async iterator. Downstream
 * operators therefore never hold more rows than the smallest pool, and the file is read only as
 * fast as permits come back. (`from(asyncIterable)` would pull eagerly.)
 */
export function pullSource(
  csv: CsvSource,
  pools: PermitPool[],
  shouldStop: () => boolean,
  probe?: { pulled: number },
  gate?: LimitGate,
): Observable<CsvRow> {
  return new Observable<CsvRow>((subscriber) => {
    let stopped = false;
    const releaseAll = () => {
      for (const pool of pools) pool.release();
    };
    (async () => {
      for (;;) {
        for (const pool of pools) await pool.acquire();
        while (gate && !gate.open && !gate.exhausted && !stopped && !shouldStop()) await gate.changed();
        if (stopped || shouldStop() || gate?.exhausted) {
          releaseAll();
          break;
        }
        const next = await csv.rows.next();
        if (next.done) {
          releaseAll();
          break;
        }
        if (probe) probe.pulled++;
        subscriber.next(next.value);
      }
      subscriber.complete();
    })().catch((error: unknown) => {
      if (!stopped) subscriber.error(error);
    });
    return () => {
      stopped = true;
      csv.close();
    };
  });
}
