import path from 'node:path';
import { UserError } from '../core/errors.ts';
import { encodeShard, type CacheDtype, type ShardEntry } from './format.ts';
import { crc32 } from './crc32.ts';
import { replaceFileAtomic, writeAndSync, type WriteFileFn } from './atomic.ts';

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

/**
 * Collects decoded records in row order into one preallocated contiguous buffer and writes it
 * as a shard file atomically (temp file, fsync, rename, fsync folder). The buffer is reused for
 * every shard, so the writer's memory is fixed: shardImages records plus one encoding.
 */
export class ShardWriter {
  private readonly recordValues: number;
  private readonly buffer: Uint8Array;
  private readonly ids: string[] = [];
  private readonly labels: number[] = [];

  constructor(
    private readonly dir: string,
    private readonly shardImages: number,
    private readonly shape: { height: number; width: number; channels: number },
    private readonly dtype: CacheDtype,
    private readonly write: WriteFileFn = writeAndSync,
  ) {
    this.recordValues = shape.height * shape.width * shape.channels;
    this.buffer = new Uint8Array(shardImages * this.recordValues * (dtype === 'uint8' ? 1 : 4));
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
    const at = this.ids.length * this.recordValues;
    if (this.dtype === 'uint8') {
      this.buffer.set(pixels, at);
    } else {
      // float32 caches keep the 0..255 values; normalization stays the feed's job
      const view = new DataView(this.buffer.buffer, this.buffer.byteOffset);
      for (let i = 0; i < pixels.length; i++) view.setFloat32((at + i) * 4, pixels[i], true);
    }
    this.ids.push(id);
    this.labels.push(label);
  }

  /** Writes the collected records as shard `index` and empties the writer. */
  async flush(index: number): Promise<ShardEntry> {
    const n = this.ids.length;
    const bytesPerValue = this.dtype === 'uint8' ? 1 : 4;
    const bytes = encodeShard({
      dtype: this.dtype,
      shape: [n, this.shape.height, this.shape.width, this.shape.channels],
      ids: this.ids,
      labels: Int32Array.from(this.labels),
      data: this.buffer.subarray(0, n * this.recordValues * bytesPerValue),
    });
    const file = shardFileName(index);
    const target = path.join(this.dir, file);
    try {
      await replaceFileAtomic(target, bytes, this.write);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      if (e.code === 'ENOSPC' || e.code === 'EDQUOT') throw new DiskFullError(target, e.message);
      throw new CacheWriteError(target, e.code ?? e.message);
    }
    this.ids.length = 0;
    this.labels.length = 0;
    return { file, count: n, bytes: bytes.byteLength, crc32: crc32(bytes) };
  }
}
