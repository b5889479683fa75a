import type * as tf from '@tensorflow/tfjs';
import { runOriginal } from './originals.ts';
import type { WasmBackend } from './wasm-primitives.ts';

/**
 * Identity (tf.clone) shares the input's memory and counts a reference, as the cpu backend does,
 * instead of copying it. The engine clones every tensor a gradient needs when it records a kernel
 * for backprop, so the backend's copying Identity moved every conv activation once more per step
 * (about 5% of a step of the notebook's CNN). Sharing is safe because tensors are immutable:
 * a variable's assign swaps its data, and no kernel writes into its inputs.
 */
export function identity(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string') return runOriginal('Identity', args);
  (args.backend as unknown as WasmBackend & { incRef(dataId: tf.DataId): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}
