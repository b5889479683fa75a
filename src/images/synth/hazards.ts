import { Rng } from '../../core/rng.ts';
import type { ImageEncoding } from './encode.ts';

/**
 * The planted hazards of docs/interfaces.md §1: which record gets which, what that does to
 * its row and image, and the outcome a correct pipeline gives. Placement depends only on
 * (seed, count).
 */
export type HazardKind =
  | 'missing-image'
  | 'empty-file'
  | 'truncated-jpeg'
  | 'not-an-image'
  | 'png-as-jpg'
  | 'grayscale-jpeg'
  | 'cmyk-jpeg'
  | 'huge-image'
  | 'duplicate-id'
  | 'empty-label'
  | 'unknown-label'
  | 'id-with-slash'
  | 'id-with-dotdot'
  | 'too-few-columns';

export type RejectReasonName =
  | 'missing-image'
  | 'empty-file'
  | 'corrupt-image'
  | 'not-an-image'
  | 'too-large'
  | 'unlabelled'
  | 'unknown-label'
  | 'duplicate-id'
  | 'invalid-id'
  | 'malformed-row'
  | 'unmapped-id';

interface HazardRule {
  copies: number;
  /** null = accepted */
  reason: RejectReasonName | null;
  encoding: ImageEncoding;
  /** true when the file in hazards.json is the record's own image */
  involvesFile: boolean;
}

/** Every kind at least once; the commonest real-world failures twice. */
export const hazardRules: Record<HazardKind, HazardRule> = {
  'missing-image': { copies: 2, reason: 'missing-image', encoding: 'none', involvesFile: true },
  'empty-file': { copies: 1, reason: 'empty-file', encoding: 'empty', involvesFile: true },
  'truncated-jpeg': { copies: 2, reason: 'corrupt-image', encoding: 'truncated-jpeg', involvesFile: true },
  'not-an-image': { copies: 1, reason: 'not-an-image', encoding: 'text', involvesFile: true },
  'png-as-jpg': { copies: 1, reason: null, encoding: 'png', involvesFile: true },
  'grayscale-jpeg': { copies: 1, reason: null, encoding: 'grayscale-jpeg', involvesFile: true },
  'cmyk-jpeg': { copies: 1, reason: null, encoding: 'cmyk-jpeg', involvesFile: true },
  'huge-image': { copies: 1, reason: 'too-large', encoding: 'huge-jpeg', involvesFile: true },
  // the duplicate row reuses another record's id; its own image is never referenced
  'duplicate-id': { copies: 2, reason: 'duplicate-id', encoding: 'none', involvesFile: false },
  'empty-label': { copies: 1, reason: 'unlabelled', encoding: 'jpeg', involvesFile: false },
  'unknown-label': { copies: 1, reason: 'unknown-label', encoding: 'jpeg', involvesFile: false },
  'id-with-slash': { copies: 2, reason: 'invalid-id', encoding: 'none', involvesFile: false },
  'id-with-dotdot': { copies: 1, reason: 'invalid-id', encoding: 'none', involvesFile: false },
  // the row is broken but its image exists, as when a CSV export loses fields
  'too-few-columns': { copies: 1, reason: 'malformed-row', encoding: 'jpeg', involvesFile: false },
};

export const hazardKinds = Object.keys(hazardRules) as HazardKind[];
export const plantedHazardCount = hazardKinds.reduce((sum, kind) => sum + hazardRules[kind].copies, 0);
/** Hazards, the duplicates' originals and the gz2-only unmapped record, with room for good records. */
export const minimumHazardCount = 40;

/** A label no class rule matches (the default rules are ^E, ^S, ^A). */
export const unknownLabel = 'X';
/** Ids with a slash: a path escape and a plain sub-folder ("a/b"). */
export function slashId(copy: number, assetId: string): string {
  return copy === 0 ? '../etc/passwd' : `${assetId}/${assetId}`;
}
export const dotdotId = '..';

export interface PlantedHazard {
  kind: HazardKind;
  index: number;
  /** n-th copy of this kind (0-based), to vary bad ids */
  copy: number;
  /** duplicate-id: the record whose row it repeats */
  originalIndex?: number;
}

export interface HazardPlan {
  byIndex: Map<number, PlantedHazard>;
  /** gz2 layout only: a good record whose mapping row is left out (rejected unmapped-id there) */
  unmappedIndex: number;
}

export function planHazards(seed: number, count: number): HazardPlan {
  const rng = new Rng(seed, 'hazards');
  const taken = new Set<number>();
  const pick = (): number => {
    for (;;) {
      const index = rng.int(count);
      if (!taken.has(index)) {
        taken.add(index);
        return index;
      }
    }
  };
  const byIndex = new Map<number, PlantedHazard>();
  for (const kind of hazardKinds) {
    for (let copy = 0; copy < hazardRules[kind].copies; copy++) {
      const index = pick();
      byIndex.set(
        index,
        kind === 'duplicate-id' ? { kind, index, copy, originalIndex: pick() } : { kind, index, copy },
      );
    }
  }
  return { byIndex, unmappedIndex: pick() };
}

export interface HazardEntry {
  kind: HazardKind | 'unmapped-id';
  id: string;
  row: number;
  file?: string;
  outcome: 'accepted' | 'rejected';
  reason?: RejectReasonName;
  detail: string;
  /** duplicate-id: the row of the first occurrence, which wins */
  firstRow?: number;
}

export interface ExpectedOutcome {
  accepted: number;
  rejected: Partial<Record<RejectReasonName, number>>;
}

export function expectedOutcome(entries: HazardEntry[], rows: number): ExpectedOutcome {
  const rejected: Partial<Record<RejectReasonName, number>> = {};
  let rejectedTotal = 0;
  for (const entry of entries) {
    if (entry.outcome !== 'rejected' || !entry.reason) continue;
    rejected[entry.reason] = (rejected[entry.reason] ?? 0) + 1;
    rejectedTotal++;
  }
  return { accepted: rows - rejectedTotal, rejected };
}

export const hazardDetails: Record<HazardKind, string> = {
  'missing-image': 'row whose image file was never written',
  'empty-file': 'zero-byte .jpg',
  'truncated-jpeg': 'valid JPEG cut to half its length',
  'not-an-image': 'HTML error page saved under the image name',
  'png-as-jpg': 'PNG bytes named .jpg (decodable by content)',
  'grayscale-jpeg': 'single-channel JPEG (needs conversion to 3 channels)',
  'cmyk-jpeg': 'CMYK JPEG (needs conversion to sRGB)',
  'huge-image': '12000x12000 JPEG (144 megapixels)',
  'duplicate-id': 'second row with an id already seen; the first row wins',
  'empty-label': 'row with an empty class string',
  'unknown-label': `class string "${unknownLabel}" that no class rule matches`,
  'id-with-slash': 'id containing "/" (a path outside the image folder)',
  'id-with-dotdot': 'id ".." (a path outside the image folder)',
  'too-few-columns': 'row with fewer fields than the header',
};
