import * as tf from '@tensorflow/tfjs';

/**
 * The wasm backend's own kernels that galactic's kernels replace but still fall back on
 * (unusual geometries) or build on. Kept with their setup, which must run once per backend
 * instance before the kernel is callable.
 */
const originals = new Map<string, tf.KernelConfig>();
const prepared = new Map<string, WeakSet<object>>();

export function rememberOriginal(config: tf.KernelConfig): void {
  if (!originals.has(config.kernelName)) originals.set(config.kernelName, config);
}

export function runOriginal(kernelName: string, args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const config = originals.get(kernelName);
  if (!config) throw new Error(`the wasm backend has no '${kernelName}' kernel to fall back on`);
  let done = prepared.get(kernelName);
  if (!done) prepared.set(kernelName, (done = new WeakSet()));
  if (!done.has(args.backend)) {
    config.setupFunc?.(args.backend);
    done.add(args.backend);
  }
  const out = config.kernelFunc(args);
  return Array.isArray(out) ? out[0]! : out;
}
