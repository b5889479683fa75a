import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/core/rng.ts';
import { validationMembers, splitRecords } from '../src/data/split.ts';

/** Imbalanced labelled ids: class c gets a different count. */
function records(counts: number[], prefix = 'id'): { ids: string[]; labels: number[] } {
  const ids: string[] = [];
  const labels: number[] = [];
  counts.forEach((n, c) => {
    for (let i = 0; i < n; i++) {
      ids.push(`${prefix}-${c}-${i}`);
      labels.push(c);
    }
  });
  return { ids, labels };
}

test('each class validation share is within one record of split.validation', () => {
  for (const fraction of [0.1, 0.2, 0.33, 0.5]) {
    for (const seed of [1, 42]) {
      const { ids, labels } = records([1000, 237, 51, 7, 1]);
      const member = validationMembers(ids, labels, fraction, seed);
      for (let c = 0; c < 5; c++) {
        const inClass = labels.map((l, i) => (l === c ? i : -1)).filter((i) => i >= 0);
        const held = inClass.filter((i) => member[i]).length;
        assert.ok(
          Math.abs(held - inClass.length * fraction) <= 1,
          `class ${c}: ${held} of ${inClass.length} at ${fraction}`,
        );
      }
    }
  }
});

test('a record side depends on its id and the seed, not on input order', () => {
  const { ids, labels } = records([300, 120, 40]);
  const first = validationMembers(ids, labels, 0.2, 7);
  const order = new Rng(3).shuffle(ids.map((_, i) => i));
  const shuffled = validationMembers(
    order.map((i) => ids[i]),
    order.map((i) => labels[i]),
    0.2,
    7,
  );
  order.forEach((i, k) => assert.equal(shuffled[k], first[i], ids[i]));
  assert.deepEqual(validationMembers(ids, labels, 0.2, 7), first);
  const other = validationMembers(ids, labels, 0.2, 8);
  assert.notDeepEqual(other, first);
});

test('adding or removing k records moves at most k other records across the split', () => {
  const base = records([500, 200, 80]);
  const before = new Map(base.ids.map((id, i) => [id, validationMembers(base.ids, base.labels, 0.2, 42)[i]]));
  for (const k of [1, 5, 25]) {
    // add k new records spread over the classes
    const added = records([k, 0, 0], 'new');
    const ids = [...base.ids, ...added.ids];
    const labels = [...base.labels, ...added.labels];
    const after = validationMembers(ids, labels, 0.2, 42);
    const moved = base.ids.filter((id, i) => after[i] !== before.get(id)).length;
    assert.ok(moved <= k, `adding ${k} moved ${moved}`);
    // remove k records of class 1
    const keep = base.ids
      .map((_, i) => i)
      .filter((i) => !(base.labels[i] === 1 && Number(base.ids[i].split('-')[2]) < k));
    const removed = validationMembers(
      keep.map((i) => base.ids[i]),
      keep.map((i) => base.labels[i]),
      0.2,
      42,
    );
    const movedR = keep.filter((i, j) => removed[j] !== before.get(base.ids[i])).length;
    assert.ok(movedR <= k, `removing ${k} moved ${movedR}`);
  }
});

test('splitRecords groups the split per shard with per-class counts', () => {
  const a = records([10, 10], 'a');
  const b = records([6, 4], 'b');
  const plan = splitRecords(
    { ids: [a.ids, b.ids], labels: [Int32Array.from(a.labels), Int32Array.from(b.labels)] },
    2,
    { validation: 0.25, stratify: true },
    1,
  );
  assert.equal(plan.trainCount + plan.validationCount, 30);
  assert.deepEqual(plan.validationClassCounts, [4, 4]); // round(16 * 0.25), round(14 * 0.25)
  assert.deepEqual(plan.trainClassCounts, [12, 10]);
  for (const side of [plan.train, plan.validation])
    for (const idx of side) assert.ok(idx.every((v, i) => i === 0 || v > idx[i - 1]));
  const all = [...plan.train[0], ...plan.validation[0]].sort((x, y) => x - y);
  assert.deepEqual(
    all,
    Array.from({ length: 20 }, (_, i) => i),
  );
});

test('stratify false ranks all records together', () => {
  const { ids, labels } = records([90, 10]);
  const member = validationMembers(ids, labels, 0.3, 5, false);
  assert.equal(member.filter(Boolean).length, 30);
});
