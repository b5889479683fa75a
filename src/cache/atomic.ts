import { open, rename, rm } from 'node:fs/promises';
import { openSync, fsyncSync, closeSync } from 'node:fs';
import path from 'node:path';

/**
 * Crash-safe file replacement: write a temp file beside the target, fsync it, rename it over the
 * target, fsync the folder. After a crash the target is either the old or the new file, whole;
 * at worst a stale temp file is left, which the next run removes.
 */

export const TEMP_SUFFIX = '.tmp';

/** Bytes to write: one buffer, or consecutive parts written in order (no concatenation copy). */
export type FileBytes = Uint8Array | readonly Uint8Array[];

/** How bytes reach the temp file; tests inject one that fails like a full disk. */
export type WriteFileFn = (file: string, data: FileBytes) => Promise<void>;

export const writeAndSync: WriteFileFn = async (file, data) => {
  const handle = await open(file, 'w');
  try {
    for (const part of data instanceof Uint8Array ? [data] : data) {
      let offset = 0;
      while (offset < part.byteLength) {
        const { bytesWritten } = await handle.write(part, offset, part.byteLength - offset);
        offset += bytesWritten;
      }
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
};

export function syncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // some filesystems refuse fsync on a directory; the rename is still atomic there
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

export async function replaceFileAtomic(target: string, data: FileBytes, write: WriteFileFn = writeAndSync): Promise<void> {
  const temp = `${target}${TEMP_SUFFIX}`;
  try {
    await write(temp, data);
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  syncDir(path.dirname(target));
}
