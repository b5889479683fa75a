import * as tf from '@tensorflow/tfjs';
import { convGeometry } from './conv-geometry.ts';
import { convolve, release, slice, transpose, type WasmBackend } from './wasm-primitives.ts';

/**
 * dW[kh,kw,ci,co] = Σ_{n,i,j} x[n, i·s + kh - pt, j·s + kw - pl, ci] · dy[n,i,j,co]
 * is itself a convolution: treat x as a batch of Cin one-"pixel-plane" images whose channels are
 * the N examples ([Cin,H,W,N]) and dy as a filter [H',W',N,Cout]; the forward stride becomes the
 * filter dilation and the output [Cin,kh,kw,Cout] is transposed back to [kh,kw,Cin,Cout].
 * All arithmetic runs in XNNPACK's convolution; JS only does index bookkeeping.
 */
export function conv2DBackpropFilter({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const wasm = backend as unknown as WasmBackend;
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const filterShape = attrs!.filterShape as [number, number, number, number];
  const g = convGeometry('Conv2DBackpropFilter', x.shape, filterShape, attrs as never);

  const xT = transpose(wasm, x, [3, 1, 2, 0]); // [Cin, H, W, N]
  const dyT = transpose(wasm, dy, [1, 2, 0, 3]); // [H', W', N, Cout]
  // Rows the forward pass read below/right of the input are zeros: pad just enough for kh outputs
  // (a surplus row or column from rounding is sliced off below).
  const padBottom = Math.max(0, g.filterHeight - 1 + (g.outHeight - 1) * g.strideHeight + 1 - g.inHeight - g.padTop);
  const padRight = Math.max(0, g.filterWidth - 1 + (g.outWidth - 1) * g.strideWidth + 1 - g.inWidth - g.padLeft);
  const grad = convolve(wasm, xT, dyT, {
    strides: [1, 1],
    dilations: [g.strideHeight, g.strideWidth],
    pads: [g.padTop, padRight, padBottom, g.padLeft],
  }); // [Cin, >=kh, >=kw, Cout]
  release(wasm, xT, dyT);
  let exact = grad;
  if (grad.shape[1] !== g.filterHeight || grad.shape[2] !== g.filterWidth) {
    exact = slice(wasm, grad, [0, 0, 0, 0], [g.inChannels, g.filterHeight, g.filterWidth, g.outChannels]);
    release(wasm, grad);
  }
  const dW = transpose(wasm, exact, [1, 2, 0, 3]); // [kh, kw, Cin, Cout]
  release(wasm, exact);
  return dW;
}
