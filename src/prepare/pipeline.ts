import { concatMap, from, lastValueFrom, map } from 'rxjs';
import pLimit from 'p-limit';
import { ImageRejection } from '../core/reject-reasons.ts';
import type { CsvRow, CsvSource } from '../ingest/csv-source.ts';
import type { PermitPool } from './permits.ts';
import { pullSource } from './pull-source.ts';
import { LimitGate } from './limit-gate.ts';
import type { Candidate, Rejected, Screened } from './row-screen.ts';

/**
 * The prepare data flow as RxJS stages:
 *
 *   pullSource (order slot + permit, then one CSV row) → screen (cheap checks; a candidate starts
 *     its decode under p-limit) → concatMap(outcome, in row order → sink)
 *
 * Two bounds. A *permit* covers a decoded record's bytes: taken before the row is pulled, given
 * back as soon as the row is known not to become a record (a screen reject, a decode reject, a
 * replayed row) or, for a record, when the sink has its bytes in a flushed shard. An *order slot*
 * covers the small outcome a row leaves while it waits for its turn in row order: given back once
 * the sink has handled the row. concatMap's queue holds at most the order slots' worth of rows,
 * and every row in it waits only on its own decode or on the shard write already running, never on
 * a flush that more rows would have to trigger.
 *
 * Every inner observable of concatMap is a promise, so it completes asynchronously: an operator
 * whose inner observables complete synchronously drains its queue by recursion, and with a few
 * thousand rejects queued behind one decode that recursion overflowed the stack and lost a row
 * (the pipeline then waited forever and Node exited with code 13). Stages are injected so the
 * backpressure test can run it without images.
 */

export interface DecodedRecord {
  kind: 'record';
  seq: number;
  row: number;
  id: string;
  label: number;
  pixels: Uint8Array;
}
/** A row already in a committed shard (resume): screened to rebuild state, not decoded again. */
export interface Replayed {
  kind: 'replayed';
  seq: number;
  row: number;
}
export type Outcome = DecodedRecord | Rejected | Replayed;

export interface RecordSink {
  /**
   * Called once per row, in row order. Owns the permit of each record (releases it once the
   * record is in a flushed shard, or at once if it drops the record); rejects and replayed rows
   * have given their permit back already. Returns a promise only when it has to wait (a shard flush).
   */
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
  /** Rows pulled but not yet handled by the sink (their outcomes wait for row order). */
  orderSlots: PermitPool;
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
  const { source, permits, orderSlots, screen, decode, sink } = stages;
  const probe = stages.probe ?? newProbe();
  const gate = new LimitGate(stages.limit?.records ?? null, stages.limit?.alreadyAccepted ?? 0);
  const decodeSlot = pLimit(stages.decodeConcurrency);

  const decodeOne = async (candidate: Candidate): Promise<DecodedRecord | Rejected> => {
    probe.decoding++;
    probe.maxDecoding = Math.max(probe.maxDecoding, probe.decoding);
    try {
      const pixels = await decode(candidate);
      gate.resolved(true);
      probe.decoded++;
      return {
        kind: 'record',
        seq: candidate.seq,
        row: candidate.row,
        id: candidate.id,
        label: candidate.label,
        pixels,
      };
    } catch (error) {
      gate.resolved(false);
      if (!(error instanceof ImageRejection)) throw error;
      permits.release(); // it will never reach a shard
      return {
        kind: 'reject',
        seq: candidate.seq,
        row: candidate.row,
        id: candidate.sourceId,
        reason: error.reason,
        detail: error.detail,
      };
    } finally {
      probe.decoding--;
    }
  };

  const outcomeOf = (row: CsvRow): Promise<Outcome> => {
    const item = screen(row);
    if (item.kind !== 'candidate') {
      permits.release();
      return Promise.resolve(item);
    }
    gate.candidate();
    const outcome = decodeSlot(() => decodeOne(item));
    // a failed decode is reported where the row's turn comes; this keeps it from counting as unhandled meanwhile
    outcome.catch(() => undefined);
    return outcome;
  };

  const handleInOrder = async (pending: Promise<Outcome>): Promise<void> => {
    const outcome = await pending;
    await sink.handle(outcome);
    orderSlots.release();
  };

  try {
    await lastValueFrom(
      pullSource(source, [orderSlots, permits], () => sink.done, probe, gate).pipe(
        map(outcomeOf),
        concatMap((pending) => from(handleInOrder(pending))),
      ),
      { defaultValue: undefined },
    );
  } catch (error) {
    permits.close(error as Error);
    orderSlots.close(error as Error);
    throw error;
  }
}
