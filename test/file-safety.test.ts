import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { decodeImage } from '../src/images/decode.ts';
import { readManifest } from '../src/cache/manifest.ts';
import { readShard } from '../src/cache/reader.ts';
import { buildModel } from '../src/model/architecture.ts';
import { saveModel } from '../src/model/io.ts';
import { runCli } from './support/run-cli.ts';

/**
 * Issue 13, items 2, 5 and 7, through the CLI as a user meets them: CMYK and ICC-tagged JPEGs
 * come out as the sRGB other decoders give; FIFOs, sockets and folders under an image's name
 * are `not-a-file` (and nothing hangs); links leaving the image folder are `outside-image-dir`,
 * unread; no message carries bytes of a file.
 */

let root: string;
const SIZE = 64;
const SECRET = 'root:x:0:0:root:/root:/bin/bash\n';
const image = { width: 32, height: 32, channels: 3 as const, fit: 'fill' as const, maxInputPixels: 1_000_000 };

/** A smooth galaxy-like RGB test card with a dark-sky band (7,7,7) at the top. */
function rgbPixels(seed: number): Buffer {
  const px = Buffer.alloc(SIZE * SIZE * 3);
  for (let i = 0; i < SIZE * SIZE; i++) {
    const x = i % SIZE;
    const y = Math.floor(i / SIZE);
    const sky = y < 12;
    px[i * 3] = sky ? 7 : (seed * 31 + x * 3) % 256;
    px[i * 3 + 1] = sky ? 7 : (seed * 17 + y * 3) % 256;
    px[i * 3 + 2] = sky ? 7 : (seed * 7 + x + y) % 256;
  }
  return px;
}

/** An uncompressed 8-bit CMYK TIFF (the way to hand sharp CMYK values it keeps as they are). */
function cmykTiff(cmyk: Uint8Array): Buffer {
  const entries: [number, number, number][] = [
    [256, 4, SIZE],
    [257, 4, SIZE],
    [258, 3, 146],
    [259, 3, 1],
    [262, 3, 5],
    [273, 4, 154],
    [277, 3, 4],
    [278, 4, SIZE],
    [279, 4, SIZE * SIZE * 4],
    [284, 3, 1],
    [332, 3, 1],
  ];
  const b = Buffer.alloc(154 + cmyk.length);
  b.write('II', 0, 'latin1');
  b.writeUInt16LE(42, 2);
  b.writeUInt32LE(8, 4);
  b.writeUInt16LE(entries.length, 8);
  entries.forEach(([tag, type, value], i) => {
    const o = 10 + i * 12;
    b.writeUInt16LE(tag, o);
    b.writeUInt16LE(type, o + 2);
    b.writeUInt32LE(tag === 258 ? 4 : 1, o + 4);
    if (type === 3 && tag !== 258) b.writeUInt16LE(value, o + 8);
    else b.writeUInt32LE(value, o + 8);
  });
  for (let k = 0; k < 4; k++) b.writeUInt16LE(8, 146 + k * 2);
  Buffer.from(cmyk).copy(b, 154);
  return b;
}

/**
 * A CMYK JPEG as PIL, Photoshop's "naive" conversion and most tools write it without a
 * profile: C = 255 - R, M = 255 - G, Y = 255 - B, K = 0; made with sharp from a CMYK TIFF so
 * sharp keeps the values.
 */
async function plainCmykJpeg(rgb: Buffer): Promise<Buffer> {
  const cmyk = new Uint8Array(SIZE * SIZE * 4);
  for (let i = 0; i < SIZE * SIZE; i++) {
    cmyk[i * 4] = 255 - rgb[i * 3];
    cmyk[i * 4 + 1] = 255 - rgb[i * 3 + 1];
    cmyk[i * 4 + 2] = 255 - rgb[i * 3 + 2];
  }
  const jpeg = await sharp(cmykTiff(cmyk))
    .pipelineColourspace('cmyk')
    .toColourspace('cmyk')
    .jpeg({ quality: 95 })
    .toBuffer();
  const meta = await sharp(jpeg).metadata();
  assert.equal(meta.space, 'cmyk');
  assert.equal(meta.icc, undefined, 'no profile embedded');
  return jpeg;
}

const rgbJpeg = (rgb: Buffer) =>
  sharp(rgb, { raw: { width: SIZE, height: SIZE, channels: 3 } })
    .jpeg({ quality: 95 })
    .toBuffer();

function meanAbs(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

function writeConfig(dir: string, data: Record<string, unknown> = {}): string {
  const file = path.join(dir, 'galactic.json');
  writeFileSync(
    file,
    JSON.stringify({
      data: { csv: 'labels.csv', imageDir: 'images', ...data },
      image,
      cache: { dir: 'cache', shardImages: 8 },
      memory: { limitMB: 2048 },
    }),
  );
  return file;
}

interface Reject {
  row: number;
  id: string;
  reason: string;
  detail: string;
}

function rejectsOf(cacheDir: string): Reject[] {
  return readFileSync(path.join(cacheDir, 'rejects.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Reject);
}

async function shardPixels(cacheDir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const record = image.width * image.height * image.channels;
  for (const entry of readManifest(cacheDir).shards) {
    const shard = await readShard(cacheDir, entry);
    shard.ids.forEach((id, i) => out.set(id, shard.data.slice(i * record, (i + 1) * record)));
  }
  return out;
}

before(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'galactic-files-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

test('prepare: a CMYK JPEG without a profile and a P3-tagged JPEG are cached within mean 3 of the RGB decode; a tagged CMYK uses its profile', async () => {
  const dir = path.join(root, 'colour');
  const images = path.join(dir, 'images');
  mkdirSync(images, { recursive: true });
  const rgb = rgbPixels(3);
  writeFileSync(path.join(images, '1.jpg'), await rgbJpeg(rgb));
  writeFileSync(path.join(images, '2.jpg'), await plainCmykJpeg(rgb));
  // Display P3 pixels with the P3 profile embedded: the profile must be applied
  writeFileSync(
    path.join(images, '3.jpg'),
    await sharp(rgb, { raw: { width: SIZE, height: SIZE, channels: 3 } })
      .withIccProfile('p3')
      .jpeg({ quality: 95 })
      .toBuffer(),
  );
  // CMYK through sharp's press profile, with that profile embedded (its black is not (7,7,7):
  // the profile, not the decoder, decides the colours, so the reference is the profile applied)
  const tagged = await sharp(rgb, { raw: { width: SIZE, height: SIZE, channels: 3 } })
    .toColourspace('cmyk')
    .withIccProfile('cmyk')
    .jpeg({ quality: 95 })
    .toBuffer();
  writeFileSync(path.join(images, '4.jpg'), tagged);
  writeFileSync(path.join(dir, 'labels.csv'), 'asset_id,gz2class\n1,Ei\n2,Sc\n3,Er\n4,Sc\n');
  const result = await runCli(['prepare', '--config', writeConfig(dir), '--json', '-q']);
  assert.equal(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as { images: number; cacheDir: string };
  assert.equal(summary.images, 4);
  const pixels = await shardPixels(summary.cacheDir);
  const reference = await decodeImage(await rgbJpeg(rgb), image);
  assert.ok(meanAbs(pixels.get('1')!, reference) < 0.01, 'the RGB JPEG is the reference');
  const cmyk = meanAbs(pixels.get('2')!, reference);
  assert.ok(cmyk <= 3, `plain CMYK: mean abs ${cmyk.toFixed(2)}`);
  assert.ok(
    Math.abs(pixels.get('2')![0] - 7) <= 2,
    `dark sky stays dark: ${pixels.get('2')!.subarray(0, 3).join(',')}`,
  );
  const p3 = meanAbs(pixels.get('3')!, reference);
  assert.ok(p3 <= 3, `P3-tagged: mean abs ${p3.toFixed(2)}`);
  const throughProfile = await sharp(tagged)
    .resize(image.width, image.height, { fit: 'fill' })
    .toColourspace('srgb')
    .raw()
    .toBuffer();
  const viaProfile = meanAbs(pixels.get('4')!, throughProfile);
  assert.ok(viaProfile <= 1, `CMYK with its profile goes through that profile: mean abs ${viaProfile.toFixed(2)}`);
});

test('decodeImage: plain CMYK matches the RGB decode for every fit and for channels 1', async () => {
  const rgb = rgbPixels(5);
  const cmyk = await plainCmykJpeg(rgb);
  const jpeg = await rgbJpeg(rgb);
  for (const fit of ['fill', 'cover', 'contain', 'inside'] as const) {
    for (const channels of [3, 1] as const) {
      const settings = { ...image, width: 32, height: 24, fit, channels };
      const got = await decodeImage(cmyk, settings);
      const want = await decodeImage(jpeg, settings);
      assert.ok(meanAbs(got, want) <= 3, `${fit} x${channels}: ${meanAbs(got, want)}`);
    }
  }
});

/** A data set whose image names hold every kind of thing that is not a regular image file. */
async function hostileFolder(dir: string): Promise<{ server: net.Server; config: string }> {
  const images = path.join(dir, 'images');
  const elsewhere = path.join(dir, 'elsewhere');
  mkdirSync(path.join(images, 'sub'), { recursive: true });
  mkdirSync(elsewhere, { recursive: true });
  const good = await rgbJpeg(rgbPixels(1));
  writeFileSync(path.join(images, '1.jpg'), good);
  execFileSync('mkfifo', [path.join(images, '2.jpg')]);
  execFileSync('mkfifo', [path.join(images, 'sub', 'fifo')]);
  symlinkSync(path.join(images, 'sub', 'fifo'), path.join(images, '3.jpg'));
  mkdirSync(path.join(images, '4.jpg'));
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(path.join(images, '5.jpg'), resolve));
  writeFileSync(path.join(elsewhere, 'passwd'), SECRET);
  symlinkSync(path.join(elsewhere, 'passwd'), path.join(images, '6.jpg'));
  writeFileSync(path.join(elsewhere, 'galaxy.jpg'), good);
  symlinkSync(path.join(elsewhere, 'galaxy.jpg'), path.join(images, '7.jpg'));
  writeFileSync(path.join(images, 'sub', 'inside.jpg'), good);
  symlinkSync(path.join('sub', 'inside.jpg'), path.join(images, '8.jpg'));
  writeFileSync(path.join(images, '9.jpg'), SECRET);
  symlinkSync('/dev/zero', path.join(images, '10.jpg'));
  symlinkSync(path.join(elsewhere, 'fifo-outside'), path.join(images, '11.jpg'));
  execFileSync('mkfifo', [path.join(elsewhere, 'fifo-outside')]);
  symlinkSync(path.join(images, 'nothing-here'), path.join(images, '12.jpg'));
  const rows = Array.from({ length: 12 }, (_, i) => `${i + 1},Ei`).join('\n');
  writeFileSync(path.join(dir, 'labels.csv'), `asset_id,gz2class\n${rows}\n`);
  return { server, config: writeConfig(dir) };
}

test('prepare: FIFOs, sockets, folders and links that leave data.imageDir are rejected by reason; nothing hangs or leaks', async () => {
  const dir = path.join(root, 'hostile');
  const { server, config } = await hostileFolder(dir);
  try {
    const result = await runCli(['prepare', '--config', config, '--json', '-q'], { timeoutMs: 60_000 });
    assert.equal(result.code, 0, `exit ${result.code} (null = killed after hanging): ${result.stderr}`);
    const summary = JSON.parse(result.stdout) as { images: number; cacheDir: string; rejected: Record<string, number> };
    const byId = Object.fromEntries(rejectsOf(summary.cacheDir).map((r) => [r.id, r]));
    assert.deepEqual(Object.fromEntries(Object.entries(byId).map(([id, r]) => [id, r.reason])), {
      2: 'not-a-file',
      3: 'not-a-file',
      4: 'not-a-file',
      5: 'not-a-file',
      6: 'outside-image-dir',
      7: 'outside-image-dir',
      9: 'not-an-image',
      10: 'outside-image-dir',
      11: 'outside-image-dir',
      12: 'missing-image',
    });
    assert.match(byId[2].detail, /is a FIFO \(named pipe\), not a regular file/);
    assert.match(byId[3].detail, /is a FIFO/);
    assert.match(byId[4].detail, /is a folder/);
    assert.match(byId[5].detail, /is a socket/);
    assert.match(byId[6].detail, /outside the image folder/);
    assert.equal(byId[9].detail, `${path.join(dir, 'images', '9.jpg')} is not an image format sharp reads`);
    assert.deepEqual(summary.rejected, {
      'missing-image': 1,
      'not-a-file': 4,
      'outside-image-dir': 4,
      'not-an-image': 1,
    });
    assert.equal(summary.images, 2, 'the plain file and the link that stays inside the folder');
    assert.deepEqual([...(await shardPixels(summary.cacheDir)).keys()], ['1', '8']);
    // not a byte of the files' content anywhere the user sees
    const everything =
      readFileSync(path.join(summary.cacheDir, 'rejects.jsonl'), 'utf8') + result.stdout + result.stderr;
    for (const leak of ['root:x', Buffer.from('root').toString('hex')])
      assert.ok(!everything.includes(leak), `leaked ${leak}`);
  } finally {
    server.close();
  }
});

test("predict: a FIFO named directly is not-a-file (no hang); a folder's links may not leave it; a named link may", async () => {
  const dir = path.join(root, 'predict');
  const runDir = path.join(dir, 'run');
  const model = buildModel(
    {},
    {
      inputShape: [32, 32, 3],
      numClasses: 3,
      seed: 5,
      defaults: { filters: [2], kernelSize: 3, denseUnits: 4, dropout: 0, learningRate: 0.001 },
    },
  );
  await saveModel(model, runDir);
  model.dispose();
  writeFileSync(
    path.join(runDir, 'metadata.json'),
    JSON.stringify({
      format: 'galactic-run',
      version: 1,
      classes: ['elliptical', 'spiral', 'artifact'],
      image,
      normalization: { mode: 'scale', mean: [0, 0, 0], std: [1, 1, 1] },
      configDigest: 'sha256:test',
      cacheKey: 'test',
      hyperparameters: {},
      split: { validation: 0.2, stratify: true, trainImages: 1, validationImages: 1 },
    }),
  );
  const { server } = await hostileFolder(path.join(dir, 'data'));
  const images = path.join(dir, 'data', 'images');
  const fifo = path.join(dir, 'data', 'elsewhere', 'fifo-outside');
  try {
    const result = await runCli(
      [
        'predict',
        '--model',
        runDir,
        '--backend',
        'cpu',
        '--json',
        fifo,
        path.join(images, '6.jpg'),
        path.join(images, '7.jpg'),
        images,
      ],
      { timeoutMs: 60_000 },
    );
    assert.equal(result.code, 0, `exit ${result.code} (null = killed after hanging): ${result.stderr}`);
    const { predictions } = JSON.parse(result.stdout) as {
      predictions: { file: string; error?: string; class?: string }[];
    };
    const [named, namedLink, namedImage] = predictions;
    assert.match(named.error ?? '', /^not-a-file: .* is a FIFO/);
    assert.match(
      namedLink.error ?? '',
      /^not-an-image: .* is not an image format sharp reads$/,
      'named on the command line: followed, but its bytes stay private',
    );
    assert.equal(typeof namedImage.class, 'string', 'a link named explicitly is followed');
    // the same files found inside the folder
    const inFolder = predictions.slice(3);
    const reason = (name: string) =>
      inFolder.find((p) => path.basename(p.file) === name)?.error?.split(':')[0] ?? 'predicted';
    assert.deepEqual(
      [
        '1.jpg',
        '2.jpg',
        '3.jpg',
        '4.jpg',
        '5.jpg',
        '6.jpg',
        '7.jpg',
        '8.jpg',
        '9.jpg',
        '10.jpg',
        '11.jpg',
        '12.jpg',
      ].map(reason),
      [
        'predicted',
        'not-a-file',
        'not-a-file',
        'not-a-file',
        'not-a-file',
        'outside-image-dir',
        'outside-image-dir',
        'predicted',
        'not-an-image',
        'outside-image-dir',
        'outside-image-dir',
        'missing-image',
      ],
    );
    assert.ok(!(result.stdout + result.stderr).includes('root:x'));
    assert.ok(!(result.stdout + result.stderr).includes(Buffer.from('root').toString('hex')));
  } finally {
    server.close();
  }
});
