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
    const [r, c] = t.shape.slice(-2) as [number, number];
    const flat = reshape(backend, t, [r, c]);
    if (!flip) return flat;
    const turned = transpose(backend, flat, [1, 0]);
    release(backend, flat);
    return turned;
  };
  const multiply = (left: tf.TensorInfo, right: tf.TensorInfo) =>
    runOriginal('BatchMatMul', {
      ...args,
      inputs: { a: left, b: right },
      attrs: { ...args.attrs, transposeA: false, transposeB: false },
    });
  const size = (t: tf.TensorInfo) => t.shape.reduce((p, q) => p * q, 1);
  let product: tf.TensorInfo;
  if (transposeB && !transposeA && size(b) > size(a)) {
    // a·bᵀ = (b·aᵀ)ᵀ: transpose the small operand and the result instead of the large b
    // (the dense layer's dx = dy·Wᵀ with W [features, units]); XNNPACK packs only aᵀ.
    const left = plain(b, false);
    const right = plain(a, true);
    const flipped = multiply(left, right);
    release(backend, left, right);
    const [rows, cols] = flipped.shape.slice(-2) as [number, number];
    const flat = reshape(backend, flipped, [rows, cols]);
    release(backend, flipped);
    product = transpose(backend, flat, [1, 0]);
    release(backend, flat);
  } else {
    const left = plain(a, transposeA);
    const right = plain(b, transposeB);
    product = multiply(left, right);
    release(backend, left, right);
  }
  const outShape = [...(a.shape.length >= b.shape.length ? a.shape : b.shape).slice(0, -2), ...product.shape.slice(-2)];
  const out = reshape(backend, product, outShape);
  release(backend, product);
  return out;
}
