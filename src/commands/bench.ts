import os from 'node:os';
import { Command } from 'commander';
import { UsageError } from '../core/errors.ts';
import { backendOption, positiveInt } from '../core/cli-options.ts';
import { addStageOptions, runStagesAction, scaleCommand, sweepCommand } from './bench-subcommands.ts';
import { describeMachine, machineInfo } from '../bench/machine.ts';
import type { BackendName } from '../model/backend.ts';
import { describeThreads, MAX_WASM_THREADS } from '../core/thread-count.ts';
import { commandContext } from './context.ts';

/**
 * `galactic bench [stage...]`: `bench train` alone measures the training step of the notebook's
 * CNN on random data (backend speed, no config or files needed); any other selection runs the
 * stage suite on the config's data (src/bench/suite.ts), with `scale` and `sweep` as subcommands.
 */
export function benchCommand(): Command {
  const command = new Command('bench')
    .description(
      'measure throughput and memory of each stage: decode, prepare, feed, train (or all); `bench train` alone times the training step on random data',
    )
    .argument('[stage...]', 'stages to run: decode, prepare, feed, train, all (default: all)')
    .addOption(backendOption('bench train: backend to train on', 'auto'))
    .option('--size <px>', 'bench train: image side in pixels', positiveInt, 128)
    .option('--batch <n>', 'bench train: images per training step', positiveInt, 32)
    .option('--steps <n>', 'bench train: timed steps after the warm-up step', positiveInt, 5)
    .option('--threads <n>', 'bench train: wasm compute threads, 1-8 or auto (every core)', wasmThreads, 'auto');
  addStageOptions(command);
  command.addCommand(scaleCommand().exitOverride());
  command.addCommand(sweepCommand().exitOverride());
  return command.action(async (stages: string[], _options: unknown, self: Command) => {
    if (stages.length === 1 && stages[0] === 'train') {
      await benchTrainAction(self);
      return;
    }
    const { trainStage } = await import('../bench/stages/train.ts');
    await runStagesAction(stages, self, trainStage);
  });
}

async function benchTrainAction(command: Command): Promise<void> {
  const { options, output } = commandContext(command);
  const backend = options.backend as 'auto' | BackendName;
  const machine = machineInfo();
  output.info(`bench train: ${describeMachine(machine)}`);
  const { benchTrainingStep, formatKernelTable } = await import('../model/profile.ts');
  const result = await benchTrainingStep({
    backend,
    size: options.size as number,
    batch: options.batch as number,
    steps: options.steps as number,
    threads: options.threads as 'auto' | number,
    output,
  });
  output.info(
    `bench train: ${result.backend}${result.threads ? ` (${describeThreads(result.threads)})` : ''}: ${result.imagesPerSecond} images/s, ${result.msPerStep.median} ms per step ` +
      `(min ${result.msPerStep.min}, max ${result.msPerStep.max}, ${result.msPerStep.steps} steps; batch ${result.batch}, ${result.size}x${result.size})`,
  );
  output.info(
    `bench train: ${result.cpuMsPerStep} ms of CPU per step (${result.imagesPerCpuSecond} images per CPU-second; load average ${os.loadavg()[0]!.toFixed(1)} on ${os.availableParallelism()} cores)`,
  );
  output.info('bench train: most expensive kernels of one profiled step:');
  for (const line of formatKernelTable(result.topKernels)) output.info(line);
  output.result({
    backend: result.backend,
    imagesPerSecond: result.imagesPerSecond,
    msPerStep: result.msPerStep,
    cpuMsPerStep: result.cpuMsPerStep,
    imagesPerCpuSecond: result.imagesPerCpuSecond,
    topKernels: result.topKernels,
    backendReason: result.backendReason,
    threads: result.threads,
    size: result.size,
    batch: result.batch,
    parameters: result.parameters,
    machine: { ...machine, backend: result.backend },
  });
}

function wasmThreads(value: string): 'auto' | number {
  if (value === 'auto') return 'auto';
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WASM_THREADS)
    throw new UsageError(`--threads must be auto or a whole number from 1 to ${MAX_WASM_THREADS} (got '${value}')`);
  return n;
}
