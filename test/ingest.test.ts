import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { ImageIndex, ImageDirNotFoundError } from '../src/ingest/image-index.ts';
import { idProblem, checkFileNamePattern, FileNamePatternError, imagePathInside } from '../src/ingest/ids.ts';
import { LabelRules } from '../src/ingest/labels.ts';
import { openCsv, CsvColumnsError, CsvNotFoundError, type CsvRow } from '../src/ingest/csv-source.ts';
import { decodeImage, sniffImageFormat } from '../src/images/decode.ts';
import { ImageRejection } from '../src/core/reject-reasons.ts';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'galactic-ingest-'));

test('ImageIndex lists the folder once, keeps every name fitting the pattern (a folder too: decoding rejects it not-a-file), and finds them', async () => {
  const dir = tmp();
  for (const name of ['3.jpg', '1.jpg', '20.jpg', 'notes.txt', '.DS_Store', 'é.jpg'])
    writeFileSync(path.join(dir, name), '');
  mkdirSync(path.join(dir, 'sub.jpg'));
  const index = await ImageIndex.build(dir, '{id}.jpg');
  assert.equal(index.size, 5);
  for (const name of ['1.jpg', '3.jpg', '20.jpg', 'é.jpg', 'sub.jpg']) assert.ok(index.has(name), name);
  for (const name of ['2.jpg', 'notes.txt', '.jpg', '']) assert.ok(!index.has(name), name);
  assert.equal(ImageIndex.buildSync(dir, '{id}.jpg').digest, index.digest);
  assert.equal(index.realDir, realpathSync(dir));
  assert.equal(
    ImageIndex.fromNames(['é.jpg', '20.jpg', 'sub.jpg', '3.jpg', '1.jpg']).digest,
    index.digest,
    'the digest does not depend on listing order',
  );
  assert.notEqual(ImageIndex.fromNames(['1.jpg']).digest, index.digest);
  await assert.rejects(
    ImageIndex.build(path.join(dir, 'missing'), '{id}.jpg'),
    (e: unknown) => e instanceof ImageDirNotFoundError && /does not exist/.test(e.message),
  );
  assert.throws(() => ImageIndex.buildSync(path.join(dir, '1.jpg'), '{id}.jpg'), /is not a folder/);
});

test('ids are data, never paths', () => {
  for (const bad of ['a/b', '../etc/passwd', '..', 'a\\b', 'x\0y', '', 'a..b'])
    assert.ok(idProblem(bad), JSON.stringify(bad));
  for (const good of ['587722981741363294', 'abc-12_x', '1.5']) assert.equal(idProblem(good), null);
  assert.throws(() => checkFileNamePattern('../{id}.jpg'), FileNamePatternError);
  assert.throws(() => checkFileNamePattern('sub/{id}.jpg'), FileNamePatternError);
  checkFileNamePattern('img_{id}.jpeg');
  assert.equal(imagePathInside('/data/images', '12.jpg'), '/data/images/12.jpg');
  assert.equal(imagePathInside('/data/images', '../12.jpg'), null);
});

test('label rules: first matching class wins, empty and unmatched labels have their reasons', () => {
  const rules = new LabelRules([
    { name: 'elliptical', match: '^E' },
    { name: 'spiral', match: '^S' },
    { name: 'barred', match: '^SB' },
  ]);
  assert.deepEqual(rules.classify('Ei'), { index: 0 });
  assert.deepEqual(rules.classify('SBb'), { index: 1 });
  assert.deepEqual(rules.classify(' Sc '), { index: 1 });
  assert.equal((rules.classify('') as { reason: string }).reason, 'unlabelled');
  assert.equal((rules.classify(undefined) as { reason: string }).reason, 'unlabelled');
  assert.equal((rules.classify('A') as { reason: string }).reason, 'unknown-label');
});

test('the CSV source checks its header, numbers rows from 1, and cuts an over-long line', async () => {
  const dir = tmp();
  const file = path.join(dir, 'x.csv');
  writeFileSync(file, `asset_id,gz2class\n1,Ei\n2,${'S'.repeat(500)}\n3\n4,Sc\n`);
  await assert.rejects(openCsv(file, [{ column: 'id', knob: 'data.idColumn' }], 100), (e: unknown) => {
    assert.ok(e instanceof CsvColumnsError);
    assert.equal(
      e.message,
      `CSV file ${file} has no column "id"; the columns found are: "asset_id", "gz2class". Set data.idColumn to one of them.`,
    );
    return true;
  });
  await assert.rejects(
    openCsv(path.join(dir, 'none.csv'), [], 100),
    (e: unknown) => e instanceof CsvNotFoundError && /does not exist/.test(e.message),
  );
  const csv = await openCsv(file, [{ column: 'asset_id', knob: 'data.idColumn' }], 100);
  const rows: CsvRow[] = [];
  for await (const row of csv.rows) rows.push(row);
  assert.deepEqual(
    rows.map((r) => [r.row, r.cells.asset_id, r.fields, r.overlong]),
    [
      [1, '1', 2, false],
      [2, '2', 2, true],
      [3, '3', 1, false],
      [4, '4', 2, false],
    ],
  );
  assert.equal(rows[1].cells.gz2class.length, 100 - 2, 'the long line was cut at maxRowBytes');
  assert.equal(csv.headerCount, 2);
});

test('decodeImage: sRGB 3 channels from grayscale, CMYK and PNG-with-alpha; channels 1; fit inside padded', async () => {
  const image = { width: 8, height: 8, channels: 3 as const, fit: 'fill' as const, maxInputPixels: 1_000_000 };
  const gray = await sharp(Buffer.alloc(40 * 30, 77), { raw: { width: 40, height: 30, channels: 1 } })
    .toColourspace('b-w')
    .jpeg()
    .toBuffer();
  const cmyk = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 20, b: 40 } } })
    .toColourspace('cmyk')
    .jpeg()
    .toBuffer();
  const png = await sharp({
    create: { width: 40, height: 30, channels: 4, background: { r: 10, g: 250, b: 30, alpha: 1 } },
  })
    .png()
    .toBuffer();
  const g = await decodeImage(gray, image);
  assert.equal(g.length, 8 * 8 * 3);
  assert.ok(g.every((v) => Math.abs(v - 77) <= 2));
  const c = await decodeImage(cmyk, image);
  assert.equal(c.length, 192);
  assert.ok(c[0] > 150 && c[1] < 80 && c[2] < 90, `CMYK converted to sRGB, got ${c.subarray(0, 3).join(',')}`);
  const p = await decodeImage(png, image);
  assert.deepEqual([...p.subarray(0, 3)], [10, 250, 30]);
  const one = await decodeImage(png, { ...image, channels: 1 });
  assert.equal(one.length, 64);
  const inside = await decodeImage(png, { ...image, fit: 'inside' });
  assert.equal(inside.length, 192);
  assert.deepEqual([...inside.subarray(0, 3)], [0, 0, 0], 'letterbox rows are black');
  assert.deepEqual([...inside.subarray(4 * 8 * 3, 4 * 8 * 3 + 3)], [10, 250, 30], 'the image is centred');
});

test('decodeImage rejects with the reason the input deserves', async () => {
  const image = { width: 8, height: 8, channels: 3 as const, fit: 'fill' as const, maxInputPixels: 1_000_000 };
  const jpeg = await sharp({ create: { width: 64, height: 64, channels: 3, background: 'white' } })
    .jpeg()
    .toBuffer();
  const big = await sharp({ create: { width: 1100, height: 1000, channels: 3, background: 'white' } })
    .jpeg()
    .toBuffer();
  const dir = tmp();
  writeFileSync(path.join(dir, 'empty.jpg'), '');
  const cases: [string | Buffer, string][] = [
    [jpeg.subarray(0, jpeg.length >> 1), 'corrupt-image'],
    [jpeg.subarray(0, jpeg.length - 40), 'corrupt-image'],
    [Buffer.from('<!DOCTYPE html><html>404</html>'), 'not-an-image'],
    [Buffer.alloc(0), 'empty-file'],
    [path.join(dir, 'empty.jpg'), 'empty-file'],
    [path.join(dir, 'missing.jpg'), 'missing-image'],
    [big, 'too-large'],
  ];
  for (const [input, reason] of cases) {
    await assert.rejects(decodeImage(input, image), (e: unknown) => {
      assert.ok(e instanceof ImageRejection, String(e));
      assert.equal(e.reason, reason, `${typeof input === 'string' ? input : input.length} -> ${e.message}`);
      return true;
    });
  }
  assert.equal(sniffImageFormat(jpeg), 'jpeg');
  assert.equal(sniffImageFormat(Buffer.from('GIF89a')), 'gif');
});
