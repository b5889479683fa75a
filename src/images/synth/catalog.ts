import { hashString, Rng } from '../../core/rng.ts';
import { morphologyKinds, sampleGz2Class, type MorphologyKind } from './morphology.ts';

/**
 * The catalogue side of a synthetic record: ids, sky position, class string and vote
 * fractions. Each value is a pure function of (seed, record index), so a record reads the
 * same whatever the data set's size or the order records are produced in.
 */
export interface SynthRecord {
  index: number;
  /** Image id: a decimal integer, as in the real images_gz2 set. */
  assetId: string;
  /** SDSS DR7 object id: 18 digits, beyond 2^53, so only ever handled as a string. */
  dr7objid: string;
  ra: string;
  dec: string;
  kind: MorphologyKind;
  gz2class: string;
  votes: VoteSummary;
}

/** A few gz2_hart16.csv columns: vote counts and fractions consistent with the class. */
export interface VoteSummary {
  totalClassifications: number;
  totalVotes: number;
  /** column name → fraction as written (three decimals) */
  fractions: Record<string, string>;
}

export const voteFractionColumns = [
  't01_smooth_or_features_a01_smooth_fraction',
  't01_smooth_or_features_a02_features_or_disk_fraction',
  't01_smooth_or_features_a03_star_or_artifact_fraction',
  't02_edgeon_a04_yes_fraction',
  't03_bar_a06_bar_fraction',
  't04_spiral_a08_spiral_fraction',
] as const;

/**
 * Class mix per block of consecutive records, shuffled inside each block: every block is
 * exactly balanced (or exactly in GZ2 proportions), and any prefix of the records is close to it.
 * GZ2 proportions by first letter of gz2_class: about 45% E, 53% S, 2% A.
 */
const balancedBlock: Record<MorphologyKind, number> = { elliptical: 10, spiral: 10, artifact: 10 };
const gz2Block: Record<MorphologyKind, number> = { elliptical: 45, spiral: 53, artifact: 2 };

export function recordKind(seed: number, index: number, imbalance: boolean): MorphologyKind {
  const mix = imbalance ? gz2Block : balancedBlock;
  const blockSize = morphologyKinds.reduce((sum, kind) => sum + mix[kind], 0);
  const block = Math.floor(index / blockSize);
  const kinds: MorphologyKind[] = [];
  for (const kind of morphologyKinds) for (let k = 0; k < mix[kind]; k++) kinds.push(kind);
  new Rng(seed, `classes:${imbalance ? 'gz2' : 'balanced'}:${block}`).shuffle(kinds);
  return kinds[index - block * blockSize];
}

/**
 * Image ids come in slots of three: two records and one mapping row without an image, like
 * the real gz2_filename_mapping.csv where a third of the rows have no image. Which slot of a
 * triple is the empty one is decided by the seed.
 */
export function assetSlotOf(seed: number, index: number): number {
  const block = Math.floor(index / 2);
  const empty = emptySlotIn(seed, block);
  const within = index % 2;
  const position = within < empty ? within : within + 1;
  return 3 * block + position;
}

export function emptySlotIn(seed: number, block: number): number {
  return hashString(`empty-slot:${block}`, seed) % 3;
}

/** Asset slots used by `count` records plus their image-less neighbours: 3 per pair of records. */
export function slotCount(count: number): number {
  return 3 * Math.ceil(count / 2);
}

export function assetIdOf(slot: number): string {
  return String(slot + 1);
}

const objidBase = 587_720_000_000_000_000n;
const objidStride = 1_000_003n;

/** Distinct per slot (the stride exceeds the seeded jitter), 18 digits for any realistic count. */
export function objidOf(seed: number, slot: number): string {
  const jitter = BigInt(hashString(`objid:${slot}`, seed) % 1_000_000);
  return (objidBase + BigInt(slot) * objidStride + jitter).toString();
}

export function describeRecord(seed: number, index: number, imbalance: boolean): SynthRecord {
  const slot = assetSlotOf(seed, index);
  const kind = recordKind(seed, index, imbalance);
  const gz2class = sampleGz2Class(kind, new Rng(seed, `class:${index}`));
  const sky = new Rng(seed, `sky:${index}`);
  return {
    index,
    assetId: assetIdOf(slot),
    dr7objid: objidOf(seed, slot),
    // the SDSS Legacy footprint around the north galactic cap
    ra: sky.uniform(110, 260).toFixed(6),
    dec: sky.uniform(-5, 65).toFixed(6),
    kind,
    gz2class,
    votes: sampleVotes(new Rng(seed, `votes:${index}`), kind, gz2class),
  };
}

/**
 * Integer vote counts whose winner on task 1 is the record's class (smooth for E, features
 * for S, star/artifact for A), turned into fractions. Follow-up tasks (edge-on, bar, spiral)
 * agree with the class string for disks and are low otherwise.
 */
function sampleVotes(rng: Rng, kind: MorphologyKind, gz2class: string): VoteSummary {
  const classifications = 25 + rng.int(36);
  const winner = Math.ceil(classifications * rng.uniform(0.52, 0.95));
  const rest = classifications - winner;
  const second = Math.floor(rest * rng.uniform(0.5, 1));
  const third = rest - second;
  const task1: Record<MorphologyKind, number> =
    kind === 'elliptical'
      ? { elliptical: winner, spiral: second, artifact: third }
      : kind === 'spiral'
        ? { elliptical: second, spiral: winner, artifact: third }
        : { elliptical: second, spiral: third, artifact: winner };
  const fraction = (count: number, of: number): string => (of > 0 ? count / of : 0).toFixed(3);
  const disk = task1.spiral;
  // rounded away from the threshold, so even a handful of votes keeps yes >= 0.6 and no <= 0.3
  const share = (yes: boolean): number =>
    yes ? Math.ceil(disk * rng.uniform(0.6, 1)) : Math.floor(disk * rng.uniform(0, 0.3));
  const isDisk = kind === 'spiral';
  const edgeOn = isDisk && gz2class.startsWith('Se');
  const barred = isDisk && gz2class.startsWith('SB');
  const spiral = isDisk && !edgeOn && /^SB?[a-d][1-4+?]/.test(gz2class);
  const extraVotes = disk * 3 + rng.int(classifications);
  return {
    totalClassifications: classifications,
    totalVotes: classifications + extraVotes,
    fractions: {
      [voteFractionColumns[0]]: fraction(task1.elliptical, classifications),
      [voteFractionColumns[1]]: fraction(task1.spiral, classifications),
      [voteFractionColumns[2]]: fraction(task1.artifact, classifications),
      [voteFractionColumns[3]]: fraction(share(edgeOn), disk),
      [voteFractionColumns[4]]: fraction(share(barred), disk),
      [voteFractionColumns[5]]: fraction(share(spiral), disk),
    },
  };
}

/** `sample` values of the real mapping file; images come from the "original" sample. */
const imagelessSamples = ['extra', 'stripe82', 'stripe82_coadd_1', 'stripe82_coadd_2'];

export function mappingSampleOf(seed: number, slot: number, hasImage: boolean): string {
  return hasImage ? 'original' : imagelessSamples[hashString(`sample:${slot}`, seed) % imagelessSamples.length];
}
