import path from 'node:path';
import { Rng } from '../../core/rng.ts';
import { assetIdOf, emptySlotIn, mappingSampleOf, objidOf, slotCount, voteFractionColumns } from './catalog.ts';
import { CsvFile } from './csv-file.ts';
import { shuffledIndices, type DatasetPlan, type PlannedRecord } from './dataset-plan.ts';
import { hazardDetails, hazardRules, type HazardEntry, type PlantedHazard } from './hazards.ts';
import {
  gz2CsvName,
  gz2Header,
  imagesDirName,
  joinedCsvName,
  joinedHeader,
  mappingCsvName,
  mappingHeader,
} from './layout.ts';

export interface WrittenCatalogues {
  /** hazard entries for the joined layout and for the gz2 layout */
  joined: HazardEntry[];
  gz2: HazardEntry[];
  commit(): void;
}

function joinedRow(p: PlannedRecord): string[] {
  return [p.id, p.record.dr7objid, p.label, p.record.ra, p.record.dec];
}

function gz2Row(p: PlannedRecord): string[] {
  const { record } = p;
  return [
    record.dr7objid,
    record.ra,
    record.dec,
    p.label,
    String(record.votes.totalVotes),
    String(record.votes.totalClassifications),
    ...voteFractionColumns.map((c) => record.votes.fractions[c]),
  ];
}

/**
 * Writes the three catalogues of a planned data set. Each goes through a temporary name;
 * galaxy_df_final.csv is renamed into place only by `commit()`, after everything else
 * (hazards.json included) is complete, so its presence means the data set is whole.
 */
export function writeCatalogues(plan: DatasetPlan, out: string): WrittenCatalogues {
  const { count, seed } = plan.options;
  const joined = new CsvFile(path.join(out, joinedCsvName), joinedHeader);
  const gz2 = new CsvFile(path.join(out, gz2CsvName), gz2Header);
  const joinedEntries: HazardEntry[] = [];
  const gz2Entries: HazardEntry[] = [];
  const positionOf = new Uint32Array(count);
  plan.order.forEach((index, pos) => (positionOf[index] = pos));

  for (let pos = 0; pos < count; pos++) {
    const index = plan.order[pos];
    const planned = plan.record(index);
    const { hazard } = planned;
    const row = pos + 1;
    if (hazard?.kind === 'duplicate-id' && hazard.originalIndex !== undefined) {
      const original = plan.record(hazard.originalIndex);
      const firstRow = positionOf[hazard.originalIndex] + 1;
      joined.write(joinedRow(original));
      gz2.write(gz2Row(original));
      joinedEntries.push(
        entry(
          hazard,
          original.id,
          row,
          undefined,
          `${hazardDetails[hazard.kind]} (first at row ${firstRow})`,
          firstRow,
        ),
      );
      gz2Entries.push(
        entry(
          hazard,
          original.record.dr7objid,
          row,
          undefined,
          `dr7objid repeated (first at row ${firstRow})`,
          firstRow,
        ),
      );
      continue;
    }
    if (hazard?.kind === 'too-few-columns') {
      joined.write(joinedRow(planned).slice(0, 2));
      gz2.write(gz2Row(planned).slice(0, 2));
    } else {
      joined.write(joinedRow(planned));
      gz2.write(gz2Row(planned));
    }
    if (hazard) {
      const file = hazardRules[hazard.kind].involvesFile ? `${imagesDirName}/${planned.record.assetId}.jpg` : undefined;
      joinedEntries.push(entry(hazard, planned.id, row, file, hazardDetails[hazard.kind]));
      const viaMapping =
        hazard.kind === 'id-with-slash' || hazard.kind === 'id-with-dotdot'
          ? `mapping row gives asset_id ${JSON.stringify(planned.id)}`
          : hazardDetails[hazard.kind];
      gz2Entries.push(entry(hazard, planned.record.dr7objid, row, file, viaMapping));
    }
    if (plan.hazards?.unmappedIndex === index) {
      gz2Entries.push({
        kind: 'unmapped-id',
        id: planned.record.dr7objid,
        row,
        outcome: 'rejected',
        reason: 'unmapped-id',
        detail: `no ${mappingCsvName} row for this dr7objid (the image ${imagesDirName}/${planned.record.assetId}.jpg exists)`,
      });
    }
  }
  gz2.close();
  writeMapping(plan, path.join(out, mappingCsvName), seed, count);
  return { joined: joinedEntries, gz2: gz2Entries, commit: () => joined.close() };
}

function entry(
  hazard: PlantedHazard,
  id: string,
  row: number,
  file: string | undefined,
  detail: string,
  firstRow?: number,
): HazardEntry {
  const { reason } = hazardRules[hazard.kind];
  return {
    kind: hazard.kind,
    id,
    row,
    ...(file ? { file } : {}),
    outcome: reason ? 'rejected' : 'accepted',
    ...(reason ? { reason } : {}),
    detail,
    ...(firstRow ? { firstRow } : {}),
  };
}

/** objid → asset_id for every slot: records, plus the image-less third like the real file. */
function writeMapping(plan: DatasetPlan, file: string, seed: number, count: number): void {
  const slots = slotCount(count);
  const order = shuffledIndices(slots, new Rng(seed, 'mapping-rows'));
  const mapping = new CsvFile(file, mappingHeader);
  for (const slot of order) {
    const block = Math.floor(slot / 3);
    const position = slot % 3;
    const empty = emptySlotIn(seed, block);
    const index = position === empty ? -1 : 2 * block + (position < empty ? position : position - 1);
    if (index >= 0 && index < count) {
      const planned = plan.record(index);
      if (planned.mappingAssetId === null) continue;
      mapping.write([objidOf(seed, slot), mappingSampleOf(seed, slot, true), planned.mappingAssetId]);
    } else {
      mapping.write([objidOf(seed, slot), mappingSampleOf(seed, slot, false), assetIdOf(slot)]);
    }
  }
  mapping.close();
}
