/**
 * Repeat statistics. Benchmarks on a shared machine are noisy, so every figure is the median of
 * its repeats, with min and max beside it so the spread is visible.
 */
export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(values: number[]): Spread {
  if (values.length === 0) throw new Error('spread: no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, n: sorted.length };
}

/** Rounds every field of a spread for display and JSON (figures are noisy beyond a few digits). */
export function roundSpread(s: Spread, digits = 1): Spread {
  const f = 10 ** digits;
  const r = (x: number) => Math.round(x * f) / f;
  return { median: r(s.median), min: r(s.min), max: r(s.max), n: s.n };
}

/** `median [min–max]`, or just the value when there was one repeat. */
export function formatSpread(s: Spread | null | undefined, digits = 1): string {
  if (!s) return '–';
  const v = (x: number) => x.toFixed(digits);
  return s.n > 1 && s.min !== s.max ? `${v(s.median)} [${v(s.min)}–${v(s.max)}]` : v(s.median);
}
