import type { LoadedConfig } from '../config/load.ts';
import { PartWriter, type PartHeader } from '../cache/part-file.ts';
import { openCsv } from '../ingest/csv-source.ts';
import { ImageIndex } from '../ingest/image-index.ts';
import { checkFileNamePattern } from '../ingest/ids.ts';
import { LabelRules } from '../ingest/labels.ts';
import type { Gz2Mapping } from '../ingest/gz2-mapping.ts';
import type { MemoryPlan } from '../memory/plan.ts';
import { loadMappingFor } from './mapping-load.ts';
import { PermitPool } from './permits.ts';
import { streamRecords, type Outcome, type RecordSink } from './pipeline.ts';
import { csvRange, type RowRange } from './row-range.ts';
import { RowScreen } from './row-screen.ts';

/**
 * A worker's share of a distributed prepare: the rows of one range screened without the
 * first-wins rules (the chief applies those over all rows), every candidate decoded through the
 * pipeline a single-process prepare uses (same permits, order slots and decode concurrency from the
 * worker's own memory plan), and the outcome of each decode written in row order to a part file.
 * Nothing in memory grows with the range: a record's permit comes back once its bytes are in the file.
 */

/** What a worker loads once and reuses for every range: the image listing, the labels, the gz2 mapping. */
export interface RangeInputs {
  index: ImageIndex;
  labels: LabelRules;
  mapping: Gz2Mapping | null;
}

export async function loadRangeInputs(config: LoadedConfig, plan: MemoryPlan): Promise<RangeInputs> {
  checkFileNamePattern(config.data.fileName);
  return {
    index: ImageIndex.buildSync(config.data.imageDir, config.data.fileName),
    labels: new LabelRules(config.data.classes),
    mapping: await loadMappingFor(config, plan),
  };
}

export interface RangeBuildSummary {
  rows: number;
  records: number;
  rejected: number;
}

/** Writes each decode's outcome to the part file; the chief screens every row again, so screen rejects are left out. */
class PartSink implements RecordSink {
  rows = 0;
  records = 0;
  rejected = 0;

  constructor(
    private readonly part: PartWriter,
    private readonly permits: PermitPool,
    private readonly signal?: AbortSignal,
  ) {}

  get done(): boolean {
    return this.signal?.aborted ?? false;
  }

  handle(outcome: Outcome): void {
    this.rows++;
    if (outcome.kind === 'record') {
      this.part.pixels(outcome.row, outcome.pixels);
      this.records++;
      this.permits.release();
    } else if (outcome.kind === 'reject') {
      this.part.reject(outcome.row, outcome.reason, outcome.detail);
      this.rejected++;
    }
  }
}

export async function buildRange(
  config: LoadedConfig,
  plan: MemoryPlan,
  inputs: RangeInputs,
  range: Pick<RowRange, 'first' | 'end'>,
  target: string,
  header: PartHeader,
  signal?: AbortSignal,
): Promise<RangeBuildSummary> {
  const data = config.data;
  const [{ default: sharp }, { decodeImage }] = await Promise.all([import('sharp'), import('../images/decode.ts')]);
  sharp.cache(false);
  sharp.concurrency(plan.sharpThreads);
  const csv = await openCsv(
    data.csv,
    [
      { column: data.idColumn, knob: 'data.idColumn' },
      { column: data.labelColumn, knob: 'data.labelColumn' },
    ],
    data.maxRowBytes,
  );
  const { index } = inputs;
  const screen = new RowScreen({
    data,
    labels: inputs.labels,
    hasImage: (name) => index.has(name),
    headerCount: csv.headerCount,
    mapping: inputs.mapping,
    seen: null,
  });
  const part = new PartWriter(target, header);
  const permits = new PermitPool(plan.permits);
  const sink = new PartSink(part, permits, signal);
  try {
    await streamRecords({
      source: csvRange(csv, range),
      permits,
      orderSlots: new PermitPool(plan.orderSlots),
      // a row the screen rejects needs no entry: the chief's own screen rejects it too
      screen: (row) => {
        const screened = screen.screen(row);
        return screened.kind === 'reject' ? { kind: 'replayed', seq: row.row, row: row.row } : screened;
      },
      decode: (candidate) => decodeImage(candidate.file, config.image, { within: index.realDir }),
      decodeConcurrency: plan.decodeConcurrency,
      sink,
    });
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    part.commit();
  } catch (error) {
    part.abort();
    throw error;
  } finally {
    csv.close();
  }
  return { rows: sink.rows, records: sink.records, rejected: sink.rejected };
}
