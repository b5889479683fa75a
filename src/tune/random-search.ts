import type { SearchSpace } from './hyperparameters.ts';
import { Oracle, type Objective, type OracleDecision, type OracleStateBase } from './oracle.ts';

export interface RandomSearchOptions {
  maxTrials: number;
  /** Epochs every trial trains for (early stopping may end it sooner). */
  epochs: number;
  seed: number;
}

/**
 * keras-tuner's RandomSearch: fresh values each trial, never the same twice, up to maxTrials or until the space is
 * exhausted.
 */
export class RandomSearchOracle extends Oracle {
  readonly algorithm = 'random';

  constructor(
    space: SearchSpace,
    objective: Objective,
    private readonly options: RandomSearchOptions,
    state?: OracleStateBase,
  ) {
    super(space, objective, options.seed, state);
  }

  protected schedule(): OracleDecision {
    if (this.trials.length >= this.options.maxTrials) {
      return { kind: 'done', reason: `reached maxTrials (${this.options.maxTrials})` };
    }
    const values = this.sampleNewValues();
    if (!values) {
      return { kind: 'done', reason: `search space exhausted after ${this.tried.size} distinct values sets` };
    }
    return {
      kind: 'run',
      trial: this.addTrial({ values, epochs: this.options.epochs, initialEpoch: 0, parentId: null }),
    };
  }
}
