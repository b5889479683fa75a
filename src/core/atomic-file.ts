import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
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

function partsOf(data: FileBytes): readonly Uint8Array[] {
  return data instanceof Uint8Array ? [data] : data;
}

export const writeAndSync: WriteFileFn = async (file, data) => {
  const handle = await open(file, 'w');
  try {
    // writev: a shard is several hundred parts (its records); libuv continues after short
    // writes but reports an error that follows some progress only as a short count, so the
    // rest is written again, which then fails with that error
    let parts = partsOf(data).filter((part) => part.byteLength > 0);
    while (parts.length > 0) {
      let { bytesWritten } = await handle.writev(parts as Uint8Array[]);
      let done = 0;
      while (done < parts.length && bytesWritten >= parts[done].byteLength) bytesWritten -= parts[done++].byteLength;
      parts = done < parts.length ? [parts[done].subarray(bytesWritten), ...parts.slice(done + 1)] : [];
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
};

/** Payloads from this size on are written with O_DIRECT by writeDirectAndSync. */
export const DIRECT_MIN_BYTES = 4 * 1024 * 1024;
/** The aligned staging buffer direct writes go through (a multiple of DIRECT_ALIGN). */
export const DIRECT_STAGE_BYTES = 1024 * 1024;
/** Memory address, file offset and length of every O_DIRECT write are multiples of this. */
const DIRECT_ALIGN = 4096;
const idleStages: Uint8Array[] = [];

/** The part of the WebAssembly global used here (the project's lib settings do not declare it). */
interface WasmMemoryApi { Memory: new (descriptor: { initial: number; maximum: number }) => { buffer: ArrayBuffer } }

/**
 * A page-aligned staging buffer: JS cannot ask for an aligned ArrayBuffer, but a WebAssembly
 * memory is mapped whole pages at a time, so its first byte sits on a page boundary.
 */
function takeStage(): Uint8Array | null {
  const idle = idleStages.pop();
  if (idle) return idle;
  const wasm = (globalThis as { WebAssembly?: WasmMemoryApi }).WebAssembly;
  if (!wasm) return null;
  const pages = DIRECT_STAGE_BYTES / 65536;
  return new Uint8Array(new wasm.Memory({ initial: pages, maximum: pages }).buffer);
}

/**
 * writeAndSync for big payloads (shards): the bytes go to the disk with O_DIRECT through a 1 MB
 * page-aligned staging buffer instead of through the page cache. Same file bytes, same fsync
 * (the last block is padded, then the file is truncated to its length before the fsync).
 * Why: a buffered 32 MB write costs 100-150 ms of kernel CPU on the VMs this runs on (every
 * page-cache page is freshly allocated), plus the later writeback, all of it competing with
 * the decoders for the cores; through O_DIRECT the same shard costs ~10 ms of CPU, most of it
 * the copy into the staging buffer. The shards are not left in the page cache, which costs
 * nothing for a cache that is read much later or is larger than memory anyway. Falls back to
 * writeAndSync where O_DIRECT is unavailable (tmpfs, macOS) or refused (EINVAL).
 */
export const writeDirectAndSync: WriteFileFn = async (file, data) => {
  const parts = partsOf(data);
  const total = parts.reduce((sum, part) => sum + part.byteLength, 0);
  const directFlag = (constants as { O_DIRECT?: number }).O_DIRECT;
  const stage = directFlag !== undefined && total >= DIRECT_MIN_BYTES ? takeStage() : null;
  if (stage) {
    try {
      if (await writeDirect(file, parts, total, stage, directFlag!)) return;
    } finally {
      idleStages.push(stage);
    }
  }
  await writeAndSync(file, data);
};

/** False when the filesystem refuses O_DIRECT (the caller writes the file the usual way). */
async function writeDirect(file: string, parts: readonly Uint8Array[], total: number, stage: Uint8Array, directFlag: number): Promise<boolean> {
  let handle: FileHandle;
  try {
    handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | directFlag, 0o666);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EINVAL') return false;
    throw error;
  }
  try {
    let position = 0;
    let fill = 0;
    const flush = async (length: number) => {
      for (let offset = 0; offset < length;) {
        const { bytesWritten } = await handle.write(stage, offset, length - offset, position + offset);
        offset += bytesWritten;
      }
      position += length;
      fill = 0;
    };
    for (const part of parts) {
      for (let at = 0; at < part.byteLength;) {
        const n = Math.min(part.byteLength - at, stage.byteLength - fill);
        stage.set(part.subarray(at, at + n), fill);
        fill += n;
        at += n;
        if (fill === stage.byteLength) await flush(fill);
      }
    }
    if (fill > 0) {
      const padded = Math.ceil(fill / DIRECT_ALIGN) * DIRECT_ALIGN;
      stage.fill(0, fill, padded);
      await flush(padded);
    }
    await handle.truncate(total);
    await handle.sync();
    return true;
  } catch (error) {
    // a short write leaves the next one unaligned: EINVAL; the buffered path starts over
    if ((error as NodeJS.ErrnoException).code === 'EINVAL') return false;
    throw error;
  } finally {
    await handle.close();
  }
}

/** fsyncs a folder (after a rename in it) without blocking the event loop. */
export async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | null = null;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // some filesystems refuse fsync on a directory; the rename is still atomic there
  } finally {
    await handle?.close();
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
  await syncDir(path.dirname(target));
}
