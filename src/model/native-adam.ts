import * as tf from '@tensorflow/tfjs';

/**
 * Adam on tfjs-node as TensorFlow's fused `ResourceApplyAdam`: one pass over weight, moments and
 * gradient per variable, where tfjs's `AdamOptimizer` runs about 14 elementwise kernels (each a
 * memory-bound pass over the 6.4M-weight dense kernel of the notebook's CNN).
 *
 * Everything but the update is tfjs's Adam: the moments are the same tfjs variables with the same
 * names, `accBeta1`/`accBeta2` are kept and advanced the same way, `getWeights`/`setWeights` are
 * inherited, so checkpoints are the same bytes layout whichever optimizer wrote them.
 *
 * The update: for each variable, three anonymous TensorFlow resource variables are made to alias
 * the buffers of the tfjs weight and moments (`AssignVariableOp` shares, never copies), the op runs,
 * and `ReadVariableOp` hands the updated buffers back. TensorFlow's resource ops copy on write: a
 * buffer someone else still references is copied before the update. So a tfjs variable whose data
 * no other tfjs tensor shares (the usual case: `Backend.refCount` 1) gives up its own handle to the
 * buffer first and gets the updated one back under the same data id, updated in place with no copy;
 * a shared one is updated through a copy and `Variable.assign`, like tfjs's Adam.
 *
 * Values: TensorFlow's op puts epsilon outside the bias correction,
 * `lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m/(√v + ε)`, tfjs inside, `lr · m̂/(√v̂ + ε)`; passing `ε·√(1−β₂ᵗ)` as
 * epsilon makes them one formula, equal up to float32 rounding (TensorFlow also updates the moments
 * as `m + (g − m)(1 − β₁)` where tfjs computes `β₁m + (1 − β₁)g`).
 */

interface OpAttr {
  name: string;
  type: number;
  value: number | number[] | string | boolean;
}

interface TensorMetadata {
  id: number;
  shape: number[];
  dtype: number;
}

/** tfjs-node's backend, as far as running TensorFlow ops on its tensor handles needs it. */
interface NativeBackend {
  binding: {
    TF_ATTR_TYPE: number;
    TF_ATTR_SHAPE: number;
    TF_ATTR_STRING: number;
    TF_ATTR_BOOL: number;
    TF_FLOAT: number;
    executeOp(name: string, attrs: OpAttr[], inputIds: number[], outputs: number): TensorMetadata[];
    deleteTensor(id: number): void;
  };
  /** Per data id: the TensorFlow handle id (-1 while the values are still only in JavaScript). */
  tensorMap: { get(dataId: tf.DataId): { id: number } };
  /** Handle ids of the tensors, first moving JavaScript-held values into TensorFlow. */
  getInputTensorIds(tensors: tf.TensorInfo[]): number[];
  refCount(dataId: tf.DataId): number;
  createOutputTensor(metadata: TensorMetadata): tf.Tensor;
}

/** tfjs's AdamOptimizer fields that TypeScript declares private. */
interface AdamInternals {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: { originalName: string; variable: tf.Variable }[];
  accumulatedSecondMoment: { originalName: string; variable: tf.Variable }[];
}

/** ResourceHandle::ANONYMOUS_NAME: a variable owned by its handle, freed with it (no resource-manager entry). */
const ANONYMOUS_VARIABLE = 'cd2c89b7-88b7-44c8-ad83-06c2a9158347';

/**
 * weight, m and v updated by one ResourceApplyAdam; `scalars` are β₁ᵗ, β₂ᵗ, lr, β₁, β₂ and the
 * epsilon TensorFlow's formula takes. Call inside tf.tidy (a shared variable's new value is a tidy temporary).
 */
function resourceApplyAdam(
  backend: NativeBackend,
  variables: [tf.Variable, tf.Variable, tf.Variable],
  scalars: tf.Tensor[],
  gradient: tf.Tensor,
): boolean[] {
  const { binding } = backend;
  const dtype = [{ name: 'dtype', type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT }];
  const handleAttrs = [
    ...dtype,
    { name: 'shape', type: binding.TF_ATTR_SHAPE, value: variables[0].shape },
    { name: 'container', type: binding.TF_ATTR_STRING, value: '' },
    { name: 'shared_name', type: binding.TF_ATTR_STRING, value: ANONYMOUS_VARIABLE },
  ];
  const handles: number[] = [];
  try {
    for (const variable of variables) {
      const handle = binding.executeOp('VarHandleOp', handleAttrs, [], 1)[0]!.id;
      handles.push(handle);
      binding.executeOp('AssignVariableOp', dtype, [handle, backend.getInputTensorIds([variable])[0]!], 0);
    }
    // only the resource variable references an unshared buffer now: TensorFlow updates it in place
    const inPlace = variables.map((variable) => backend.refCount(variable.dataId) === 1);
    variables.forEach((variable, i) => {
      if (!inPlace[i]) return;
      const data = backend.tensorMap.get(variable.dataId);
      binding.deleteTensor(data.id);
      data.id = -1;
    });
    try {
      const attrs = [
        { name: 'T', type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT },
        { name: 'use_locking', type: binding.TF_ATTR_BOOL, value: false },
        { name: 'use_nesterov', type: binding.TF_ATTR_BOOL, value: false },
      ];
      binding.executeOp(
        'ResourceApplyAdam',
        attrs,
        [...handles, ...backend.getInputTensorIds([...scalars, gradient])],
        0,
      );
    } finally {
      // after a failed op this reads the unchanged values back, so the tfjs variables stay whole
      variables.forEach((variable, i) => {
        const read = binding.executeOp('ReadVariableOp', dtype, [handles[i]!], 1)[0]!;
        if (inPlace[i]) backend.tensorMap.get(variable.dataId).id = read.id;
        else variable.assign(backend.createOutputTensor(read));
      });
    }
    return inPlace;
  } finally {
    for (const handle of handles) binding.deleteTensor(handle);
  }
}

/** tfjs's Adam whose per-variable update is TensorFlow's ResourceApplyAdam while tfjs-node is the active backend. */
export class NativeAdamOptimizer extends tf.AdamOptimizer {
  /** Tensors (weights and moments) TensorFlow updated in place, and through a copy (their data was shared). */
  readonly updates = { inPlace: 0, copied: 0 };

  override applyGradients(variableGradients: Parameters<tf.AdamOptimizer['applyGradients']>[0]): void {
    const names = Array.isArray(variableGradients)
      ? variableGradients.map((v) => v.name)
      : Object.keys(variableGradients);
    const variables = names.map((name) => tf.engine().registeredVariables[name]!);
    const native =
      tf.getBackend() === 'tensorflow' &&
      nativeAdamWorks() &&
      variables.every((variable) => variable.dtype === 'float32');
    if (!native) {
      super.applyGradients(variableGradients);
      return;
    }
    const self = this as unknown as AdamInternals;
    const backend = tf.backend() as unknown as NativeBackend;
    tf.tidy(() => {
      const scalars = [
        self.accBeta1,
        self.accBeta2,
        tf.scalar(this.learningRate),
        tf.scalar(this.beta1),
        tf.scalar(this.beta2),
        tf.mul(this.epsilon, tf.sqrt(tf.sub(1, self.accBeta2))),
      ];
      names.forEach((name, i) => {
        const value = variables[i]!;
        // the moments are made exactly as tfjs's Adam makes them (names, order, trainable false)
        self.accumulatedFirstMoment[i] ??= {
          originalName: `${name}/m`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        };
        self.accumulatedSecondMoment[i] ??= {
          originalName: `${name}/v`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        };
        const gradient = Array.isArray(variableGradients) ? variableGradients[i]!.tensor : variableGradients[name];
        if (gradient == null) return;
        const moments = [self.accumulatedFirstMoment[i].variable, self.accumulatedSecondMoment[i].variable] as const;
        const float = gradient.dtype === 'float32' ? gradient : tf.cast(gradient, 'float32');
        for (const inPlace of resourceApplyAdam(backend, [value, ...moments], scalars, float)) {
          if (inPlace) this.updates.inPlace++;
          else this.updates.copied++;
        }
      });
      self.accBeta1.assign(tf.mul(self.accBeta1, this.beta1));
      self.accBeta2.assign(tf.mul(self.accBeta2, this.beta2));
    });
    this.incrementIterations();
  }
}

let probed: boolean | null = null;
let mode: 'auto' | 'off' = 'auto';

/**
 * 'off' makes every NativeAdamOptimizer and createAdam use tfjs's own update, as where the op is
 * missing (for before/after benchmarks and the fallback's tests); 'auto' (the default) uses the op
 * where the probe passes.
 */
export function setNativeAdam(next: 'auto' | 'off'): void {
  mode = next;
}

/**
 * Whether this libtensorflow runs the update (the op and the resource-variable ops it needs): one
 * step on tiny variables, compared by value with Adam's formula in double precision. Checked once
 * per process, with the 'tensorflow' backend active.
 */
export function nativeAdamWorks(): boolean {
  if (mode === 'off') return false;
  if (probed !== null) return probed;
  if (tf.getBackend() !== 'tensorflow') return false;
  probed = probe();
  return probed;
}

function probe(): boolean {
  // the last element's √v̂ is near ε: it tells where epsilon sits in the formula
  const w0 = [0.5, -1, 2, 0, 1];
  const m0 = [0.1, 0, -0.2, 0.05, 0];
  const v0 = [0.01, 0.02, 0.003, 0.001, 0];
  const g = [0.3, -0.4, 0, 1e-4, 1e-7];
  const [lr, beta1, beta2, epsilon, t] = [0.01, 0.9, 0.999, 1e-7, 3];
  const variables = [w0, m0, v0].map((values) => {
    const initial = tf.tensor1d(values);
    const variable = initial.variable(false);
    initial.dispose(); // so the variable's data is unshared and the in-place path runs
    return variable;
  }) as [tf.Variable, tf.Variable, tf.Variable];
  try {
    tf.tidy(() => {
      const [b1t, b2t] = [beta1 ** t, beta2 ** t];
      const scalars = [b1t, b2t, lr, beta1, beta2, epsilon * Math.sqrt(1 - b2t)].map((x) => tf.scalar(x));
      resourceApplyAdam(tf.backend() as unknown as NativeBackend, variables, scalars, tf.tensor1d(g));
    });
    const [w, m, v] = variables.map((variable) => variable.dataSync());
    return g.every((gi, i) => {
      const mi = beta1 * m0[i]! + (1 - beta1) * gi;
      const vi = beta2 * v0[i]! + (1 - beta2) * gi * gi;
      const wi = w0[i]! - (lr * (mi / (1 - beta1 ** t))) / (Math.sqrt(vi / (1 - beta2 ** t)) + epsilon);
      // float32 rounding (TensorFlow's 1 − β₂ in float32 alone is 1.3e-5 off); a misplaced ε is off by 1e-3
      const close = (a: number, b: number) => Math.abs(a - b) <= 1e-4 * Math.abs(b) + 1e-20;
      return close(m![i]!, mi) && close(v![i]!, vi) && Math.abs(w![i]! - wi) <= 1e-4 * lr;
    });
  } catch {
    return false;
  } finally {
    tf.dispose(variables);
  }
}

/** tfjs's Adam for the model: the fused TensorFlow update on tfjs-node where the probe passes, tfjs's own elsewhere. */
export function createAdam(learningRate: number): tf.AdamOptimizer {
  if (tf.getBackend() === 'tensorflow' && nativeAdamWorks()) return new NativeAdamOptimizer(learningRate, 0.9, 0.999);
  return tf.train.adam(learningRate);
}
