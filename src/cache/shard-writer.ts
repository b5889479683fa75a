import path from 'node:path';
import { UserError } from '../core/errors.ts';
import { encodeShardParts, type CacheDtype, type ShardEntry } from './format.ts';
import { crc32, crc32Combine } from './crc32.ts';
import { replaceFileAtomic, writeDirectAndSync, type WriteFileFn } from './atomic.ts';

export class DiskFullError extends UserError {
  constructor(file: string, detail: string) {
    super(`no space left on the device while writing ${file} (${detail}). Free disk space (or point cache.dir at a bigger disk) and run 'galactic prepare' again: it resumes after the last complete shard.`);
  }
}

export class CacheWriteError extends UserError {
  constructor(file: string, detail: string) {
    super(`could not write ${file}: ${detail}. Check that cache.dir is writable, then run 'galactic prepare' again: it resumes after the last complete shard.`);
  }
}

export function shardFileName(index: number): string {
  return `shard-${String(index).padStart(5, '0')}.msgpack`;
}

/** A full shard handed over for writing; its buffer stays untouched until the write is done. */
export interface SealedShard {
  ids: string[];
  labels: number[];
  data: Uint8Array;
  /** crc32 of `data`, gathered record by record. */
  dataCrc32: number;
}

/**
 * Collects decoded records in row order into a preallocated contiguous buffer and writes them
 * as a shard file atomically (temp file, fsync, rename, fsync folder). Two buffers alternate:
 * while a sealed shard is being encoded and written, the next one fills the other buffer, so
 * decoding does not stall on fsync. The caller writes one sealed shard at a time. Memory is
 * fixed: two shard buffers (the encoding refers to the pixel buffer instead of copying it).
 */
export class ShardWriter {
  private readonly recordValues: number;
  private readonly bytesPerValue: number;
  private readonly buffers: [Uint8Array, Uint8Array];
  private active = 0;
  private ids: string[] = [];
  private labels: number[] = [];
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
    const bytes = shardImages * this.recordValues * this.bytesPerValue;
    this.buffers = [new Uint8Array(bytes), new Uint8Array(bytes)];
  }

  get count(): number {
    return this.ids.length;
  }

  get full(): boolean {
    return this.ids.length >= this.shardImages;
  }

  append(id: string, label: number, pixels: Uint8Array): void {
    if (this.full) throw new Error('ShardWriter: append to a full shard');
    if (pixels.length !== this.recordValues) throw new Error(`ShardWriter: record ${id} has ${pixels.length} values, expected ${this.recordValues}`);
    const buffer = this.buffers[this.active];
    const at = this.ids.length * this.recordValues;
    if (this.dtype === 'uint8') {
      buffer.set(pixels, at);
    } else {
      // float32 caches keep the 0..255 values; normalization stays the feed's job
      const view = new DataView(buffer.buffer, buffer.byteOffset);
      for (let i = 0; i < pixels.length; i++) view.setFloat32((at + i) * 4, pixels[i], true);
    }
    const recordBytes = this.recordValues * this.bytesPerValue;
    this.dataCrc32 = crc32(buffer.subarray(this.ids.length * recordBytes, (this.ids.length + 1) * recordBytes), this.dataCrc32);
    this.ids.push(id);
    this.labels.push(label);
  }

  /** Hands the collected records over for writing and switches to the other buffer. */
  seal(): SealedShard {
    const sealed = {
      ids: this.ids,
      labels: this.labels,
      data: this.buffers[this.active].subarray(0, this.ids.length * this.recordValues * this.bytesPerValue),
      dataCrc32: this.dataCrc32,
    };
    this.active ^= 1;
    this.ids = [];
    this.labels = [];
    this.dataCrc32 = 0;
    return sealed;
  }

  /** Writes a sealed shard as shard number `index`. */
  async writeShard(sealed: SealedShard, index: number): Promise<ShardEntry> {
    const n = sealed.ids.length;
    const parts = encodeShardParts({
      dtype: this.dtype,
      shape: [n, this.shape.height, this.shape.width, this.shape.channels],
      ids: sealed.ids,
      labels: Int32Array.from(sealed.labels),
      data: sealed.data,
    }, sealed.dataCrc32);
    const file = shardFileName(index);
    const target = path.join(this.dir, file);
    try {
      await replaceFileAtomic(target, parts, this.write);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      if (e.code === 'ENOSPC' || e.code === 'EDQUOT') throw new DiskFullError(target, e.message);
      throw new CacheWriteError(target, e.code ?? e.message);
    }
    // the file's CRC without a second pass over the pixels: the parts before the data, then the
    // data's own CRC combined in, then the parts after it
    const dataIndex = parts.indexOf(sealed.data);
    let fileCrc = 0;
    for (const part of parts.slice(0, dataIndex)) fileCrc = crc32(part, fileCrc);
    fileCrc = crc32Combine(fileCrc, sealed.dataCrc32, sealed.data.byteLength);
    for (const part of parts.slice(dataIndex + 1)) fileCrc = crc32(part, fileCrc);
    return { file, count: n, bytes: parts.reduce((sum, part) => sum + part.byteLength, 0), crc32: fileCrc };
  }

  /** seal() + writeShard() in one step. */
  flush(index: number): Promise<ShardEntry> {
    return this.writeShard(this.seal(), index);
  }
}
