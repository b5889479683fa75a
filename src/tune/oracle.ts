import { Rng } from '../core/rng.ts';
import { hashValues, type HyperparameterValues, type SearchSpace } from './hyperparameters.ts';

/**
 * What the oracles share: the trial ledger, the seeded generator and the set of values already
 * tried. An oracle decides which trial runs next and learns its outcome; it never trains anything
 * (the tuner loop hands the trial to a TrialRunner). Its whole state is plain JSON so that
 * `oracle.json` restores it exactly, generator position included.
 */

export type TrialStatus = 'RUNNING' | 'COMPLETED' | 'FAILED' | 'INFEASIBLE' | 'STOPPED';
export type Direction = 'max' | 'min';

export interface Objective {
  name: 'val_accuracy' | 'val_loss' | 'accuracy' | 'loss';
  direction: Direction;
}

/** A trial as the oracle schedules it. */
export interface TrialPlan {
  id: string;
  values: HyperparameterValues;
  /** Train until this epoch count. */
  epochs: number;
  /** Epochs already done by the parent (Hyperband promotion); 0 for a fresh trial. */
  initialEpoch: number;
  /** Hyperband: the trial whose best weights this one continues from. */
  parentId: string | null;
  bracket?: number;
  round?: number;
}

export interface OracleTrial extends TrialPlan {
  status: TrialStatus;
  score: number | null;
}

export type OracleDecision = { kind: 'run'; trial: OracleTrial } | { kind: 'done'; reason: string };

export interface OracleStateBase {
  algorithm: string;
  rngState: number;
  tried: string[];
  trials: OracleTrial[];
}

/** Random draws before a finite space is enumerated instead (keras-tuner gives up after 20). */
const MAX_COLLISIONS = 100;
/** Largest finite space enumerated to find the last untried values sets. */
const MAX_ENUMERATED = 200_000;

export function trialIdFor(index: number): string {
  return String(index).padStart(4, '0');
}

/** Better-than comparison in the objective's direction; null (no score) is worst. */
export function isBetter(a: number | null, b: number | null, direction: Direction): boolean {
  if (a === null || Number.isNaN(a)) return false;
  if (b === null || Number.isNaN(b)) return true;
  return direction === 'max' ? a > b : a < b;
}

export abstract class Oracle {
  protected rng: Rng;
  protected readonly tried: Set<string>;
  protected readonly trials: OracleTrial[];

  constructor(
    protected readonly space: SearchSpace,
    protected readonly objective: Objective,
    seed: number,
    state?: OracleStateBase,
  ) {
    this.rng = state ? Rng.fromState(state.rngState) : new Rng(seed, 'tuner');
    this.tried = new Set(state?.tried ?? []);
    this.trials = state ? state.trials.map((t) => ({ ...t })) : [];
  }

  abstract readonly algorithm: string;

  /**
   * Schedules the next trial (recorded RUNNING) or says the search is over and why. `inFlight`:
   * trials a caller running several at once has already handed out (the queue-backed chief);
   * their unfinished state is theirs, not something to resume again.
   */
  next(inFlight: ReadonlySet<string> = new Set()): OracleDecision {
    const unfinished = this.trials.find(
      (t) => (t.status === 'RUNNING' || t.status === 'STOPPED') && !inFlight.has(t.id),
    );
    if (unfinished) return { kind: 'run', trial: unfinished };
    return this.schedule();
  }

  protected abstract schedule(): OracleDecision;

  /** A trial scheduled but not finished (RUNNING, or STOPPED by the user): resumed before anything new. */
  unfinished(): OracleTrial | undefined {
    return this.trials.find((t) => t.status === 'RUNNING' || t.status === 'STOPPED');
  }

  report(id: string, status: Exclude<TrialStatus, 'RUNNING'>, score: number | null): void {
    const trial = this.trials.find((t) => t.id === id);
    if (!trial) throw new Error(`oracle has no trial ${id}`);
    trial.status = status;
    trial.score = status === 'COMPLETED' ? score : null;
  }

  get allTrials(): readonly OracleTrial[] {
    return this.trials;
  }

  getState(): OracleStateBase {
    return {
      algorithm: this.algorithm,
      rngState: this.rng.getState(),
      tried: [...this.tried],
      trials: this.trials.map((t) => ({ ...t, values: { ...t.values } })),
    };
  }

  protected addTrial(plan: Omit<TrialPlan, 'id'>): OracleTrial {
    const trial: OracleTrial = { id: trialIdFor(this.trials.length), ...plan, status: 'RUNNING', score: null };
    this.trials.push(trial);
    return trial;
  }

  /**
   * New values never tried before, or null when the space has none left. Random draws first;
   * after many collisions a finite space is enumerated so the last untried sets are still found.
   */
  protected sampleNewValues(): HyperparameterValues | null {
    const size = this.space.size;
    if (this.tried.size >= size) return null;
    for (let attempt = 0; attempt < MAX_COLLISIONS; attempt++) {
      const values = this.space.sample(this.rng);
      const hash = hashValues(values);
      if (!this.tried.has(hash)) {
        this.tried.add(hash);
        return values;
      }
    }
    if (size > MAX_ENUMERATED) return null;
    const untried: HyperparameterValues[] = [];
    for (const values of this.space.enumerate()) {
      if (!this.tried.has(hashValues(values))) untried.push(values);
    }
    if (untried.length === 0) return null;
    const values = untried[this.rng.int(untried.length)];
    this.tried.add(hashValues(values));
    return values;
  }
}
