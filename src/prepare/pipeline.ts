import { EMPTY, asapScheduler, concatMap, from, lastValueFrom, map, mergeMap, observeOn, of } from 'rxjs';
import { ImageRejection } from '../core/reject-reasons.ts';
import type { CsvRow, CsvSource } from '../ingest/csv-source.ts';
import type { PermitPool } from './permits.ts';
import { pullSource } from './pull-source.ts';
import { LimitGate } from './limit-gate.ts';
import { inRowOrder } from './row-order.ts';
import type { Candidate, Rejected, Screened } from './row-screen.ts';

/**
 * The prepare data flow as RxJS stages:
 *
 *   pullSource (permit, then one CSV row) → screen (cheap checks) → mergeMap(decode, n)
 *     → inRowOrder → concatMap(sink)
 *
 * mergeMap's and concatMap's internal queues and the reorder buffer are unbounded by themselves;
 * here they are bounded because the source never emits a row without a permit and the sink
 * returns permits only when a record's bytes are in a flushed shard. Stages are injected so the
 * backpressure test can run it without images.
 */

export interface DecodedRecord { kind: 'record'; seq: number; row: number; id: string; label: number; pixels: Uint8Array }
/** A row already in a committed shard (resume): screened to rebuild state, not decoded again. */
export interface Replayed { kind: 'replayed'; seq: number; row: number }
export type Outcome = DecodedRecord | Rejected | Replayed;

export interface RecordSink {
  /** Called once per row, in row order; responsible for releasing that row's permit. Returns a promise only when it has to wait (a shard flush). */
  handle(outcome: Outcome): Promise<void> | void;
  /** True once no more rows are wanted (e.g. --limit reached). */
  readonly done: boolean;
}

export interface PipelineProbe {
  pulled: number;
  decoding: number;
  maxDecoding: number;
  decoded: number;
}

export interface PipelineStages {
  source: CsvSource;
  permits: PermitPool;
  screen: (row: CsvRow) => Screened | Replayed;
  decode: (candidate: Candidate) => Promise<Uint8Array>;
  decodeConcurrency: number;
  sink: RecordSink;
  probe?: PipelineProbe;
  /** --limit: records wanted in total and records already in the cache (resume). */
  limit?: { records: number | null; alreadyAccepted: number };
}

export function newProbe(): PipelineProbe {
  return { pulled: 0, decoding: 0, maxDecoding: 0, decoded: 0 };
}

export async function streamRecords(stages: PipelineStages): Promise<void> {
  const { source, permits, screen, decode, decodeConcurrency, sink } = stages;
  const probe = stages.probe ?? newProbe();
  const gate = new LimitGate(stages.limit?.records ?? null, stages.limit?.alreadyAccepted ?? 0);

  const decodeOne = async (candidate: Candidate): Promise<DecodedRecord | Rejected> => {
    probe.decoding++;
    probe.maxDecoding = Math.max(probe.maxDecoding, probe.decoding);
    try {
      let pixels: Uint8Array;
      try {
        pixels = await decode(candidate);
      } catch (error) {
        gate.resolved(false);
        throw error;
      }
      gate.resolved(true);
      probe.decoded++;
      return { kind: 'record', seq: candidate.seq, row: candidate.row, id: candidate.id, label: candidate.label, pixels };
    } catch (error) {
      if (!(error instanceof ImageRejection)) throw error;
      return { kind: 'reject', seq: candidate.seq, row: candidate.row, id: candidate.sourceId, reason: error.reason, detail: error.detail };
    } finally {
      probe.decoding--;
    }
  };

  try {
    await lastValueFrom(
      pullSource(source, permits, () => sink.done, probe, gate).pipe(
        map((row) => {
          const item = screen(row);
          if (item.kind === 'candidate') gate.candidate();
          return item;
        }),
        // rows rejected by the cheap checks pass synchronously; only candidates occupy a decode slot
        mergeMap((item) => (item.kind === 'candidate' ? from(decodeOne(item)) : of(item)), decodeConcurrency),
        // the sink's per-record work (copy, checksum, channel sums) runs in a microtask after the
        // decode slot has been refilled, so a finished decode starts its successor first
        observeOn(asapScheduler),
        inRowOrder<Outcome>(1),
        concatMap((outcome) => {
          const pending = sink.handle(outcome);
          return pending ? from(pending) : EMPTY;
        }),
      ),
      { defaultValue: undefined },
    );
  } catch (error) {
    permits.close(error as Error);
    throw error;
  }
}
