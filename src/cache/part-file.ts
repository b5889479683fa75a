import { open, type FileHandle } from 'node:fs/promises';
import { AtomicFileWriter } from '../core/atomic-file.ts';
import { UserError } from '../core/errors.ts';
import { REJECT_REASONS, type RejectReason } from '../core/reject-reasons.ts';

/**
 * A part file: what workers decoded for one row range of a distributed prepare, for the chief to
 * build shards from. Entries in row order, one per row whose image was decoded: its pixels, or the
 * reason the image was rejected. Layout: the magic `GLXPART1`, a u32 length and a JSON header, then
 * entries `[u8 kind][u32 row][u32 length][payload]` (kind 1: pixels; kind 2: JSON {reason, detail}),
 * then an end entry (kind 0). Written under a temp name and renamed in place, so a part file that
 * exists is complete.
 */

const MAGIC = Buffer.from('GLXPART1');
const KIND_END = 0;
const KIND_PIXELS = 1;
const KIND_REJECT = 2;
const ENTRY_HEAD = 9;

export interface PartHeader {
  cacheKey: string;
  first: number;
  /** First row after the range; null: to the end of the CSV. */
  end: number | null;
}

export type PartEntry =
  { row: number; pixels: Uint8Array } | { row: number; reject: { reason: RejectReason; detail: string } };

function entryHead(kind: number, row: number, length: number): Buffer {
  const head = Buffer.allocUnsafe(ENTRY_HEAD);
  head.writeUInt8(kind, 0);
  head.writeUInt32LE(row, 1);
  head.writeUInt32LE(length, 5);
  return head;
}

export class PartWriter {
  private readonly file: AtomicFileWriter;
  entries = 0;

  constructor(target: string, header: PartHeader) {
    this.file = new AtomicFileWriter(target);
    const json = Buffer.from(JSON.stringify(header));
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32LE(json.byteLength, 0);
    this.file.write([MAGIC, length, json]);
  }

  pixels(row: number, pixels: Uint8Array): void {
    this.file.write([entryHead(KIND_PIXELS, row, pixels.byteLength), pixels]);
    this.entries++;
  }

  reject(row: number, reason: RejectReason, detail: string): void {
    const json = Buffer.from(JSON.stringify({ reason, detail }));
    this.file.write([entryHead(KIND_REJECT, row, json.byteLength), json]);
    this.entries++;
  }

  /** Ends the file and renames it into place (fsynced). */
  commit(): void {
    this.file.write(entryHead(KIND_END, 0, 0));
    this.file.commit();
  }

  abort(): void {
    this.file.abort();
  }
}

/** A part file that is not what the chief expects (damaged on the shared disk, or of other data). */
export class PartFileError extends UserError {
  constructor(file: string, detail: string) {
    super(
      `part file ${file} ${detail}. Delete it and rerun 'galactic prepare --queue …': its range is decoded again, the rest is kept.`,
    );
  }
}

/** Reads a part file front to back through one fixed buffer; each pixel entry comes out in its own copy. */
export class PartReader {
  private buffer = Buffer.allocUnsafe(1 << 20);
  private start = 0;
  private filled = 0;
  private ended = false;
  /** File offset of the next read. */
  private position = 0;

  private constructor(
    readonly file: string,
    private readonly handle: FileHandle,
    readonly header: PartHeader,
  ) {}

  static async open(file: string): Promise<PartReader> {
    const handle = await open(file, 'r');
    const probe = Buffer.alloc(MAGIC.byteLength + 4);
    await handle.read(probe, 0, probe.byteLength, 0);
    if (!probe.subarray(0, MAGIC.byteLength).equals(MAGIC)) {
      await handle.close();
      throw new PartFileError(file, 'is not a galactic part file');
    }
    const length = probe.readUInt32LE(MAGIC.byteLength);
    const json = Buffer.alloc(length);
    await handle.read(json, 0, length, probe.byteLength);
    const reader = new PartReader(file, handle, JSON.parse(json.toString('utf8')) as PartHeader);
    reader.position = probe.byteLength + length;
    return reader;
  }

  /** The next entry, or null at the end of the file. */
  async next(): Promise<PartEntry | null> {
    if (this.ended) return null;
    const head = await this.take(ENTRY_HEAD);
    const kind = head.readUInt8(0);
    const row = head.readUInt32LE(1);
    const length = head.readUInt32LE(5);
    if (kind === KIND_END) {
      this.ended = true;
      return null;
    }
    const payload = await this.take(length);
    // the shard writer keeps a record's buffer until its shard is written: a copy of its own
    if (kind === KIND_PIXELS) return { row, pixels: new Uint8Array(payload) };
    if (kind !== KIND_REJECT) throw new PartFileError(this.file, `has an entry of unknown kind ${kind}`);
    const reject = JSON.parse(payload.toString('utf8')) as { reason: RejectReason; detail: string };
    if (!REJECT_REASONS.includes(reject.reason))
      throw new PartFileError(this.file, `names an unknown reject reason ${reject.reason}`);
    return { row, reject };
  }

  close(): Promise<void> {
    return this.handle.close();
  }

  /** The next `n` bytes of the file, as a view valid until the next take. */
  private async take(n: number): Promise<Buffer> {
    if (n > this.buffer.byteLength) {
      const out = Buffer.allocUnsafe(n);
      const buffered = this.filled - this.start;
      this.buffer.copy(out, 0, this.start, this.filled);
      this.start = this.filled;
      await this.readFully(out, buffered, n - buffered);
      return out;
    }
    if (this.filled - this.start < n) {
      this.buffer.copy(this.buffer, 0, this.start, this.filled);
      this.filled -= this.start;
      this.start = 0;
      while (this.filled < n) {
        const { bytesRead } = await this.handle.read(
          this.buffer,
          this.filled,
          this.buffer.byteLength - this.filled,
          this.position,
        );
        if (bytesRead === 0) throw new PartFileError(this.file, 'ends in the middle of an entry');
        this.position += bytesRead;
        this.filled += bytesRead;
      }
    }
    const view = this.buffer.subarray(this.start, this.start + n);
    this.start += n;
    return view;
  }

  private async readFully(out: Buffer, at: number, n: number): Promise<void> {
    let done = 0;
    while (done < n) {
      const { bytesRead } = await this.handle.read(out, at + done, n - done, this.position);
      if (bytesRead === 0) throw new PartFileError(this.file, 'ends in the middle of an entry');
      this.position += bytesRead;
      done += bytesRead;
    }
  }
}
