import * as tf from '@tensorflow/tfjs';
import type { Output } from '../core/console.ts';
import { buildModel, countParameters, type HyperparameterValues } from './architecture.ts';
import { activeBackendName, selectBackend, withKernelCheck, type BackendChoice, type BackendName } from './backend.ts';

/**
 * The training-step benchmark behind `galactic bench train`: the notebook's CNN trained with
 * trainOnBatch on random data (no files, no feed), so the figure is the backend's alone.
 */

/** The notebook's model: conv 32/64/128, kernel 3, dense 64, Adam 1e-3. */
export const NOTEBOOK_MODEL = {
  filters: [32, 64, 128],
  kernelSize: 3,
  denseUnits: 64,
  dropout: 0,
  learningRate: 0.001,
};

export interface TrainBenchOptions {
  backend: 'auto' | BackendName;
  /** Image side in pixels (square). */
  size: number;
  batch: number;
  /** Timed steps after the warm-up step. */
  steps: number;
  channels?: number;
  numClasses?: number;
  values?: HyperparameterValues;
  seed?: number;
  output?: Output;
  /** wasm: XNNPACK threads ('auto' = every core); fixed once wasm has initialised in the process. */
  threads?: 'auto' | number;
  /** Skip selectBackend (the caller already activated a backend, e.g. with a different kernel set). */
  keepCurrentBackend?: boolean;
}

export interface KernelCost {
  kernel: string;
  ms: number;
  /** Share of all kernel time in the profiled step (0..1). */
  share: number;
  calls: number;
}

export interface TrainBenchResult {
  backend: string;
  backendReason: string | null;
  /** wasm: XNNPACK threads the step ran on. */
  threads: number | null;
  imagesPerSecond: number;
  msPerStep: { median: number; min: number; max: number; steps: number };
  /**
   * CPU time of this process per step (median), all threads. With one wasm thread it equals the
   * wall time on an idle machine; with more it shows how busy the pool kept the cores.
   */
  cpuMsPerStep: number;
  imagesPerCpuSecond: number;
  topKernels: KernelCost[];
  /** Every kernel of the profiled step, most expensive first. */
  kernels: KernelCost[];
  size: number;
  batch: number;
  parameters: number;
  tfjs: string;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Sums tf.profile's per-call kernel times by kernel name. */
export function kernelCosts(profile: Awaited<ReturnType<typeof tf.profile>>): KernelCost[] {
  const byName = new Map<string, { ms: number; calls: number }>();
  for (const k of profile.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const entry = byName.get(k.name) ?? { ms: 0, calls: 0 };
    entry.ms += ms;
    entry.calls++;
    byName.set(k.name, entry);
  }
  const total = [...byName.values()].reduce((s, e) => s + e.ms, 0) || 1;
  return [...byName]
    .map(([kernel, e]) => ({ kernel, ms: round(e.ms), share: round(e.ms / total, 3), calls: e.calls }))
    .sort((a, b) => b.ms - a.ms);
}

export async function benchTrainingStep(options: TrainBenchOptions): Promise<TrainBenchResult> {
  let choice: BackendChoice | null = null;
  if (!options.keepCurrentBackend)
    choice = await selectBackend(options.backend, options.output, { threads: options.threads ?? 'auto' });
  const channels = options.channels ?? 3;
  const numClasses = options.numClasses ?? 3;
  const inputShape: [number, number, number] = [options.size, options.size, channels];
  const values = options.values ?? {};
  const model = buildModel(values, { inputShape, numClasses, seed: options.seed ?? 42, defaults: NOTEBOOK_MODEL });
  const xs = tf.randomUniform(
    [options.batch, options.size, options.size, channels],
    0,
    1,
    'float32',
    options.seed ?? 42,
  );
  const ys = tf.tensor1d(
    Array.from({ length: options.batch }, (_, i) => i % numClasses),
    'float32',
  );
  const step = () => withKernelCheck(() => model.trainOnBatch(xs, ys));
  try {
    options.output?.info(
      `bench train: warm-up step (${options.batch} images of ${options.size}x${options.size}x${channels})`,
    );
    await step();
    const times: number[] = [];
    const cpuTimes: number[] = [];
    for (let i = 0; i < options.steps; i++) {
      const started = performance.now();
      const cpuStarted = process.cpuUsage();
      await step();
      times.push(performance.now() - started);
      const cpu = process.cpuUsage(cpuStarted);
      cpuTimes.push((cpu.user + cpu.system) / 1000);
      options.output?.info(`bench train: step ${i + 1}/${options.steps} ${times.at(-1)!.toFixed(0)} ms`);
    }
    // A separate profiled step: per-kernel timing adds a little overhead, so it is not in the rate.
    const profile = await tf.profile(async () => {
      await step();
    });
    const kernels = kernelCosts(profile);
    const msMedian = median(times);
    return {
      backend: activeBackendName(),
      backendReason: choice?.reason ?? null,
      threads: choice?.threads ?? null,
      imagesPerSecond: round(options.batch / (msMedian / 1000), 2),
      msPerStep: {
        median: round(msMedian),
        min: round(Math.min(...times)),
        max: round(Math.max(...times)),
        steps: times.length,
      },
      cpuMsPerStep: round(median(cpuTimes)),
      imagesPerCpuSecond: round(options.batch / (median(cpuTimes) / 1000), 2),
      topKernels: kernels.slice(0, 5),
      kernels,
      size: options.size,
      batch: options.batch,
      parameters: countParameters(values, inputShape, numClasses, NOTEBOOK_MODEL),
      tfjs: tf.version.tfjs,
    };
  } finally {
    tf.dispose([xs, ys]);
    model.optimizer?.dispose();
    model.dispose();
  }
}

/** The kernel table as aligned text lines (for stderr and the docs). */
export function formatKernelTable(kernels: KernelCost[]): string[] {
  return kernels.map(
    (k) =>
      `  ${k.kernel.padEnd(24)} ${k.ms.toFixed(1).padStart(9)} ms  ${(100 * k.share).toFixed(1).padStart(5)}%  ${String(k.calls).padStart(4)} calls`,
  );
}
