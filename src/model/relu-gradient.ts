import * as tf from '@tensorflow/tfjs';

/**
 * ReLU's gradient as one kernel where the active backend has one. tfjs registers it as
 * dy · cast(step(x)): three kernels and two activation-sized temporaries on every backend, and on
 * tfjs-node Step itself is five TensorFlow ops (IsNan, Greater, Fill, Select, Select), which made
 * it the most expensive kernel of a training step. TensorFlow has the single op `ReluGrad`
 * (dy where x > 0, else 0); galactic registers a kernel of that name on 'wasm'
 * (kernels/relu-grad.ts) and on tfjs-node (below), and this gradient uses it whenever the
 * active backend has it, tfjs's formula otherwise (cpu). The two agree except for x = NaN, where
 * tfjs's formula gives NaN and ReluGrad 0, as in TensorFlow and Keras.
 */
export const RELU_GRAD = 'ReluGrad';

let registered = false;

/** Replaces tfjs's ReLU gradient for every backend (once per process; idempotent). */
export function registerReluGradient(): void {
  if (registered) return;
  tf.registerGradient({
    kernelName: tf.Relu,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const [x] = saved as [tf.Tensor];
      const single = tf.getKernel(RELU_GRAD, tf.getBackend()) !== undefined && x.dtype === 'float32';
      return {
        x: () =>
          single
            ? (tf.engine().runKernel(RELU_GRAD, { dy: dy as tf.Tensor, x }, {}) as tf.Tensor)
            : tf.mul(dy as tf.Tensor, tf.cast(tf.step(x), 'float32')),
      };
    },
  });
  registered = true;
}

/** tfjs-node's backend, as far as a kernel that runs one TensorFlow op needs it. */
interface NativeBackend {
  binding: { TF_ATTR_TYPE: number; TF_FLOAT: number };
  executeSingleOutput(
    name: string,
    attrs: { name: string; type: number; value: number }[],
    inputs: tf.TensorInfo[],
  ): tf.TensorInfo;
}

/** Registers TensorFlow's ReluGrad op as a kernel of tfjs-node's backend ('tensorflow'); idempotent. */
export function registerNativeReluGrad(): void {
  if (tf.getKernel(RELU_GRAD, 'tensorflow')) return;
  tf.registerKernel({
    kernelName: RELU_GRAD,
    backendName: 'tensorflow',
    kernelFunc: ({ inputs, backend }) => {
      const native = backend as unknown as NativeBackend;
      const { dy, x } = inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
      const type = { name: 'T', type: native.binding.TF_ATTR_TYPE, value: native.binding.TF_FLOAT };
      return native.executeSingleOutput(RELU_GRAD, [type], [dy, x]);
    },
  });
}
