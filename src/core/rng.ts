/**
 * Seeded pseudo-random numbers. One seed drives split, shuffles, augmentation, tuner sampling
 * and weight initialization (design principle 5), so every consumer derives its own stream
 * from (seed, purpose) instead of sharing one global sequence whose order would couple them.
 */

/** 32-bit FNV-1a hash of a string; stable across platforms and runs. */
export function hashString(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return finalizeHash(h);
}

/** Murmur3 finalizer: spreads the low-entropy bits of FNV over the whole word. */
function finalizeHash(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A number in [0, 1) decided only by `key` and `seed`: the same key always lands on the same side. */
export function hashToUnit(key: string, seed: number): number {
  return hashString(key, hashString(String(seed))) / 4294967296;
}

/** Small, fast, seedable generator (mulberry32) with a serializable state. */
export class Rng {
  private state: number;

  constructor(seed: number, purpose = '') {
    this.state = purpose ? hashString(purpose, seed >>> 0) : seed >>> 0;
  }

  /** Next float in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }

  /** State that, given to `Rng.fromState`, continues the exact same sequence (for resumes). */
  getState(): number {
    return this.state;
  }

  static fromState(state: number): Rng {
    const rng = new Rng(0);
    rng.state = state >>> 0;
    return rng;
  }
}
