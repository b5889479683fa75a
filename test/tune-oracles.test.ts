import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../src/core/rng.ts';
import { notebookSpace } from '../src/config/schema.ts';
import { hyperbandSchedule, HyperbandOracle, type HyperbandState } from '../src/tune/hyperband.ts';
import { BooleanParam, Choice, Fixed, Float, hashValues, Int, SearchSpace } from '../src/tune/hyperparameters.ts';
import type { Objective, Oracle, OracleTrial } from '../src/tune/oracle.ts';
import { RandomSearchOracle } from '../src/tune/random-search.ts';
import { BayesianOracle } from '../src/tune/bayesian.ts';
import { GaussianProcess } from '../src/tune/gaussian-process.ts';

const objective: Objective = { name: 'val_accuracy', direction: 'max' };

/**
 * Runs an oracle (to the end, or for `limit` trials), scoring every trial with `score`, as the sequential tuner does.
 */
function drain(oracle: Oracle, score: (t: OracleTrial) => number = () => 0.5, limit = 10_000): OracleTrial[] {
  const trials: OracleTrial[] = [];
  while (trials.length < limit) {
    const decision = oracle.next();
    if (decision.kind === 'done') return trials;
    trials.push({ ...decision.trial, values: { ...decision.trial.values } });
    oracle.report(decision.trial.id, 'COMPLETED', score(decision.trial));
  }
  return trials;
}

describe('hyperparameters', () => {
  it('Int samples the step grid, inclusive of max', () => {
    const p = new Int('f', 16, 64, 16);
    assert.equal(p.cardinality, 4);
    assert.deepEqual(p.enumerate(), [16, 32, 48, 64]);
    const rng = new Rng(1);
    const seen = new Set(Array.from({ length: 200 }, () => p.sample(rng)));
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      [16, 32, 48, 64],
    );
  });

  it('Int with log sampling stays on the grid within bounds', () => {
    const p = new Int('u', 1, 1000, 1, 'log');
    const rng = new Rng(3);
    const xs = Array.from({ length: 500 }, () => p.sample(rng));
    assert.ok(xs.every((x) => Number.isInteger(x) && x >= 1 && x <= 1000));
    // log-uniform: about a third of the draws below 10
    const small = xs.filter((x) => x < 10).length / xs.length;
    assert.ok(small > 0.2 && small < 0.45, `fraction below 10 was ${small}`);
  });

  it('Float is continuous without a step and finite with one', () => {
    assert.equal(new Float('lr', 1e-4, 1e-2, null, 'log').cardinality, Infinity);
    const stepped = new Float('d', 0, 0.5, 0.1);
    assert.equal(stepped.cardinality, 6);
    assert.deepEqual(stepped.enumerate(), [0, 0.1, 0.2, 0.3, 0.4, 0.5]);
    const rng = new Rng(5);
    const lr = new Float('lr', 1e-4, 1e-2, null, 'log');
    const xs = Array.from({ length: 300 }, () => lr.sample(rng));
    assert.ok(xs.every((x) => x >= 1e-4 && x <= 1e-2));
    assert.ok(xs.filter((x) => x < 1e-3).length > 100, 'log sampling puts half the draws below the geometric middle');
  });

  it('Choice, Boolean and Fixed', () => {
    const rng = new Rng(9);
    assert.equal(new Choice('a', ['x', 'y', 'x']).cardinality, 2);
    assert.ok(['x', 'y'].includes(new Choice('a', ['x', 'y']).sample(rng) as string));
    assert.equal(new BooleanParam('b').cardinality, 2);
    assert.equal(new Fixed('k', 3).sample(), 3);
    assert.equal(new Fixed('k', 3).cardinality, 1);
  });

  it('space size and canonical hashes', () => {
    const space = SearchSpace.fromConfig(structuredClone(notebookSpace) as never);
    assert.equal(space.size, Infinity);
    const finite = SearchSpace.fromConfig({
      a: { type: 'int', min: 1, max: 3, step: 1, sampling: 'linear' },
      b: { type: 'boolean' },
      c: { type: 'fixed', value: 'relu' },
    });
    assert.equal(finite.size, 6);
    assert.equal([...finite.enumerate()].length, 6);
    assert.equal(hashValues({ a: 1, b: true }), hashValues({ b: true, a: 1 }));
    assert.notEqual(hashValues({ a: 1, b: true }), hashValues({ a: 1, b: false }));
  });
});

describe('RandomSearchOracle', () => {
  const space = () => SearchSpace.fromConfig(structuredClone(notebookSpace) as never);

  it('gives the same trials for the same seed and different ones for another seed', () => {
    const run = (seed: number) =>
      drain(new RandomSearchOracle(space(), objective, { maxTrials: 30, epochs: 5, seed })).map((t) => t.values);
    assert.deepEqual(run(42), run(42));
    assert.notDeepEqual(run(42), run(43));
    assert.equal(run(42).length, 30);
  });

  it('never proposes the same values twice', () => {
    const small = SearchSpace.fromConfig({
      a: { type: 'int', min: 1, max: 4, step: 1, sampling: 'linear' },
      b: { type: 'choice', values: ['x', 'y', 'z'] },
    });
    const trials = drain(new RandomSearchOracle(small, objective, { maxTrials: 10, epochs: 1, seed: 7 }));
    assert.equal(trials.length, 10);
    assert.equal(new Set(trials.map((t) => hashValues(t.values))).size, 10);
  });

  it('stops when a small finite space is exhausted, having tried every values set once', () => {
    const small = SearchSpace.fromConfig({
      a: { type: 'int', min: 1, max: 3, step: 1, sampling: 'linear' },
      b: { type: 'boolean' },
    });
    const oracle = new RandomSearchOracle(small, objective, { maxTrials: 100, epochs: 1, seed: 1 });
    const trials = drain(oracle);
    assert.equal(trials.length, 6);
    assert.equal(new Set(trials.map((t) => hashValues(t.values))).size, 6);
    const done = oracle.next();
    assert.equal(done.kind, 'done');
    assert.match((done as { reason: string }).reason, /exhausted/);
  });

  it('continues identically from saved state', () => {
    const whole = drain(new RandomSearchOracle(space(), objective, { maxTrials: 12, epochs: 1, seed: 42 }));
    const first = new RandomSearchOracle(space(), objective, { maxTrials: 12, epochs: 1, seed: 42 });
    const part = drain(first, () => 0.5, 5);
    const state = JSON.parse(JSON.stringify(first.getState()));
    const rest = drain(new RandomSearchOracle(space(), objective, { maxTrials: 12, epochs: 1, seed: 42 }, state));
    assert.deepEqual(
      [...part, ...rest].map((t) => t.values),
      whole.map((t) => t.values),
    );
  });
});

describe('Hyperband schedule', () => {
  // Generated by keras-tuner's formulas (_get_num_brackets, _get_size, _get_epochs) in Python.
  const expected: Record<string, [number, [number, number][]][]> = {
    '81,3': [
      [
        4,
        [
          [81, 1],
          [27, 3],
          [9, 9],
          [3, 27],
          [1, 81],
        ],
      ],
      [
        3,
        [
          [34, 3],
          [12, 9],
          [4, 27],
          [2, 81],
        ],
      ],
      [
        2,
        [
          [15, 9],
          [5, 27],
          [2, 81],
        ],
      ],
      [
        1,
        [
          [8, 27],
          [3, 81],
        ],
      ],
      [0, [[5, 81]]],
    ],
    '27,3': [
      [
        3,
        [
          [27, 1],
          [9, 3],
          [3, 9],
          [1, 27],
        ],
      ],
      [
        2,
        [
          [12, 3],
          [4, 9],
          [2, 27],
        ],
      ],
      [
        1,
        [
          [6, 9],
          [2, 27],
        ],
      ],
      [0, [[4, 27]]],
    ],
    '10,3': [
      [
        2,
        [
          [12, 2],
          [4, 4],
          [2, 10],
        ],
      ],
      [
        1,
        [
          [6, 4],
          [2, 10],
        ],
      ],
      [0, [[4, 10]]],
    ],
    '50,3': [
      [
        3,
        [
          [34, 2],
          [12, 6],
          [4, 17],
          [2, 50],
        ],
      ],
      [
        2,
        [
          [15, 6],
          [5, 17],
          [2, 50],
        ],
      ],
      [
        1,
        [
          [8, 17],
          [3, 50],
        ],
      ],
      [0, [[5, 50]]],
    ],
    '9,2': [
      [
        3,
        [
          [10, 2],
          [5, 3],
          [3, 5],
          [2, 9],
        ],
      ],
      [
        2,
        [
          [7, 3],
          [4, 5],
          [2, 9],
        ],
      ],
      [
        1,
        [
          [5, 5],
          [3, 9],
        ],
      ],
      [0, [[5, 9]]],
    ],
    '243,3': [
      [
        5,
        [
          [243, 1],
          [81, 3],
          [27, 9],
          [9, 27],
          [3, 81],
          [1, 243],
        ],
      ],
      [
        4,
        [
          [98, 3],
          [33, 9],
          [11, 27],
          [4, 81],
          [2, 243],
        ],
      ],
      [
        3,
        [
          [41, 9],
          [14, 27],
          [5, 81],
          [2, 243],
        ],
      ],
      [
        2,
        [
          [18, 27],
          [6, 81],
          [2, 243],
        ],
      ],
      [
        1,
        [
          [9, 81],
          [3, 243],
        ],
      ],
      [0, [[6, 243]]],
    ],
    '2,2': [
      [
        1,
        [
          [2, 1],
          [1, 2],
        ],
      ],
      [0, [[2, 2]]],
    ],
  };

  for (const [key, brackets] of Object.entries(expected)) {
    it(`matches keras-tuner for maxEpochs,factor = ${key}`, () => {
      const [maxEpochs, factor] = key.split(',').map(Number);
      const schedule = hyperbandSchedule(maxEpochs, factor);
      assert.deepEqual(
        schedule.map((b) => [b.bracket, b.rounds.map((r) => [r.trials, r.epochs])]),
        brackets,
      );
    });
  }

  it('the oracle runs that schedule, promoting the best of each round from its parent', () => {
    const continuous = SearchSpace.fromConfig({ x: { type: 'float', min: 0, max: 1, step: null, sampling: 'linear' } });
    const oracle = new HyperbandOracle(continuous, objective, {
      maxEpochs: 9,
      factor: 3,
      iterations: 1,
      seed: 42,
      maxTrials: null,
    });
    const trials = drain(oracle, (t) => t.values.x as number);
    const byBracket = new Map<number, OracleTrial[]>();
    for (const t of trials) byBracket.set(t.bracket!, [...(byBracket.get(t.bracket!) ?? []), t]);
    assert.deepEqual([...byBracket.keys()], [2, 1, 0], 'most aggressive bracket first');
    const schedule = hyperbandSchedule(9, 3);
    for (const plan of schedule) {
      const inBracket = byBracket.get(plan.bracket)!;
      for (const round of plan.rounds) {
        const roundTrials = inBracket.filter((t) => t.round === round.round);
        assert.equal(roundTrials.length, round.trials, `bracket ${plan.bracket} round ${round.round}`);
        assert.ok(roundTrials.every((t) => t.epochs === round.epochs));
        if (round.round > 0) {
          const previous = inBracket.filter((t) => t.round === round.round - 1);
          const best = [...previous]
            .sort((a, b) => (b.values.x as number) - (a.values.x as number))
            .slice(0, round.trials);
          assert.deepEqual(
            roundTrials.map((t) => t.parentId),
            best.map((t) => t.id),
            'promotes the best, best first',
          );
          assert.ok(roundTrials.every((t) => t.initialEpoch === plan.rounds[round.round - 1].epochs));
          assert.deepEqual(
            roundTrials.map((t) => t.values),
            best.map((t) => t.values),
          );
        } else {
          assert.ok(roundTrials.every((t) => t.initialEpoch === 0 && t.parentId === null));
        }
      }
    }
    assert.equal(trials.length, 9 + 3 + 1 + 5 + 2 + 3);
  });

  it('repeats the brackets for each iteration and resumes from saved state', () => {
    const space = SearchSpace.fromConfig({ x: { type: 'float', min: 0, max: 1, step: null, sampling: 'linear' } });
    const options = { maxEpochs: 4, factor: 2, iterations: 2, seed: 1, maxTrials: null };
    const whole = drain(new HyperbandOracle(space, objective, options), (t) => t.values.x as number);
    const perIteration = hyperbandSchedule(4, 2).reduce((n, b) => n + b.rounds.reduce((m, r) => m + r.trials, 0), 0);
    assert.equal(whole.length, 2 * perIteration);
    const first = new HyperbandOracle(space, objective, options);
    const part = drain(first, (t) => t.values.x as number, 7);
    const state = JSON.parse(JSON.stringify(first.getState())) as HyperbandState;
    const rest = drain(new HyperbandOracle(space, objective, options, state), (t) => t.values.x as number);
    assert.deepEqual([...part, ...rest], whole);
  });

  it('fills a round with the best completed trials when some failed', () => {
    const space = SearchSpace.fromConfig({ x: { type: 'float', min: 0, max: 1, step: null, sampling: 'linear' } });
    const oracle = new HyperbandOracle(space, objective, {
      maxEpochs: 9,
      factor: 3,
      iterations: 1,
      seed: 3,
      maxTrials: null,
    });
    const round0: OracleTrial[] = [];
    for (let i = 0; i < 9; i++) {
      const d = oracle.next();
      assert.equal(d.kind, 'run');
      const t = (d as { trial: OracleTrial }).trial;
      round0.push(t);
      oracle.report(t.id, i < 5 ? 'FAILED' : 'COMPLETED', i < 5 ? null : (t.values.x as number));
    }
    const next = oracle.next() as { trial: OracleTrial };
    const completed = round0.slice(5).sort((a, b) => (b.values.x as number) - (a.values.x as number));
    assert.equal(next.trial.parentId, completed[0].id);
  });
});

describe('BayesianOracle', () => {
  const space = () =>
    SearchSpace.fromConfig({
      x: { type: 'float', min: 0, max: 1, step: null, sampling: 'linear' },
      y: { type: 'float', min: 0, max: 1, step: null, sampling: 'linear' },
    });
  // a smooth objective with its peak at (0.7, 0.3)
  const score = (t: OracleTrial) => 1 - ((t.values.x as number) - 0.7) ** 2 - ((t.values.y as number) - 0.3) ** 2;

  it('the Gaussian process interpolates its observations and is unsure far from them', () => {
    const gp = new GaussianProcess([[0.1], [0.5], [0.9]], [1, 3, 2]);
    for (const [x, y] of [
      [0.1, 1],
      [0.5, 3],
      [0.9, 2],
    ])
      assert.ok(Math.abs(gp.predict([x]).mean - y) < 0.01);
    assert.ok(gp.predict([0.5]).std < gp.predict([3]).std);
  });

  it('is deterministic, never repeats values, and after its random start proposes better values than random', () => {
    const run = () => drain(new BayesianOracle(space(), objective, { maxTrials: 20, epochs: 1, seed: 42 }), score);
    const trials = run();
    assert.deepEqual(
      trials.map((t) => t.values),
      run().map((t) => t.values),
    );
    assert.equal(trials.length, 20);
    assert.equal(new Set(trials.map((t) => hashValues(t.values))).size, 20);
    const initial = trials.slice(0, 6).map(score);
    const modelled = trials.slice(6).map(score);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(mean(modelled) > mean(initial), `modelled ${mean(modelled)} vs random ${mean(initial)}`);
    assert.ok(Math.max(...modelled) > 0.99, 'finds the peak region');
  });

  it('minimises a loss objective and resumes identically from saved state', () => {
    const lossObjective: Objective = { name: 'val_loss', direction: 'min' };
    const loss = (t: OracleTrial) => 1 - score(t);
    const options = { maxTrials: 12, epochs: 1, seed: 7 };
    const whole = drain(new BayesianOracle(space(), lossObjective, options), loss);
    const first = new BayesianOracle(space(), lossObjective, options);
    const part = drain(first, loss, 8);
    const rest = drain(
      new BayesianOracle(space(), lossObjective, options, JSON.parse(JSON.stringify(first.getState()))),
      loss,
    );
    assert.deepEqual(
      [...part, ...rest].map((t) => t.values),
      whole.map((t) => t.values),
    );
    assert.ok(Math.min(...whole.slice(6).map(loss)) < Math.min(...whole.slice(0, 6).map(loss)));
  });
});
