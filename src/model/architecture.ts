import * as tf from '@tensorflow/tfjs';
import { hashString } from '../core/rng.ts';
import {
  describeArchitecture,
  InvalidHyperparameterError,
  type ArchitectureOptions,
  type HyperparameterValues,
} from '../architecture/cnn-spec.ts';
import { createAdam } from './native-adam.ts';

export * from '../architecture/cnn-spec.ts';

/**
 * The notebook's CNN, built from hyperparameter values (keras-tuner names):
 * Conv2D(filters_1, k, relu) → MaxPool 2 → Conv2D(filters_2) → MaxPool 2 → … → Conv2D(filters_n)
 * → Flatten → Dense(dense_units, relu) → [Dropout] → Dense(numClasses, softmax).
 * A pool follows every conv but the last, exactly like the notebook's three blocks.
 */
/** A per-layer seed: same run seed and layer index → same initial weights, different layers differ. */
function layerSeed(seed: number, layerIndex: number): number {
  return hashString(`galactic-init:${seed}:${layerIndex}`) % 2147483647;
}

/**
 * Builds and compiles the CNN: Adam(learning_rate), sparseCategoricalCrossentropy, accuracy (Adam as one
 * fused TensorFlow op per variable on tfjs-node, see native-adam.ts).
 */
export function buildModel(values: HyperparameterValues, options: ArchitectureOptions): tf.LayersModel {
  const { inputShape, numClasses, seed, defaults } = options;
  if (!Number.isInteger(numClasses) || numClasses < 2) {
    throw new InvalidHyperparameterError('numClasses', numClasses, 'an integer of at least 2');
  }
  // Validates shapes (a too-deep net fails here with a clear message, not inside tfjs).
  const { spec } = describeArchitecture(values, inputShape, numClasses, defaults);
  let layerIndex = 0;
  const init = () => ({
    kernelInitializer: tf.initializers.glorotUniform({ seed: layerSeed(seed, layerIndex++) }),
    biasInitializer: 'zeros' as const,
  });
  const model = tf.sequential();
  spec.filters.forEach((filters, i) => {
    model.add(
      tf.layers.conv2d({
        filters,
        kernelSize: spec.kernelSize,
        activation: 'relu',
        ...(i === 0 ? { inputShape } : {}),
        ...init(),
      }),
    );
    if (i < spec.filters.length - 1) model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  });
  model.add(tf.layers.flatten());
  model.add(tf.layers.dense({ units: spec.denseUnits, activation: 'relu', ...init() }));
  if (spec.dropout > 0) model.add(tf.layers.dropout({ rate: spec.dropout, seed: layerSeed(seed, 1000) }));
  model.add(tf.layers.dense({ units: numClasses, activation: 'softmax', ...init() }));
  model.compile({
    optimizer: createAdam(spec.learningRate),
    loss: 'sparseCategoricalCrossentropy',
    metrics: ['accuracy'],
  });
  return model;
}
