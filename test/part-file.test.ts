import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PartWriter } from '../src/cache/part-file.ts';
import { ImageRejection } from '../src/core/reject-reasons.ts';
import { PartPixels } from '../src/prepare/part-pixels.ts';
import { rowRanges } from '../src/prepare/row-range.ts';
import type { Candidate } from '../src/prepare/row-screen.ts';

/**
 * The part files of a distributed prepare as the chief reads them: pixels and image rejections by
 * row, rows the chief's screen rejected skipped, and a damaged or foreign part refused with advice.
 */

const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-part-file-'));
after(() => rmSync(root, { recursive: true, force: true }));

const candidate = (row: number): Candidate => ({
  kind: 'candidate',
  seq: row,
  row,
  id: String(row),
  sourceId: String(row),
  label: 0,
  file: `${row}.jpg`,
});

/** Rows 1-5 in one range: 1, 2 and 4 decoded (2 twice the size of a ring buffer page), 3 a corrupt image. */
function writePart(name: string, cacheKey = 'k'): string {
  const file = path.join(root, name);
  const part = new PartWriter(file, { cacheKey, first: 1, end: null });
  part.pixels(1, new Uint8Array([1, 2, 3]));
  part.pixels(2, new Uint8Array(3 << 20).fill(7));
  part.reject(3, 'corrupt-image', 'premature end of JPEG');
  part.pixels(4, new Uint8Array([4, 5, 6]));
  part.commit();
  return file;
}

function pixelsFrom(file: string, cacheKey = 'k'): PartPixels {
  return new PartPixels({
    cacheKey,
    ranges: rowRanges(5, 10),
    rangeRows: 10,
    ready: () => Promise.resolve(file),
  });
}

describe('part files', () => {
  it('serve each candidate its own pixels or its rejection, in row order, skipping rows the chief rejected', async () => {
    const pixels = pixelsFrom(writePart('good.part'));
    const asked = [1, 2, 3, 4].map((row) => pixels.pixels(candidate(row)));
    assert.deepEqual([...(await asked[0])], [1, 2, 3]);
    const big = await asked[1];
    assert.equal(big.byteLength, 3 << 20);
    assert.ok(big.every((v) => v === 7));
    await assert.rejects(asked[2], (error: unknown) => {
      assert.ok(error instanceof ImageRejection);
      assert.equal(error.reason, 'corrupt-image');
      assert.equal(error.detail, 'premature end of JPEG');
      return true;
    });
    assert.deepEqual([...(await asked[3])], [4, 5, 6]);
    await pixels.close();

    // row 1 rejected by the chief (a duplicate id): its entry is skipped
    const skipping = pixelsFrom(writePart('skip.part'));
    assert.deepEqual([...(await skipping.pixels(candidate(4)))], [4, 5, 6]);
    await skipping.close();
  });

  it('refuses a candidate the worker did not decode, a part of another cache and a truncated part, with advice', async () => {
    const missing = pixelsFrom(writePart('missing.part'));
    await assert.rejects(
      missing.pixels(candidate(5)),
      /part file \S+missing\.part has no entry for row 5, a row the chief keeps: the worker that wrote it saw other data \(data\.csv, data\.imageDir\) than the chief\. Delete it and rerun 'galactic prepare --queue …': its range is decoded again, the rest is kept\./,
    );
    await missing.close();

    const foreign = pixelsFrom(writePart('foreign.part', 'other'));
    await assert.rejects(foreign.pixels(candidate(1)), /holds rows 1-end of cache other, not rows 1-end of k\./);
    await foreign.close();

    const file = writePart('truncated.part');
    writeFileSync(file, readFileSync(file).subarray(0, 1000));
    const truncated = pixelsFrom(file);
    await assert.rejects(
      truncated.pixels(candidate(2)),
      /part file \S+truncated\.part ends in the middle of an entry\./,
    );
    await truncated.close();

    writeFileSync(path.join(root, 'junk.part'), 'not a part file at all');
    const junk = pixelsFrom(path.join(root, 'junk.part'));
    await assert.rejects(junk.pixels(candidate(1)), /part file \S+junk\.part is not a galactic part file\./);
    await junk.close();
  });
});
