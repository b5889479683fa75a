import * as tf from '@tensorflow/tfjs';
import { runOriginal } from './originals.ts';
import type { WasmBackend } from './wasm-primitives.ts';

/**
 * MaxPoolGrad for the non-overlapping pools CNNs use (window = stride, no padding, e.g. the
 * notebook's 2x2/2): each dy value goes to the first maximum of its window, like the cpu backend
 * and TensorFlow. Other pool geometries use the backend's own kernel.
 *
 * This is the one documented exception to "no JavaScript loops over pixels": no wasm primitive
 * routes a gradient to a first-argmax (MaxPoolWithArgmax costs as much as the C MaxPoolGrad, and
 * masked formulations need 5-D Slice/broadcast Equal, which the wasm backend runs in slow
 * generic paths). A single pass over Float32Array views of the wasm heap is several times faster
 * than the backend's C MaxPoolGrad; measured numbers are in docs/backends.md.
 */


export function maxPoolGrad(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const backend = args.backend as unknown as WasmBackend;
  const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const attrs = args.attrs as { filterSize: number | [number, number]; strides: number | [number, number]; pad: unknown; dimRoundingMode?: string };
  const [fh, fw] = typeof attrs.filterSize === 'number' ? [attrs.filterSize, attrs.filterSize] : attrs.filterSize;
  const [sh, sw] = typeof attrs.strides === 'number' ? [attrs.strides, attrs.strides] : attrs.strides;
  const [n, h, w, c] = input.shape as [number, number, number, number];
  const [, oh, ow] = dy.shape as [number, number, number, number];
  const tiles = fh === sh && fw === sw && attrs.pad === 'valid' && oh === Math.floor(h / fh) && ow === Math.floor(w / fw);
  if (!tiles || input.dtype !== 'float32') {
    return runOriginal('MaxPoolGrad', args);
  }
  const dx = backend.makeOutput([n, h, w, c], 'float32');
  // Views are taken after every allocation: a heap growth would detach them.
  const x = backend.typedArrayFromHeap(input) as Float32Array;
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  const out = backend.typedArrayFromHeap(dx) as Float32Array;
  out.fill(0);
  const rowStride = w * c;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        const corner = ((b * h + i * fh) * w + j * fw) * c;
        const o = ((b * oh + i) * ow + j) * c;
        for (let ch = 0; ch < c; ch++) {
          let best = corner + ch;
          let max = x[best]!;
          for (let u = 0; u < fh; u++) {
            for (let v = 0; v < fw; v++) {
              const p = corner + u * rowStride + v * c + ch;
              const value = x[p]!;
              if (value > max) { max = value; best = p; } // strict: the first maximum wins
            }
          }
          out[best] = out[best]! + g[o + ch]!;
        }
      }
    }
  }
  return dx;
}
