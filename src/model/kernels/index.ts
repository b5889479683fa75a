import * as tf from '@tensorflow/tfjs';
import { batchMatMul } from './batch-mat-mul.ts';
import { conv2DBackpropFilter } from './conv2d-backprop-filter.ts';
import { conv2DBackpropInput } from './conv2d-backprop-input.ts';
import { identity } from './identity.ts';
import { maxPoolGrad } from './max-pool-grad.ts';
import { rememberOriginal } from './originals.ts';
import { reluGrad } from './relu-grad.ts';
import { sum } from './sum.ts';

/**
 * galactic's training kernels for tfjs-backend-wasm 4.22, which has no Conv2DBackpropFilter and
 * slow paths for the other gradients of a CNN. Each is a composition of the backend's compiled
 * kernels (XNNPACK Conv2D/MatMul, C Transpose/Pad/Slice), except MaxPoolGrad (see its file), and
 * Identity, which shares memory instead of copying it.
 */
export const WASM_TRAINING_KERNELS: { kernelName: string; kernelFunc: tf.KernelFunc }[] = [
  { kernelName: 'Conv2DBackpropFilter', kernelFunc: conv2DBackpropFilter as tf.KernelFunc },
  { kernelName: 'Conv2DBackpropInput', kernelFunc: conv2DBackpropInput as tf.KernelFunc },
  { kernelName: 'MaxPoolGrad', kernelFunc: maxPoolGrad as tf.KernelFunc },
  { kernelName: 'BatchMatMul', kernelFunc: batchMatMul as tf.KernelFunc },
  { kernelName: 'Sum', kernelFunc: sum as tf.KernelFunc },
  { kernelName: 'Identity', kernelFunc: identity as tf.KernelFunc },
  // Not a tfjs kernel: TensorFlow's op name, used by the project's ReLU gradient (relu-gradient.ts).
  { kernelName: 'ReluGrad', kernelFunc: reluGrad as tf.KernelFunc },
];

const ours = new WeakSet<tf.KernelFunc>(WASM_TRAINING_KERNELS.map((k) => k.kernelFunc));

/**
 * Registers (or replaces) the project's kernels on the 'wasm' backend; idempotent. Call after
 * the backend initialised, so the replaced kernels' setup has run and they can be fallen back on.
 */
export function registerWasmTrainingKernels(): void {
  for (const { kernelName, kernelFunc } of WASM_TRAINING_KERNELS) {
    const existing = tf.getKernel(kernelName, 'wasm');
    if (existing && ours.has(existing.kernelFunc)) continue;
    if (existing) {
      rememberOriginal(existing);
      tf.unregisterKernel(kernelName, 'wasm');
    }
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
  }
}
