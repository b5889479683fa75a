import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeShard, CorruptShardError, type Shard, type ShardEntry } from './format.ts';
import { crc32 } from './crc32.ts';

/** Reads one shard of a cache, checking the file checksum from the manifest and the data checksum inside. */
export async function readShard(cacheDir: string, entry: ShardEntry): Promise<Shard> {
  const file = path.join(cacheDir, entry.file);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new CorruptShardError(
      file,
      `cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  if (bytes.byteLength !== entry.bytes)
    throw new CorruptShardError(file, `${bytes.byteLength} bytes, the manifest says ${entry.bytes}`);
  if (crc32(bytes) !== entry.crc32) throw new CorruptShardError(file, 'file checksum mismatch');
  return decodeShard(bytes, file);
}
