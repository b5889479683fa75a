import assert from 'node:assert/strict';

/**
 * The kernel tests' error measure: max |candidate − reference| / max |reference| (relative to the
 * largest reference value, so near-zero elements do not blow it up).
 */
export function relativeError(candidate: ArrayLike<number>, reference: ArrayLike<number>): number {
  assert.equal(candidate.length, reference.length, 'same number of elements');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < reference.length; i++) {
    diff = Math.max(diff, Math.abs(candidate[i]! - reference[i]!));
    scale = Math.max(scale, Math.abs(reference[i]!));
  }
  return diff / Math.max(scale, 1e-12);
}
