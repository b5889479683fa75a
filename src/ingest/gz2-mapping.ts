import { openCsv } from './csv-source.ts';

/**
 * gz2 layout: gz2_filename_mapping.csv (objid -> asset_id) held whole in memory, the one
 * structure that grows with the data set (it is sized in the memory plan). When an object has
 * several mapping rows the first one wins, as with duplicate ids everywhere else.
 */
export async function loadGz2Mapping(file: string, objectColumn: string, imageColumn: string, maxRowBytes: number): Promise<Map<string, string>> {
  const csv = await openCsv(file, [
    { column: objectColumn, knob: 'data.mappingObjectColumn' },
    { column: imageColumn, knob: 'data.mappingImageColumn' },
  ], maxRowBytes);
  const mapping = new Map<string, string>();
  for await (const { cells } of csv.rows) {
    const objid = cells[objectColumn]?.trim();
    const asset = cells[imageColumn]?.trim();
    // slice(): detach from the parser's chunk strings so the map holds only what it needs
    if (objid && asset && !mapping.has(objid)) mapping.set(objid.slice(), asset.slice());
  }
  return mapping;
}
