import * as tf from '@tensorflow/tfjs';
import { runOriginal } from './originals.ts';
import { reshape, release, runWasmKernel, type WasmBackend } from './wasm-primitives.ts';

/**
 * Sum over the leading axes (a conv layer's bias gradient: dy [N,H,W,C] summed to [C]) through
 * XNNPACK's average pooling (then scaled back by the window size); the backend's Sum first
 * transposes the reduced axes to the end in a slow generic pass. Other reductions use its Sum.
 * (A ones·dy matrix product was tried: XNNPACK re-packs dy as weights on every call.)
 */
export function sum(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const backend = args.backend as unknown as WasmBackend;
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
  const leading = axes.length > 0 && axes.length < rank && axes.every((value, index) => value === index);
  const outer = x.shape.slice(0, axes.length).reduce((p, q) => p * q, 1);
  const inner = x.shape.slice(axes.length).reduce((p, q) => p * q, 1);
  if (!leading || x.dtype !== 'float32' || outer < 1024) return runOriginal('Sum', args);
  // XNNPACK average pooling over the reduced block, then times its size: [d0, rest, 1, inner]
  // pooled with a [rest, 1] window leaves [d0, inner], whose small leading sum the backend does.
  const d0 = axes.length > 1 ? x.shape[0]! : 1;
  const rest = outer / d0;
  const view = reshape(backend, x, [d0, rest, 1, inner]);
  const pooled = runWasmKernel(
    backend,
    'AvgPool',
    { x: view },
    { filterSize: [rest, 1], strides: [1, 1], pad: 'valid' },
  );
  release(backend, view);
  const rows = reshape(backend, pooled, [d0, inner]);
  release(backend, pooled);
  const summed =
    d0 > 1
      ? runOriginal('Sum', { inputs: { x: rows }, backend: args.backend, attrs: { axis: 0, keepDims: false } })
      : rows;
  if (summed !== rows) release(backend, rows);
  const scale = backend.makeOutput([], 'float32', undefined, new Float32Array([rest]));
  const product = runWasmKernel(backend, 'Multiply', { a: summed, b: scale });
  release(backend, summed, scale);
  const outShape = keepDims ? x.shape.map((d, i) => (i < axes.length ? 1 : d)) : x.shape.slice(axes.length);
  const out = reshape(backend, product, outShape);
  release(backend, product);
  return out;
}
