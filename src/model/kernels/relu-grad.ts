import type * as tf from '@tensorflow/tfjs';
import type { WasmBackend } from './wasm-primitives.ts';

/** Bits of +Infinity as a float32: a positive x's bits lie in (0, this]; NaNs with sign 0 above it. */
const POSITIVE_INFINITY_BITS = 0x7f800000;

/**
 * ReluGrad (TensorFlow's op of that name): dx = dy where x > 0, else 0 (x = NaN gives 0), in
 * one pass over the wasm heap. tfjs's own ReLU gradient is Step, Cast and Multiply: three passes
 * and two temporaries the size of the activation (64 MB each in the notebook's first conv).
 * The test runs on the float's bits: with a branch, the ~50% of positive activations made the
 * loop 3x slower (mispredictions). See src/model/relu-gradient.ts for how the gradient gets here.
 */
export function reluGrad(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const backend = args.backend as unknown as WasmBackend;
  const { dy, x } = args.inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
  const dx = backend.makeOutput(x.shape, 'float32');
  // Views after the allocation: a heap growth detaches earlier ones.
  const g = bits(backend.typedArrayFromHeap(dy));
  const v = bits(backend.typedArrayFromHeap(x));
  const out = bits(backend.typedArrayFromHeap(dx));
  for (let i = 0; i < out.length; i++) {
    const b = v[i]!;
    // Both factors are negative exactly when 0 < b <= +Infinity's bits, i.e. x > 0.
    out[i] = g[i]! & (((0 - b) & (b - (POSITIVE_INFINITY_BITS + 1))) >> 31);
  }
  return dx;
}

function bits(view: Float32Array | Int32Array | Uint8Array): Int32Array {
  return new Int32Array(view.buffer, view.byteOffset, view.byteLength >> 2);
}
