import * as tf from '@tensorflow/tfjs';
import type { Feed } from '../data/feed.ts';
import { batchTensors } from '../data/feed.ts';

/**
 * Validation metrics for metrics.json (contract §7): confusion matrix (rows = true class),
 * per-class precision/recall/F1 with support, overall accuracy, and a bounded set of samples
 * (the first few validation records of each true class, with probabilities) for the report.
 */

export interface ClassMetrics {
  class: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface Sample {
  id: string;
  label: string;
  predicted: string;
  probabilities: number[];
}

export interface ValidationMetrics {
  classes: string[];
  confusion: number[][];
  perClass: ClassMetrics[];
  accuracy: number;
  samples: Sample[];
}

export const SAMPLES_PER_CLASS = 8;

export function argMax(values: ArrayLike<number>, from = 0, count = values.length): number {
  let best = 0;
  for (let k = 1; k < count; k++) if (values[from + k] > values[from + best]) best = k;
  return best;
}

/** Confusion matrix and derived scores from true and predicted class indices. */
export function classificationMetrics(
  classes: string[],
  truth: ArrayLike<number>,
  predicted: ArrayLike<number>,
): Omit<ValidationMetrics, 'samples'> {
  const k = classes.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < truth.length; i++) confusion[truth[i]][predicted[i]]++;
  let correct = 0;
  const perClass = classes.map((name, c) => {
    const tp = confusion[c][c];
    correct += tp;
    const support = confusion[c].reduce((a, b) => a + b, 0);
    const predictedAs = confusion.reduce((sum, row) => sum + row[c], 0);
    const precision = predictedAs > 0 ? tp / predictedAs : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { class: name, precision, recall, f1, support };
  });
  return { classes, confusion, perClass, accuracy: truth.length > 0 ? correct / truth.length : 0 };
}

/** Predicts every validation record (streamed batch by batch) and scores the predictions. */
export async function evaluateValidation(
  model: tf.LayersModel,
  feed: Feed,
  classes: string[],
  samplesPerClass = SAMPLES_PER_CLASS,
): Promise<ValidationMetrics> {
  const truth: number[] = [];
  const predicted: number[] = [];
  const samples: Sample[] = [];
  const taken = new Array<number>(classes.length).fill(0);
  const k = classes.length;
  for await (const batch of feed.validationBatches()) {
    const { xs, ys } = batchTensors(batch, feed.shape);
    const output = model.predict(xs) as tf.Tensor;
    const probabilities = await output.data();
    tf.dispose([xs, ys, output]);
    for (let i = 0; i < batch.size; i++) {
      const label = batch.labels[i];
      const guess = argMax(probabilities, i * k, k);
      truth.push(label);
      predicted.push(guess);
      if (taken[label] < samplesPerClass) {
        taken[label]++;
        samples.push({
          id: batch.ids[i],
          label: classes[label],
          predicted: classes[guess],
          probabilities: Array.from(probabilities.subarray(i * k, (i + 1) * k)),
        });
      }
    }
  }
  return { ...classificationMetrics(classes, truth, predicted), samples };
}
