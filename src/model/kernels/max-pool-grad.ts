import * as tf from '@tensorflow/tfjs';
import type { WasmBackend } from './wasm-primitives.ts';

/**
 * MaxPoolGrad: each dy value goes to the first maximum of its window (row-major, padding
 * skipped), exactly like the cpu backend and TensorFlow; overlapping windows add up.
 *
 * This is the one documented exception to "no JavaScript loops over pixels": no wasm primitive
 * routes a gradient to a first-argmax. The backend's own C MaxPoolGrad is 3x slower on the
 * notebook's pools and disagrees with cpu on ties and on 'same' padding (tests show it);
 * MaxPoolWithArgmax costs as much as that C kernel before any scatter; masked formulations need
 * 5-D Slice and broadcast Equal, which the wasm backend runs in generic JavaScript. One pass over
 * Float32Array views of the wasm heap, with no allocation inside, is the fastest option measured
 * (figures in docs/backends.md).
 */
export function maxPoolGrad(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const backend = args.backend as unknown as WasmBackend;
  const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const attrs = args.attrs as {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: 'valid' | 'same' | number;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;

  const dx = backend.makeOutput([n, h, w, c], 'float32');
  // Views are taken after every allocation: a heap growth would detach them.
  const x = backend.typedArrayFromHeap(input) as Float32Array;
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  const out = backend.typedArrayFromHeap(dx) as Float32Array;
  out.fill(0);
  const rowStride = w * c;
  if (fh === 2 && fw === 2 && sh === 2 && sw === 2 && padTop === 0 && padLeft === 0 && oh * 2 <= h && ow * 2 <= w) {
    routePairs(x, g, out, n, h, oh, ow, c, rowStride);
    return dx;
  }
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      const r0 = Math.max(0, i * sh - padTop);
      const r1 = Math.min(h, i * sh - padTop + fh);
      for (let j = 0; j < ow; j++) {
        const c0 = Math.max(0, j * sw - padLeft);
        const c1 = Math.min(w, j * sw - padLeft + fw);
        const o = ((b * oh + i) * ow + j) * c;
        const corner = (b * h + r0) * rowStride + c0 * c;
        for (let ch = 0; ch < c; ch++) {
          let best = -1;
          let max = -Infinity;
          for (let r = r0, rowBase = corner + ch; r < r1; r++, rowBase += rowStride) {
            for (let col = c0, p = rowBase; col < c1; col++, p += c) {
              const value = x[p]!;
              if (value > max) {
                max = value;
                best = p;
              } // strict: the first maximum wins
            }
          }
          if (best >= 0) out[best] = out[best]! + g[o + ch]!;
        }
      }
    }
  }
  return dx;
}

/** The notebook's 2x2/2 pool unrolled: four comparisons in window order, first maximum wins. */
function routePairs(
  x: Float32Array,
  g: Float32Array,
  out: Float32Array,
  n: number,
  h: number,
  oh: number,
  ow: number,
  c: number,
  rowStride: number,
): void {
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      let top = (b * h + 2 * i) * rowStride;
      let o = (b * oh + i) * ow * c;
      for (let j = 0; j < ow; j++, top += 2 * c) {
        const bottom = top + rowStride;
        for (let ch = 0; ch < c; ch++, o++) {
          const p00 = top + ch;
          const p01 = p00 + c;
          const p10 = bottom + ch;
          const p11 = p10 + c;
          let best = p00;
          let max = x[p00]!;
          if (x[p01]! > max) {
            max = x[p01]!;
            best = p01;
          }
          if (x[p10]! > max) {
            max = x[p10]!;
            best = p10;
          }
          if (x[p11]! > max) best = p11;
          out[best] = g[o]!;
        }
      }
    }
  }
}
