import type { LoadedConfig } from '../config/load.ts';
import { UserError } from '../core/errors.ts';
import { BayesianOracle } from './bayesian.ts';
import { HyperbandOracle, type HyperbandState } from './hyperband.ts';
import { canonicalJson } from '../core/canonical-json.ts';
import { SearchSpace } from './hyperparameters.ts';
import type { Objective, Oracle, OracleStateBase } from './oracle.ts';
import { RandomSearchOracle } from './random-search.ts';
import type { SearchDescription } from './trial-store.ts';

/** Turns the config (plus command-line overrides) into the search the tuner runs and the oracle that schedules it. */

export interface SearchOverrides {
  algorithm?: 'random' | 'hyperband' | 'bayesian';
  /** From --max-trials; for Hyperband only an explicit value caps the schedule. */
  maxTrials?: number;
}

export class TuningDirMismatchError extends UserError {
  constructor(dir: string, differences: string[]) {
    super(
      `tuning folder ${dir} holds a different search (${differences.join('; ')}). ` +
        `Rerun with --overwrite to delete it and start afresh, or set tuner.dir to another folder to keep both.`,
    );
  }
}

export function objectiveOf(config: LoadedConfig): Objective {
  const name = config.tuner.objective;
  return { name, direction: config.tuner.direction ?? (name.endsWith('loss') ? 'min' : 'max') };
}

export function describeSearch(
  config: LoadedConfig,
  dataKey: string,
  overrides: SearchOverrides = {},
): SearchDescription {
  const algorithm = overrides.algorithm ?? config.tuner.algorithm;
  const objective = objectiveOf(config);
  return {
    algorithm,
    objective: objective.name,
    direction: objective.direction,
    space: config.tuner.space,
    epochs: config.tuner.epochs,
    patience: config.tuner.patience,
    hyperband: algorithm === 'hyperband' ? { ...config.tuner.hyperband } : null,
    seed: config.seed,
    data: dataKey,
    batchSize: config.train.batchSize,
    image: config.image,
  };
}

const FIELD_LABELS: Record<keyof SearchDescription, string> = {
  algorithm: 'algorithm',
  objective: 'tuner.objective',
  direction: 'tuner.direction',
  space: 'tuner.space',
  epochs: 'tuner.epochs',
  patience: 'tuner.patience',
  hyperband: 'tuner.hyperband',
  seed: 'seed',
  data: 'training data (cache key)',
  batchSize: 'train.batchSize',
  image: 'image',
};

/** Which parts of the search differ, e.g. `tuner.space was {...}, now {...}`; empty when it is the same search. */
export function searchDifferences(stored: SearchDescription, current: SearchDescription): string[] {
  const differences: string[] = [];
  for (const key of Object.keys(FIELD_LABELS) as (keyof SearchDescription)[]) {
    const was = canonicalJson(stored[key] ?? null);
    const now = canonicalJson(current[key] ?? null);
    if (was !== now) differences.push(`${FIELD_LABELS[key]} was ${abbreviate(was)}, now ${abbreviate(now)}`);
  }
  return differences;
}

function abbreviate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

export function createOracle(
  search: SearchDescription,
  config: LoadedConfig,
  overrides: SearchOverrides,
  state?: OracleStateBase,
): Oracle {
  const space = SearchSpace.fromConfig(config.tuner.space);
  const objective: Objective = { name: search.objective as Objective['name'], direction: search.direction };
  if (search.algorithm === 'hyperband') {
    return new HyperbandOracle(
      space,
      objective,
      {
        maxEpochs: search.epochs,
        factor: config.tuner.hyperband.factor,
        iterations: config.tuner.hyperband.iterations,
        seed: search.seed,
        maxTrials: overrides.maxTrials ?? null,
      },
      state as HyperbandState | undefined,
    );
  }
  if (search.algorithm === 'bayesian') {
    return new BayesianOracle(
      space,
      objective,
      { maxTrials: overrides.maxTrials ?? config.tuner.maxTrials, epochs: search.epochs, seed: search.seed },
      state,
    );
  }
  return new RandomSearchOracle(
    space,
    objective,
    {
      maxTrials: overrides.maxTrials ?? config.tuner.maxTrials,
      epochs: search.epochs,
      seed: search.seed,
    },
    state,
  );
}
