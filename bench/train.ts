/**
 * The wasm training step before and after galactic's kernels, in one run:
 *   node --import tsx bench/train.ts [--size 128] [--batch 32] [--steps 3] [--variants naive,project]
 * Each variant runs in its own child process (kernel registrations are process-wide):
 *  - naive: tfjs-backend-wasm 4.22's stock kernels plus the minimal shim that makes a conv net
 *    trainable at all (Conv2DBackpropFilter through the backend's Conv3DBackpropFilterV2);
 *  - project: selectBackend('wasm'), i.e. galactic's kernels.
 * Prints both per-kernel profiles and the speed-up on stderr, one JSON line on stdout. The two
 * are measured back to back on the same machine, so their ratio is meaningful even under load.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { machineInfo, describeMachine } from '../src/bench/machine.ts';
import { selectBackend } from '../src/model/backend.ts';
import { benchTrainingStep, formatKernelTable, type TrainBenchResult } from '../src/model/profile.ts';
import { Output } from '../src/core/console.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '128' },
    batch: { type: 'string', default: '32' },
    steps: { type: 'string', default: '3' },
    variants: { type: 'string', default: 'naive,project' },
    child: { type: 'string' },
  },
});
const settings = { size: Number(values.size), batch: Number(values.batch), steps: Number(values.steps) };

/** Conv2DBackpropFilter as a depth-1 Conv3DBackpropFilterV2: the cheapest way to train on stock wasm. */
function registerNaiveShim(): void {
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const { strides, pad, filterShape } = attrs as unknown as {
        strides: number | [number, number];
        pad: 'valid' | 'same';
        filterShape: number[];
      };
      const [sh, sw] = typeof strides === 'number' ? [strides, strides] : strides;
      const conv3d = tf.getKernel('Conv3DBackpropFilterV2', 'wasm')!.kernelFunc;
      const reshape = tf.getKernel('Reshape', 'wasm')!.kernelFunc;
      const x5 = reshape({
        inputs: { x },
        backend,
        attrs: { shape: [x.shape[0]!, 1, ...x.shape.slice(1)] },
      }) as tf.TensorInfo;
      const dy5 = reshape({
        inputs: { x: dy },
        backend,
        attrs: { shape: [dy.shape[0]!, 1, ...dy.shape.slice(1)] },
      }) as tf.TensorInfo;
      const dw5 = conv3d({
        inputs: { x: x5, dy: dy5 },
        backend,
        attrs: { strides: [1, sh, sw], pad, filterShape: [1, ...filterShape] },
      }) as tf.TensorInfo;
      const dw = reshape({ inputs: { x: dw5 }, backend, attrs: { shape: filterShape } }) as tf.TensorInfo;
      for (const t of [x5, dy5, dw5]) (backend as tf.KernelBackend).disposeData(t.dataId);
      return dw;
    },
  });
}

async function runVariant(variant: string): Promise<TrainBenchResult> {
  const output = new Output({ json: false });
  if (variant === 'naive') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(
      `${fileURLToPath(new URL('../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url))}`,
    );
    await tf.setBackend('wasm');
    registerNaiveShim();
  } else {
    await selectBackend('wasm', output);
  }
  return benchTrainingStep({ backend: 'wasm', keepCurrentBackend: true, ...settings, output });
}

if (values.child) {
  const result = await runVariant(values.child);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  const output = new Output({ json: false });
  const machine = machineInfo('wasm');
  output.info(`bench/train: ${describeMachine(machine)}`);
  const results: Record<string, TrainBenchResult> = {};
  for (const variant of values.variants.split(',')) {
    output.info(
      `bench/train: ${variant} (${settings.batch} x ${settings.size}x${settings.size}x3, ${settings.steps} steps after warm-up)`,
    );
    const stdout = execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        '--child',
        variant,
        '--size',
        String(settings.size),
        '--batch',
        String(settings.batch),
        '--steps',
        String(settings.steps),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 1024 * 1024 },
    );
    const result = JSON.parse(stdout.toString().trim().split('\n').at(-1)!) as TrainBenchResult;
    results[variant] = result;
    output.info(
      `${variant}: ${result.imagesPerSecond} images/s, ${result.msPerStep.median} ms/step (min ${result.msPerStep.min}, max ${result.msPerStep.max})`,
    );
    for (const line of formatKernelTable(result.kernels.slice(0, 10))) output.info(line);
  }
  const speedup =
    results.naive && results.project ? results.project.imagesPerSecond / results.naive.imagesPerSecond : null;
  if (speedup) output.info(`speed-up of galactic's kernels over the naive shim: ${speedup.toFixed(1)}x`);
  process.stdout.write(
    `${JSON.stringify({ machine, loadAverageAfter: os.loadavg()[0], settings, speedup, results })}\n`,
  );
}
