import { createHash } from 'node:crypto';
import type { HyperparameterSpec } from '../config/schema.ts';
import { canonicalJson } from '../core/canonical-json.ts';
import type { Rng } from '../core/rng.ts';

/**
 * keras-tuner's hyperparameter vocabulary (`Int`, `Float`, `Choice`, `Boolean`, `Fixed`) built from
 * `tuner.space`. Only the oracles see these; a trial receives a plain values object, so the model
 * builder and trainer never know what was searched.
 */

export type HyperparameterValue = number | string | boolean;
/** Structurally the same as `HyperparameterValues` in src/model/architecture.ts. */
export type HyperparameterValues = Record<string, HyperparameterValue>;

export interface Hyperparameter {
  readonly name: string;
  /** Draws one value with the seeded generator. */
  sample(rng: Rng): HyperparameterValue;
  /** Number of distinct values; Infinity for a continuous Float. */
  readonly cardinality: number;
  /** Every value, in order (only for finite hyperparameters). */
  enumerate(): HyperparameterValue[];
  /** The value as a coordinate in [0, 1] (on the log scale for log sampling): what the Bayesian oracle models. */
  unit(value: HyperparameterValue): number;
}

/** Position of x in [min, max], linearly or on the log scale. */
function rangeUnit(x: number, min: number, max: number, sampling: 'linear' | 'log'): number {
  if (max === min) return 0.5;
  return sampling === 'log' ? (Math.log(x) - Math.log(min)) / (Math.log(max) - Math.log(min)) : (x - min) / (max - min);
}

/** keras-tuner's `Int(name, min, max, step, sampling)`: values min, min+step, ... <= max. */
export class Int implements Hyperparameter {
  readonly cardinality: number;
  constructor(
    readonly name: string,
    readonly min: number,
    readonly max: number,
    readonly step = 1,
    readonly sampling: 'linear' | 'log' = 'linear',
  ) {
    this.cardinality = Math.floor((max - min) / step) + 1;
  }

  sample(rng: Rng): number {
    if (this.sampling === 'log' && this.cardinality > 1) {
      // log-uniform in [min, max], then snapped to the step grid (keras-tuner does the same)
      const x = Math.exp(Math.log(this.min) + rng.next() * (Math.log(this.max) - Math.log(this.min)));
      return this.snap(x);
    }
    return this.min + rng.int(this.cardinality) * this.step;
  }

  enumerate(): number[] {
    return Array.from({ length: this.cardinality }, (_, i) => this.min + i * this.step);
  }

  unit(value: HyperparameterValue): number {
    return rangeUnit(value as number, this.min, this.max, this.sampling);
  }

  private snap(x: number): number {
    const index = Math.min(this.cardinality - 1, Math.max(0, Math.round((x - this.min) / this.step)));
    return this.min + index * this.step;
  }
}

/** keras-tuner's `Float(name, min, max, step?, sampling)`: continuous unless `step` is given. */
export class Float implements Hyperparameter {
  readonly cardinality: number;
  constructor(
    readonly name: string,
    readonly min: number,
    readonly max: number,
    readonly step: number | null = null,
    readonly sampling: 'linear' | 'log' = 'linear',
  ) {
    this.cardinality = step === null ? (min === max ? 1 : Infinity) : Math.floor((max - min) / step + 1e-9) + 1;
  }

  sample(rng: Rng): number {
    const u = rng.next();
    const x =
      this.sampling === 'log'
        ? Math.exp(Math.log(this.min) + u * (Math.log(this.max) - Math.log(this.min)))
        : this.min + u * (this.max - this.min);
    if (this.step === null) return x;
    const index = Math.min(this.cardinality - 1, Math.max(0, Math.round((x - this.min) / this.step)));
    return roundFloat(this.min + index * this.step);
  }

  enumerate(): number[] {
    if (this.step === null) {
      if (this.min === this.max) return [this.min];
      throw new Error(`Float '${this.name}' without a step has infinitely many values`);
    }
    const step = this.step;
    return Array.from({ length: this.cardinality }, (_, i) => roundFloat(this.min + i * step));
  }

  unit(value: HyperparameterValue): number {
    return rangeUnit(value as number, this.min, this.max, this.sampling);
  }
}

/** keras-tuner's `Choice(name, values)`. */
export class Choice implements Hyperparameter {
  readonly cardinality: number;
  constructor(
    readonly name: string,
    readonly values: readonly HyperparameterValue[],
  ) {
    this.cardinality = new Set(values).size;
  }

  sample(rng: Rng): HyperparameterValue {
    return this.values[rng.int(this.values.length)];
  }

  enumerate(): HyperparameterValue[] {
    return [...new Set(this.values)];
  }

  /** The centre of the value's slot, as keras-tuner's value_to_prob does. */
  unit(value: HyperparameterValue): number {
    const distinct = this.enumerate();
    return (Math.max(0, distinct.indexOf(value)) + 0.5) / distinct.length;
  }
}

/** keras-tuner's `Boolean(name)`. */
export class BooleanParam implements Hyperparameter {
  readonly cardinality = 2;
  constructor(readonly name: string) {}

  sample(rng: Rng): boolean {
    return rng.next() < 0.5;
  }

  enumerate(): boolean[] {
    return [false, true];
  }

  unit(value: HyperparameterValue): number {
    return value === true ? 0.75 : 0.25;
  }
}

/** keras-tuner's `Fixed(name, value)`: part of every values set, never searched. */
export class Fixed implements Hyperparameter {
  readonly cardinality = 1;
  constructor(
    readonly name: string,
    readonly value: HyperparameterValue,
  ) {}

  sample(): HyperparameterValue {
    return this.value;
  }

  enumerate(): HyperparameterValue[] {
    return [this.value];
  }

  unit(): number {
    return 0.5;
  }
}

/** Keeps step-grid floats free of binary noise (0.30000000000000004 → 0.3) so hashes are stable. */
function roundFloat(x: number): number {
  return Number(x.toPrecision(12));
}

/**
 * The whole search space: hyperparameters in name order (so sampling order never depends on key order in the config).
 */
export class SearchSpace {
  readonly parameters: readonly Hyperparameter[];

  constructor(parameters: Hyperparameter[]) {
    this.parameters = [...parameters].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  static fromConfig(space: Record<string, HyperparameterSpec>): SearchSpace {
    return new SearchSpace(Object.entries(space).map(([name, spec]) => hyperparameterFromSpec(name, spec)));
  }

  /** One values set; every hyperparameter draws from the same generator in name order. */
  sample(rng: Rng): HyperparameterValues {
    const values: HyperparameterValues = {};
    for (const p of this.parameters) values[p.name] = p.sample(rng);
    return values;
  }

  /** Distinct values sets: the product of cardinalities (Infinity with a continuous Float). */
  get size(): number {
    return this.parameters.reduce((n, p) => n * p.cardinality, 1);
  }

  /** Every values set in a fixed order (only for finite spaces; callers bound the size first). */
  *enumerate(): Generator<HyperparameterValues> {
    const lists = this.parameters.map((p) => p.enumerate());
    const index = lists.map(() => 0);
    if (lists.some((l) => l.length === 0)) return;
    for (;;) {
      const values: HyperparameterValues = {};
      this.parameters.forEach((p, i) => (values[p.name] = lists[i][index[i]]));
      yield values;
      let k = lists.length - 1;
      while (k >= 0 && ++index[k] === lists[k].length) index[k--] = 0;
      if (k < 0) return;
    }
  }
}

export function hyperparameterFromSpec(name: string, spec: HyperparameterSpec): Hyperparameter {
  switch (spec.type) {
    case 'int':
      return new Int(name, spec.min, spec.max, spec.step, spec.sampling);
    case 'float':
      return new Float(name, spec.min, spec.max, spec.step, spec.sampling);
    case 'choice':
      return new Choice(name, spec.values);
    case 'boolean':
      return new BooleanParam(name);
    case 'fixed':
      return new Fixed(name, spec.value);
  }
}

/** Canonical hash of a values set: the identity behind "never the same values twice". */
export function hashValues(values: HyperparameterValues): string {
  return createHash('sha256').update(canonicalJson(values)).digest('hex').slice(0, 32);
}
