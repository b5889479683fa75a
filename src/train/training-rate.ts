import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { LoadedConfig } from '../config/load.ts';
import { Rng } from '../core/rng.ts';
import { buildModel, type HyperparameterValues } from '../model/architecture.ts';
import { withKernelCheck } from '../model/backend.ts';
import { saveCheckpoint } from '../model/checkpoint.ts';
import { disposeModel } from './trainer.ts';

/**
 * The cost of training one model on the active backend, from a few timed steps on synthetic
 * batches (no cache needed, so `galactic plan` can measure before anything is prepared): seconds
 * per image of a training step and of a validation forward pass, plus the fixed costs a trial pays
 * (building the model, its first step, one checkpoint). The time plan turns these into durations.
 */
export interface StepCosts {
  trainSecondsPerImage: number;
  evalSecondsPerImage: number;
  /** Building and compiling the model plus its first (warm-up) training step. */
  setupSeconds: number;
  /** One saveCheckpoint (the tuner writes one every epoch). */
  checkpointSeconds: number;
  /** Timed training steps behind the figure. */
  steps: number;
}

export interface StepCostOptions {
  config: LoadedConfig;
  values: HyperparameterValues;
  inputShape: [number, number, number];
  numClasses: number;
  /**
   * Keep timing steps until this much time has passed (at least `minSteps`, at most `maxSteps`); the median step
   * counts.
   */
  minSeconds?: number;
  minSteps?: number;
  maxSteps?: number;
}

/** Seconds of each timed run of `step`: at least `minSteps`, then on until `minSeconds` have passed. */
async function timeSteps(
  step: () => Promise<unknown>,
  minSteps: number,
  maxSteps: number,
  minSeconds: number,
): Promise<number[]> {
  const times: number[] = [];
  let total = 0;
  while (times.length < maxSteps && (times.length < minSteps || total < minSeconds)) {
    const started = performance.now();
    await step();
    const seconds = (performance.now() - started) / 1000;
    times.push(seconds);
    total += seconds;
  }
  return times;
}

/** The median step: one step slowed by another process on a shared machine does not move it. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export async function measureStepCosts(options: StepCostOptions): Promise<StepCosts> {
  const { config, inputShape, numClasses } = options;
  const minSeconds = options.minSeconds ?? 2;
  const minSteps = options.minSteps ?? 3;
  const maxSteps = options.maxSteps ?? 30;
  const batchSize = config.train.batchSize;
  const rng = new Rng(config.seed, 'time-plan-batch');
  const pixels = new Float32Array(batchSize * inputShape[0] * inputShape[1] * inputShape[2]);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rng.next();
  const labels = Float32Array.from({ length: batchSize }, (_, i) => i % numClasses);
  const xs = tf.tensor4d(pixels, [batchSize, ...inputShape]);
  const ys = tf.tensor1d(labels);
  const setupStarted = performance.now();
  const model = buildModel(options.values, { inputShape, numClasses, seed: config.seed, defaults: config.model });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'galactic-rate-'));
  try {
    await withKernelCheck(() => model.trainOnBatch(xs, ys));
    const setupSeconds = (performance.now() - setupStarted) / 1000;
    // the next steps still run slower (heap growth, optimizer slots, JIT): not what an epoch sees
    await model.trainOnBatch(xs, ys);
    await model.trainOnBatch(xs, ys);

    const trainTimes = await timeSteps(() => model.trainOnBatch(xs, ys), minSteps, maxSteps, minSeconds);

    // validation is evaluate(): a forward pass plus the loss and metric, read back per batch
    const evaluate = async () => {
      const result = model.evaluate(xs, ys, { batchSize }) as tf.Scalar[];
      await Promise.all(result.map((t) => t.data()));
      tf.dispose(result);
    };
    await evaluate();
    const evalTimes = await timeSteps(evaluate, minSteps, maxSteps, minSeconds / 2);

    const checkpointStarted = performance.now();
    await saveCheckpoint(dir, model);
    const checkpointSeconds = (performance.now() - checkpointStarted) / 1000;
    return {
      trainSecondsPerImage: median(trainTimes) / batchSize,
      evalSecondsPerImage: median(evalTimes) / batchSize,
      setupSeconds,
      checkpointSeconds,
      steps: trainTimes.length,
    };
  } finally {
    disposeModel(model);
    tf.dispose([xs, ys]);
    rmSync(dir, { recursive: true, force: true });
  }
}
