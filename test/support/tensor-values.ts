import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';

/**
 * What the kernel tests compare across backends: a result's values and shape, inputs made the
 * same way for every backend, and one error measure.
 */
export interface Values {
  data: Float32Array;
  shape: number[];
}

/** Random values made on cpu (so every backend gets the same numbers); quantised ones make exact ties. */
export function randomValues(shape: number[], seed: number, quantize = false): Values {
  tf.setBackend('cpu');
  return tf.tidy(() => {
    let t = tf.randomNormal(shape, 0, 1, 'float32', seed);
    // ties as flat image regions give them, which MaxPoolGrad must route like cpu
    if (quantize) t = tf.round(tf.relu(t).mul(2));
    return { data: t.dataSync() as Float32Array, shape };
  });
}

/** Runs `op` on fresh tensors on `backend` and returns the result's values and shape. */
export function valuesOn(backend: string, op: () => tf.Tensor): Values {
  tf.setBackend(backend);
  return tf.tidy(() => {
    const out = op();
    return { data: out.dataSync() as Float32Array, shape: out.shape };
  });
}

/**
 * max |candidate − reference| / max |reference| (relative to the largest reference value, so
 * near-zero elements do not blow it up).
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
