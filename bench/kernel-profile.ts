/**
 * Where a training step's CPU goes, kernel by kernel and shape by shape, and a step's cost with
 * some of galactic's kernels switched back to the backend's own (issue 12):
 *   node --import tsx bench/kernel-profile.ts [--backend node|wasm] [--rounds 3] [--steps 8] [--top 40]
 *       [--stock MaxPoolGrad,...] [--fused-conv bias-relu|bias|off]
 * The notebook's CNN at 128x128x3, batch 32, trained with trainOnBatch on one random batch (as
 * `galactic bench train`). Each kernel call is timed by the process's CPU time (all threads), which
 * a loaded machine distorts far less than wall time; per kernel and input shapes the minimum over
 * --rounds profiled steps is printed. Then --steps timed steps give images/s and CPU ms per step.
 * --stock names kernels to run with the backend's own implementation instead of galactic's (node:
 * MaxPoolGrad, FusedConv2D; ReluGrad is not a tfjs kernel; `Adam`: tfjs's optimizer instead of the
 * fused ResourceApplyAdam, whose ops run outside tfjs's kernels and so show in the step's CPU, not
 * in the table), for before/after pairs in the same minutes.
 * --fused-conv: what node's ReLU conv layers run (src/model/native-fused-conv.ts): conv + bias + ReLU as one
 * op (default), only the bias fused, or tfjs's Conv2D + Add + Relu ('off', also implied by --stock FusedConv2D).
 * Run under `flock /work/bench.lock`.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/model/backend.ts';
import { buildModel } from '../src/model/architecture.ts';
import { setNativeFusedConvMode, type NativeFusedConvMode } from '../src/model/native-fused-conv.ts';
import { benchTrainingStep, NOTEBOOK_MODEL } from '../src/model/profile.ts';
import { setNativeAdam } from '../src/model/native-adam.ts';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'node' },
    rounds: { type: 'string', default: '3' },
    steps: { type: 'string', default: '8' },
    top: { type: 'string', default: '40' },
    stock: { type: 'string', default: '' },
    'fused-conv': { type: 'string', default: 'bias-relu' },
  },
});
const backendName = values.backend as 'node' | 'wasm';
const stock = values.stock.split(',').filter(Boolean);
if (stock.includes('Adam')) setNativeAdam('off');
const stockKernels = stock.filter((name) => name !== 'Adam');
const registryName = backendName === 'node' ? 'tensorflow' : 'wasm';

// The backend's own kernels, captured before galactic's replace them.
const originals = new Map<string, tf.KernelConfig>();
if (backendName === 'node') {
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  await import('@tensorflow/tfjs-node' as string);
  for (const name of stockKernels) {
    const kernel = tf.getKernel(name, registryName);
    if (!kernel) throw new Error(`tfjs-node has no '${name}' kernel`);
    originals.set(name, kernel);
  }
} else if (stockKernels.length > 0) {
  throw new Error('--stock is implemented for --backend node only');
}
await selectBackend(backendName, undefined, { threads: 'auto' });
for (const [name, kernel] of originals) {
  tf.unregisterKernel(name, registryName);
  tf.registerKernel(kernel);
}
const fusedConv = (stock.includes('FusedConv2D') ? 'off' : values['fused-conv']) as NativeFusedConvMode;
setNativeFusedConvMode(fusedConv);

// Kernel timing by CPU time: tf.profile asks the backend's `time`, which is wall time otherwise.
const active = tf.backend() as unknown as { time(f: () => void): Promise<{ kernelMs: number }> };
const wallTime = active.time.bind(active);
active.time = async (f) => {
  const started = process.cpuUsage();
  f();
  const used = process.cpuUsage(started);
  return { kernelMs: (used.user + used.system) / 1000 };
};

const model = buildModel({}, { inputShape: [128, 128, 3], numClasses: 3, seed: 42, defaults: NOTEBOOK_MODEL });
const xs = tf.randomUniform([32, 128, 128, 3], 0, 1, 'float32', 42);
const ys = tf.tensor1d(
  Array.from({ length: 32 }, (_, i) => i % 3),
  'float32',
);
await model.trainOnBatch(xs, ys);
const perShape = new Map<string, number[]>();
for (let round = 0; round < Number(values.rounds); round++) {
  const profile = await tf.profile(async () => {
    await model.trainOnBatch(xs, ys);
  });
  const sums = new Map<string, number>();
  for (const k of profile.kernels) {
    const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
    sums.set(key, (sums.get(key) ?? 0) + (k.kernelTimeMs as number));
  }
  for (const [key, ms] of sums) perShape.set(key, [...(perShape.get(key) ?? []), ms]);
}
active.time = wallTime;
tf.dispose([xs, ys]);
model.optimizer?.dispose();
model.dispose();

const rows = [...perShape].map(([key, ms]) => ({ key, ms: Math.min(...ms) })).sort((p, q) => q.ms - p.ms);
const total = rows.reduce((sum, row) => sum + row.ms, 0);
const label = `${stock.length ? ` (stock ${stock.join(', ')})` : ''}${backendName === 'node' ? ` (fused conv: ${fusedConv})` : ''}`;
console.log(`${backendName}${label}: ${total.toFixed(0)} CPU ms in kernels per step (min over ${values.rounds})`);
for (const row of rows.slice(0, Number(values.top)))
  console.log(`${row.ms.toFixed(1).padStart(8)} ${((100 * row.ms) / total).toFixed(1).padStart(5)}%  ${row.key}`);

const timed = await benchTrainingStep({
  backend: backendName,
  keepCurrentBackend: true,
  size: 128,
  batch: 32,
  steps: Number(values.steps),
});
console.log(
  `${backendName}${label}: ${timed.imagesPerSecond} images/s, ${timed.msPerStep.median} ms per step (wall), ` +
    `${timed.cpuMsPerStep} CPU ms per step, load ${os.loadavg()[0]!.toFixed(1)}`,
);
