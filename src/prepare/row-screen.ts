import type { LoadedConfig } from '../config/load.ts';
import type { RejectReason } from '../core/reject-reasons.ts';
import type { CsvRow } from '../ingest/csv-source.ts';
import { idProblem, imageFileName, imagePathInside } from '../ingest/ids.ts';
import type { LabelRules } from '../ingest/labels.ts';
import type { Gz2Mapping } from '../ingest/gz2-mapping.ts';
import type { StringTable } from '../ingest/string-table.ts';

/**
 * The cheap per-row checks that need no image bytes, in this order: row shape, id safety,
 * duplicate id, label rules, gz2 mapping, existence in the image index. The first row that
 * names an id claims it whatever its own fate, so a later row with that id is `duplicate-id`; in
 * the gz2 layout the first labelled object to reach an image claims it too, so a later object
 * mapped to the same image is `duplicate-id` naming both objects.
 * Deterministic and free of I/O, so a resumed run replays it over the committed rows to rebuild
 * the seen-id state exactly.
 */

/**
 * `id` is the image id stored in the shards; `sourceId` the CSV's id (they differ in the gz2 layout, where rejects name
 * the object).
 */
export interface Candidate {
  kind: 'candidate';
  seq: number;
  row: number;
  id: string;
  sourceId: string;
  label: number;
  file: string;
}
export interface Rejected {
  kind: 'reject';
  seq: number;
  row: number;
  id: string;
  reason: RejectReason;
  detail: string;
}
export type Screened = Candidate | Rejected;

export interface RowScreenOptions {
  data: LoadedConfig['data'];
  labels: LabelRules;
  hasImage: (fileName: string) => boolean;
  headerCount: number;
  /** gz2 layout: labels-CSV object id -> image id. */
  mapping?: Gz2Mapping | null;
  /**
   * Every id seen so far, within the plan's ceiling. Null in a distributed prepare's worker, which screens one
   * row range without the rows before it: it skips the first-wins rules (duplicate ids, gz2 image claims) and so
   * decodes every row the chief's full screen can keep, and a few it will reject.
   */
  seen: StringTable | null;
}

export class RowScreen {
  constructor(private readonly options: RowScreenOptions) {}

  screen(row: CsvRow): Screened {
    const { data, labels, hasImage, headerCount, mapping } = this.options;
    const rawId = row.cells[data.idColumn] ?? '';
    const id = rawId.trim();
    const reject = (reason: RejectReason, detail: string): Rejected => ({
      kind: 'reject',
      seq: row.row,
      row: row.row,
      id,
      reason,
      detail,
    });
    if (row.overlong)
      return reject('malformed-row', `the line is longer than data.maxRowBytes (${data.maxRowBytes} bytes)`);
    if (row.fields < headerCount)
      return reject('malformed-row', `the row has ${row.fields} fields, the header has ${headerCount}`);
    const problem = idProblem(id);
    if (problem) return reject('invalid-id', problem);
    const { seen } = this.options;
    if (seen) {
      const known = seen.size;
      if (seen.add(id) < known)
        return reject('duplicate-id', `id ${id} already appeared in an earlier row (the first wins)`);
    }
    const label = labels.classify(row.cells[data.labelColumn]);
    if ('reason' in label) return reject(label.reason, label.detail);
    let imageId = id;
    if (mapping) {
      const mapped = mapping.get(id);
      if (mapped === undefined)
        return reject('unmapped-id', `object ${id} has no row in the filename mapping (${data.mappingCsv})`);
      const mappedProblem = idProblem(mapped);
      if (mappedProblem) return reject('invalid-id', `mapped image id ${JSON.stringify(mapped)}: ${mappedProblem}`);
      const holder = seen ? mapping.claim(id) : null;
      if (holder !== null)
        return reject(
          'duplicate-id',
          `image ${mapped} of object ${id} is already the image of object ${holder}, in an earlier row (the first wins)`,
        );
      imageId = mapped;
    }
    const fileName = imageFileName(data.fileName, imageId);
    const file = imagePathInside(data.imageDir, fileName);
    if (!file) return reject('invalid-id', `the image path for id ${imageId} would leave data.imageDir`);
    if (!hasImage(fileName)) return reject('missing-image', `${fileName} is not in ${data.imageDir}`);
    return { kind: 'candidate', seq: row.row, row: row.row, id: imageId, sourceId: id, label: label.index, file };
  }
}
