import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { validateConfig, type LoadedConfig } from '../src/config/load.ts';
import { Rng } from '../src/core/rng.ts';
import { loadManifest, loadShard } from '../src/data/cache-access.ts';
import { CorruptShardError } from '../src/cache/format.ts';
import { NeedMoreBytes, parseShardLabels, readShardLabels } from '../src/cache/shard-header.ts';
import { readFileSync, writeFileSync } from 'node:fs';
import { Feed, feedSettings, type HostBatch } from '../src/data/feed.ts';
import { NO_DATA, planMemory } from '../src/memory/plan.ts';
import { ImageWriter } from '../src/data/image-writer.ts';
import { pixelMap } from '../src/data/orientation.ts';
import { ShuffleBuffer } from '../src/data/shuffle-buffer.ts';
import { splitCache } from '../src/data/split.ts';
import { writeFixtureCache, type FixtureRecord } from './support/fixture-cache.ts';

const SIZE = 4;
const CHANNELS = 3;
let dir: string;
let records: Map<string, FixtureRecord>;

function config(overrides: Record<string, unknown> = {}): LoadedConfig {
  return validateConfig(
    {
      data: { csv: 'x.csv', imageDir: 'img' },
      train: { batchSize: 6 },
      feed: { shuffleBuffer: 5, prefetch: 1, augment: { flip: false, rotate90: false } },
      ...overrides,
    },
    '<test>',
    os.tmpdir(),
  );
}

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'galactic-feed-'));
  const rng = new Rng(9);
  const list: FixtureRecord[] = Array.from({ length: 40 }, (_, n) => ({
    id: `r${n}`,
    label: n % 2,
    pixels: Uint8Array.from({ length: SIZE * SIZE * CHANNELS }, () => rng.int(256)),
  }));
  records = new Map(list.map((r) => [r.id, r]));
  writeFixtureCache(dir, list, { classes: ['a', 'b'], height: SIZE, width: SIZE, channels: CHANNELS, shardImages: 16 });
});

after(() => rmSync(dir, { recursive: true, force: true }));

async function makeFeed(cfg = config()): Promise<Feed> {
  const manifest = loadManifest(dir);
  const split = await splitCache(dir, manifest, cfg.split, cfg.seed);
  return new Feed({ config: cfg, cacheDir: dir, manifest, split, settings: feedSettings(planMemory(cfg, NO_DATA)) });
}

/** Copies each host batch (its arrays are reused by the generator). */
async function collect(
  batches: AsyncIterable<HostBatch>,
): Promise<{ ids: string[]; xs: Float32Array[]; labels: number[]; sizes: number[] }> {
  const out = { ids: [] as string[], xs: [] as Float32Array[], labels: [] as number[], sizes: [] as number[] };
  const per = SIZE * SIZE * CHANNELS;
  for await (const b of batches) {
    out.sizes.push(b.size);
    for (let i = 0; i < b.size; i++) {
      out.ids.push(b.ids[i]);
      out.labels.push(b.labels[i]);
      out.xs.push(b.xs.slice(i * per, (i + 1) * per));
    }
  }
  return out;
}

test('quarter turns and flips match np.rot90(np.fliplr(image), k) exactly', () => {
  const image = Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  const writer = new ImageWriter({ height: 3, width: 3, channels: 1 }, 'uint8', { mode: 'scale', mean: [0], std: [1] });
  const apply = (flip: boolean, turns: number) => {
    const out = new Float32Array(9);
    writer.write(out, 0, image, 0, { flip, turns });
    return Array.from(out, (v) => Math.round(v * 255));
  };
  assert.deepEqual(apply(false, 0), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(apply(true, 0), [2, 1, 0, 5, 4, 3, 8, 7, 6]);
  assert.deepEqual(apply(false, 1), [2, 5, 8, 1, 4, 7, 0, 3, 6]);
  assert.deepEqual(apply(false, 2), [8, 7, 6, 5, 4, 3, 2, 1, 0]);
  assert.deepEqual(apply(false, 3), [6, 3, 0, 7, 4, 1, 8, 5, 2]);
  assert.deepEqual(apply(true, 1), [0, 3, 6, 1, 4, 7, 2, 5, 8]);
  assert.throws(() => pixelMap(2, 3, { flip: false, turns: 1 }), /square/);
});

test('normalization: scale is v/255 and standardize is (v-mean)/std per channel, as float32', () => {
  const pixel = Uint8Array.from([0, 128, 255, 10, 20, 30]);
  const scale = new Float32Array(6);
  new ImageWriter({ height: 1, width: 2, channels: 3 }, 'uint8', { mode: 'scale', mean: [], std: [] }).write(
    scale,
    0,
    pixel,
    0,
    { flip: false, turns: 0 },
  );
  assert.deepEqual(
    Array.from(scale),
    Array.from(pixel, (v) => Math.fround(v / 255)),
  );
  const mean = [100, 50.5, 3];
  const std = [20, 2.5, 0];
  const standard = new Float32Array(6);
  new ImageWriter({ height: 1, width: 2, channels: 3 }, 'uint8', { mode: 'standardize', mean, std }).write(
    standard,
    0,
    pixel,
    0,
    { flip: false, turns: 0 },
  );
  // a zero std divides by 1 (a constant channel stays finite)
  assert.deepEqual(
    Array.from(standard),
    Array.from(pixel, (v, i) => Math.fround((v - mean[i % 3]) / (std[i % 3] || 1))),
  );
});

test('ShuffleBuffer holds at most its capacity and hands out every record once', () => {
  const buffer = new ShuffleBuffer(3, 2);
  const source = Uint8Array.from([1, 1, 2, 2, 3, 3, 4, 4]);
  for (let i = 0; i < 3; i++) buffer.push(source, i * 2, i, `r${i}`);
  assert.equal(buffer.full, true);
  assert.throws(() => buffer.push(source, 6, 3, 'r3'), /full/);
  const rng = new Rng(1);
  const slot = buffer.takeRandom(rng);
  const taken = buffer.id(slot);
  assert.deepEqual(Array.from(buffer.bytes(slot)), [Number(taken.slice(1)) + 1, Number(taken.slice(1)) + 1]);
  buffer.push(source, 6, 3, 'r3');
  const rest: string[] = [];
  while (buffer.size > 0) rest.push(buffer.id(buffer.takeRandom(rng)));
  assert.deepEqual([taken, ...rest].sort(), ['r0', 'r1', 'r2', 'r3']);
  assert.equal(buffer.peak, 3);
});

test('a training epoch yields every training record once, through a bounded buffer, reproducibly', async () => {
  const feed = await makeFeed();
  const epoch0 = await collect(feed.trainBatches(0));
  const trainIds = feed.split.train.flatMap((idx, s) => Array.from(idx, (i) => `r${s * 16 + i}`));
  assert.deepEqual([...epoch0.ids].sort(), [...trainIds].sort());
  assert.equal(epoch0.ids.length, feed.split.trainCount);
  assert.ok(epoch0.sizes.every((n) => n <= 6));
  assert.equal(epoch0.sizes.length, feed.trainBatchCount);
  assert.ok(feed.shuffleBufferPeak <= 5 && feed.shuffleBufferPeak > 0);
  assert.deepEqual((await collect(feed.trainBatches(0))).ids, epoch0.ids);
  assert.notDeepEqual((await collect(feed.trainBatches(1))).ids, epoch0.ids);
  assert.notDeepEqual(epoch0.ids, trainIds, 'shuffled');
  // labels travel with their records; without augmentation the pixels are the normalized originals
  epoch0.ids.forEach((id, k) => {
    const r = records.get(id)!;
    assert.equal(epoch0.labels[k], r.label);
    assert.deepEqual(
      Array.from(epoch0.xs[k]),
      Array.from(r.pixels, (v) => Math.fround(v / 255)),
    );
  });
});

test('augmentation gives seeded flips and quarter turns of the original record', async () => {
  const cfg = config({ feed: { shuffleBuffer: 5, prefetch: 1, augment: { flip: true, rotate90: true } } });
  const feed = await makeFeed(cfg);
  const epoch = await collect(feed.trainBatches(0));
  const seen = new Set<string>();
  epoch.ids.forEach((id, k) => {
    const original = records.get(id)!.pixels;
    const match = [false, true]
      .flatMap((flip) => [0, 1, 2, 3].map((turns) => ({ flip, turns })))
      .find((o) => {
        const expected = new Float32Array(original.length);
        feed.writer.write(expected, 0, original, 0, o);
        return expected.every((v, i) => v === epoch.xs[k][i]);
      });
    assert.ok(match, `record ${id} is an exact flip/rotation of its original`);
    seen.add(`${match.flip}:${match.turns}`);
  });
  assert.ok(seen.size >= 4, `several orientations used (${[...seen].join(', ')})`);
  assert.deepEqual((await collect(feed.trainBatches(0))).xs, epoch.xs, 'same seed and epoch, same augmentation');
});

test('validation is in cache order, never shuffled or augmented, and standardized exactly', async () => {
  const cfg = config({
    feed: { normalize: 'standardize', shuffleBuffer: 5, prefetch: 1, augment: { flip: true, rotate90: true } },
  });
  const feed = await makeFeed(cfg);
  const { mean, std } = loadManifest(dir).channelStats;
  const validation = await collect(feed.validationBatches());
  const expectedIds = feed.split.validation.flatMap((idx, s) => Array.from(idx, (i) => `r${s * 16 + i}`));
  assert.deepEqual(validation.ids, expectedIds);
  validation.ids.forEach((id, k) => {
    const expected = Array.from(records.get(id)!.pixels, (v, i) => Math.fround((v - mean[i % 3]) / std[i % 3]));
    assert.deepEqual(Array.from(validation.xs[k]), expected);
  });
});

test('the tf.data datasets yield fresh {xs, ys} tensors per batch and leak none', async () => {
  await tf.setBackend('cpu');
  const feed = await makeFeed();
  const baseline = tf.memory().numTensors;
  const seen = new Set<number>();
  let images = 0;
  for (const dataset of [feed.trainDataset(), feed.validationDataset()]) {
    await dataset.forEachAsync((batch) => {
      const { xs, ys } = batch as unknown as { xs: tf.Tensor; ys: tf.Tensor };
      assert.deepEqual(xs.shape.slice(1), [SIZE, SIZE, CHANNELS]);
      assert.equal(ys.shape[0], xs.shape[0]);
      assert.ok(!seen.has(xs.id) && !seen.has(ys.id));
      seen.add(xs.id);
      seen.add(ys.id);
      images += xs.shape[0];
      tf.dispose([xs, ys]);
    });
  }
  assert.equal(images, 40);
  assert.equal(tf.memory().numTensors, baseline);
  // on cpu the tensor must not share the reused host buffer: two batches keep their own values
  const iterator = await feed.validationDataset().iterator();
  const first = (await iterator.next()).value as { xs: tf.Tensor; ys: tf.Tensor };
  const snapshot = first.xs.dataSync().slice();
  const second = (await iterator.next()).value as { xs: tf.Tensor; ys: tf.Tensor };
  assert.deepEqual(first.xs.dataSync(), snapshot);
  tf.dispose([first.xs, first.ys, second.xs, second.ys]);
});

test('the split reads ids and labels from shard headers, equal to a full read', async () => {
  const manifest = loadManifest(dir);
  for (const entry of manifest.shards) {
    const header = await readShardLabels(dir, entry);
    const full = await loadShard(dir, entry);
    assert.deepEqual(header.ids, full.ids);
    assert.deepEqual(Array.from(header.labels), Array.from(full.labels));
    // parsed from the head of the file alone (not the checked full-read fallback)
    const bytes = readFileSync(path.join(dir, entry.file));
    assert.deepEqual(parseShardLabels(bytes.subarray(0, 600)).ids, full.ids);
    assert.throws(() => parseShardLabels(bytes.subarray(0, 100)), NeedMoreBytes);
  }
  // long ids overflow the first guess of the header size: the reader grows its prefix
  const longDir = path.join(dir, 'long-ids');
  const long = Array.from({ length: 20 }, (_, n) => ({
    id: `${'x'.repeat(300)}-${n}`,
    label: n % 2,
    pixels: new Uint8Array(SIZE * SIZE * CHANNELS).fill(n),
  }));
  const longManifest = writeFixtureCache(longDir, long, {
    classes: ['a', 'b'],
    height: SIZE,
    width: SIZE,
    channels: CHANNELS,
    shardImages: 20,
  });
  const header = await readShardLabels(longDir, longManifest.shards[0]);
  assert.deepEqual(
    header.ids,
    long.map((r) => r.id),
  );
  assert.deepEqual(
    Array.from(header.labels),
    long.map((r) => r.label),
  );
  // a damaged header is reported as a corrupt shard naming the file, never read around silently
  const damagedDir = path.join(dir, 'damaged');
  const damaged = writeFixtureCache(damagedDir, long.slice(0, 4), {
    classes: ['a', 'b'],
    height: SIZE,
    width: SIZE,
    channels: CHANNELS,
    shardImages: 4,
  });
  const damagedFile = path.join(damagedDir, damaged.shards[0].file);
  const bytes = readFileSync(damagedFile);
  bytes.write('galactic-shaRd', bytes.indexOf('galactic-shard'));
  writeFileSync(damagedFile, bytes);
  await assert.rejects(
    readShardLabels(damagedDir, damaged.shards[0]),
    (error: Error) =>
      error instanceof CorruptShardError &&
      error.message.includes(damagedFile) &&
      /not a galactic shard/.test(error.message),
  );
});

test('a float32 cache (0..255 values) feeds exactly the same batches as the uint8 cache', async () => {
  const floatDir = path.join(dir, 'float32');
  writeFixtureCache(floatDir, [...records.values()], {
    classes: ['a', 'b'],
    height: SIZE,
    width: SIZE,
    channels: CHANNELS,
    shardImages: 16,
    dtype: 'float32',
  });
  const cfg = config({
    feed: { normalize: 'standardize', shuffleBuffer: 5, prefetch: 1, augment: { flip: true, rotate90: true } },
  });
  const manifest = loadManifest(floatDir);
  const floatFeed = new Feed({
    config: cfg,
    cacheDir: floatDir,
    manifest,
    split: await splitCache(floatDir, manifest, cfg.split, cfg.seed),
    settings: feedSettings(planMemory(cfg, NO_DATA)),
  });
  const uint8Feed = await makeFeed(cfg);
  assert.deepEqual(await collect(floatFeed.trainBatches(3)), await collect(uint8Feed.trainBatches(3)));
  assert.deepEqual(await collect(floatFeed.validationBatches()), await collect(uint8Feed.validationBatches()));
});
