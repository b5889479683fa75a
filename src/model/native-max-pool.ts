import * as tf from '@tensorflow/tfjs';

/**
 * Max pooling on tfjs-node through oneDNN. tfjs-node runs TensorFlow's `MaxPoolGrad` op, whose CPU
 * kernel (eager mode has no oneDNN rewrite for pooling) recomputes the forward pool and its argmax
 * in a generic Eigen loop: it was the most expensive kernel of a node training step (a fifth of it).
 * TensorFlow's oneDNN build also registers `_MklNativeMaxPool`, which returns the pooled tensor and
 * a workspace (where each maximum came from), and `_MklNativeMaxPoolGrad`, which routes dy through
 * that workspace, with identical values (the first maximum of a window wins, as in TensorFlow and
 * the cpu backend; ties included).
 *
 * While a gradient is being recorded, the forward pool itself runs `_MklNativeMaxPool` and keeps
 * its workspace beside the pooled tensor (keyed by its data id, freed with it), so the gradient
 * only routes dy. Elsewhere (prediction, a gradient of a pool this module did not run) the
 * gradient runs the pool again with a workspace, still under half of `MaxPoolGrad`'s cost.
 * Libraries built without oneDNN lack these ops: a probe at registration keeps TensorFlow's own
 * kernels there.
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
  disposeData(dataId: object, force?: boolean): boolean;
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

/** dx of a max pool from its input, its pooled output, dy and the pool's workspace. */
function routeThroughWorkspace(
  backend: NativeBackend,
  attrs: OpAttr[],
  tensors: { input: tf.TensorInfo; pooled: tf.TensorInfo; dy: tf.TensorInfo; workspace: tf.TensorInfo },
): tf.Tensor {
  const { input, pooled, dy, workspace } = tensors;
  return backend.executeSingleOutput('_MklNativeMaxPoolGrad', attrs, [input, pooled, dy, workspace]);
}

/** dx of a max pool from its input and dy, pooling again to get a workspace. */
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
    return routeThroughWorkspace(backend, attrs, { input, pooled, dy, workspace });
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

/** The pool's geometry, when oneDNN takes it (float32, NHWC, VALID or SAME padding); null otherwise. */
function supportedPool(x: tf.TensorInfo, attrs: PoolAttrs): tf.backend_util.Conv2DInfo | null {
  const info = tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  return x.dtype === 'float32' && ['VALID', 'SAME'].includes(info.padInfo.type) ? info : null;
}

/** Workspaces of the pools run while a gradient was recorded, by the pooled tensor's data id. */
const workspaces = new Map<object, tf.Tensor>();

/** How many pool workspaces are held now (tests check none outlives its pooled tensor). */
export function heldPoolWorkspaces(): number {
  return workspaces.size;
}

let state: 'unregistered' | 'active' | 'unavailable' = 'unregistered';

/** Whether node's max pooling runs through oneDNN in this process (tests check that they exercise it). */
export function nativeMaxPoolActive(): boolean {
  return state === 'active';
}

/** Frees a pooled tensor's workspace when the backend frees the pooled tensor's data. */
function freeWorkspacesWithTheirPools(backend: NativeBackend): void {
  const disposeData = backend.disposeData.bind(backend);
  backend.disposeData = (dataId, force) => {
    const released = disposeData(dataId, force);
    const workspace = released ? workspaces.get(dataId) : undefined;
    if (workspace) {
      workspaces.delete(dataId);
      workspace.dispose();
    }
    return released;
  };
}

/**
 * Replaces tfjs-node's MaxPool and MaxPoolGrad kernels with the oneDNN ones where libtensorflow
 * has them; call with the 'tensorflow' backend active. Idempotent; NCHW, non-float32 and explicit
 * padding keep TensorFlow's ops.
 */
export function registerNativeMaxPool(): void {
  if (state !== 'unregistered') return;
  const pool = tf.getKernel(tf.MaxPool, 'tensorflow');
  const grad = tf.getKernel(tf.MaxPoolGrad, 'tensorflow');
  const backend = tf.backend() as unknown as NativeBackend;
  if (!pool || !grad || !oneDnnPoolingWorks(backend)) {
    state = 'unavailable';
    return;
  }
  freeWorkspacesWithTheirPools(backend);
  tf.unregisterKernel(tf.MaxPool, 'tensorflow');
  tf.registerKernel({
    kernelName: tf.MaxPool,
    backendName: 'tensorflow',
    kernelFunc: (args) => {
      // only a recorded pool will have a gradient that needs the workspace
      if (tf.engine().state.gradientDepth === 0) return pool.kernelFunc(args);
      const { x } = args.inputs as { x: tf.TensorInfo };
      const info = supportedPool(x, args.attrs as unknown as PoolAttrs);
      if (!info) return pool.kernelFunc(args);
      const native = args.backend as unknown as NativeBackend;
      const [pooled, workspace] = native.executeMultipleOutputs(
        '_MklNativeMaxPool',
        oneDnnPoolAttrs(native, info),
        [x],
        2,
      ) as [tf.Tensor, tf.Tensor];
      // the kernel's scope would free the workspace on return; it lives as long as the pooled tensor
      tf.keep(workspace);
      workspaces.set(pooled.dataId, workspace);
      return pooled;
    },
  });
  tf.unregisterKernel(tf.MaxPoolGrad, 'tensorflow');
  tf.registerKernel({
    kernelName: tf.MaxPoolGrad,
    backendName: 'tensorflow',
    kernelFunc: (args) => {
      const { dy, input, output } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo; output: tf.TensorInfo };
      const info = supportedPool(input, args.attrs as unknown as PoolAttrs);
      if (!info || dy.dtype !== 'float32') return grad.kernelFunc(args);
      const native = args.backend as unknown as NativeBackend;
      const workspace = workspaces.get(output.dataId);
      if (workspace) {
        const attrs = oneDnnPoolAttrs(native, info);
        return routeThroughWorkspace(native, attrs, { input, pooled: output, dy, workspace });
      }
      return oneDnnMaxPoolGrad(native, input, dy, info);
    },
  });
  state = 'active';
}
