import { openSync, writeSync, fsync, closeSync, ftruncateSync, fstatSync } from 'node:fs';
import path from 'node:path';
import type { RejectReason } from '../core/reject-reasons.ts';
import { PREPARE_AGAIN, REJECTS_FILE } from './manifest.ts';
import { writeFailure } from '../core/atomic-file.ts';

export interface RejectRecord {
  row: number;
  id: string;
  reason: RejectReason;
  detail: string;
}

/**
 * rejects.jsonl beside the manifest, one `{row, id, reason, detail}` per line in row order.
 * Its committed length is recorded in the manifest with each shard, so a resumed run cuts it
 * back to exactly what the last complete shard had seen.
 */
export class RejectsLog {
  private readonly fd: number;
  private length: number;
  readonly file: string;

  constructor(cacheDir: string, committedBytes: number) {
    this.file = path.join(cacheDir, REJECTS_FILE);
    try {
      this.fd = openSync(this.file, 'a+');
    } catch (error) {
      throw writeFailure(error, this.file, PREPARE_AGAIN);
    }
    const size = fstatSync(this.fd).size;
    if (size !== committedBytes) ftruncateSync(this.fd, committedBytes);
    this.length = committedBytes;
  }

  get bytes(): number {
    return this.length;
  }

  append(record: RejectRecord): void {
    const line = Buffer.from(
      `${JSON.stringify({ row: record.row, id: record.id, reason: record.reason, detail: record.detail })}\n`,
    );
    try {
      writeSync(this.fd, line);
    } catch (error) {
      throw writeFailure(error, this.file, PREPARE_AGAIN);
    }
    this.length += line.byteLength;
  }

  /** Makes the lines written so far durable (before a manifest records their length); off the event loop. */
  sync(): Promise<void> {
    return new Promise((resolve, reject) =>
      fsync(this.fd, (error) => (error ? reject(writeFailure(error, this.file, PREPARE_AGAIN)) : resolve())),
    );
  }

  close(): void {
    closeSync(this.fd);
  }
}
