import { GaussianProcess } from './gaussian-process.ts';
import { hashValues, type HyperparameterValues, type SearchSpace } from './hyperparameters.ts';
import { Oracle, type Objective, type OracleDecision, type OracleStateBase } from './oracle.ts';

/**
 * keras-tuner's BayesianOptimization, in its default shape: random values for the first
 * `3 x searched dimensions` completed trials, then a Gaussian process (Matern 5/2) fitted to the
 * completed trials' scores proposes the values with the highest upper confidence bound
 * (mean + beta x std, beta 2.6) among random candidates. The model is refitted from the trial
 * ledger each time, so oracle.json needs nothing beyond the base state to resume exactly.
 */

export interface BayesianOptions {
  maxTrials: number;
  epochs: number;
  seed: number;
  /** Random trials before the model is used; default 3 x the number of searched hyperparameters. */
  initialPoints?: number;
  /** UCB exploration weight (keras-tuner's default 2.6). */
  beta?: number;
  /** Random candidates the acquisition is maximised over. */
  candidates?: number;
}

export class BayesianOracle extends Oracle {
  readonly algorithm = 'bayesian';

  constructor(
    space: SearchSpace,
    objective: Objective,
    private readonly options: BayesianOptions,
    state?: OracleStateBase,
  ) {
    super(space, objective, options.seed, state);
  }

  private encode(values: HyperparameterValues): number[] {
    return this.space.parameters.map((p) => p.unit(values[p.name]));
  }

  protected schedule(): OracleDecision {
    if (this.trials.length >= this.options.maxTrials) {
      return { kind: 'done', reason: `reached maxTrials (${this.options.maxTrials})` };
    }
    const searched = this.space.parameters.filter((p) => p.cardinality > 1).length;
    const initialPoints = this.options.initialPoints ?? Math.max(2, 3 * searched);
    const completed = this.trials.filter(
      (t) => t.status === 'COMPLETED' && t.score !== null && Number.isFinite(t.score),
    );
    const values =
      completed.length < initialPoints ? this.sampleNewValues() : (this.propose(completed) ?? this.sampleNewValues());
    if (!values)
      return { kind: 'done', reason: `search space exhausted after ${this.tried.size} distinct values sets` };
    return {
      kind: 'run',
      trial: this.addTrial({ values, epochs: this.options.epochs, initialEpoch: 0, parentId: null }),
    };
  }

  /** The untried random candidate with the highest upper confidence bound, or null when every candidate was tried. */
  private propose(
    completed: readonly { values: HyperparameterValues; score: number | null }[],
  ): HyperparameterValues | null {
    const sign = this.objective.direction === 'max' ? 1 : -1;
    const gp = new GaussianProcess(
      completed.map((t) => this.encode(t.values)),
      completed.map((t) => sign * (t.score as number)),
    );
    const beta = this.options.beta ?? 2.6;
    let best: { values: HyperparameterValues; hash: string; ucb: number } | null = null;
    for (let i = 0; i < (this.options.candidates ?? 1000); i++) {
      const values = this.space.sample(this.rng);
      const hash = hashValues(values);
      if (this.tried.has(hash)) continue;
      const { mean, std } = gp.predict(this.encode(values));
      const ucb = mean + beta * std;
      if (!best || ucb > best.ucb) best = { values, hash, ucb };
    }
    if (!best) return null;
    this.tried.add(best.hash);
    return best.values;
  }
}
