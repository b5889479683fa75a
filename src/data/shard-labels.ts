import { open } from 'node:fs/promises';
import path from 'node:path';
import { CACHE_FORMAT_VERSION, SHARD_FORMAT, type ShardEntry } from '../cache/format.ts';
import { loadShard } from './cache-access.ts';

/**
 * Reads only the ids and labels of a shard: they precede the pixel field in the msgpack map
 * (`encodeShard` writes format, version, dtype, shape, ids, labels, data, crc32), so the split
 * needs the first few KB of each file instead of the whole shard. Anything unexpected falls back
 * to the full, checksummed read. The feed still verifies every shard when it streams the pixels.
 */

export interface ShardLabels {
  ids: string[];
  labels: Int32Array;
}

export class NeedMoreBytes extends Error {}

/** A minimal msgpack reader for the value types a shard header uses. */
class PrefixReader {
  offset = 0;
  private readonly view: DataView;
  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(n: number): void {
    if (this.offset + n > this.bytes.byteLength) throw new NeedMoreBytes();
  }

  private u8(): number {
    this.need(1);
    return this.bytes[this.offset++];
  }

  private uint(size: 1 | 2 | 4): number {
    this.need(size);
    const v = size === 1 ? this.view.getUint8(this.offset) : size === 2 ? this.view.getUint16(this.offset) : this.view.getUint32(this.offset);
    this.offset += size;
    return v;
  }

  private int(size: 1 | 2 | 4): number {
    this.need(size);
    const v = size === 1 ? this.view.getInt8(this.offset) : size === 2 ? this.view.getInt16(this.offset) : this.view.getInt32(this.offset);
    this.offset += size;
    return v;
  }

  private str(length: number): string {
    this.need(length);
    const s = Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.offset, length).toString('utf8');
    this.offset += length;
    return s;
  }

  /** Length of a map header at the cursor. */
  mapLength(): number {
    const b = this.u8();
    if ((b & 0xf0) === 0x80) return b & 0x0f;
    if (b === 0xde) return this.uint(2);
    if (b === 0xdf) return this.uint(4);
    throw new Error(`not a map (0x${b.toString(16)})`);
  }

  /** Reads any value; a binary field is returned as a view, or skipped (null) when `skipBinary`. */
  value(skipBinary = false): unknown {
    const b = this.u8();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if ((b & 0xe0) === 0xa0) return this.str(b & 0x1f);
    if ((b & 0xf0) === 0x90) return this.array(b & 0x0f);
    if ((b & 0xf0) === 0x80) throw new Error('nested map');
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xcc: return this.uint(1);
      case 0xcd: return this.uint(2);
      case 0xce: return this.uint(4);
      case 0xd0: return this.int(1);
      case 0xd1: return this.int(2);
      case 0xd2: return this.int(4);
      case 0xd9: return this.str(this.uint(1));
      case 0xda: return this.str(this.uint(2));
      case 0xdb: return this.str(this.uint(4));
      case 0xdc: return this.array(this.uint(2));
      case 0xdd: return this.array(this.uint(4));
      case 0xc4: case 0xc5: case 0xc6: {
        const length = this.uint(b === 0xc4 ? 1 : b === 0xc5 ? 2 : 4);
        if (skipBinary) {
          this.offset += length; // may run past the prefix: nothing after it is needed
          return null;
        }
        this.need(length);
        const view = this.bytes.subarray(this.offset, this.offset + length);
        this.offset += length;
        return view;
      }
      default:
        throw new Error(`unsupported msgpack type 0x${b.toString(16)}`);
    }
  }

  private array(length: number): unknown[] {
    const out = new Array<unknown>(length);
    for (let i = 0; i < length; i++) out[i] = this.value();
    return out;
  }
}

/** Parses ids and labels from a prefix of a shard file; throws NeedMoreBytes when the prefix is too short. */
export function parseShardLabels(prefix: Uint8Array): ShardLabels {
  const reader = new PrefixReader(prefix);
  const fields = reader.mapLength();
  const found: Record<string, unknown> = {};
  for (let k = 0; k < fields && !('ids' in found && 'labels' in found); k++) {
    const key = reader.value();
    if (typeof key !== 'string') throw new Error('non-string key');
    found[key] = reader.value(key === 'data');
  }
  const { format, version, shape, ids, labels } = found as { format: unknown; version: unknown; shape: unknown; ids: unknown; labels: unknown };
  if (format !== SHARD_FORMAT || version !== CACHE_FORMAT_VERSION) throw new Error('not a current galactic shard');
  if (!Array.isArray(shape) || !Array.isArray(ids) || !(labels instanceof Uint8Array)) throw new Error('missing fields');
  if (ids.length !== shape[0] || labels.byteLength !== 4 * ids.length || !ids.every((id) => typeof id === 'string')) throw new Error('inconsistent fields');
  // copy: the view may not be 4-byte aligned (and labels are little-endian int32 on every platform we run)
  return { ids: ids as string[], labels: new Int32Array(new Uint8Array(labels).buffer) };
}

export async function readShardLabels(cacheDir: string, entry: ShardEntry): Promise<ShardLabels> {
  const file = path.join(cacheDir, entry.file);
  let handle: Awaited<ReturnType<typeof open>> | null = null;
  try {
    handle = await open(file, 'r');
    // ~16 bytes per record covers typical ids; grow when a header is longer
    let size = Math.min(entry.bytes, 4096 + entry.count * 16);
    for (;;) {
      const prefix = new Uint8Array(size);
      const { bytesRead } = await handle.read(prefix, 0, size, 0);
      try {
        return parseShardLabels(prefix.subarray(0, bytesRead));
      } catch (error) {
        if (!(error instanceof NeedMoreBytes) || bytesRead < size || size >= entry.bytes) throw error;
        size = Math.min(entry.bytes, size * 4);
      }
    }
  } catch {
    // unexpected layout, or the file is damaged: the full read reports it properly
    const shard = await loadShard(cacheDir, entry);
    return { ids: shard.ids, labels: shard.labels };
  } finally {
    await handle?.close();
  }
}
