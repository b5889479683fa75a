import * as tf from '@tensorflow/tfjs';

/**
 * Thin access to the wasm backend's own compiled kernels, so the project's training kernels are
 * compositions of XNNPACK/C++ calls and never loop over pixels in JavaScript.
 * Every helper returns a TensorInfo that the caller must `release` unless it is the kernel's output.
 */

/** The parts of tfjs-backend-wasm's BackendWasm the project kernels use (it exports no types for them). */
export interface WasmBackend extends tf.KernelBackend {
  wasm: { cwrap(name: string, returnType: null, argTypes: string[]): (...args: number[]) => void };
  dataIdMap: { get(dataId: tf.DataId): { id: number } };
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: tf.TypedArray): tf.TensorInfo;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

export type Attrs = Record<string, unknown>;

/** Runs one of the wasm backend's registered kernels directly (no engine bookkeeping: we own the result). */
export function runWasmKernel(
  backend: WasmBackend,
  name: string,
  inputs: Record<string, tf.TensorInfo>,
  attrs: Attrs = {},
): tf.TensorInfo {
  const kernel = tf.getKernel(name, 'wasm');
  if (!kernel)
    throw new Error(`the wasm backend has no '${name}' kernel, which the project's training kernels are built on`);
  const out = kernel.kernelFunc({ inputs, backend, attrs: attrs as tf.NamedAttrMap });
  return Array.isArray(out) ? out[0]! : out;
}

export function release(backend: WasmBackend, ...infos: tf.TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

export function transpose(backend: WasmBackend, x: tf.TensorInfo, perm: number[]): tf.TensorInfo {
  return runWasmKernel(backend, 'Transpose', { x }, { perm });
}

export function reshape(backend: WasmBackend, x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return runWasmKernel(backend, 'Reshape', { x }, { shape });
}

/**
 * A box of x copied with TypedArray.set over contiguous runs of the wasm heap (memcpy speed).
 * The backend's own Slice first copies the whole input out of the heap (readSync), which made
 * a one-row slice of a 64 MB tensor cost hundreds of milliseconds.
 */
export function slice(backend: WasmBackend, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
  const shape = x.shape;
  const out = backend.makeOutput(size, x.dtype);
  // Views after the allocation: a heap growth detaches earlier ones.
  const src = heapView(backend, x);
  const dst = heapView(backend, out);
  // Trailing dimensions taken whole merge into one contiguous run.
  let runDims = shape.length;
  let run = 1;
  while (runDims > 0 && (runDims === shape.length || size[runDims] === shape[runDims])) {
    runDims--;
    run *= size[runDims]!;
    if (size[runDims] !== shape[runDims]) break;
  }
  const strides = tf.util.computeStrides(shape);
  let runStart = 0;
  for (let d = runDims; d < shape.length; d++) runStart += begin[d]! * (d < shape.length - 1 ? strides[d]! : 1);
  const outer = size.slice(0, runDims);
  const count = outer.reduce((p, q) => p * q, 1);
  const index = new Array<number>(runDims).fill(0);
  for (let r = 0; r < count; r++) {
    let offset = runStart;
    for (let d = 0; d < runDims; d++) offset += (begin[d]! + index[d]!) * strides[d]!;
    dst.set(src.subarray(offset, offset + run), r * run);
    for (let d = runDims - 1; d >= 0; d--) {
      if (++index[d]! < outer[d]!) break;
      index[d] = 0;
    }
  }
  return out;
}

function heapView(backend: WasmBackend, info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array {
  return backend.typedArrayFromHeap(info);
}

export function reverse(backend: WasmBackend, x: tf.TensorInfo, dims: number[]): tf.TensorInfo {
  return runWasmKernel(backend, 'Reverse', { x }, { dims });
}

export function add(backend: WasmBackend, a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
  return runWasmKernel(backend, 'Add', { a, b });
}

export function pad(backend: WasmBackend, x: tf.TensorInfo, paddings: [number, number][]): tf.TensorInfo {
  return runWasmKernel(backend, 'PadV2', { x }, { paddings, constantValue: 0 });
}

export interface ExplicitConv {
  strides: [number, number];
  dilations: [number, number];
  /** top, right, bottom, left; any non-negative values (XNNPACK supports asymmetric padding). */
  pads: [number, number, number, number];
}

const convFunctions = new WeakMap<WasmBackend, (...args: number[]) => void>();

/**
 * The backend's XNNPACK Conv2D with explicit, asymmetric padding (tfjs's Conv2D kernel only
 * passes 'same'/'valid'/symmetric numbers). x: [N,H,W,Cin], filter: [fh,fw,Cin,Cout], NHWC.
 */
export function convolve(
  backend: WasmBackend,
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  conv: ExplicitConv,
): tf.TensorInfo {
  let fn = convFunctions.get(backend);
  if (!fn) {
    // Same signature as tfjs-backend-wasm's own Conv2D setup (19 numbers).
    fn = backend.wasm.cwrap('Conv2D', null, new Array<string>(19).fill('number'));
    convFunctions.set(backend, fn);
  }
  const [n, h, w, cin] = x.shape as [number, number, number, number];
  const [fh, fw, fcin, cout] = filter.shape as [number, number, number, number];
  if (fcin !== cin) throw new Error(`convolve: input has ${cin} channels but the filter expects ${fcin}`);
  const [top, right, bottom, left] = conv.pads;
  const [sh, sw] = conv.strides;
  const [dh, dw] = conv.dilations;
  const outH = Math.floor((h + top + bottom - ((fh - 1) * dh + 1)) / sh) + 1;
  const outW = Math.floor((w + left + right - ((fw - 1) * dw + 1)) / sw) + 1;
  if (outH < 1 || outW < 1) throw new Error(`convolve: empty output ${outH}x${outW}`);
  const out = backend.makeOutput([n, outH, outW, cout], 'float32');
  const id = (t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId).id;
  fn(
    id(x),
    n,
    h,
    w,
    id(filter),
    fh,
    fw,
    top,
    right,
    bottom,
    left,
    /* isSamePad */ 0,
    dh,
    dw,
    sh,
    sw,
    cin,
    cout,
    id(out),
  );
  return out;
}
