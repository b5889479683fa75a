import { REJECT_REASONS, type RejectReason } from '../core/reject-reasons.ts';
import { CACHE_FORMAT_VERSION, MANIFEST_FORMAT, type Manifest, type ShardEntry } from '../cache/format.ts';
import { writeManifest } from '../cache/manifest.ts';
import type { RejectsLog } from '../cache/rejects-log.ts';
import type { SealedShard, ShardWriter } from '../cache/shard-writer.ts';
import type { WriteFileFn } from '../core/atomic-file.ts';
import { ChannelStatsAccumulator } from './channel-stats.ts';
import type { PermitPool } from './permits.ts';
import type { Outcome, RecordSink } from './pipeline.ts';

/**
 * The pipeline's sink: takes outcomes in row order, appends records to the shard writer and
 * rejects to rejects.jsonl, and after each shard commits: shard file, rejects fsynced, manifest
 * replaced with the resume state (as of the moment the shard was sealed). Permits of a shard's
 * records come back only then (a reject's permit came back when it was rejected).
 */

/** What a resumed run needs, stored in the manifest after each shard. */
export interface ResumeState {
  /** Every row up to this one has its outcome in the shards / rejects.jsonl. */
  committedRow: number;
  rejectsBytes: number;
  stats: { sum: number[]; sumSquares: number[]; count: number };
}

export interface CacheBuilderOptions {
  cacheDir: string;
  base: Omit<
    Manifest,
    'shards' | 'classCounts' | 'channelStats' | 'totals' | 'rejects' | 'complete' | 'updatedAt' | 'resume'
  >;
  writer: ShardWriter;
  rejects: RejectsLog;
  permits: PermitPool;
  channels: number;
  limit: number | null;
  /** Restored from the last manifest when resuming. */
  resumeFrom?: Manifest | null;
  writeManifestFile?: WriteFileFn;
  onCommit?: (manifest: Manifest) => void;
}

/** The cache's counters at the moment a shard was sealed: what its manifest will record. */
interface Snapshot {
  lastRecordRow: number;
  rowsExamined: number;
  rejectsBytes: number;
  stats: ResumeState['stats'];
  channelStats: Manifest['channelStats'];
  classCounts: number[];
  rejects: Record<string, number>;
  images: number;
}

export class CacheBuilder implements RecordSink {
  private readonly shards: ShardEntry[];
  private readonly classCounts: number[];
  private readonly rejectCounts: Map<RejectReason, number>;
  private readonly stats: ChannelStatsAccumulator;
  private images: number;
  private rowsExamined: number;
  private held = 0;
  private lastRecordRow = 0;
  private sealedShards: number;
  /** The shard being written in the background (at most one), and the error it failed with. */
  private flushing: Promise<void> | null = null;
  private failure: Error | null = null;
  /** Records decoded (not replayed) by this run. */
  decodedThisRun = 0;

  constructor(private readonly options: CacheBuilderOptions) {
    const previous = options.resumeFrom ?? null;
    const resume = previous?.resume as ResumeState | undefined;
    this.shards = previous ? [...previous.shards] : [];
    this.sealedShards = this.shards.length;
    this.classCounts = previous ? [...previous.classCounts] : options.base.classes.map(() => 0);
    this.rejectCounts = new Map(Object.entries(previous?.rejects ?? {}) as [RejectReason, number][]);
    this.stats = new ChannelStatsAccumulator(options.channels, resume?.stats);
    this.images = previous?.totals.images ?? 0;
    this.rowsExamined = resume?.committedRow ?? 0;
  }

  get done(): boolean {
    return this.options.limit !== null && this.images >= this.options.limit;
  }

  get shardCount(): number {
    return this.shards.length;
  }

  get imageCount(): number {
    return this.images;
  }

  handle(outcome: Outcome): Promise<void> | void {
    const { permits, writer, rejects } = this.options;
    if (this.failure) throw this.failure;
    // replayed rows are already committed; rows past --limit are dropped unseen. Only a record
    // still holds its permit (the pipeline returned the others when their row was rejected).
    if (outcome.kind === 'replayed' || this.done) {
      if (outcome.kind === 'record') permits.release();
      return;
    }
    this.rowsExamined = outcome.row;
    if (outcome.kind === 'reject') {
      rejects.append(outcome);
      this.rejectCounts.set(outcome.reason, (this.rejectCounts.get(outcome.reason) ?? 0) + 1);
      return;
    }
    writer.append(outcome.id, outcome.label, outcome.pixels);
    this.stats.add(outcome.pixels);
    this.classCounts[outcome.label]++;
    this.images++;
    this.decodedThisRun++;
    this.held++;
    this.lastRecordRow = outcome.row;
    if (writer.full || this.done) return this.sealShard();
  }

  /** Writes the last partial shard and the complete manifest. */
  async finish(): Promise<Manifest> {
    if (this.options.writer.count > 0) await this.sealShard();
    await this.settle();
    const manifest = this.manifest(true, this.snapshot());
    await this.options.rejects.sync();
    await writeManifest(this.options.cacheDir, manifest, this.options.writeManifestFile);
    return manifest;
  }

  /** Waits for the shard being written; rethrows its failure. */
  private async settle(): Promise<void> {
    if (this.flushing) await this.flushing;
    this.flushing = null;
    if (this.failure) throw this.failure;
  }

  /**
   * Seals the full shard and writes it in the background while the next one fills; only a
   * second full shard waits for the first write (shards commit strictly in order).
   */
  private async sealShard(): Promise<void> {
    await this.settle();
    const sealed = this.options.writer.seal();
    const index = this.sealedShards++;
    const held = this.held;
    this.held = 0;
    const snapshot = this.snapshot();
    this.flushing = this.commit(sealed, index, held, snapshot).catch((error: Error) => {
      this.failure = error;
      // nothing will return the permits now: wake the source so the pipeline stops with this error
      this.options.permits.close(error);
    });
    if (this.done) await this.settle();
  }

  private async commit(sealed: SealedShard, index: number, held: number, snapshot: Snapshot): Promise<void> {
    const { writer, rejects, permits, cacheDir } = this.options;
    const entry = await writer.writeShard(sealed, index);
    this.shards.push(entry);
    await rejects.sync();
    const manifest = this.manifest(false, snapshot);
    await writeManifest(cacheDir, manifest, this.options.writeManifestFile);
    permits.release(held);
    this.options.onCommit?.(manifest);
  }

  private snapshot(): Snapshot {
    const rejects: Record<string, number> = {};
    for (const reason of REJECT_REASONS) {
      const n = this.rejectCounts.get(reason);
      if (n) rejects[reason] = n;
    }
    return {
      lastRecordRow: this.lastRecordRow,
      rowsExamined: this.rowsExamined,
      rejectsBytes: this.options.rejects.bytes,
      stats: this.stats.state(),
      channelStats: this.stats.stats(),
      classCounts: [...this.classCounts],
      rejects,
      images: this.images,
    };
  }

  private manifest(complete: boolean, snap: Snapshot): Manifest {
    const rejected = Object.values(snap.rejects).reduce((a, b) => a + b, 0);
    const resume: ResumeState = {
      committedRow: snap.lastRecordRow,
      rejectsBytes: snap.rejectsBytes,
      stats: snap.stats,
    };
    return {
      ...this.options.base,
      format: MANIFEST_FORMAT,
      version: CACHE_FORMAT_VERSION,
      shards: [...this.shards],
      classCounts: snap.classCounts,
      channelStats: snap.channelStats,
      totals: {
        rows: complete ? snap.rowsExamined : snap.lastRecordRow,
        images: snap.images,
        rejected,
        bytes: this.shards.reduce((s, e) => s + e.bytes, 0),
      },
      rejects: snap.rejects,
      complete,
      updatedAt: new Date().toISOString(),
      ...(complete ? {} : { resume: resume as unknown as Record<string, unknown> }),
    };
  }
}
