import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UsageError, UserError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';
import type { Output } from '../../report/output.ts';
import {
  assetIdOf, describeRecord, emptySlotIn, mappingSampleOf, objidOf, slotCount, voteFractionColumns, type SynthRecord,
} from './catalog.ts';
import { CsvFile } from './csv-file.ts';
import type { ImageEncoding } from './encode.ts';
import {
  dotdotId, expectedOutcome, hazardDetails, hazardRules, minimumHazardCount, planHazards, plantedHazardCount, slashId,
  unknownLabel, type ExpectedOutcome, type HazardEntry, type HazardPlan, type PlantedHazard,
} from './hazards.ts';
import type { RenderJob } from './render-job.ts';
import { RenderPool } from './worker-pool.ts';

/**
 * `galactic synth` as a library call: renders a Galaxy Zoo 2 shaped data set (images, the
 * pre-joined CSV, the official two-file layout) and, on request, plants the hazards of
 * docs/interfaces.md §1. Images first, catalogues after (each renamed into place when
 * complete, galaxy_df_final.csv last), so an interrupted run never looks finished.
 */
export interface SynthOptions {
  out: string;
  count: number;
  seed: number;
  size: number;
  hazards: boolean;
  imbalance: boolean;
  force: boolean;
  /** render threads; defaults to one per core */
  threads?: number;
}

export interface SynthSummary {
  out: string;
  count: number;
  images: number;
  seconds: number;
  imagesPerSecond: number;
  hazards: { file: string; planted: number; expected: ExpectedOutcome } | null;
}

export const joinedCsvName = 'galaxy_df_final.csv';
export const gz2CsvName = 'gz2_hart16.csv';
export const mappingCsvName = 'gz2_filename_mapping.csv';
export const hazardsFileName = 'hazards.json';
export const imagesDirName = 'images';
/** Everything synth writes into --out, and so everything --force may remove. */
export const synthOutputs = [imagesDirName, joinedCsvName, gz2CsvName, mappingCsvName, hazardsFileName] as const;
/** The list above for messages: "images/, galaxy_df_final.csv, ..." */
export const synthOutputList = synthOutputs.map((name) => (name === imagesDirName ? `${name}/` : name)).join(', ');

export const joinedHeader = ['asset_id', 'dr7objid', 'gz2class', 'ra', 'dec'] as const;
export const gz2Header = ['dr7objid', 'ra', 'dec', 'gz2_class', 'total_votes', 'total_classifications', ...voteFractionColumns] as const;
export const mappingHeader = ['objid', 'sample', 'asset_id'] as const;

export class SynthOutputNotEmptyError extends UserError {
  constructor(dir: string, entries: string[]) {
    const shown = entries.slice(0, 5).join(', ') + (entries.length > 5 ? `, ... (${entries.length} entries)` : '');
    super(`--out ${dir} is not empty (it contains ${shown}); nothing was written. Choose a new or empty folder, `
      + `or pass --force to replace what synth writes there (${synthOutputList}); other files are left alone.`);
  }
}

export class SynthOutputNotDirectoryError extends UserError {
  constructor(dir: string) {
    super(`--out ${dir} exists and is not a folder. Pass the path of a new or empty folder.`);
  }
}

export class SynthOutputUnwritableError extends UserError {
  constructor(dir: string, cause: string) {
    super(`cannot write into --out ${dir} (${cause}). Choose a folder you can write to.`);
  }
}

export function validateSynthOptions(options: SynthOptions): void {
  const positive = (flag: string, value: number, min = 1): void => {
    if (!Number.isInteger(value) || value < min) throw new UsageError(`${flag} must be an integer of at least ${min} (got ${value}).`);
  };
  positive('--count', options.count);
  positive('--size', options.size, 16);
  if (options.size > 4096) throw new UsageError(`--size must be at most 4096 (got ${options.size}).`);
  if (!Number.isInteger(options.seed) || options.seed < 0 || options.seed > 2 ** 31 - 1) {
    throw new UsageError(`--seed must be an integer from 0 to ${2 ** 31 - 1} (got ${options.seed}).`);
  }
  if (options.hazards && options.count < minimumHazardCount) {
    throw new UsageError(`--count must be at least ${minimumHazardCount} with --hazards, which plants ${plantedHazardCount} hazards (got ${options.count}).`);
  }
}

/** Refuses a non-empty --out unless forced; with --force removes only synth's own outputs. */
function prepareOutputDir(out: string, force: boolean): void {
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw new SynthOutputNotDirectoryError(out);
    const entries = readdirSync(out);
    if (entries.length > 0) {
      if (!force) throw new SynthOutputNotEmptyError(out, entries);
      const ours = new Set<string>(synthOutputs.flatMap((name) => [name, `${name}.partial`]));
      for (const entry of entries) if (ours.has(entry)) rmSync(path.join(out, entry), { recursive: true, force: true });
    }
  }
  try {
    mkdirSync(path.join(out, imagesDirName), { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOTDIR' || code === 'EEXIST') {
      throw new SynthOutputUnwritableError(out, (error as Error).message);
    }
    throw error;
  }
}

/** A record as it ends up in the files, after any hazard is applied. */
interface PlannedRecord {
  record: SynthRecord;
  hazard: PlantedHazard | null;
  /** id written in the joined CSV */
  id: string;
  label: string;
  encoding: ImageEncoding;
  /** asset_id on this object's mapping row; null = row left out */
  mappingAssetId: string | null;
}

class DatasetPlan {
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
      record, hazard, id: record.assetId, label: record.gz2class, encoding: 'jpeg',
      mappingAssetId: this.hazards?.unmappedIndex === index ? null : record.assetId,
    };
    if (!hazard) return planned;
    planned.encoding = hazardRules[hazard.kind].encoding;
    switch (hazard.kind) {
      case 'empty-label': planned.label = ''; break;
      case 'unknown-label': planned.label = unknownLabel; break;
      case 'id-with-slash': planned.id = slashId(hazard.copy, record.assetId); break;
      case 'id-with-dotdot': planned.id = dotdotId; break;
      default: break;
    }
    if (hazard.kind === 'id-with-slash' || hazard.kind === 'id-with-dotdot') planned.mappingAssetId = planned.id;
    return planned;
  }

  /** Rows shuffled relative to ids (like the real catalogues); a duplicate always follows its original. */
  private rowOrder(): Uint32Array {
    const { count, seed } = this.options;
    const order = new Uint32Array(count);
    for (let i = 0; i < count; i++) order[i] = i;
    const rng = new Rng(seed, 'rows');
    for (let i = count - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
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
      yield { seed, index, gz2class: planned.record.gz2class, size, encoding: planned.encoding, file: path.join(imagesDir, `${planned.record.assetId}.jpg`) };
    }
  }

  imageCount(): number {
    let skipped = 0;
    for (const hazard of this.hazards?.byIndex.values() ?? []) if (hazardRules[hazard.kind].encoding === 'none') skipped++;
    return this.options.count - skipped;
  }
}

function joinedRow(p: PlannedRecord): string[] {
  return [p.id, p.record.dr7objid, p.label, p.record.ra, p.record.dec];
}

function gz2Row(p: PlannedRecord): string[] {
  const { record } = p;
  return [record.dr7objid, record.ra, record.dec, p.label, String(record.votes.totalVotes), String(record.votes.totalClassifications),
    ...voteFractionColumns.map((c) => record.votes.fractions[c])];
}

/** Writes the three catalogues and returns the hazard entries for both layouts. */
function writeCatalogues(plan: DatasetPlan, out: string): { joined: HazardEntry[]; gz2: HazardEntry[] } {
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
      joinedEntries.push(entry(hazard, original.id, row, undefined, `${hazardDetails[hazard.kind]} (first at row ${firstRow})`, firstRow));
      gz2Entries.push(entry(hazard, original.record.dr7objid, row, undefined, `dr7objid repeated (first at row ${firstRow})`, firstRow));
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
      const viaMapping = hazard.kind === 'id-with-slash' || hazard.kind === 'id-with-dotdot'
        ? `mapping row gives asset_id ${JSON.stringify(planned.id)}` : hazardDetails[hazard.kind];
      gz2Entries.push(entry(hazard, planned.record.dr7objid, row, file, viaMapping));
    }
    if (plan.hazards?.unmappedIndex === index) {
      gz2Entries.push({ kind: 'unmapped-id', id: planned.record.dr7objid, row, outcome: 'rejected', reason: 'unmapped-id',
        detail: `no ${mappingCsvName} row for this dr7objid (the image ${imagesDirName}/${planned.record.assetId}.jpg exists)` });
    }
  }
  gz2.close();
  writeMapping(plan, path.join(out, mappingCsvName), seed, count);
  joined.close();
  return { joined: joinedEntries, gz2: gz2Entries };
}

function entry(hazard: PlantedHazard, id: string, row: number, file: string | undefined, detail: string, firstRow?: number): HazardEntry {
  const { reason } = hazardRules[hazard.kind];
  return {
    kind: hazard.kind, id, row, ...(file ? { file } : {}), outcome: reason ? 'rejected' : 'accepted',
    ...(reason ? { reason } : {}), detail, ...(firstRow ? { firstRow } : {}),
  };
}

/** objid → asset_id for every slot: records, plus the image-less third like the real file. */
function writeMapping(plan: DatasetPlan, file: string, seed: number, count: number): void {
  const slots = slotCount(count);
  const order = new Uint32Array(slots);
  for (let i = 0; i < slots; i++) order[i] = i;
  const rng = new Rng(seed, 'mapping-rows');
  for (let i = slots - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
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

function writeJsonAtomically(file: string, value: unknown): void {
  writeFileSync(`${file}.partial`, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(`${file}.partial`, file);
}

export async function synthesizeDataset(options: SynthOptions, output: Output): Promise<SynthSummary> {
  validateSynthOptions(options);
  const out = path.resolve(options.out);
  prepareOutputDir(out, options.force);
  const started = performance.now();
  const plan = new DatasetPlan(options);
  const total = plan.imageCount();

  const pool = await RenderPool.start(options.threads);
  const progress = output.progress('synth', total, 'images');
  let images = 0;
  try {
    await pool.run(plan.jobs(path.join(out, imagesDirName)), () => {
      images++;
      progress.update(images);
    });
  } finally {
    await pool.close();
  }
  const renderSeconds = (performance.now() - started) / 1000;
  progress.stop(`synth: ${images} images (${options.size}x${options.size}) in ${renderSeconds.toFixed(1)} s on ${pool.threads} threads`);

  const entries = writeCatalogues(plan, out);
  let hazards: SynthSummary['hazards'] = null;
  if (options.hazards) {
    const expected = expectedOutcome(entries.joined, options.count);
    writeJsonAtomically(path.join(out, hazardsFileName), {
      seed: options.seed,
      count: options.count,
      hazards: entries.joined,
      expected,
      gz2: {
        csv: gz2CsvName,
        mappingCsv: mappingCsvName,
        note: 'the same records in the gz2 layout: rows line up with galaxy_df_final.csv; ids are dr7objid',
        hazards: entries.gz2,
        expected: expectedOutcome(entries.gz2, options.count),
      },
    });
    hazards = { file: path.join(out, hazardsFileName), planted: entries.joined.length, expected };
    output.info(`synth: planted ${entries.joined.length} hazards; expected outcomes in ${path.join(out, hazardsFileName)}`);
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    out, count: options.count, images, seconds: round(seconds, 3),
    imagesPerSecond: round(images / Math.max(renderSeconds, 1e-9), 1), hazards,
  };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
