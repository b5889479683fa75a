import * as tf from '@tensorflow/tfjs';
import { convGeometry, type ConvGeometry } from './conv-geometry.ts';
import { add, convolve, release, slice, transpose, type WasmBackend } from './wasm-primitives.ts';

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
  const grad = accumulateOverRowChunks(wasm, xT, dyT, g);
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

/** Bytes of dy (as a filter) per chunk: small enough to stay in a core's L2 cache. */
export const chunking = { filterBytes: 1024 * 1024 };

/**
 * The reduction of this "convolution" runs over H'·W'·N, so XNNPACK's packed filter (dy) is huge
 * and is re-read from memory for every tile of the few output pixels. Splitting dy into bands of
 * rows (each band a filter that fits in cache) and summing the partial gradients keeps the inner
 * loops in cache; only the input rows a band touches are sliced out of xT.
 */
function accumulateOverRowChunks(wasm: WasmBackend, xT: tf.TensorInfo, dyT: tf.TensorInfo, g: ConvGeometry): tf.TensorInfo {
  const [cin, h, w, n] = xT.shape as [number, number, number, number];
  const [oh, ow, , cout] = dyT.shape as [number, number, number, number];
  const rowBytes = ow * n * cout * 4;
  const rowsPerChunk = Math.max(1, Math.floor(chunking.filterBytes / rowBytes));
  // Columns the forward pass read right of the input are zeros: pad just enough for kw outputs.
  const padRight = Math.max(0, g.filterWidth - 1 + (ow - 1) * g.strideWidth + 1 - w - g.padLeft);
  let total: tf.TensorInfo | null = null;
  for (let r0 = 0; r0 < oh; r0 += rowsPerChunk) {
    const rows = Math.min(rowsPerChunk, oh - r0);
    // Padded-input rows this band reads: from r0·s - padTop, spanning (rows-1)·s + kh rows.
    const first = r0 * g.strideHeight - g.padTop;
    const last = first + (rows - 1) * g.strideHeight + g.filterHeight; // exclusive
    const from = Math.max(0, first);
    const to = Math.min(h, last);
    const band = rows === oh ? dyT : slice(wasm, dyT, [r0, 0, 0, 0], [rows, ow, n, cout]);
    const input = from === 0 && to === h ? xT : slice(wasm, xT, [0, from, 0, 0], [cin, to - from, w, n]);
    const partial = convolve(wasm, input, band, {
      strides: [1, 1],
      dilations: [g.strideHeight, g.strideWidth],
      pads: [from - first, padRight, last - to, g.padLeft],
    }); // [Cin, kh, >=kw, Cout]
    if (band !== dyT) release(wasm, band);
    if (input !== xT) release(wasm, input);
    if (total === null) {
      total = partial;
    } else {
      const sum = add(wasm, total, partial);
      release(wasm, total, partial);
      total = sum;
    }
  }
  return total!;
}
