import { UserError } from '../core/errors.ts';
import { hashToUnit } from '../core/rng.ts';
import type { Manifest } from '../cache/format.ts';
import { readShardLabels } from '../cache/shard-header.ts';

/**
 * Train/validation split decided per record from its id and the seed, never from pixels.
 *
 * Within each class, records are ranked by `hashToUnit(id, seed)` and the lowest
 * `round(n_c * validation)` go to validation. So each class's validation share is within one
 * record of the fraction, and a record's side depends only on its own key and the keys of its
 * class: adding or removing k records changes the side of at most k other records (only the
 * records next to the class's boundary can move), and nothing changes for the same inputs.
 * With `stratify: false` the whole set is ranked as one class.
 */

export class SplitTooSmallError extends UserError {
  constructor(cacheDir: string, train: number, validation: number) {
    super(
      `the cache in ${cacheDir} splits into ${train} training and ${validation} validation images; both need at least one. Use more images (data.limit) or change split.validation.`,
    );
  }
}

/** ids and labels of every cached record, per shard (read from the shard headers, pixels untouched). */
export interface RecordIndex {
  /** ids[s][i]: id of record i of shard s. */
  ids: string[][];
  labels: Int32Array[];
}

export interface SplitPlan {
  /** Per shard, the record indices (ascending) that train on. */
  train: Int32Array[];
  /** Per shard, the record indices (ascending) held out for validation. */
  validation: Int32Array[];
  trainCount: number;
  validationCount: number;
  /** Records per class on each side. */
  trainClassCounts: number[];
  validationClassCounts: number[];
}

export async function readRecordIndex(cacheDir: string, manifest: Manifest): Promise<RecordIndex> {
  const ids: string[][] = [];
  const labels: Int32Array[] = [];
  for (const entry of manifest.shards) {
    const shard = await readShardLabels(cacheDir, entry);
    ids.push(shard.ids);
    labels.push(shard.labels);
  }
  return { ids, labels };
}

/** Splits records given as parallel lists; returns the validation membership per record. */
export function validationMembers(
  ids: readonly string[],
  labels: ArrayLike<number>,
  fraction: number,
  seed: number,
  stratify = true,
): boolean[] {
  const groups = new Map<number, number[]>();
  for (let i = 0; i < ids.length; i++) {
    const key = stratify ? labels[i] : 0;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = []));
    group.push(i);
  }
  const member = new Array<boolean>(ids.length).fill(false);
  for (const group of groups.values()) {
    const keys = group.map((i) => ({ i, u: hashToUnit(ids[i], seed), id: ids[i] }));
    // ties in the hash are broken by id so the order never depends on input order
    keys.sort((a, b) => a.u - b.u || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const take = Math.round(group.length * fraction);
    for (let k = 0; k < take; k++) member[keys[k].i] = true;
  }
  return member;
}

export function splitRecords(
  index: RecordIndex,
  numClasses: number,
  split: { validation: number; stratify: boolean },
  seed: number,
): SplitPlan {
  const flatIds: string[] = [];
  const flatLabels: number[] = [];
  for (let s = 0; s < index.ids.length; s++) {
    for (let i = 0; i < index.ids[s].length; i++) {
      flatIds.push(index.ids[s][i]);
      flatLabels.push(index.labels[s][i]);
    }
  }
  const member = validationMembers(flatIds, flatLabels, split.validation, seed, split.stratify);
  const plan: SplitPlan = {
    train: [],
    validation: [],
    trainCount: 0,
    validationCount: 0,
    trainClassCounts: new Array<number>(numClasses).fill(0),
    validationClassCounts: new Array<number>(numClasses).fill(0),
  };
  let flat = 0;
  for (let s = 0; s < index.ids.length; s++) {
    const train: number[] = [];
    const validation: number[] = [];
    for (let i = 0; i < index.ids[s].length; i++, flat++) {
      const label = index.labels[s][i];
      if (member[flat]) {
        validation.push(i);
        plan.validationClassCounts[label]++;
      } else {
        train.push(i);
        plan.trainClassCounts[label]++;
      }
    }
    plan.train.push(Int32Array.from(train));
    plan.validation.push(Int32Array.from(validation));
    plan.trainCount += train.length;
    plan.validationCount += validation.length;
  }
  return plan;
}

/** Reads the cache's ids and labels and splits them. */
export async function splitCache(
  cacheDir: string,
  manifest: Manifest,
  split: { validation: number; stratify: boolean },
  seed: number,
): Promise<SplitPlan> {
  return splitRecords(await readRecordIndex(cacheDir, manifest), manifest.classes.length, split, seed);
}
