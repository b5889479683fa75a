import { Observable } from 'rxjs';
import type { CsvRow, CsvSource } from '../ingest/csv-source.ts';
import type { PermitPool } from './permits.ts';
import type { LimitGate } from './limit-gate.ts';

/**
 * The CSV as an Observable that only emits rows it holds a permit for: it takes a permit, then
 * pulls one row from the parser's async iterator. Downstream operators (mergeMap's queue, the
 * reorder buffer, concatMap's queue) therefore never hold more than `permits` rows, and the file
 * is read only as fast as permits come back. (`from(asyncIterable)` would pull eagerly.)
 */
export function pullSource(csv: CsvSource, permits: PermitPool, shouldStop: () => boolean, probe?: { pulled: number }, gate?: LimitGate): Observable<CsvRow> {
  return new Observable<CsvRow>((subscriber) => {
    let stopped = false;
    (async () => {
      for (;;) {
        await permits.acquire();
        while (gate && !gate.open && !gate.exhausted && !stopped && !shouldStop()) await gate.changed();
        if (stopped || shouldStop() || gate?.exhausted) {
          permits.release();
          break;
        }
        const next = await csv.rows.next();
        if (next.done) {
          permits.release();
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
