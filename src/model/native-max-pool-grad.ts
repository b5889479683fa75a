import * as tf from '@tensorflow/tfjs';

/**
 * MaxPoolGrad on tfjs-node through oneDNN. tfjs-node runs TensorFlow's `MaxPoolGrad` op, whose CPU
 * kernel (eager mode has no oneDNN rewrite for pooling) recomputes the forward pool and its argmax
 * in a generic Eigen loop: it was the most expensive kernel of a node training step (a fifth of it).
 * TensorFlow's oneDNN build also registers `_MklNativeMaxPool`, which returns the pooled tensor and
 * a workspace (where each maximum came from), and `_MklNativeMaxPoolGrad`, which routes dy through
 * that workspace. Running the pool again with its workspace and then the gradient costs less than
 * half of `MaxPoolGrad` on the notebook's pools, with identical values (the first maximum of a
 * window wins, as in TensorFlow and the cpu backend; ties included). Libraries built without oneDNN
 * lack these ops: a probe at registration keeps TensorFlow's own kernel there.
 */

/** tfjs-node's backend, as far as running TensorFlow ops by name needs it. */
interface NativeBackend {
  binding: {
    TF_ATTR_TYPE: number;
    TF_ATTR_INT: number;
    TF_ATTR_STRING: number;
    TF_ATTR_BOOL: number;
    TF_FLOAT: number;
  };
  executeSingleOutput(name: string, attrs: OpAttr[], inputs: tf.TensorInfo[]): tf.Tensor;
  executeMultipleOutputs(name: string, attrs: OpAttr[], inputs: tf.TensorInfo[], count: number): tf.Tensor[];
}

interface OpAttr {
  name: string;
  type: number;
  value: number | number[] | string | boolean;
}

interface PoolAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** The label TensorFlow registers the `_MklNative*` kernels under (mkl_op_registry::kMklNameChangeOpLabel). */
const ONEDNN_KERNEL_LABEL = 'MklNameChangeOp';

function oneDnnPoolAttrs(backend: NativeBackend, info: tf.backend_util.Conv2DInfo): OpAttr[] {
  const { binding } = backend;
  return [
    { name: 'T', type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT },
    { name: 'ksize', type: binding.TF_ATTR_INT, value: [1, info.filterHeight, info.filterWidth, 1] },
    { name: 'strides', type: binding.TF_ATTR_INT, value: [1, info.strideHeight, info.strideWidth, 1] },
    { name: 'padding', type: binding.TF_ATTR_STRING, value: info.padInfo.type },
    { name: 'data_format', type: binding.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'workspace_enabled', type: binding.TF_ATTR_BOOL, value: true },
    { name: '_kernel', type: binding.TF_ATTR_STRING, value: ONEDNN_KERNEL_LABEL },
  ];
}

/** dx of a max pool from its input and dy, through oneDNN's pooling with a workspace. */
function oneDnnMaxPoolGrad(
  backend: NativeBackend,
  input: tf.TensorInfo,
  dy: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): tf.Tensor {
  const attrs = oneDnnPoolAttrs(backend, info);
  const [pooled, workspace] = backend.executeMultipleOutputs('_MklNativeMaxPool', attrs, [input], 2) as [
    tf.Tensor,
    tf.Tensor,
  ];
  try {
    return backend.executeSingleOutput('_MklNativeMaxPoolGrad', attrs, [input, pooled, dy, workspace]);
  } finally {
    pooled.dispose();
    workspace.dispose();
  }
}

/** Whether this libtensorflow runs the oneDNN pooling ops (a tiny pool and its gradient, checked by value). */
function oneDnnPoolingWorks(backend: NativeBackend): boolean {
  try {
    return tf.tidy(() => {
      const x = tf.tensor4d([1, 3, 2, 3], [1, 2, 2, 1]);
      const dy = tf.tensor4d([5], [1, 1, 1, 1]);
      const info = tf.backend_util.computePool2DInfo([1, 2, 2, 1], 2, 2, 1, 'valid');
      const dx = oneDnnMaxPoolGrad(backend, x, dy, info).dataSync();
      // the first of the two maxima (3) gets all of dy
      return [...dx].join(',') === '0,5,0,0';
    });
  } catch {
    return false;
  }
}

let state: 'unregistered' | 'active' | 'unavailable' = 'unregistered';

/** Whether node's MaxPoolGrad runs through oneDNN in this process (tests check that they exercise it). */
export function nativeMaxPoolGradActive(): boolean {
  return state === 'active';
}

/**
 * Replaces tfjs-node's MaxPoolGrad kernel with the oneDNN one where libtensorflow has it; call with
 * the 'tensorflow' backend active. Idempotent; NCHW, non-float32 and explicit padding keep TensorFlow's op.
 */
export function registerNativeMaxPoolGrad(): void {
  if (state !== 'unregistered') return;
  const original = tf.getKernel(tf.MaxPoolGrad, 'tensorflow');
  const backend = tf.backend() as unknown as NativeBackend;
  if (!original || !oneDnnPoolingWorks(backend)) {
    state = 'unavailable';
    return;
  }
  tf.unregisterKernel(tf.MaxPoolGrad, 'tensorflow');
  tf.registerKernel({
    kernelName: tf.MaxPoolGrad,
    backendName: 'tensorflow',
    kernelFunc: (args) => {
      const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
      const attrs = args.attrs as unknown as PoolAttrs;
      const info = tf.backend_util.computePool2DInfo(
        input.shape as [number, number, number, number],
        attrs.filterSize,
        attrs.strides,
        1,
        attrs.pad,
        attrs.dimRoundingMode,
      );
      const supported =
        input.dtype === 'float32' && dy.dtype === 'float32' && ['VALID', 'SAME'].includes(info.padInfo.type);
      if (!supported) return original.kernelFunc(args);
      return oneDnnMaxPoolGrad(args.backend as unknown as NativeBackend, input, dy, info);
    },
  });
  state = 'active';
}
