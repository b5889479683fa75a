import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  readManifest,
  writeManifest,
  CacheNotFoundError,
  CacheIncompleteError,
  ManifestUnreadableError,
  MANIFEST_FILE,
} from '../src/cache/manifest.ts';
import { readShard } from '../src/cache/reader.ts';
import { ShardWriter } from '../src/cache/shard-writer.ts';
import { CorruptShardError, MANIFEST_FORMAT, CACHE_FORMAT_VERSION, type Manifest } from '../src/cache/format.ts';
import { writeFixture, writeFixtureConfig } from './support/prepare-fixture.ts';
import { ChannelStatsAccumulator, addPlain, simdKernel } from '../src/prepare/channel-stats.ts';
import { crc32, crc32Combine } from '../src/cache/crc32.ts';
import { DIRECT_MIN_BYTES, DIRECT_STAGE_BYTES, writeDirectAndSync } from '../src/core/atomic-file.ts';
import { runCli } from './support/run-cli.ts';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'galactic-cache-'));

function manifest(over: Partial<Manifest> = {}): Manifest {
  return {
    format: MANIFEST_FORMAT,
    version: CACHE_FORMAT_VERSION,
    cacheKey: 'k',
    inputs: {},
    classes: ['a', 'b'],
    image: { width: 2, height: 2, channels: 3, fit: 'fill' },
    dtype: 'uint8',
    shardImages: 4,
    shards: [],
    classCounts: [0, 0],
    channelStats: { mean: [0, 0, 0], std: [0, 0, 0] },
    totals: { rows: 0, images: 0, rejected: 0, bytes: 0 },
    rejects: {},
    complete: true,
    toolVersion: '0',
    createdAt: '',
    updatedAt: '',
    ...over,
  };
}

test('ShardWriter writes shards that readShard reads back and checks', async () => {
  const dir = tmp();
  const writer = new ShardWriter(dir, 3, { height: 2, width: 2, channels: 3 }, 'uint8');
  writer.append('a', 0, new Uint8Array(12).fill(1));
  writer.append('b', 1, new Uint8Array(12).fill(2));
  const entry = await writer.flush(0);
  assert.equal(entry.file, 'shard-00000.msgpack');
  assert.equal(entry.count, 2);
  const shard = await readShard(dir, entry);
  assert.deepEqual(shard.ids, ['a', 'b']);
  assert.deepEqual([...shard.labels], [0, 1]);
  assert.deepEqual(shard.shape, [2, 2, 2, 3]);
  assert.deepEqual([...shard.data], [...new Array(12).fill(1), ...new Array(12).fill(2)]);

  const float = new ShardWriter(dir, 1, { height: 1, width: 1, channels: 3 }, 'float32');
  float.append('c', 1, Uint8Array.from([0, 128, 255]));
  const floatShard = await readShard(dir, await float.flush(1));
  assert.deepEqual([...new Float32Array(new Uint8Array(floatShard.data).buffer)], [0, 128, 255]);

  const file = path.join(dir, entry.file);
  const bytes = readFileSync(file);
  bytes[bytes.length - 5] ^= 0xff;
  writeFileSync(file, bytes);
  await assert.rejects(
    readShard(dir, entry),
    (e: unknown) => e instanceof CorruptShardError && /checksum mismatch.*prepare --force/.test(e.message),
  );
});

test('channel sums: the SIMD kernel equals the plain loop exactly (1 and 3 channels, partial groups, records over one chunk)', () => {
  const kernel = simdKernel();
  assert.ok(kernel, 'WebAssembly SIMD is available on Node 20');
  let seed = 12345;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
  for (const channels of [1, 3]) {
    // 48 * 16384 is one kernel chunk; 424x424x3 and 2,000,001 cross it; 3 and 51 leave a partial group
    for (const length of [0, 3, 51, 96, 128 * 128 * 3, 424 * 424 * 3, 2_000_001 - (2_000_001 % channels)]) {
      const pixels = new Uint8Array(length);
      for (let i = 0; i < length; i++) pixels[i] = random();
      if (length > 200) pixels.fill(255, 0, 200); // saturated runs: the largest squares
      const plain = { sum: new Array<number>(channels).fill(0), squares: new Array<number>(channels).fill(0) };
      addPlain(pixels, channels, plain.sum, plain.squares);
      const simd = { sum: new Array<number>(channels).fill(0), squares: new Array<number>(channels).fill(0) };
      kernel.add(pixels, channels, simd.sum, simd.squares);
      assert.deepEqual(simd, plain, `${channels} channels, ${length} bytes`);
    }
  }
  const all255 = new Uint8Array(48 * 16384 * 2 + 48).fill(255);
  const stats = new ChannelStatsAccumulator(3);
  stats.add(all255);
  assert.deepEqual(stats.state(), {
    sum: [1, 1, 1].map(() => (255 * all255.length) / 3),
    sumSquares: [1, 1, 1].map(() => (255 * 255 * all255.length) / 3),
    count: all255.length / 3,
  });
});

test("crc32Combine gives the CRC of a concatenation from the pieces' CRCs", () => {
  const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 2654435761) >>> 24);
  for (const [a, b] of [
    [0, 0],
    [0, 9],
    [9, 0],
    [1, 1],
    [13, 65_536],
    [70_000, 0],
    [3, 69_997],
  ]) {
    const first = bytes.subarray(0, a);
    const second = bytes.subarray(a, a + b);
    assert.equal(crc32Combine(crc32(first), crc32(second), b), crc32(bytes.subarray(0, a + b)), `${a} + ${b}`);
  }
});

test('writeDirectAndSync writes exactly the parts (O_DIRECT through the staging buffer, or the buffered fallback)', async () => {
  const dir = tmp();
  const big = Uint8Array.from({ length: DIRECT_MIN_BYTES + 3 * DIRECT_STAGE_BYTES + 4097 }, (_, i) => (i * 31) & 0xff);
  const cases: Uint8Array[][] = [
    [Uint8Array.of(1, 2, 3), big, Uint8Array.of(4, 5)], // unaligned parts around a big one, a padded last block
    [big.subarray(0, DIRECT_MIN_BYTES)], // exactly aligned, no padding
    [Uint8Array.of(9, 8, 7)], // small: buffered
  ];
  for (const [i, parts] of cases.entries()) {
    const file = path.join(dir, `f${i}`);
    writeFileSync(file, new Uint8Array(DIRECT_MIN_BYTES * 2).fill(0xee)); // a longer file is replaced, not overwritten in place
    await writeDirectAndSync(file, parts);
    assert.ok(Buffer.from(readFileSync(file)).equals(Buffer.concat(parts)), `case ${i}`);
  }
});

test('readManifest: absent, incomplete and damaged caches are user errors that say what to run', async () => {
  const dir = tmp();
  assert.throws(
    () => readManifest(dir),
    (e: unknown) => e instanceof CacheNotFoundError && /Run 'galactic prepare'/.test(e.message),
  );
  await writeManifest(dir, manifest({ complete: false, totals: { rows: 9, images: 7, rejected: 0, bytes: 0 } }));
  assert.throws(
    () => readManifest(dir),
    (e: unknown) => e instanceof CacheIncompleteError && /stopped after 7 images/.test(e.message),
  );
  await writeManifest(dir, manifest());
  assert.equal(readManifest(dir).cacheKey, 'k');
  assert.equal(existsSync(path.join(dir, `${MANIFEST_FILE}.tmp`)), false);
  writeFileSync(path.join(dir, MANIFEST_FILE), '{"format":');
  assert.throws(() => readManifest(dir), ManifestUnreadableError);
});

test('galactic inspect lists caches and which one matches; --prune removes the others after saying what it frees', async () => {
  const dir = tmp();
  await writeFixture(dir, { good: 12 });
  const small = writeFixtureConfig(dir);
  const big = writeFixtureConfig(dir, { image: { width: 24, height: 24 } });
  const bigCopy = path.join(dir, 'big.json');
  writeFileSync(bigCopy, readFileSync(big));
  writeFixtureConfig(dir); // restore the small config under the default name
  for (const file of [small, bigCopy]) assert.equal((await runCli(['prepare', '--config', file, '-q'])).code, 0);
  mkdirSync(path.join(dir, 'cache', 'leftover'));

  const listed = await runCli(['inspect', '--config', small, '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  const report = JSON.parse(listed.stdout) as {
    currentKey: string;
    caches: {
      key: string;
      status: string;
      images: number;
      shards: number;
      bytes: number;
      matchesConfig: boolean;
      image: string | null;
    }[];
  };
  assert.equal(report.caches.length, 3);
  const current = report.caches.find((c) => c.matchesConfig)!;
  assert.equal(current.key, report.currentKey);
  assert.equal(current.status, 'complete');
  assert.equal(current.images, 12);
  assert.equal(current.shards, 2);
  assert.equal(current.image, '16x16x3 fill uint8');
  assert.ok(current.bytes > 0);
  assert.equal(report.caches.find((c) => c.key === 'leftover')!.status, 'no manifest');
  const human = await runCli(['inspect', '--config', small]);
  assert.match(human.stdout, /^caches under .*\n/);
  assert.match(human.stdout, /\* [0-9a-f]{16}\s+complete\s+2 shards\s+12 images/);
  assert.equal(human.stdout.split('\n').filter((l) => /^[* ] \S+ /.test(l)).length, 3, 'one line per cache, on stdout');

  const pruned = await runCli(['inspect', '--config', small, '--prune']);
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.match(pruned.stderr, /pruning 2 cache\(s\) not matching the config, freeing [\d.]+ MB: /);
  const after = JSON.parse((await runCli(['inspect', '--config', small, '--json'])).stdout) as {
    caches: { key: string }[];
  };
  assert.deepEqual(
    after.caches.map((c) => c.key),
    [current.key],
  );
});
