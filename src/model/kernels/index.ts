import * as tf from '@tensorflow/tfjs';
import { conv2DBackpropFilter } from './conv2d-backprop-filter.ts';
import { conv2DBackpropInput } from './conv2d-backprop-input.ts';

/**
 * galactic's training kernels for tfjs-backend-wasm 4.22, which has no Conv2DBackpropFilter and a
 * slow scalar Conv2DBackpropInput. Each is a composition of the backend's compiled kernels.
 */
export const WASM_TRAINING_KERNELS: { kernelName: string; kernelFunc: tf.KernelFunc }[] = [
  { kernelName: 'Conv2DBackpropFilter', kernelFunc: conv2DBackpropFilter as tf.KernelFunc },
  { kernelName: 'Conv2DBackpropInput', kernelFunc: conv2DBackpropInput as tf.KernelFunc },
];

const tagged = new WeakSet<tf.KernelFunc>(WASM_TRAINING_KERNELS.map((k) => k.kernelFunc));

/** Registers (or replaces) the project's kernels on the 'wasm' backend; idempotent. */
export function registerWasmTrainingKernels(): void {
  for (const { kernelName, kernelFunc } of WASM_TRAINING_KERNELS) {
    const existing = tf.getKernel(kernelName, 'wasm');
    if (existing && tagged.has(existing.kernelFunc)) continue;
    if (existing) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
  }
}
