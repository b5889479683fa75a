import { UserError } from '../core/errors.ts';
import type { LoadedConfig } from '../config/load.ts';

/**
 * The notebook's CNN as shapes and counts, without loading tfjs: which layers the hyperparameter
 * values make, their output sizes and parameters. The memory planner and the tuner's estimate
 * read it; `buildModel` (architecture.ts) turns the same description into tfjs layers.
 */

export type HyperparameterValues = Record<string, number | string | boolean>;

export interface ArchitectureOptions {
  inputShape: [number, number, number];
  numClasses: number;
  seed: number;
  defaults: LoadedConfig['model'];
}

export class InvalidHyperparameterError extends UserError {
  constructor(name: string, value: unknown, expected: string) {
    super(
      `hyperparameter '${name}' is ${JSON.stringify(value)}, but it must be ${expected}. Fix it in tuner.space or model in the config.`,
    );
  }
}

export class ArchitectureTooDeepError extends UserError {
  constructor(inputShape: [number, number, number], blocks: number, kernelSize: number) {
    super(
      `the CNN with ${blocks} conv blocks and kernel size ${kernelSize} shrinks a ${inputShape[0]}x${inputShape[1]} image to nothing. ` +
        'Use fewer filters_k blocks, a smaller kernel_size, or larger image.width/height in the config.',
    );
  }
}

/** The resolved numbers the model is built from. */
export interface ArchitectureSpec {
  filters: number[];
  kernelSize: number;
  denseUnits: number;
  dropout: number;
  learningRate: number;
}

function positiveInt(values: HyperparameterValues, name: string, fallback: number | undefined): number {
  const value = values[name] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new InvalidHyperparameterError(name, value, 'a positive integer');
  }
  return value;
}

function numberIn(
  values: HyperparameterValues,
  name: string,
  fallback: number,
  ok: (v: number) => boolean,
  expected: string,
): number {
  const value = values[name] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) {
    throw new InvalidHyperparameterError(name, value, expected);
  }
  return value;
}

/**
 * Reads `filters_1..filters_n`, `kernel_size`, `dense_units`, `dropout`, `learning_rate`, falling back to the config's
 * model section.
 */
export function resolveArchitecture(values: HyperparameterValues, defaults: LoadedConfig['model']): ArchitectureSpec {
  // As many blocks as the defaults list, or more if the values name filters_k beyond it.
  let blocks = defaults.filters.length;
  for (const key of Object.keys(values)) {
    const match = /^filters_(\d+)$/.exec(key);
    if (match) blocks = Math.max(blocks, Number(match[1]));
  }
  const filters: number[] = [];
  for (let k = 1; k <= blocks; k++) filters.push(positiveInt(values, `filters_${k}`, defaults.filters[k - 1]));
  return {
    filters,
    kernelSize: positiveInt(values, 'kernel_size', defaults.kernelSize),
    denseUnits: positiveInt(values, 'dense_units', defaults.denseUnits),
    dropout: numberIn(values, 'dropout', defaults.dropout, (v) => v >= 0 && v < 1, 'a number in [0, 1)'),
    learningRate: numberIn(values, 'learning_rate', defaults.learningRate, (v) => v > 0, 'a positive number'),
  };
}

export interface LayerDescription {
  name: string;
  kind: 'conv2d' | 'maxPooling2d' | 'flatten' | 'dense' | 'dropout';
  outputShape: number[];
  /** Elements in one example's output activation (multiply by batch and 4 bytes for float32). */
  activationElements: number;
  parameters: number;
}

export interface ArchitectureDescription {
  spec: ArchitectureSpec;
  layers: LayerDescription[];
  parameters: number;
  /** Sum of every layer's activation elements per example (what backprop keeps alive). */
  activationElementsPerExample: number;
}

/** Layer-by-layer shapes and parameter counts, computed without building tensors (for memory estimates). */
export function describeArchitecture(
  values: HyperparameterValues,
  inputShape: [number, number, number],
  numClasses: number,
  defaults: LoadedConfig['model'],
): ArchitectureDescription {
  const spec = resolveArchitecture(values, defaults);
  const layers: LayerDescription[] = [];
  let [h, w, c] = inputShape;
  const k = spec.kernelSize;
  spec.filters.forEach((f, i) => {
    h = h - k + 1;
    w = w - k + 1;
    if (h < 1 || w < 1) throw new ArchitectureTooDeepError(inputShape, spec.filters.length, k);
    layers.push({
      name: `conv2d_${i + 1}`,
      kind: 'conv2d',
      outputShape: [h, w, f],
      activationElements: h * w * f,
      parameters: k * k * c * f + f,
    });
    c = f;
    if (i < spec.filters.length - 1) {
      h = Math.floor(h / 2);
      w = Math.floor(w / 2);
      if (h < 1 || w < 1) throw new ArchitectureTooDeepError(inputShape, spec.filters.length, k);
      layers.push({
        name: `max_pooling2d_${i + 1}`,
        kind: 'maxPooling2d',
        outputShape: [h, w, c],
        activationElements: h * w * c,
        parameters: 0,
      });
    }
  });
  const flat = h * w * c;
  layers.push({ name: 'flatten', kind: 'flatten', outputShape: [flat], activationElements: flat, parameters: 0 });
  layers.push({
    name: 'dense_1',
    kind: 'dense',
    outputShape: [spec.denseUnits],
    activationElements: spec.denseUnits,
    parameters: flat * spec.denseUnits + spec.denseUnits,
  });
  if (spec.dropout > 0) {
    layers.push({
      name: 'dropout',
      kind: 'dropout',
      outputShape: [spec.denseUnits],
      activationElements: spec.denseUnits,
      parameters: 0,
    });
  }
  layers.push({
    name: 'dense_2',
    kind: 'dense',
    outputShape: [numClasses],
    activationElements: numClasses,
    parameters: spec.denseUnits * numClasses + numClasses,
  });
  return {
    spec,
    layers,
    parameters: layers.reduce((sum, l) => sum + l.parameters, 0),
    activationElementsPerExample: layers.reduce((sum, l) => sum + l.activationElements, 0),
  };
}

/** Trainable parameters of the model `buildModel` would build. */
export function countParameters(
  values: HyperparameterValues,
  inputShape: [number, number, number],
  numClasses: number,
  defaults: LoadedConfig['model'] = {
    filters: [32, 64, 128],
    kernelSize: 3,
    denseUnits: 64,
    dropout: 0,
    learningRate: 0.001,
  },
): number {
  return describeArchitecture(values, inputShape, numClasses, defaults).parameters;
}
