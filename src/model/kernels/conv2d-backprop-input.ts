import * as tf from '@tensorflow/tfjs';
import { convGeometry } from './conv-geometry.ts';
import { convolve, pad, release, reshape, reverse, slice, transpose, type WasmBackend } from './wasm-primitives.ts';

/**
 * dx = conv(dy dilated by the stride, filter flipped in space with in/out channels swapped),
 * with "full" padding (k-1-p on top/left). XNNPACK takes the asymmetric padding directly, so no
 * padded copy of dy is made; for stride > 1 the zeros between dy pixels are inserted with one
 * Pad of a reshaped view (no JS loop).
 */
export function conv2DBackpropInput({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const wasm = backend as unknown as WasmBackend;
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const inputShape = attrs!.inputShape as [number, number, number, number];
  const g = convGeometry('Conv2DBackpropInput', inputShape, filter.shape, attrs as never);
  const [n, outH, outW, cout] = dy.shape as [number, number, number, number];

  let dilated = dy;
  if (g.strideHeight > 1 || g.strideWidth > 1) {
    const view = reshape(wasm, dy, [n, outH, 1, outW, 1, cout]);
    const spread = pad(wasm, view, [
      [0, 0],
      [0, 0],
      [0, g.strideHeight - 1],
      [0, 0],
      [0, g.strideWidth - 1],
      [0, 0],
    ]);
    release(wasm, view);
    dilated = reshape(wasm, spread, [n, outH * g.strideHeight, outW * g.strideWidth, cout]);
    release(wasm, spread);
  }
  const flipped = reverse(wasm, filter, [0, 1]);
  const swapped = transpose(wasm, flipped, [0, 1, 3, 2]); // [kh, kw, Cout, Cin]
  release(wasm, flipped);

  // Output row y reads dilated rows y - top .. y - top + kh - 1 with top = kh - 1 - padTop.
  const [dilH, dilW] = [dilated.shape[1]!, dilated.shape[2]!];
  const wantTop = g.filterHeight - 1 - g.padTop;
  const wantLeft = g.filterWidth - 1 - g.padLeft;
  const top = Math.max(0, wantTop);
  const left = Math.max(0, wantLeft);
  const cropTop = top - wantTop; // > 0 only when the forward padding exceeded k - 1
  const cropLeft = left - wantLeft;
  const bottom = Math.max(0, g.inHeight + cropTop - top + g.filterHeight - 1 - dilH);
  const right = Math.max(0, g.inWidth + cropLeft - left + g.filterWidth - 1 - dilW);
  const full = convolve(wasm, dilated, swapped, {
    strides: [1, 1],
    dilations: [1, 1],
    pads: [top, right, bottom, left],
  });
  release(wasm, swapped);
  if (dilated !== dy) release(wasm, dilated);
  if (cropTop === 0 && cropLeft === 0 && full.shape[1] === g.inHeight && full.shape[2] === g.inWidth) return full;
  const dx = slice(wasm, full, [0, cropTop, cropLeft, 0], [n, g.inHeight, g.inWidth, g.inChannels]);
  release(wasm, full);
  return dx;
}
