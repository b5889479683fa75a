import path from 'node:path';
import { Rng } from '../../core/rng.ts';
import { describeRecord, type SynthRecord } from './catalog.ts';
import type { SynthOptions } from './dataset.ts';
import type { ImageEncoding } from './encode.ts';
import {
  dotdotId,
  hazardRules,
  planHazards,
  slashId,
  unknownLabel,
  type HazardPlan,
  type PlantedHazard,
} from './hazards.ts';
import type { RenderJob } from './render-job.ts';

/** A record as it ends up in the files, after any hazard is applied. */
export interface PlannedRecord {
  record: SynthRecord;
  hazard: PlantedHazard | null;
  /** id written in the joined CSV */
  id: string;
  label: string;
  encoding: ImageEncoding;
  /** asset_id on this object's mapping row; null = row left out */
  mappingAssetId: string | null;
}

export class DatasetPlan {
  readonly hazards: HazardPlan | null;
  /** position in the CSVs → record index */
  readonly order: Uint32Array;

  constructor(readonly options: SynthOptions) {
    this.hazards = options.hazards ? planHazards(options.seed, options.count) : null;
    this.order = this.rowOrder();
  }

  record(index: number): PlannedRecord {
    const { seed, imbalance } = this.options;
    const record = describeRecord(seed, index, imbalance);
    const hazard = this.hazards?.byIndex.get(index) ?? null;
    const planned: PlannedRecord = {
      record,
      hazard,
      id: record.assetId,
      label: record.gz2class,
      encoding: 'jpeg',
      mappingAssetId: this.hazards?.unmappedIndex === index ? null : record.assetId,
    };
    if (!hazard) return planned;
    planned.encoding = hazardRules[hazard.kind].encoding;
    switch (hazard.kind) {
      case 'empty-label':
        planned.label = '';
        break;
      case 'unknown-label':
        planned.label = unknownLabel;
        break;
      case 'id-with-slash':
        planned.id = slashId(hazard.copy, record.assetId);
        break;
      case 'id-with-dotdot':
        planned.id = dotdotId;
        break;
      default:
        break;
    }
    if (hazard.kind === 'id-with-slash' || hazard.kind === 'id-with-dotdot') planned.mappingAssetId = planned.id;
    return planned;
  }

  /** Rows shuffled relative to ids (like the real catalogues); a duplicate always follows its original. */
  private rowOrder(): Uint32Array {
    const { count, seed } = this.options;
    const order = shuffledIndices(count, new Rng(seed, 'rows'));
    if (this.hazards) {
      const position = new Uint32Array(count);
      order.forEach((index, pos) => (position[index] = pos));
      for (const hazard of this.hazards.byIndex.values()) {
        if (hazard.originalIndex === undefined) continue;
        const dup = position[hazard.index];
        const first = position[hazard.originalIndex];
        if (dup < first) {
          order[dup] = hazard.originalIndex;
          order[first] = hazard.index;
        }
      }
    }
    return order;
  }

  *jobs(imagesDir: string): Generator<RenderJob> {
    const { seed, size, count } = this.options;
    for (let index = 0; index < count; index++) {
      const planned = this.record(index);
      if (planned.encoding === 'none') continue;
      yield {
        seed,
        index,
        gz2class: planned.record.gz2class,
        size,
        encoding: planned.encoding,
        file: path.join(imagesDir, `${planned.record.assetId}.jpg`),
      };
    }
  }

  imageCount(): number {
    let skipped = 0;
    for (const hazard of this.hazards?.byIndex.values() ?? [])
      if (hazardRules[hazard.kind].encoding === 'none') skipped++;
    return this.options.count - skipped;
  }
}

/** 0..n-1 in a seeded random order (Fisher-Yates on a typed array: a few bytes per record). */
export function shuffledIndices(n: number, rng: Rng): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}
