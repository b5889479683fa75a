import { PassThrough } from 'node:stream';
import { Output } from '../../src/core/console.ts';
import { HyperbandOracle, type HyperbandState } from '../../src/tune/hyperband.ts';
import { SearchSpace } from '../../src/tune/hyperparameters.ts';
import type { Objective, OracleStateBase } from '../../src/tune/oracle.ts';
import { RandomSearchOracle } from '../../src/tune/random-search.ts';
import type { SearchDescription } from '../../src/tune/trial-store.ts';
import type { TunerOptions } from '../../src/tune/tuner.ts';
import type { TrialRunner } from '../../src/tune/trial-runner.ts';
import type { HyperparameterValues } from '../../src/tune/hyperparameters.ts';
import { trialRefusal } from '../../src/memory/refusals.ts';

/** Tuner options for tests: a small notebook-like space, no config file, no tfjs. */

export const testSpace = {
  filters_1: { type: 'int', min: 16, max: 64, step: 16, sampling: 'linear' },
  dense_units: { type: 'int', min: 32, max: 128, step: 32, sampling: 'linear' },
  learning_rate: { type: 'float', min: 1e-4, max: 1e-2, step: null, sampling: 'log' },
} as const;

export interface FakeTunerSetup {
  dir: string;
  runner: TrialRunner;
  algorithm?: 'random' | 'hyperband';
  maxTrials?: number;
  epochs?: number;
  patience?: number | null;
  space?: Record<string, unknown>;
  /** A trial's estimate in MB (default 100), refused by the plan's rule against `limitMB`. */
  estimateMB?: (values: HyperparameterValues) => number;
  limitMB?: number;
  overwrite?: boolean;
  signal?: AbortSignal;
}

export function captureOutput(): { output: Output; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { output: new Output({ stream, tty: false }), text: () => text };
}

export function fakeTunerOptions(setup: FakeTunerSetup, output?: Output): TunerOptions {
  const algorithm = setup.algorithm ?? 'random';
  const objective: Objective = { name: 'val_accuracy', direction: 'max' };
  const spaceSpec = (setup.space ?? testSpace) as never;
  const epochs = setup.epochs ?? 6;
  const search: SearchDescription = {
    algorithm,
    objective: objective.name,
    direction: objective.direction,
    space: spaceSpec,
    epochs,
    patience: setup.patience === undefined ? 3 : setup.patience,
    hyperband: algorithm === 'hyperband' ? { factor: 3, iterations: 1 } : null,
    seed: 42,
    data: 'fake-data',
    batchSize: 8,
    image: { width: 32, height: 32 },
  };
  const createOracle = (state?: OracleStateBase) => {
    const space = SearchSpace.fromConfig(spaceSpec);
    return algorithm === 'hyperband'
      ? new HyperbandOracle(
          space,
          objective,
          { maxEpochs: epochs, factor: 3, iterations: 1, seed: 42, maxTrials: setup.maxTrials ?? null },
          state as HyperbandState,
        )
      : new RandomSearchOracle(space, objective, { maxTrials: setup.maxTrials ?? 6, epochs, seed: 42 }, state);
  };
  return {
    dir: setup.dir,
    search,
    createOracle,
    runner: setup.runner,
    estimate: (values) => {
      const estimateMB = setup.estimateMB?.(values) ?? 100;
      const limitMB = setup.limitMB ?? 1000;
      return {
        estimateMB,
        refusal: trialRefusal(
          { limitMB, limitBytes: limitMB * 1024 * 1024 },
          { totalMB: estimateMB, totalBytes: estimateMB * 1024 * 1024 },
        ),
      };
    },
    overwrite: setup.overwrite,
    output,
    signal: setup.signal,
  };
}
