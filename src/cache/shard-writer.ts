import path from 'node:path';
import { encodeShardParts, type CacheDtype, type ShardEntry } from './format.ts';
import { crc32, crc32Combine } from './crc32.ts';
import { replaceFileAtomic, writeDirectAndSync, type WriteFileFn } from '../core/atomic-file.ts';
import { PREPARE_AGAIN } from './manifest.ts';

export function shardFileName(index: number): string {
  return `shard-${String(index).padStart(5, '0')}.msgpack`;
}

/** A full shard handed over for writing; its records stay untouched until the write is done. */
export interface SealedShard {
  ids: string[];
  labels: number[];
  /** Each record's bytes, in order: the decoder's own buffers (uint8), never copied into a shard buffer. */
  records: Uint8Array[];
  /** crc32 of the records' bytes concatenated, gathered record by record. */
  dataCrc32: number;
}

/**
 * Collects decoded records in row order and writes them as a shard file atomically (temp file,
 * fsync, rename, fsync folder). The records are kept as they came from the decoder and handed to
 * the file writer as parts of the encoding: no shard buffer, no copy into one (the direct writer
 * copies each byte once, into its aligned staging buffer). While a sealed shard is being written,
 * the next one collects, so decoding does not stall on fsync; the caller writes one sealed shard
 * at a time. Memory: the records held are those whose permits are not back yet (plan: in flight).
 * The caller must not reuse a record's buffer after append.
 */
export class ShardWriter {
  private readonly recordValues: number;
  private readonly bytesPerValue: number;
  private ids: string[] = [];
  private labels: number[] = [];
  private records: Uint8Array[] = [];
  private dataCrc32 = 0;

  constructor(
    private readonly dir: string,
    private readonly shardImages: number,
    private readonly shape: { height: number; width: number; channels: number },
    private readonly dtype: CacheDtype,
    private readonly write: WriteFileFn = writeDirectAndSync,
  ) {
    this.recordValues = shape.height * shape.width * shape.channels;
    this.bytesPerValue = dtype === 'uint8' ? 1 : 4;
  }

  get count(): number {
    return this.ids.length;
  }

  get full(): boolean {
    return this.ids.length >= this.shardImages;
  }

  append(id: string, label: number, pixels: Uint8Array): void {
    if (this.full) throw new Error('ShardWriter: append to a full shard');
    if (pixels.length !== this.recordValues)
      throw new Error(`ShardWriter: record ${id} has ${pixels.length} values, expected ${this.recordValues}`);
    let bytes = pixels;
    if (this.dtype !== 'uint8') {
      // float32 caches keep the 0..255 values; normalization stays the feed's job
      bytes = new Uint8Array(pixels.length * this.bytesPerValue);
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < pixels.length; i++) view.setFloat32(i * 4, pixels[i], true);
    }
    this.dataCrc32 = crc32(bytes, this.dataCrc32);
    this.records.push(bytes);
    this.ids.push(id);
    this.labels.push(label);
  }

  /** Hands the collected records over for writing and starts a new shard. */
  seal(): SealedShard {
    const sealed = { ids: this.ids, labels: this.labels, records: this.records, dataCrc32: this.dataCrc32 };
    this.ids = [];
    this.labels = [];
    this.records = [];
    this.dataCrc32 = 0;
    return sealed;
  }

  /** Writes a sealed shard as shard number `index`. */
  async writeShard(sealed: SealedShard, index: number): Promise<ShardEntry> {
    const n = sealed.ids.length;
    const parts = encodeShardParts(
      {
        dtype: this.dtype,
        shape: [n, this.shape.height, this.shape.width, this.shape.channels],
        ids: sealed.ids,
        labels: Int32Array.from(sealed.labels),
        data: sealed.records,
      },
      sealed.dataCrc32,
    );
    const file = shardFileName(index);
    const target = path.join(this.dir, file);
    await replaceFileAtomic(target, parts, { write: this.write, then: PREPARE_AGAIN });
    // the file's CRC without a second pass over the pixels: the three parts before the records,
    // the records' own CRC combined in, then the two parts after them
    const dataBytes = n * this.recordValues * this.bytesPerValue;
    let fileCrc = 0;
    for (const part of parts.slice(0, 3)) fileCrc = crc32(part, fileCrc);
    fileCrc = crc32Combine(fileCrc, sealed.dataCrc32, dataBytes);
    for (const part of parts.slice(parts.length - 2)) fileCrc = crc32(part, fileCrc);
    return { file, count: n, bytes: parts.reduce((sum, part) => sum + part.byteLength, 0), crc32: fileCrc };
  }

  /** seal() + writeShard() in one step. */
  flush(index: number): Promise<ShardEntry> {
    return this.writeShard(this.seal(), index);
  }
}
