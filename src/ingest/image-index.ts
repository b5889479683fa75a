import { createHash } from 'node:crypto';
import { opendirSync, realpathSync, type Dir } from 'node:fs';
import { opendir } from 'node:fs/promises';
import { UserError } from '../core/errors.ts';

/**
 * The existence check without a stat per row: the image folder is listed once by streaming it
 * (`fs.opendir`, never a full readdir array from the OS) and the names matching the file-name
 * pattern are kept as one sorted, packed UTF-8 buffer plus offsets and a small open-addressing
 * hash table (about 12-20 B + the name per entry, against ~50 B per entry for a Set of strings,
 * and no per-name objects for the GC to trace). The sorted order makes the digest independent
 * of the order the folder lists in.
 */

export class ImageDirNotFoundError extends UserError {
  constructor(dir: string, detail: string) {
    super(
      `image folder ${dir} ${detail}. Point data.imageDir at the folder holding the images (e.g. the extracted images_gz2 folder).`,
    );
  }
}

/** The fixed text around `{id}` in `data.fileName`, e.g. "" and ".jpg" for "{id}.jpg". */
export function splitFileName(pattern: string): { prefix: string; suffix: string } {
  const at = pattern.indexOf('{id}');
  return { prefix: pattern.slice(0, at), suffix: pattern.slice(at + 4) };
}

export class ImageIndex {
  /**
   * Open-addressing hash table over the packed names (entry index + 1; 0 = empty), so a lookup
   * allocates nothing. Built on the first lookup: a cache hit needs only the digest.
   */
  private tableCache: Uint32Array | null = null;

  private constructor(
    private readonly packed: Buffer,
    private readonly offsets: Uint32Array,
    /** sha256 over the sorted names: part of the cache key. */
    readonly digest: string,
    /** The folder's real path (links resolved): every image must stay inside it (outside-image-dir). */
    readonly realDir: string | null,
  ) {}

  private get table(): Uint32Array {
    if (this.tableCache) return this.tableCache;
    const n = this.size;
    let size = 16;
    while (size < n * 2) size *= 2;
    const table = new Uint32Array(size);
    const mask = size - 1;
    for (let i = 0; i < n; i++) {
      let slot = hashBytes(this.packed.subarray(this.offsets[i], this.offsets[i + 1])) & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = i + 1;
    }
    return (this.tableCache = table);
  }

  get size(): number {
    return this.offsets.length - 1;
  }

  /** Bytes held by the index (for the memory report). */
  get bytes(): number {
    return this.packed.byteLength + this.offsets.byteLength + this.table.byteLength;
  }

  has(name: string): boolean {
    const table = this.table;
    const mask = table.length - 1;
    const ascii = isAscii(name);
    const bytes = ascii ? null : Buffer.from(name, 'utf8');
    let slot = (ascii ? hashAscii(name) : hashBytes(bytes!)) & mask;
    for (let entry = table[slot]; entry !== 0; entry = table[slot]) {
      if (this.equals(entry - 1, name, bytes)) return true;
      slot = (slot + 1) & mask;
    }
    return false;
  }

  private equals(i: number, name: string, bytes: Buffer | null): boolean {
    const start = this.offsets[i];
    const length = this.offsets[i + 1] - start;
    if (bytes)
      return length === bytes.length && this.packed.compare(bytes, 0, bytes.length, start, start + length) === 0;
    if (length !== name.length) return false;
    for (let k = 0; k < length; k++) if (this.packed[start + k] !== name.charCodeAt(k)) return false;
    return true;
  }

  /** Streams `dir` once, keeping the names that fit the file-name pattern (whatever they are). */
  static async build(dir: string, fileNamePattern: string): Promise<ImageIndex> {
    let handle: Dir;
    try {
      handle = await opendir(dir, { bufferSize: 256 });
    } catch (error) {
      throw notFound(dir, error as NodeJS.ErrnoException);
    }
    const names: string[] = [];
    const keep = matcher(fileNamePattern);
    // every kind of entry: a FIFO or folder under an image's name is there, and the decode
    // stage rejects it `not-a-file` (reporting it missing would be false)
    for await (const entry of handle) {
      if (keep(entry.name)) names.push(entry.name);
    }
    return ImageIndex.fromNames(names, realDirOf(dir));
  }

  /** Same as build(), synchronously (for resolveCacheDir, which must not be async). */
  static buildSync(dir: string, fileNamePattern: string): ImageIndex {
    let handle: Dir;
    try {
      handle = opendirSync(dir, { bufferSize: 256 });
    } catch (error) {
      throw notFound(dir, error as NodeJS.ErrnoException);
    }
    const names: string[] = [];
    const keep = matcher(fileNamePattern);
    try {
      for (let entry = handle.readSync(); entry; entry = handle.readSync()) {
        if (keep(entry.name)) names.push(entry.name);
      }
    } finally {
      handle.closeSync();
    }
    return ImageIndex.fromNames(names, realDirOf(dir));
  }

  static fromNames(names: string[], realDir: string | null = null): ImageIndex {
    // byte order, so the binary search can compare raw UTF-8; for ASCII it equals the default sort
    const ascii = names.every((n) => Buffer.byteLength(n, 'utf8') === n.length);
    if (ascii) names.sort();
    else names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const offsets = new Uint32Array(names.length + 1);
    let total = 0;
    for (let i = 0; i < names.length; i++) {
      offsets[i] = total;
      total += Buffer.byteLength(names[i], 'utf8');
    }
    offsets[names.length] = total;
    const packed = Buffer.allocUnsafe(total);
    for (let i = 0; i < names.length; i++) packed.write(names[i], offsets[i], 'utf8');
    const hash = createHash('sha256');
    hash.update(Buffer.from(offsets.buffer, offsets.byteOffset, offsets.byteLength));
    hash.update(packed);
    return new ImageIndex(packed, offsets, hash.digest('hex'), realDir);
  }
}

function matcher(pattern: string): (name: string) => boolean {
  const { prefix, suffix } = splitFileName(pattern);
  return (name) => name.length > prefix.length + suffix.length && name.startsWith(prefix) && name.endsWith(suffix);
}

function realDirOf(dir: string): string {
  try {
    return realpathSync.native(dir);
  } catch (error) {
    throw notFound(dir, error as NodeJS.ErrnoException);
  }
}

function notFound(dir: string, error: NodeJS.ErrnoException): ImageDirNotFoundError {
  if (error.code === 'ENOENT') return new ImageDirNotFoundError(dir, 'does not exist');
  if (error.code === 'ENOTDIR') return new ImageDirNotFoundError(dir, 'is not a folder');
  return new ImageDirNotFoundError(dir, `cannot be listed (${error.code ?? error.message})`);
}

function isAscii(name: string): boolean {
  for (let k = 0; k < name.length; k++) if (name.charCodeAt(k) > 0x7f) return false;
  return true;
}

/** FNV-1a over bytes; for ASCII strings hashAscii gives the same value without encoding. */
function hashBytes(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < bytes.length; k++) h = Math.imul(h ^ bytes[k], 0x01000193);
  return h >>> 0;
}

function hashAscii(name: string): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < name.length; k++) h = Math.imul(h ^ name.charCodeAt(k), 0x01000193);
  return h >>> 0;
}
