import * as tf from '@tensorflow/tfjs';
import { runOriginal } from './originals.ts';
import { reshape, release, transpose, type WasmBackend } from './wasm-primitives.ts';

/**
 * tfjs-backend-wasm sends a BatchMatMul with transposeA or transposeB to a scalar C loop, but a
 * plain one to XNNPACK. The dense layer's gradients are exactly those transposed products
 * (dW = xᵀ·dy, dx = dy·Wᵀ), about 10x slower than the forward pass. Transposing the operand
 * explicitly (a fast 2-D Transpose) and multiplying without flags gives the same numbers.
 */
export function batchMatMul(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const backend = args.backend as unknown as WasmBackend;
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  const single = (t: tf.TensorInfo) => t.shape.slice(0, -2).every((d) => d === 1);
  if ((!transposeA && !transposeB) || !single(a) || !single(b) || a.dtype !== 'float32' || b.dtype !== 'float32') {
    return runOriginal('BatchMatMul', args);
  }
  const plain = (t: tf.TensorInfo, flip: boolean): tf.TensorInfo => {
    if (!flip) return t;
    const [r, c] = t.shape.slice(-2) as [number, number];
    const flat = reshape(backend, t, [r, c]);
    const turned = transpose(backend, flat, [1, 0]);
    release(backend, flat);
    return turned;
  };
  const a2 = plain(a, transposeA);
  const b2 = plain(b, transposeB);
  const out = runOriginal('BatchMatMul', { ...args, inputs: { a: a2, b: b2 }, attrs: { ...args.attrs, transposeA: false, transposeB: false } });
  if (a2 !== a) release(backend, a2);
  if (b2 !== b) release(backend, b2);
  return out;
}
