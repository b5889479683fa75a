import type { Rng } from '../../core/rng.ts';

/**
 * Galaxy Zoo 2 class strings (Willett et al. 2013, `gz2_class`) for the synthetic records, and
 * their parse back into the features the renderer draws, so a record's label and its image
 * always agree. Grammar:
 *   E[r|i|c]                      smooth: completely round, in between, cigar-shaped
 *   S[B][a-d][1-4|+|?][t|m|l]     disk: barred, bulge dominant..none, arm count, arm winding
 *   S[B][a-d]                     disk whose arms were not counted (no clear spiral)
 *   Se[r|b|n]                     edge-on disk: rounded, boxy or no bulge
 *   A                             star or artifact
 * plus an optional odd-feature suffix: (r) ring, (l) lens, (d) dust lane, (i) irregular,
 * (o) other, (m) merger.
 */

export type MorphologyKind = 'elliptical' | 'spiral' | 'artifact';
export const morphologyKinds: readonly MorphologyKind[] = ['elliptical', 'spiral', 'artifact'];

export type Roundness = 'r' | 'i' | 'c';
export type BulgeProminence = 'a' | 'b' | 'c' | 'd';
export type Winding = 't' | 'm' | 'l';
export type EdgeOnBulge = 'r' | 'b' | 'n';

export type Morphology =
  | { kind: 'elliptical'; roundness: Roundness; odd: string | null }
  | {
      kind: 'spiral';
      edgeOn: false;
      barred: boolean;
      bulge: BulgeProminence;
      /** null = arms not counted ("S[B][a-d]"); '?' = arms seen but uncountable; '+' = more than four */
      arms: 1 | 2 | 3 | 4 | '+' | '?' | null;
      winding: Winding | null;
      odd: string | null;
    }
  | { kind: 'spiral'; edgeOn: true; bulge: EdgeOnBulge; odd: string | null }
  | { kind: 'artifact' };

/** Picks one key of `weights` with probability proportional to its weight. */
export function pickWeighted<T extends string>(rng: Rng, weights: Record<T, number>): T {
  const entries = Object.entries(weights) as [T, number][];
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  let x = rng.next() * total;
  for (const [key, w] of entries) {
    x -= w;
    if (x < 0) return key;
  }
  return entries[entries.length - 1][0];
}

/** A realistic GZ2 class string for a record of the given kind (proportions loosely follow GZ2). */
export function sampleGz2Class(kind: MorphologyKind, rng: Rng): string {
  if (kind === 'artifact') return 'A';
  if (kind === 'elliptical') {
    const roundness = pickWeighted(rng, { r: 35, i: 50, c: 15 });
    const odd = rng.next() < 0.06 ? pickWeighted(rng, { '(m)': 2, '(o)': 2, '(i)': 1 }) : '';
    return `E${roundness}${odd}`;
  }
  const odd = rng.next() < 0.1 ? pickWeighted(rng, { '(r)': 3, '(l)': 1, '(d)': 1, '(i)': 1, '(o)': 2, '(m)': 2 }) : '';
  if (rng.next() < 0.2) return `Se${pickWeighted(rng, { r: 45, b: 20, n: 35 })}${odd}`;
  const bar = rng.next() < 0.3 ? 'B' : '';
  const bulge = pickWeighted(rng, { a: 10, b: 35, c: 40, d: 15 });
  if (rng.next() < 0.28) return `S${bar}${bulge}${odd}`;
  const arms = pickWeighted(rng, { '1': 5, '2': 55, '3': 14, '4': 7, '+': 5, '?': 14 });
  const winding = pickWeighted(rng, { t: 30, m: 45, l: 25 });
  return `S${bar}${bulge}${arms}${winding}${odd}`;
}

const ellipticalPattern = /^E([ric])(\([a-z]\))?$/;
const edgeOnPattern = /^Se([rbn])(\([a-z]\))?$/;
const diskPattern = /^S(B?)([a-d])(?:([1-4+?])([tml]))?(\([a-z]\))?$/;

/** Reads a class string written by `sampleGz2Class`; throws on anything else (a programming error). */
export function parseGz2Class(gz2class: string): Morphology {
  if (gz2class === 'A') return { kind: 'artifact' };
  let m = ellipticalPattern.exec(gz2class);
  if (m) return { kind: 'elliptical', roundness: m[1] as Roundness, odd: m[2] ?? null };
  m = edgeOnPattern.exec(gz2class);
  if (m) return { kind: 'spiral', edgeOn: true, bulge: m[1] as EdgeOnBulge, odd: m[2] ?? null };
  m = diskPattern.exec(gz2class);
  if (m) {
    const arms = m[3] === undefined ? null : m[3] === '+' || m[3] === '?' ? m[3] : (Number(m[3]) as 1 | 2 | 3 | 4);
    return {
      kind: 'spiral',
      edgeOn: false,
      barred: m[1] === 'B',
      bulge: m[2] as BulgeProminence,
      arms,
      winding: (m[4] as Winding | undefined) ?? null,
      odd: m[5] ?? null,
    };
  }
  throw new Error(`synth: unexpected gz2 class string ${JSON.stringify(gz2class)}`);
}
