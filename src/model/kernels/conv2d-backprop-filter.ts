import * as tf from '@tensorflow/tfjs';
import { convGeometry, type ConvGeometry } from './conv-geometry.ts';
import {
  add,
  convolve,
  pad,
  release,
  reshape,
  runWasmKernel,
  slice,
  transpose,
  type WasmBackend,
} from './wasm-primitives.ts';

/**
 * dW[kh,kw,ci,co] = Σ_{n,i,j} x[n, i·s + kh − pt, j·s + kw − pl, ci] · dy[n,i,j,co]. At stride 1
 * it is computed as one matrix product of shifted rows (asShiftedProducts); at other strides as a
 * convolution: x as [Cin, H, W, N] (the examples become channels) convolved with dy as
 * [H', W', N, Cout] for filter; the forward stride becomes the filter's dilation; the output
 * [Cin, kh, kw, Cout] is transposed to [kh, kw, Cin, Cout]. All arithmetic runs in XNNPACK.
 * (The mirror arrangement, x as the filter, packs a smaller filter but was slower in the
 * notebook's first layer, where it leaves XNNPACK only Cin = 3 output channels.)
 */
export function conv2DBackpropFilterWith(chunking: FilterGradientChunking): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const wasm = backend as unknown as WasmBackend;
    const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const filterShape = attrs!.filterShape as [number, number, number, number];
    const g = convGeometry('Conv2DBackpropFilter', x.shape, filterShape, attrs as never);
    if (g.strideHeight === 1 && g.strideWidth === 1) return asShiftedProducts(wasm, x, dy, g, chunking.matrixBytes);
    return withDyAsFilter(wasm, x, dy, g, chunking.filterBytes);
  };
}

/** How the gradient is cut into pieces; smaller pieces give the same result (tests cut small inputs finely). */
export interface FilterGradientChunking {
  /** Stride 1: rows of the shifted-input matrix per matrix product bound its copy (9·Cin·rows floats) to this. */
  matrixBytes: number;
  /** Other strides: bytes of filter per band, small enough for its packed copy to stay in a core's L2 cache. */
  filterBytes: number;
}

export const DEFAULT_FILTER_GRADIENT_CHUNKING: Readonly<FilterGradientChunking> = Object.freeze({
  matrixBytes: 64 * 1024 * 1024,
  filterBytes: 1024 * 1024,
});

/** The kernel galactic registers. */
export const conv2DBackpropFilter = conv2DBackpropFilterWith(DEFAULT_FILTER_GRADIENT_CHUNKING);

/**
 * Stride 1: dW[kh,kw,ci,co] = Σ_m x̃[ci, m + kh·W̃ + kw] · dỹ[m, co], where x̃ is the (padded)
 * input with its channels as rows and every pixel of every image as one long row of M = N·H̃·W̃,
 * and dỹ is dy placed on the same H̃×W̃ grid (zeros where no output pixel sits). So dW is ONE
 * matrix product of the 9 shifted copies of x̃'s rows, [kh·kw·Cin, M], with dỹ, [M, Cout]; a shift
 * that runs into the next image only meets dỹ's zero rows. XNNPACK's GEMM reaches 2-3x the
 * throughput of the convolution formulation on this reduction (a huge kernel over few output
 * pixels) and splits across threads well. Built from memcpy-speed row copies and Pad.
 */
function asShiftedProducts(
  wasm: WasmBackend,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  g: ConvGeometry,
  matrixBytes: number,
): tf.TensorInfo {
  const { batch: n, inChannels: cin, outChannels: cout, filterHeight: kh, filterWidth: kw } = g;
  // The grid: the input with the forward pass's padding, tall and wide enough for every shift.
  const height = Math.max(g.inHeight + g.padTop, g.outHeight + kh - 1);
  const width = Math.max(g.inWidth + g.padLeft, g.outWidth + kw - 1);
  const padded =
    g.padTop === 0 && g.padLeft === 0 && height === g.inHeight && width === g.inWidth
      ? x
      : pad(wasm, x, [
          [0, 0],
          [g.padTop, height - g.inHeight - g.padTop],
          [g.padLeft, width - g.inWidth - g.padLeft],
          [0, 0],
        ]);
  const rowsOfX = transpose(wasm, padded, [3, 0, 1, 2]); // [Cin, N, H̃, W̃]: one row of M per channel
  if (padded !== x) release(wasm, padded);
  const dyGrid = pad(wasm, dy, [
    [0, 0],
    [0, height - g.outHeight],
    [0, width - g.outWidth],
    [0, 0],
  ]);
  const m = n * height * width;
  const dyRows = reshape(wasm, dyGrid, [m, cout]);
  release(wasm, dyGrid);

  const products = kh * kw * cin;
  const chunkRows = Math.max(1, Math.floor(matrixBytes / (4 * products)));
  let total: tf.TensorInfo | null = null;
  for (let m0 = 0; m0 < m; m0 += chunkRows) {
    const rows = Math.min(chunkRows, m - m0);
    const shifted = wasm.makeOutput([products, rows], 'float32');
    // Views after the allocation: it may have grown the heap.
    const source = wasm.typedArrayFromHeap(rowsOfX) as Float32Array;
    const target = wasm.typedArrayFromHeap(shifted) as Float32Array;
    for (let r = 0, i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const from = m0 + i * width + j;
        const copied = Math.max(0, Math.min(rows, m - from));
        for (let c = 0; c < cin; c++, r++) {
          target.set(source.subarray(c * m + from, c * m + from + copied), r * rows);
          // past the last pixel only zero rows of dỹ remain, but the heap is not zeroed
          if (copied < rows) target.fill(0, r * rows + copied, (r + 1) * rows);
        }
      }
    }
    const dyChunk = rows === m ? dyRows : slice(wasm, dyRows, [m0, 0], [rows, cout]);
    const partial = runWasmKernel(
      wasm,
      'BatchMatMul',
      { a: shifted, b: dyChunk },
      { transposeA: false, transposeB: false },
    );
    release(wasm, shifted);
    if (dyChunk !== dyRows) release(wasm, dyChunk);
    total = addInto(wasm, total, partial);
  }
  release(wasm, rowsOfX, dyRows);
  const dW = reshape(wasm, total!, [kh, kw, cin, cout]);
  release(wasm, total!);
  return dW;
}

function withDyAsFilter(
  wasm: WasmBackend,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  g: ConvGeometry,
  filterBytes: number,
): tf.TensorInfo {
  const xT = transpose(wasm, x, [3, 1, 2, 0]); // [Cin, H, W, N]
  const dyT = transpose(wasm, dy, [1, 2, 0, 3]); // [H', W', N, Cout]
  // Columns the forward pass read right of the input are zeros: pad just enough for kw outputs
  // (a surplus column from rounding is sliced off below).
  const padRight = Math.max(0, g.filterWidth - 1 + (g.outWidth - 1) * g.strideWidth + 1 - g.inWidth - g.padLeft);
  const grad = bandedConvolution(wasm, xT, dyT, filterBytes, {
    dilations: [g.strideHeight, g.strideWidth],
    top: g.padTop,
    left: g.padLeft,
    right: padRight,
    outHeight: g.filterHeight,
  }); // [Cin, kh, >=kw, Cout]
  release(wasm, xT, dyT);
  let exact = grad;
  if (grad.shape[2] !== g.filterWidth) {
    exact = slice(wasm, grad, [0, 0, 0, 0], [g.inChannels, g.filterHeight, g.filterWidth, g.outChannels]);
    release(wasm, grad);
  }
  const dW = transpose(wasm, exact, [1, 2, 0, 3]); // [kh, kw, Cin, Cout]
  release(wasm, exact);
  return dW;
}

/**
 * A stride-1 convolution whose output has `outHeight` rows, computed band by band over the
 * filter's rows and summed. The reduction is over the filter's whole extent, so XNNPACK's packed
 * filter would be re-read from memory for every tile of the few output pixels; a band whose
 * filter fits in cache keeps those loops in cache. Each band reads only the input rows it touches
 * (sliced out), and padding outside the input is passed to XNNPACK, never materialised.
 */
function bandedConvolution(
  wasm: WasmBackend,
  input: tf.TensorInfo,
  filter: tf.TensorInfo,
  filterBytes: number,
  conv: { dilations: [number, number]; top: number; left: number; right: number; outHeight: number },
): tf.TensorInfo {
  const [batch, h, w, channels] = input.shape as [number, number, number, number];
  const [fh, fw, , outChannels] = filter.shape as [number, number, number, number];
  const [dh] = conv.dilations;
  const rowsPerBand = Math.max(1, Math.floor(filterBytes / (fw * channels * outChannels * 4)));
  let total: tf.TensorInfo | null = null;
  for (let r0 = 0; r0 < fh; r0 += rowsPerBand) {
    const rows = Math.min(rowsPerBand, fh - r0);
    // Input rows this band reads (unpadded coordinates): outHeight + (rows−1)·dh from here.
    const first = r0 * dh - conv.top;
    const last = first + (rows - 1) * dh + conv.outHeight; // exclusive
    const from = Math.max(0, first);
    const to = Math.min(h, last);
    if (to <= from) continue; // the band only meets padding: it adds nothing
    const band = rows === fh ? filter : slice(wasm, filter, [r0, 0, 0, 0], [rows, fw, channels, outChannels]);
    const inputRows =
      from === 0 && to === h ? input : slice(wasm, input, [0, from, 0, 0], [batch, to - from, w, channels]);
    const partial = convolve(wasm, inputRows, band, {
      strides: [1, 1],
      dilations: conv.dilations,
      pads: [from - first, conv.right, last - to, conv.left],
    });
    if (band !== filter) release(wasm, band);
    if (inputRows !== input) release(wasm, inputRows);
    total = addInto(wasm, total, partial);
  }
  if (total === null) throw new Error('bandedConvolution: every band fell into padding');
  return total;
}

/** The running sum of partial gradients: the first partial, then each added (the inputs released). */
function addInto(wasm: WasmBackend, total: tf.TensorInfo | null, partial: tf.TensorInfo): tf.TensorInfo {
  if (total === null) return partial;
  const sum = add(wasm, total, partial);
  release(wasm, total, partial);
  return sum;
}
