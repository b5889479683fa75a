/**
 * A set of strings that costs bytes, not objects: each string is stored once as UTF-8 in 1 MiB
 * chunks (2-byte length prefix), found through an open-addressing Uint32 hash table, and named by
 * its index (0, 1, 2, ... in insertion order). About 14 B + the string per entry, against 80-130 B
 * for a `Set`/`Map` of V8 strings, and nothing for the GC to trace. It grows as strings arrive
 * (doubling its arrays) and never past `ceiling`: the one more string that would cross it throws
 * the error `onFull` makes, so a structure that grows with the CSV stays within what the memory
 * plan reserved for it. Strings longer than 65,535 UTF-8 bytes are stored cut (no caller needs more:
 * ids are refused past 255 characters).
 */

export interface StringTableCeiling {
  /** Most strings the table may hold. */
  entries: number;
  /**
   * Most bytes its arrays and chunks may take (memory/plan.ts's `stringTableBytes` gives the figure for a row count).
   */
  bytes: number;
}

const CHUNK_BYTES = 1 << 20;
const CHUNK_BITS = 20;
const MAX_STRING_BYTES = 0xffff;
const FIRST_CAPACITY = 1024;

export class StringTable {
  private chunks: Buffer[] = [];
  private used = CHUNK_BYTES; // forces a chunk on the first insert
  private starts = new Uint32Array(0);
  private hashes = new Uint32Array(0);
  private table = new Uint32Array(16);
  private count = 0;
  private scratch = Buffer.allocUnsafe(256);

  constructor(
    readonly ceiling: StringTableCeiling,
    private readonly onFull: (table: StringTable) => Error,
  ) {}

  get size(): number {
    return this.count;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.chunks.length * CHUNK_BYTES + this.starts.byteLength + this.hashes.byteLength + this.table.byteLength;
  }

  /** The index of `value`, or -1. */
  find(value: string): number {
    const bytes = this.encode(value);
    const hash = hashBytes(bytes);
    const mask = this.table.length - 1;
    for (let slot = hash & mask; this.table[slot] !== 0; slot = (slot + 1) & mask) {
      const index = this.table[slot] - 1;
      if (this.hashes[index] === hash && this.equals(index, bytes)) return index;
    }
    return -1;
  }

  /** Adds `value` unless present; returns its index either way. */
  add(value: string): number {
    const bytes = this.encode(value);
    const hash = hashBytes(bytes);
    let mask = this.table.length - 1;
    let slot = hash & mask;
    for (; this.table[slot] !== 0; slot = (slot + 1) & mask) {
      const index = this.table[slot] - 1;
      if (this.hashes[index] === hash && this.equals(index, bytes)) return index;
    }
    if (this.count >= this.ceiling.entries) throw this.onFull(this);
    this.reserve(bytes.length);
    if (2 * (this.count + 1) > this.table.length) {
      this.growTable();
      mask = this.table.length - 1;
      for (slot = hash & mask; this.table[slot] !== 0; slot = (slot + 1) & mask);
    }
    let chunk = this.chunks[this.chunks.length - 1];
    if (this.used + 2 + bytes.length > CHUNK_BYTES) {
      chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      this.chunks.push(chunk);
      this.used = 0;
    }
    const index = this.count++;
    this.starts[index] = ((this.chunks.length - 1) << CHUNK_BITS) | this.used;
    this.hashes[index] = hash;
    chunk.writeUInt16LE(bytes.length, this.used);
    bytes.copy(chunk, this.used + 2);
    this.used += 2 + bytes.length;
    this.table[slot] = index + 1;
    return index;
  }

  get(index: number): string {
    const { chunk, at, length } = this.locate(index);
    return chunk.toString('utf8', at, at + length);
  }

  private locate(index: number): { chunk: Buffer; at: number; length: number } {
    const start = this.starts[index];
    const chunk = this.chunks[start >>> CHUNK_BITS];
    const offset = start & (CHUNK_BYTES - 1);
    return { chunk, at: offset + 2, length: chunk.readUInt16LE(offset) };
  }

  private equals(index: number, bytes: Buffer): boolean {
    const { chunk, at, length } = this.locate(index);
    return length === bytes.length && chunk.compare(bytes, 0, length, at, at + length) === 0;
  }

  /** `value` as UTF-8 in a reused scratch buffer (valid until the next call). */
  private encode(value: string): Buffer {
    const need = Math.min(Buffer.byteLength(value, 'utf8'), MAX_STRING_BYTES);
    if (need > this.scratch.length) this.scratch = Buffer.allocUnsafe(Math.max(need, 2 * this.scratch.length));
    const written = this.scratch.write(value, 0, need, 'utf8');
    return this.scratch.subarray(0, written);
  }

  /** Room for one more entry of `length` bytes within the ceiling, or the ceiling's error. */
  private reserve(length: number): void {
    const needsChunk = this.used + 2 + length > CHUNK_BYTES;
    const capacity = this.starts.length;
    const nextCapacity =
      this.count < capacity ? capacity : Math.min(Math.max(FIRST_CAPACITY, 2 * capacity), this.ceiling.entries);
    const nextTable = 2 * (this.count + 1) > this.table.length ? 2 * this.table.length : this.table.length;
    const after = (this.chunks.length + (needsChunk ? 1 : 0)) * CHUNK_BYTES + 8 * nextCapacity + 4 * nextTable;
    if (after > this.ceiling.bytes) throw this.onFull(this);
    if (nextCapacity > capacity) {
      const starts = new Uint32Array(nextCapacity);
      starts.set(this.starts);
      const hashes = new Uint32Array(nextCapacity);
      hashes.set(this.hashes);
      this.starts = starts;
      this.hashes = hashes;
    }
  }

  private growTable(): void {
    const table = new Uint32Array(this.table.length * 2);
    const mask = table.length - 1;
    for (let index = 0; index < this.count; index++) {
      let slot = this.hashes[index] & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = index + 1;
    }
    this.table = table;
  }
}

/** FNV-1a. */
function hashBytes(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < bytes.length; k++) h = Math.imul(h ^ bytes[k], 0x01000193);
  return h >>> 0;
}
