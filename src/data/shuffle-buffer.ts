import type { Rng } from '../core/rng.ts';

/**
 * A bounded shuffle buffer holding copies of cached records in preallocated slots.
 *
 * Records are copied in (uint8 bytes, 49 KB at 128x128x3) rather than referenced: a reference
 * would keep its whole shard alive for as long as the record waits in the buffer, so the number
 * of shards in memory would have no bound. With copies the feed holds the buffer (sized by the
 * memory planner) plus the shard being read and the one read ahead, nothing more.
 */
export class ShuffleBuffer {
  readonly capacity: number;
  readonly recordBytes: number;
  private readonly storage: Uint8Array;
  private readonly labels: Int32Array;
  private readonly ids: string[];
  /** occupied[k] = slot of the k-th waiting record, for k < size. */
  private readonly occupied: Int32Array;
  /** Stack of free slots. */
  private readonly free: Int32Array;
  private freeCount: number;
  private count = 0;
  /** Most records ever held at once (for tests and the bench). */
  peak = 0;

  constructor(capacity: number, recordBytes: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new Error(`ShuffleBuffer: capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.recordBytes = recordBytes;
    this.storage = new Uint8Array(capacity * recordBytes);
    this.labels = new Int32Array(capacity);
    this.ids = new Array<string>(capacity).fill('');
    this.occupied = new Int32Array(capacity);
    this.free = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.free[i] = capacity - 1 - i;
    this.freeCount = capacity;
  }

  get size(): number {
    return this.count;
  }

  get full(): boolean {
    return this.count === this.capacity;
  }

  /** Forgets every waiting record (a new epoch starts empty, even after an interrupted one). */
  clear(): void {
    this.count = 0;
    this.freeCount = this.capacity;
    for (let i = 0; i < this.capacity; i++) this.free[i] = this.capacity - 1 - i;
  }

  /** Copies `recordBytes` bytes from `source` at `offset` into a free slot. */
  push(source: Uint8Array, offset: number, label: number, id: string): void {
    if (this.count === this.capacity) throw new Error('ShuffleBuffer: push into a full buffer (take a record first)');
    const slot = this.free[--this.freeCount];
    this.storage.set(source.subarray(offset, offset + this.recordBytes), slot * this.recordBytes);
    this.labels[slot] = label;
    this.ids[slot] = id;
    this.occupied[this.count++] = slot;
    if (this.count > this.peak) this.peak = this.count;
  }

  /**
   * Removes a uniformly chosen record and returns its slot. The slot's bytes stay valid until
   * the next `push` (which reuses it), so read it with `bytes`/`label`/`id` first.
   */
  takeRandom(rng: Rng): number {
    if (this.count === 0) throw new Error('ShuffleBuffer: take from an empty buffer');
    const k = rng.int(this.count);
    const slot = this.occupied[k];
    this.occupied[k] = this.occupied[--this.count];
    this.free[this.freeCount++] = slot;
    return slot;
  }

  bytes(slot: number): Uint8Array {
    return this.storage.subarray(slot * this.recordBytes, (slot + 1) * this.recordBytes);
  }

  label(slot: number): number {
    return this.labels[slot];
  }

  id(slot: number): string {
    return this.ids[slot];
  }
}
