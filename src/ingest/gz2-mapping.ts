import { openCsv } from './csv-source.ts';
import { StringTable, type StringTableCeiling } from './string-table.ts';

/**
 * gz2 layout: gz2_filename_mapping.csv (objid -> asset_id), the one input held whole in memory,
 * packed into two string tables within the ceilings the memory plan reserved. When an object has
 * several mapping rows the first one wins, as with duplicate ids everywhere else. Several objects
 * may name one image: the first of them to reach prepare in the labels CSV claims it (`claim`),
 * whichever order the mapping lists them in.
 */
export class Gz2Mapping {
  // sized to the ceilings at once: zeroed pages cost no RSS until a row touches them
  private readonly imageOf: Uint32Array;
  private readonly claimedBy: Uint32Array;

  constructor(
    readonly objects: StringTable,
    readonly images: StringTable,
  ) {
    this.imageOf = new Uint32Array(objects.ceiling.entries);
    this.claimedBy = new Uint32Array(images.ceiling.entries);
  }

  get size(): number {
    return this.objects.size;
  }

  /** Bytes held (tables and links). */
  get bytes(): number {
    return this.objects.bytes + this.images.bytes + this.imageOf.byteLength + this.claimedBy.byteLength;
  }

  /** The image id of `objid`, or undefined when it has no mapping row. */
  get(objid: string): string | undefined {
    const object = this.objects.find(objid);
    return object < 0 ? undefined : this.images.get(this.imageOf[object]);
  }

  /**
   * Claims the image of `objid` for it: null if it is the first object to claim that image (or
   * claims it again), else the object id that claimed it first.
   */
  claim(objid: string): string | null {
    const object = this.objects.find(objid);
    if (object < 0) return null;
    const image = this.imageOf[object];
    const holder = this.claimedBy[image];
    if (holder === 0) {
      this.claimedBy[image] = object + 1;
      return null;
    }
    return holder === object + 1 ? null : this.objects.get(holder - 1);
  }

  /** Adds one mapping row (a repeated object keeps its first image). */
  add(objid: string, imageId: string): void {
    const known = this.objects.size;
    const object = this.objects.add(objid);
    if (object < known) return;
    const image = this.images.add(imageId);
    this.imageOf[object] = image;
  }
}

export async function loadGz2Mapping(
  file: string,
  objectColumn: string,
  imageColumn: string,
  maxRowBytes: number,
  ceilings: { objects: StringTableCeiling; images: StringTableCeiling },
  onFull: (what: string) => Error,
): Promise<Gz2Mapping> {
  const csv = await openCsv(
    file,
    [
      { column: objectColumn, knob: 'data.mappingObjectColumn' },
      { column: imageColumn, knob: 'data.mappingImageColumn' },
    ],
    maxRowBytes,
  );
  const mapping = new Gz2Mapping(
    new StringTable(ceilings.objects, () => onFull('object ids')),
    new StringTable(ceilings.images, () => onFull('image ids')),
  );
  try {
    for await (const { cells } of csv.rows) {
      const objid = cells[objectColumn]?.trim();
      const asset = cells[imageColumn]?.trim();
      if (objid && asset) mapping.add(objid, asset);
    }
  } finally {
    csv.close();
  }
  return mapping;
}
