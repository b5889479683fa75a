import { open } from 'node:fs/promises';
import path from 'node:path';
import { unpackMultiple } from 'msgpackr';
import { CACHE_FORMAT_VERSION, CorruptShardError, SHARD_FORMAT, type ShardEntry } from './format.ts';

/**
 * Reads only the ids and labels of a shard. They precede the pixel field in the shard's map
 * (`encodeShardParts` writes format, version, dtype, shape, ids, labels, data, crc32), so the split
 * needs the first few KB of each file instead of the whole shard. The feed still verifies every
 * shard's checksum when it streams the pixels.
 */

export interface ShardLabels {
  ids: string[];
  labels: Int32Array;
}

/** The prefix ended before the ids and labels did: read a longer one. */
export class NeedMoreBytes extends Error {}

/** Bytes of the map header: fixmap (1) or map16 (3), as msgpackr writes the shard's 8 fields. */
function mapHeaderLength(prefix: Uint8Array, file: string): number {
  if (prefix.length === 0) throw new NeedMoreBytes();
  if ((prefix[0] & 0xf0) === 0x80) return 1;
  if (prefix[0] === 0xde) return 3;
  throw new CorruptShardError(file, 'not a msgpack map');
}

/** Parses ids and labels from a prefix of a shard file; throws NeedMoreBytes when the prefix is too short. */
export function parseShardLabels(prefix: Uint8Array, file = '<shard>'): ShardLabels {
  const fields: Record<string, unknown> = {};
  let key: string | null = null;
  try {
    // the map's entries are a plain sequence of key, value, key, value: stop once labels is read,
    // before the (possibly cut) pixel field
    unpackMultiple(prefix.subarray(mapHeaderLength(prefix, file)), (value: unknown) => {
      if (key === null) {
        if (typeof value !== 'string') throw new CorruptShardError(file, 'a field name is not a string');
        key = value;
        return true;
      }
      fields[key] = value;
      key = null;
      return !('ids' in fields && 'labels' in fields);
    });
  } catch (error) {
    if ((error as { incomplete?: boolean }).incomplete) throw new NeedMoreBytes();
    if (error instanceof CorruptShardError) throw error;
    throw new CorruptShardError(file, `not msgpack: ${(error as Error).message}`);
  }
  const { format, version, shape, ids, labels } = fields;
  if (format !== SHARD_FORMAT) throw new CorruptShardError(file, 'not a galactic shard');
  if (version !== CACHE_FORMAT_VERSION)
    throw new CorruptShardError(file, `format version ${String(version)}, expected ${CACHE_FORMAT_VERSION}`);
  if (!Array.isArray(shape) || !Array.isArray(ids) || !(labels instanceof Uint8Array))
    throw new CorruptShardError(file, 'missing fields');
  if (ids.length !== shape[0] || labels.byteLength !== 4 * ids.length || !ids.every((id) => typeof id === 'string')) {
    throw new CorruptShardError(file, 'ids and labels do not match its shape');
  }
  // copy: the view may not be 4-byte aligned (labels are little-endian int32 on every platform we run)
  return { ids: ids as string[], labels: new Int32Array(new Uint8Array(labels).buffer) };
}

export async function readShardLabels(cacheDir: string, entry: ShardEntry): Promise<ShardLabels> {
  const file = path.join(cacheDir, entry.file);
  const handle = await open(file, 'r');
  try {
    // ~16 bytes per record covers typical ids; grow when a header is longer
    let size = Math.min(entry.bytes, 4096 + entry.count * 16);
    for (;;) {
      const prefix = new Uint8Array(size);
      const { bytesRead } = await handle.read(prefix, 0, size, 0);
      try {
        return parseShardLabels(prefix.subarray(0, bytesRead), file);
      } catch (error) {
        if (!(error instanceof NeedMoreBytes)) throw error;
        if (bytesRead < size || size >= entry.bytes)
          throw new CorruptShardError(file, 'the file ends inside its header');
        size = Math.min(entry.bytes, size * 4);
      }
    }
  } finally {
    await handle.close();
  }
}
