import * as tf from '@tensorflow/tfjs';

/**
 * Convolution + bias (+ ReLU) as one TensorFlow op on tfjs-node. tfjs-node's `FusedConv2D` kernel
 * runs `Conv2D`, a broadcasting `Add` and the activation as separate ops, and under a gradient tape
 * tfjs-core does not even call it for a ReLU (`shouldFuse` allows only 'linear' while recording), so
 * every conv layer of a training step was three ops with two activation-sized temporaries. Keras
 * gets TensorFlow's fused `_FusedConv2D` (oneDNN). That op needs list attributes (`fused_ops`,
 * `TArgs`), which tfjs-node's binding sets only when `npm run native` built it with galactic's patch
 * (scripts/native.mjs); a probe at registration finds out, and without it everything stays as tfjs has it.
 *
 * Two parts, both only on the 'tensorflow' backend:
 * - the `FusedConv2D` kernel runs the fused op (bias, optionally ReLU) and falls back to tfjs-node's
 *   own for anything else (NCHW, dilation, PReLU and other activations, explicit padding, non-float32);
 * - the layers' `Conv2D.call` with a ReLU and a bias, while this backend is active, runs conv + bias +
 *   ReLU through that kernel with its gradient (`fusedConv2dRelu`): ReluGrad on the fused output, then the
 *   bias gradient and the two convolution backprops, as tfjs-core's fused conv gradient computes them.
 * Models, their saved form and every other backend are unchanged.
 */

/** tfjs-node's backend, as far as running TensorFlow ops by name needs it. */
export interface NativeBackend {
  binding: {
    TF_ATTR_TYPE: number;
    TF_ATTR_INT: number;
    TF_ATTR_STRING: number;
    TF_FLOAT: number;
  };
  executeSingleOutput(name: string, attrs: OpAttr[], inputs: tf.TensorInfo[]): tf.Tensor;
}

interface OpAttr {
  name: string;
  type: number;
  value: number | number[] | string | string[];
}

interface FusedConv2DAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dilations: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  activation: string;
  leakyreluAlpha?: number;
}

/** The TensorFlow op running the fusion: oneDNN's own first (faster here), the generic one where it is missing. */
type FusedOp = '_MklNativeFusedConv2D' | '_FusedConv2D';
const FUSED_OPS: FusedOp[] = ['_MklNativeFusedConv2D', '_FusedConv2D'];

/** The label TensorFlow registers the `_MklNative*` kernels under (mkl_op_registry::kMklNameChangeOpLabel). */
const ONEDNN_KERNEL_LABEL = 'MklNameChangeOp';

/** What the layers' ReLU conv runs on node: everything fused, the bias only (ReLU separate), or tfjs as is. */
export type NativeFusedConvMode = 'bias-relu' | 'bias' | 'off';

function fusedConv(
  backend: NativeBackend,
  op: FusedOp,
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  bias: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
  relu: boolean,
): tf.Tensor {
  const { binding } = backend;
  const attrs: OpAttr[] = [
    { name: 'T', type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT },
    { name: 'num_args', type: binding.TF_ATTR_INT, value: 1 },
    { name: 'TArgs', type: binding.TF_ATTR_TYPE, value: [binding.TF_FLOAT] },
    { name: 'fused_ops', type: binding.TF_ATTR_STRING, value: relu ? ['BiasAdd', 'Relu'] : ['BiasAdd'] },
    { name: 'strides', type: binding.TF_ATTR_INT, value: [1, info.strideHeight, info.strideWidth, 1] },
    { name: 'padding', type: binding.TF_ATTR_STRING, value: info.padInfo.type },
    { name: 'data_format', type: binding.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'dilations', type: binding.TF_ATTR_INT, value: [1, 1, 1, 1] },
  ];
  if (op === '_MklNativeFusedConv2D') {
    attrs.push({ name: '_kernel', type: binding.TF_ATTR_STRING, value: ONEDNN_KERNEL_LABEL });
  }
  return backend.executeSingleOutput(op, attrs, [x, filter, bias]);
}

/**
 * Whether `op` runs here and computes what tfjs does: VALID and SAME, stride 1 and 2, with and without the ReLU,
 * checked by value against Conv2D + Add (+ Relu). An unpatched binding throws on the list attributes: false.
 */
function fusedOpWorks(backend: NativeBackend, op: FusedOp): boolean {
  try {
    return tf.tidy(() => {
      const x = tf.tensor4d(
        [...Array(2 * 5 * 5 * 2).keys()].map((i) => ((i * 7) % 11) - 5),
        [2, 5, 5, 2],
      );
      const filter = tf.tensor4d(
        [...Array(3 * 3 * 2 * 3).keys()].map((i) => ((i * 5) % 7) - 3),
        [3, 3, 2, 3],
      );
      const bias = tf.tensor1d([-20, 0.5, 3]);
      for (const pad of ['valid', 'same'] as const) {
        for (const stride of [1, 2]) {
          const info = tf.backend_util.computeConv2DInfo([2, 5, 5, 2], [3, 3, 2, 3], stride, 1, pad);
          const linear = tf.add(tf.conv2d(x, filter, stride, pad), bias);
          for (const relu of [false, true]) {
            const expected = relu ? tf.relu(linear) : linear;
            const got = fusedConv(backend, op, x, filter, bias, info, relu);
            if (!tf.util.arraysEqual(got.shape, expected.shape)) return false;
            if (tf.max(tf.abs(tf.sub(got, expected))).dataSync()[0]! > 1e-4) return false;
          }
        }
      }
      return true;
    });
  } catch {
    return false;
  }
}

/** The first fused op that runs and computes what tfjs does on this backend, or null (then tfjs's ops stay). */
export function findFusedConvOp(backend: NativeBackend): FusedOp | null {
  return FUSED_OPS.find((op) => fusedOpWorks(backend, op)) ?? null;
}

let state: 'unregistered' | 'active' | 'unavailable' = 'unregistered';
let fusedOp: FusedOp | null = null;
let mode: NativeFusedConvMode = 'bias-relu';

/** The TensorFlow op node's fused convolutions run as in this process, or null when they are not fused. */
export function nativeFusedConvOp(): FusedOp | null {
  return state === 'active' ? fusedOp : null;
}

/**
 * What the layers' ReLU conv runs on node (default 'bias-relu'); 'off' gives tfjs's own ops (tests and
 * before/after benchmarks compare against it). Returns the previous mode.
 */
export function setNativeFusedConvMode(next: NativeFusedConvMode): NativeFusedConvMode {
  const previous = mode;
  mode = next;
  return previous;
}

/** Conv2D's attributes in TensorFlow's terms, or null when the fused op does not cover them. */
function supportedInfo(
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  bias: tf.TensorInfo | undefined,
  attrs: FusedConv2DAttrs,
): tf.backend_util.Conv2DInfo | null {
  if (attrs.dataFormat !== 'NHWC' || typeof attrs.pad !== 'string' || x.shape.length !== 4) return null;
  if (x.dtype !== 'float32' || filter.dtype !== 'float32' || bias?.dtype !== 'float32') return null;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    attrs.strides,
    attrs.dilations,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const plain = info.dilationHeight === 1 && info.dilationWidth === 1 && ['VALID', 'SAME'].includes(info.padInfo.type);
  const perChannel = bias.shape.length === 1 && bias.shape[0] === info.outChannels;
  return plain && perChannel ? info : null;
}

/**
 * Replaces tfjs-node's FusedConv2D kernel with TensorFlow's fused op and routes the layers' ReLU
 * convolutions through it while the 'tensorflow' backend is active; call with that backend active.
 * Idempotent; does nothing where the probe finds no working fused op (an addon built without the
 * list-attribute patch, or a libtensorflow without the op).
 */
export function registerNativeFusedConv(): void {
  if (state !== 'unregistered') return;
  const original = tf.getKernel(tf.FusedConv2D, 'tensorflow');
  const backend = tf.backend() as unknown as NativeBackend;
  fusedOp = original ? findFusedConvOp(backend) : null;
  if (!original || !fusedOp) {
    state = 'unavailable';
    return;
  }
  const op = fusedOp;
  tf.unregisterKernel(tf.FusedConv2D, 'tensorflow');
  tf.registerKernel({
    kernelName: tf.FusedConv2D,
    backendName: 'tensorflow',
    kernelFunc: (args) => {
      const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
      const attrs = args.attrs as unknown as FusedConv2DAttrs;
      const activation = attrs.activation ?? 'linear';
      const info =
        preluActivationWeights == null && ['linear', 'relu'].includes(activation)
          ? supportedInfo(x!, filter!, bias, attrs)
          : null;
      if (!info) return original.kernelFunc(args);
      return fusedConv(args.backend as unknown as NativeBackend, op, x!, filter!, bias!, info, activation === 'relu');
    },
  });
  registerFusedConvGradient();
  patchConv2DLayer();
  state = 'active';
}

/**
 * conv2d + bias + ReLU (NHWC, dilation 1, 'valid'/'same') as one FusedConv2D kernel call on the tape; its gradient
 * is `fusedConvGradient`. (tfjs-core's own fused conv records the gradient through `customGrad`, which computes
 * every input's gradient; a registered gradient is asked only for those the tape needs: no input backprop for
 * the first layer.)
 */
export function fusedConv2dRelu(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  bias: tf.Tensor1D,
  strides: [number, number],
  pad: 'valid' | 'same',
): tf.Tensor4D {
  return fusedConv2d(x, filter, bias, strides, pad, true);
}

/** The same with the ReLU fused or as tfjs's separate op (mode 'bias', to measure the bias fusion alone). */
function fusedConv2d(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  bias: tf.Tensor1D,
  strides: [number, number],
  pad: 'valid' | 'same',
  relu: boolean,
): tf.Tensor4D {
  registerFusedConvGradient(); // also where the fused op is unavailable: the gradient fits tfjs-node's own kernel
  const attrs = { strides, pad, dataFormat: 'NHWC', dilations: [1, 1], activation: relu ? 'relu' : 'linear' };
  const y = tf.engine().runKernel(tf.FusedConv2D, { x, filter, bias }, attrs) as tf.Tensor4D;
  return relu ? y : tf.relu(y);
}

/**
 * The gradient of a FusedConv2D kernel call recorded on the tape (only `fusedConv2dRelu` records one: tfjs-core
 * runs the kernel inside `customGrad`, where nested calls are not recorded). dy through the activation (ReluGrad
 * on the output: it is positive exactly where its input was), then the bias gradient (a sum over all but the
 * channel axis) and the input and filter backprops, as tfjs-core's fused conv gradient computes them.
 */
let gradientRegistered = false;

function registerFusedConvGradient(): void {
  if (gradientRegistered) return;
  gradientRegistered = true;
  tf.registerGradient({
    kernelName: tf.FusedConv2D,
    inputsToSave: ['x', 'filter'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter, y] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
      const { strides, pad, dataFormat, dilations, dimRoundingMode, activation } = attrs as unknown as FusedConv2DAttrs;
      const plain = [dilations].flat().every((d) => d === 1) && dataFormat === 'NHWC';
      if (!plain || !['linear', 'relu'].includes(activation)) {
        throw new Error(`galactic's FusedConv2D gradient supports NHWC, dilation 1, linear or relu; got ${activation}`);
      }
      // Computed once here, not in each input's thunk; it lives until the backward pass ends, as the separate
      // Relu's gradient did.
      const dy4D = dy as tf.Tensor4D;
      const dyActivation =
        activation === 'linear'
          ? dy4D
          : tf.getKernel('ReluGrad', tf.getBackend())
            ? (tf.engine().runKernel('ReluGrad', { dy: dy4D, x: y }, {}) as tf.Tensor4D)
            : tf.mul(dy4D, tf.step(y));
      const common = { strides, pad, dataFormat, ...(dimRoundingMode ? { dimRoundingMode } : {}) } as tf.NamedAttrMap;
      return {
        x: () =>
          tf
            .engine()
            .runKernel(
              tf.Conv2DBackpropInput,
              { dy: dyActivation, filter },
              { ...common, inputShape: x.shape },
            ) as tf.Tensor,
        filter: () =>
          tf
            .engine()
            .runKernel(
              tf.Conv2DBackpropFilter,
              { x, dy: dyActivation },
              { ...common, filterShape: filter.shape },
            ) as tf.Tensor,
        bias: () => tf.sum(dyActivation, [0, 1, 2]),
      };
    },
  });
}

/** The parts of tfjs-layers' Conv2D layer the patched `call` reads. */
interface Conv2DLayer {
  rank: number;
  kernel: { read(): tf.Tensor };
  bias: { read(): tf.Tensor } | null;
  activation: { getClassName(): string };
  strides: number[];
  padding: string;
  dataFormat: string;
  dilationRate: number | number[];
}

type LayerCall = (this: Conv2DLayer, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor;

/**
 * tfjs-layers' Conv2D.call under a gradient tape un-fuses the ReLU (see above); on the 'tensorflow' backend, a
 * ReLU conv with a bias runs `fusedConv2dRelu` (or the fused bias and a separate ReLU, mode 'bias') instead.
 * Patched on the class (the layers have no other hook), so models deserialised from disk get it too; any
 * other backend, layer setting or mode 'off' takes the original `call`.
 */
function patchConv2DLayer(): void {
  const sample = tf.layers.conv2d({ filters: 1, kernelSize: 1 });
  const prototype = Object.getPrototypeOf(sample) as { call: LayerCall };
  if (Object.prototype.hasOwnProperty.call(prototype, 'call')) return; // already patched
  const inherited = prototype.call;
  prototype.call = function (this: Conv2DLayer, inputs, kwargs) {
    const x = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
    const dilations = typeof this.dilationRate === 'number' ? [this.dilationRate] : this.dilationRate;
    const eligible =
      mode !== 'off' &&
      state === 'active' &&
      tf.getBackend() === 'tensorflow' &&
      x !== undefined &&
      x.rank === 4 &&
      x.dtype === 'float32' &&
      this.rank === 2 &&
      this.bias !== null &&
      this.activation.getClassName() === 'relu' &&
      this.dataFormat === 'channelsLast' &&
      (this.padding === 'valid' || this.padding === 'same') &&
      dilations.every((d) => d === 1);
    if (!eligible) return inherited.call(this, inputs, kwargs);
    const strides = this.strides as [number, number];
    const pad = this.padding as 'valid' | 'same';
    return tf.tidy(() => {
      const kernel = this.kernel.read() as tf.Tensor4D;
      const bias = this.bias!.read() as tf.Tensor1D;
      return fusedConv2d(x as tf.Tensor4D, kernel, bias, strides, pad, mode === 'bias-relu');
    });
  };
}
