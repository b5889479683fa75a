import type { LoadedConfig } from '../config/load.ts';
import { describeArchitecture, type HyperparameterValues } from '../architecture/cnn-spec.ts';

/**
 * Memory a training step of the CNN needs beyond the runtime: the one model estimate that the
 * memory plan (for `config.model`) and the tuner (for each trial's values) both use, so the plan
 * and the INFEASIBLE rule cannot disagree. Factors measured on wasm with bench/tune.ts
 * (docs/tuning.md has the figures):
 *
 *   parameters          4 float32 copies per parameter: weights, gradients, Adam's two moments
 *   optimizer update    Adam's elementwise temporaries while it updates one variable (tfjs
 *                       updates them one at a time): 11 copies of the largest variable
 *   activations         every layer's output for the batch, kept for backprop, x2 for their
 *                       gradients, plus the float32 input batch
 *   backprop workspace  3 more activation-sized copies per batch (conv outputs before their relu,
 *                       transposed copies made by the backprop kernels, the wasm heap's growth steps)
 *   checkpoint          weights + Adam's moments, each held 3 times while a checkpoint is encoded
 */

const FLOAT32 = 4;
const OPTIMIZER_TEMPORARY_COPIES = 11;
const BACKPROP_WORKSPACE_COPIES = 3;
const CHECKPOINT_COPIES = 3;

export interface ModelMemory {
  components: { name: string; bytes: number; detail: string }[];
  /** The part living in the backend's tensor memory (for wasm: its heap, capped at 4 GiB). */
  tensorBytes: number;
  totalBytes: number;
  parameters: number;
}

export function estimateModelMemory(
  values: HyperparameterValues,
  config: LoadedConfig,
  batch: number,
  numClasses: number,
): ModelMemory {
  const inputShape: [number, number, number] = [config.image.height, config.image.width, config.image.channels];
  const arch = describeArchitecture(values, inputShape, numClasses, config.model);
  const components: ModelMemory['components'] = [];
  const add = (name: string, bytes: number, detail: string) =>
    components.push({ name, bytes: Math.ceil(bytes), detail });

  add(
    'parameters',
    4 * FLOAT32 * arch.parameters,
    `${arch.parameters} params x 4 copies (weights, gradients, Adam m and v) x 4 B`,
  );
  const largest = Math.max(0, ...arch.layers.map((l) => l.parameters));
  add(
    'optimizer update',
    OPTIMIZER_TEMPORARY_COPIES * FLOAT32 * largest,
    `largest layer ${largest} params x ${OPTIMIZER_TEMPORARY_COPIES} Adam temporaries x 4 B`,
  );
  const inputElements = inputShape[0] * inputShape[1] * inputShape[2];
  add(
    'activations',
    batch * (2 * arch.activationElementsPerExample + inputElements) * FLOAT32,
    `batch ${batch} x (2 x ${arch.activationElementsPerExample} activations + ${inputElements} input) x 4 B`,
  );
  add(
    'backprop workspace',
    batch * BACKPROP_WORKSPACE_COPIES * arch.activationElementsPerExample * FLOAT32,
    `batch ${batch} x ${BACKPROP_WORKSPACE_COPIES} x ${arch.activationElementsPerExample} activations x 4 B`,
  );
  const tensorBytes = components.reduce((sum, c) => sum + c.bytes, 0);
  add(
    'checkpoint',
    CHECKPOINT_COPIES * 3 * FLOAT32 * arch.parameters,
    `${arch.parameters} params x 3 (weights, Adam m and v) x ${CHECKPOINT_COPIES} copies while encoding x 4 B`,
  );
  const totalBytes = components.reduce((sum, c) => sum + c.bytes, 0);
  return { components, tensorBytes, totalBytes, parameters: arch.parameters };
}
