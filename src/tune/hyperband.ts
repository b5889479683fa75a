import type { SearchSpace } from './hyperparameters.ts';
import {
  isBetter,
  Oracle,
  type Objective,
  type OracleDecision,
  type OracleStateBase,
  type OracleTrial,
} from './oracle.ts';

/**
 * Hyperband (Li et al.) scheduled the way keras-tuner's HyperbandOracle does it:
 * - brackets = how many times maxEpochs can be divided by factor staying >= 1;
 * - the most aggressive bracket (most rounds) runs first, then the next, down to bracket 0
 *   (plain random search at maxEpochs), repeated `iterations` times;
 * - bracket b has b+1 rounds; round r runs ceil(ceil(1 + log_factor(maxEpochs)) / (b+1) * factor^(b-r))
 *   trials for ceil(maxEpochs / factor^(b-r)) epochs;
 * - round r+1 continues the best trials of round r from their best weights (initialEpoch = the
 *   epochs of round r), each as a new trial with the same values.
 * Trials run one at a time here, so a round starts only when the previous one has finished.
 */

/**
 * ceil(1 + log_factor(maxEpochs)) computed on integers: floating log differs between libms (log(81)/log(3) is
 * 4.000000000000001 in V8).
 */
function bracketZeroEndSize(maxEpochs: number, factor: number): number {
  let power = 1;
  let k = 0;
  while (power < maxEpochs) {
    power *= factor;
    k++;
  }
  return 1 + k;
}

export function hyperbandBracketCount(maxEpochs: number, factor: number): number {
  let epochs = maxEpochs;
  let brackets = 0;
  while (epochs >= 1) {
    epochs = epochs / factor;
    brackets++;
  }
  return brackets;
}

/** Trials in round `round` of bracket `bracket` (same floating arithmetic as keras-tuner's `_get_size`). */
export function hyperbandRoundSize(maxEpochs: number, factor: number, bracket: number, round: number): number {
  const endSize = bracketZeroEndSize(maxEpochs, factor) / (bracket + 1);
  return Math.ceil(endSize * factor ** (bracket - round));
}

/** Epochs a trial of that round trains until (keras-tuner's `_get_epochs`). */
export function hyperbandRoundEpochs(maxEpochs: number, factor: number, bracket: number, round: number): number {
  return Math.ceil(maxEpochs / factor ** (bracket - round));
}

export interface HyperbandRoundPlan {
  round: number;
  trials: number;
  epochs: number;
}
export interface HyperbandBracketPlan {
  bracket: number;
  rounds: HyperbandRoundPlan[];
}

/** The full schedule of one iteration, most aggressive bracket first (for docs, `--json` and tests). */
export function hyperbandSchedule(maxEpochs: number, factor: number): HyperbandBracketPlan[] {
  const plans: HyperbandBracketPlan[] = [];
  for (let b = hyperbandBracketCount(maxEpochs, factor) - 1; b >= 0; b--) {
    const rounds: HyperbandRoundPlan[] = [];
    for (let r = 0; r <= b; r++) {
      rounds.push({
        round: r,
        trials: hyperbandRoundSize(maxEpochs, factor, b, r),
        epochs: hyperbandRoundEpochs(maxEpochs, factor, b, r),
      });
    }
    plans.push({ bracket: b, rounds });
  }
  return plans;
}

export interface HyperbandOptions {
  maxEpochs: number;
  factor: number;
  iterations: number;
  seed: number;
  /** Optional cap on the number of trials (keras-tuner's Hyperband has none by default). */
  maxTrials: number | null;
}

interface HyperbandRoundState {
  trialIds: string[];
  /** How many trials this round gets; null until the previous round has finished. */
  target: number | null;
}

interface HyperbandBracketState {
  bracket: number;
  iteration: number;
  rounds: HyperbandRoundState[];
}

export interface HyperbandState extends OracleStateBase {
  currentBracket: number;
  currentIteration: number;
  brackets: HyperbandBracketState[];
}

export class HyperbandOracle extends Oracle {
  readonly algorithm = 'hyperband';
  private currentBracket: number;
  private currentIteration: number;
  private brackets: HyperbandBracketState[];

  constructor(
    space: SearchSpace,
    objective: Objective,
    private readonly options: HyperbandOptions,
    state?: HyperbandState,
  ) {
    super(space, objective, options.seed, state);
    if (state) {
      this.currentBracket = state.currentBracket;
      this.currentIteration = state.currentIteration;
      this.brackets = structuredClone(state.brackets);
    } else {
      this.currentBracket = hyperbandBracketCount(options.maxEpochs, options.factor) - 1;
      this.currentIteration = 0;
      this.brackets = [];
      this.startBracket();
    }
  }

  override getState(): HyperbandState {
    return {
      ...super.getState(),
      currentBracket: this.currentBracket,
      currentIteration: this.currentIteration,
      brackets: structuredClone(this.brackets),
    };
  }

  protected schedule(): OracleDecision {
    if (this.options.maxTrials !== null && this.trials.length >= this.options.maxTrials) {
      return { kind: 'done', reason: `reached maxTrials (${this.options.maxTrials})` };
    }
    for (;;) {
      for (const bracket of this.brackets) {
        const trial = this.nextInBracket(bracket);
        if (trial) return { kind: 'run', trial };
      }
      this.brackets = this.brackets.filter((b) => !this.isBracketDone(b));
      if (this.brackets.length > 0) {
        // Only reachable if a bracket waits on unfinished trials, which a sequential tuner never leaves behind.
        return { kind: 'done', reason: 'waiting on unfinished trials' };
      }
      if (this.currentBracket === 0 && this.currentIteration + 1 >= this.options.iterations) {
        return { kind: 'done', reason: `finished ${this.options.iterations} Hyperband iteration(s)` };
      }
      this.currentBracket--;
      if (this.currentBracket < 0) {
        this.currentBracket = hyperbandBracketCount(this.options.maxEpochs, this.options.factor) - 1;
        this.currentIteration++;
      }
      const fresh = this.startBracket();
      if (this.sampleExhausted(fresh))
        return { kind: 'done', reason: `search space exhausted after ${this.tried.size} distinct values sets` };
    }
  }

  private startBracket(): HyperbandBracketState {
    const bracket: HyperbandBracketState = {
      bracket: this.currentBracket,
      iteration: this.currentIteration,
      rounds: Array.from({ length: this.currentBracket + 1 }, () => ({ trialIds: [], target: null })),
    };
    this.brackets.push(bracket);
    return bracket;
  }

  /** True when a freshly started bracket could not get a single values set. */
  private sampleExhausted(bracket: HyperbandBracketState): boolean {
    return this.tried.size >= this.space.size && bracket.rounds[0].trialIds.length === 0;
  }

  private nextInBracket(bracket: HyperbandBracketState): OracleTrial | null {
    const { maxEpochs, factor } = this.options;
    const b = bracket.bracket;
    for (let r = 0; r < bracket.rounds.length; r++) {
      const round = bracket.rounds[r];
      if (r === 0) {
        round.target ??= hyperbandRoundSize(maxEpochs, factor, b, 0);
        if (round.trialIds.length < round.target) {
          const values = this.sampleNewValues();
          if (values) {
            const trial = this.addTrial({
              values,
              epochs: hyperbandRoundEpochs(maxEpochs, factor, b, 0),
              initialEpoch: 0,
              parentId: null,
              bracket: b,
              round: 0,
            });
            round.trialIds.push(trial.id);
            return trial;
          }
          // Space exhausted: the round closes with what it has and the bracket goes on with it.
          round.target = round.trialIds.length;
        }
        continue;
      }
      const previous = bracket.rounds[r - 1];
      if (previous.target === null || previous.trialIds.length < previous.target) return null;
      const finished = previous.trialIds.map((id) => this.trial(id));
      if (finished.some((t) => t.status === 'RUNNING' || t.status === 'STOPPED')) return null;
      const completed = finished.filter((t) => t.status === 'COMPLETED');
      // A failed or infeasible trial does not shrink the next round: the best completed ones fill it.
      round.target ??= Math.min(hyperbandRoundSize(maxEpochs, factor, b, r), completed.length);
      if (round.trialIds.length < round.target) {
        const promoted = new Set(round.trialIds.map((id) => this.trial(id).parentId));
        const best = completed
          .filter((t) => !promoted.has(t.id))
          .reduce<OracleTrial | null>(
            (acc, t) => (acc === null || isBetter(t.score, acc.score, this.objective.direction) ? t : acc),
            null,
          );
        if (best) {
          const trial = this.addTrial({
            values: { ...best.values },
            epochs: hyperbandRoundEpochs(maxEpochs, factor, b, r),
            initialEpoch: hyperbandRoundEpochs(maxEpochs, factor, b, r - 1),
            parentId: best.id,
            bracket: b,
            round: r,
          });
          round.trialIds.push(trial.id);
          return trial;
        }
        round.target = round.trialIds.length;
      }
    }
    return null;
  }

  private isBracketDone(bracket: HyperbandBracketState): boolean {
    const last = bracket.rounds[bracket.rounds.length - 1];
    return last.target !== null && last.trialIds.length >= last.target;
  }

  private trial(id: string): OracleTrial {
    const trial = this.trials.find((t) => t.id === id);
    if (!trial) throw new Error(`hyperband bracket names unknown trial ${id}`);
    return trial;
  }
}
