import { closeSync, constants, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from './errors.ts';

/**
 * Every file and folder the product writes goes through here. A file is replaced crash-safely:
 * written to a temp name beside the target, fsynced, renamed over the target, and the folder
 * fsynced; after a crash the target is either the old or the new file, whole, and at worst a temp
 * file `<name>.<pid>.tmp` is left, which the owner of the folder removes on its next run. A
 * folder is filled under a temp name and renamed into place the same way.
 *
 * A write the disk or the permissions refuse (ENOSPC, EDQUOT, EACCES, EPERM, EROFS) becomes one
 * FileWriteError naming the file and what to do; the temp is removed and the target is untouched.
 */

/** Bytes to write: one buffer, or consecutive parts written in order (no concatenation copy). */
export type FileBytes = Uint8Array | string | readonly Uint8Array[];

/** How bytes reach the temp file; tests inject one that fails like a full disk. */
export type WriteFileFn = (file: string, data: FileBytes) => Promise<void>;

export interface AtomicWriteOptions {
  /** Replaces the default writer (tests; shards use writeDirectAndSync). */
  write?: WriteFileFn;
  /** What the user does after fixing the cause, e.g. "then run 'galactic prepare' again: it resumes". */
  then?: string;
}

/** The one temp-name scheme: beside the target, marked with the writer's pid. */
export function tempPathFor(target: string): string {
  return `${target}.${process.pid}.tmp`;
}

/** True for a name tempPathFor made (any pid). */
export function isTempName(name: string): boolean {
  return /\.\d+\.tmp$/.test(name);
}

const FAULT_ADVICE: Record<string, (dir: string) => string> = {
  ENOSPC: (dir) =>
    `no space left on the device. Free disk space on the device holding ${dir}, or point the output at a bigger disk`,
  EDQUOT: (dir) =>
    `the disk quota is exceeded. Free space within your quota on the device holding ${dir}, or point the output elsewhere`,
  EACCES: (dir) => `permission denied. Fix the permissions of ${dir}, or point the output at a folder you can write to`,
  EPERM: (dir) =>
    `the operation is not permitted. Fix the permissions of ${dir}, or point the output at a folder you can write to`,
  EROFS: () => `the file system is read-only. Point the output at a folder on a writable disk`,
};

/** Error codes that are the user's to fix (disk space, quota, permissions, read-only mounts). */
export const WRITE_FAULT_CODES: readonly string[] = Object.keys(FAULT_ADVICE);

/** A write the disk or the permissions refused; what was there before is unchanged. */
export class FileWriteError extends UserError {
  readonly file: string;
  readonly code: string;
  constructor(file: string, code: string, then?: string) {
    const advice = FAULT_ADVICE[code]?.(path.dirname(file)) ?? `the write failed (${code})`;
    super(
      `could not write ${file} (${code}): ${advice}${then ? `; ${then}` : ''}. Its previous version, if any, is unchanged.`,
    );
    this.file = file;
    this.code = code;
  }
}

/** The FileWriteError for a refused write, or the error unchanged (a bug keeps its stack). */
export function writeFailure(error: unknown, file: string, then?: string): unknown {
  if (error instanceof FileWriteError) return error;
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code && WRITE_FAULT_CODES.includes(code) ? new FileWriteError(file, code, then) : error;
}

/**
 * Test seam: GALACTIC_TEST_WRITE_FAULT="<file name>:<CODE>[:<n>]" makes the n-th (default first)
 * and every later write of a target with that base name fail with that errno, after its temp file
 * is written (so the cleanup is exercised). Used only by tests that start the CLI as a child.
 */
const faultWrites = new Map<string, number>();
function injectedFault(target: string): void {
  const spec = process.env.GALACTIC_TEST_WRITE_FAULT;
  if (!spec) return;
  const [name, code, from] = spec.split(':');
  if (name !== path.basename(target)) return;
  const count = (faultWrites.get(name) ?? 0) + 1;
  faultWrites.set(name, count);
  if (count < Number(from ?? 1)) return;
  throw Object.assign(new Error(`${code}: injected write fault, write '${target}'`), { code });
}

function partsOf(data: FileBytes): readonly Uint8Array[] {
  if (typeof data === 'string') return [Buffer.from(data)];
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

function writeAndSyncSync(file: string, data: FileBytes): void {
  const fd = openSync(file, 'w');
  try {
    for (const part of partsOf(data)) {
      for (let at = 0; at < part.byteLength;) at += writeSync(fd, part, at);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Payloads from this size on are written with O_DIRECT by writeDirectAndSync. */
export const DIRECT_MIN_BYTES = 4 * 1024 * 1024;
/** The aligned staging buffer direct writes go through (a multiple of DIRECT_ALIGN). */
export const DIRECT_STAGE_BYTES = 1024 * 1024;
/** Memory address, file offset and length of every O_DIRECT write are multiples of this. */
const DIRECT_ALIGN = 4096;
const idleStages: Uint8Array[] = [];

/** The part of the WebAssembly global used here (the project's lib settings do not declare it). */
interface WasmMemoryApi {
  Memory: new (descriptor: { initial: number; maximum: number }) => { buffer: ArrayBuffer };
}

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
async function writeDirect(
  file: string,
  parts: readonly Uint8Array[],
  total: number,
  stage: Uint8Array,
  directFlag: number,
): Promise<boolean> {
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

export async function replaceFileAtomic(
  target: string,
  data: FileBytes,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const temp = tempPathFor(target);
  try {
    await (options.write ?? writeAndSync)(temp, data);
    injectedFault(target);
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw writeFailure(error, target, options.then);
  }
  await syncDir(path.dirname(target));
}

/** replaceFileAtomic for callers that must not yield (small JSON state files). */
export function replaceFileAtomicSync(target: string, data: FileBytes, then?: string): void {
  const temp = tempPathFor(target);
  try {
    writeAndSyncSync(temp, data);
    injectedFault(target);
    renameSync(temp, target);
  } catch (error) {
    rmSync(temp, { force: true });
    throw writeFailure(error, target, then);
  }
  syncDirSync(path.dirname(target));
}

/** `value` as indented JSON with a final newline; NaN and Infinity (not JSON) become null. */
export function jsonText(value: unknown, indent: number | undefined = 2): string {
  return `${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), indent)}\n`;
}

export function writeJsonAtomicSync(target: string, value: unknown, then?: string): void {
  replaceFileAtomicSync(target, jsonText(value), then);
}

function syncDirSync(dir: string): void {
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

/** Creates a folder (and its parents); a refusal becomes a FileWriteError. */
export function ensureDir(dir: string, then?: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw writeFailure(error, dir, then);
  }
}

/**
 * Replaces folder `target` by one `fill` builds under a temp name: a reader sees the old folder
 * or the new one, never a half-written one. The old folder is moved aside, the new one renamed
 * in, then the old one deleted (a crash in between leaves the old one as `<name>.<pid>.old`).
 */
export async function replaceDirAtomic(
  target: string,
  fill: (dir: string) => Promise<void> | void,
  then?: string,
): Promise<void> {
  const temp = startTempDir(target, then);
  try {
    await fill(temp);
    swapDirIntoPlace(temp, target);
  } catch (error) {
    rmSync(temp, { recursive: true, force: true });
    throw writeFailure(error, target, then);
  }
  syncDirSync(path.dirname(target));
}

/** replaceDirAtomic for a synchronous fill (a folder copy). */
export function replaceDirAtomicSync(target: string, fill: (dir: string) => void, then?: string): void {
  const temp = startTempDir(target, then);
  try {
    fill(temp);
    swapDirIntoPlace(temp, target);
  } catch (error) {
    rmSync(temp, { recursive: true, force: true });
    throw writeFailure(error, target, then);
  }
  syncDirSync(path.dirname(target));
}

function startTempDir(target: string, then?: string): string {
  const temp = tempPathFor(target);
  try {
    mkdirSync(path.dirname(target), { recursive: true });
    rmSync(temp, { recursive: true, force: true });
    mkdirSync(temp);
  } catch (error) {
    throw writeFailure(error, target, then);
  }
  return temp;
}

function swapDirIntoPlace(temp: string, target: string): void {
  injectedFault(target);
  syncDirSync(temp);
  const old = `${target}.${process.pid}.old`;
  let moved = false;
  try {
    renameSync(target, old);
    moved = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  renameSync(temp, target);
  if (moved) rmSync(old, { recursive: true, force: true });
}

/**
 * A file written in pieces (a catalogue of many rows) under its temp name and renamed into place
 * by commit(), so a reader never sees it half-written. abort() removes the temp file.
 */
export class AtomicFileWriter {
  private readonly temp: string;
  private fd: number | null;

  constructor(
    readonly target: string,
    private readonly then?: string,
  ) {
    this.temp = tempPathFor(target);
    try {
      this.fd = openSync(this.temp, 'w');
    } catch (error) {
      throw writeFailure(error, target, then);
    }
  }

  write(data: FileBytes): void {
    if (this.fd === null) throw new Error(`AtomicFileWriter: write after commit or abort of ${this.target}`);
    try {
      for (const part of partsOf(data)) {
        for (let at = 0; at < part.byteLength;) at += writeSync(this.fd, part, at);
      }
    } catch (error) {
      this.abort();
      throw writeFailure(error, this.target, this.then);
    }
  }

  commit(): void {
    if (this.fd === null) throw new Error(`AtomicFileWriter: commit after commit or abort of ${this.target}`);
    try {
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = null;
      injectedFault(this.target);
      renameSync(this.temp, this.target);
    } catch (error) {
      this.abort();
      throw writeFailure(error, this.target, this.then);
    }
    syncDirSync(path.dirname(this.target));
  }

  abort(): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        // already closed by a failed commit
      }
      this.fd = null;
    }
    rmSync(this.temp, { force: true });
  }
}
