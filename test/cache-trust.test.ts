import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readManifest } from '../src/cache/manifest.ts';
import { writeFixture, writeFixtureConfig } from './support/prepare-fixture.ts';
import { runCli } from './support/run-cli.ts';

/**
 * Issue 13, items 3 and 4, through the CLI: a prepare that finds none of its images is refused
 * (and cached as nothing); inspect shows rejects by reason and where they are; the manifest
 * carries its own checksum, a cache hit checks it and the shard sizes, `inspect --verify` reads
 * every shard's CRC.
 */

let root: string;
before(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'galactic-trust-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

interface Listing {
  key: string;
  status: string;
  rejects: Record<string, number>;
  rejectsFile: string | null;
  problem: string | null;
}

test('prepare pointed at a folder without any of the images exits non-zero with one message; nothing is cached; inspect shows the rejects', async () => {
  const dir = path.join(root, 'wrong-dir');
  await writeFixture(dir, { good: 12 });
  mkdirSync(path.join(dir, 'photos'));
  const config = writeFixtureConfig(dir, { data: { imageDir: 'photos' } });
  const expected = `galactic: none of the images was found: 12 of the 12 rows checked name an image that is not in data.imageDir (${path.join(dir, 'photos')}) under data.fileName "{id}.jpg"; the first expected was ${path.join(dir, 'photos', '100000.jpg')}.`;
  for (let run = 0; run < 2; run++) {
    const result = await runCli(['prepare', '--config', config, '-q']);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, '');
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.ok(lines[0].startsWith(expected), lines[0]);
    assert.match(lines[0], /the rejected rows are listed in .*rejects\.jsonl\)\. Nothing was cached\.$/);
  }
  const [key] = readdirSync(path.join(dir, 'cache'));
  const cacheDir = path.join(dir, 'cache', key);
  assert.equal(existsSync(path.join(cacheDir, 'manifest.json')), false, 'no manifest: a rerun is not a cache hit');

  const listed = await runCli(['inspect', '--config', config, '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  const cache = (JSON.parse(listed.stdout) as { caches: Listing[] }).caches.find((c) => c.key === key)!;
  assert.equal(cache.status, 'no manifest');
  assert.deepEqual(cache.rejects, { 'missing-image': 12 });
  assert.equal(cache.rejectsFile, path.join(cacheDir, 'rejects.jsonl'));
  const human = await runCli(['inspect', '--config', config]);
  assert.match(human.stdout, /\n {6}rejects: 12 missing-image\n {6}rejected rows: .*rejects\.jsonl/);
});

test("inspect shows a complete cache's rejects by reason and the path of rejects.jsonl", async () => {
  const dir = path.join(root, 'hazards');
  await writeFixture(dir, { good: 32, hazards: true });
  const config = writeFixtureConfig(dir);
  const prepared = await runCli(['prepare', '--config', config, '--json', '-q']);
  assert.equal(prepared.code, 0, prepared.stderr);
  const summary = JSON.parse(prepared.stdout) as { cacheDir: string; rejected: Record<string, number> };
  const listed = JSON.parse((await runCli(['inspect', '--config', config, '--json'])).stdout) as { caches: Listing[] };
  assert.deepEqual(listed.caches[0].rejects, summary.rejected);
  assert.equal(listed.caches[0].rejectsFile, path.join(summary.cacheDir, 'rejects.jsonl'));
  const human = (await runCli(['inspect', '--config', config])).stdout;
  const line = human.split('\n').find((l) => l.trim().startsWith('rejects:'))!;
  const shown = Object.fromEntries(
    line
      .trim()
      .slice('rejects: '.length)
      .split(', ')
      .map((part) => [part.split(' ')[1], Number(part.split(' ')[0])]),
  );
  assert.deepEqual(shown, summary.rejected);
});

async function preparedCache(name: string): Promise<{ config: string; cacheDir: string }> {
  const dir = path.join(root, name);
  await writeFixture(dir, { good: 20 });
  const config = writeFixtureConfig(dir);
  const result = await runCli(['prepare', '--config', config, '--json', '-q']);
  assert.equal(result.code, 0, result.stderr);
  return { config, cacheDir: (JSON.parse(result.stdout) as { cacheDir: string }).cacheDir };
}

test('an edited manifest is refused with a clear message (prepare and training); --force rebuilds it', async () => {
  const { config, cacheDir } = await preparedCache('edited');
  const file = path.join(cacheDir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(file, 'utf8'));
  assert.match(manifest.checksum, /^sha256:[0-9a-f]{64}$/);
  const original = readFileSync(file);
  manifest.shards[0].count += 1;
  writeFileSync(file, JSON.stringify(manifest, null, 2));
  const message = `galactic: cache manifest ${file} is unreadable (its checksum does not match its content: it was edited or damaged after galactic wrote it). Run 'galactic prepare --force' to rebuild the cache.\n`;
  const refused = await runCli(['prepare', '--config', config, '-q']);
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr, message);
  assert.throws(() => readManifest(cacheDir), /its checksum does not match its content/);
  const inspected = JSON.parse((await runCli(['inspect', '--config', config, '--json'])).stdout) as {
    caches: Listing[];
  };
  assert.equal(inspected.caches[0].status, 'unreadable');
  assert.match(inspected.caches[0].problem!, /checksum does not match/);

  // an old manifest without a checksum is not trusted either
  const { checksum: _drop, ...unsealed } = JSON.parse(original.toString());
  writeFileSync(file, JSON.stringify(unsealed));
  assert.match(
    (await runCli(['prepare', '--config', config, '-q'])).stderr,
    /it carries no checksum, so its counts cannot be trusted/,
  );

  const forced = await runCli(['prepare', '--config', config, '--force', '--json', '-q']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(readManifest(cacheDir).shards[0].count, JSON.parse(original.toString()).shards[0].count);
  assert.deepEqual(readFileSync(path.join(cacheDir, 'rejects.jsonl')), Buffer.alloc(0));
});

test('a shard whose size changed is no cache hit: prepare says so and rebuilds; the result equals the original', async () => {
  const { config, cacheDir } = await preparedCache('truncated');
  const shard = path.join(cacheDir, 'shard-00001.msgpack');
  const before = readFileSync(shard);
  truncateSync(shard, before.length - 10);
  const result = await runCli(['prepare', '--config', config, '--json']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal((JSON.parse(result.stdout) as { cacheHit: boolean }).cacheHit, false);
  assert.ok(
    result.stderr.includes(
      `the cache at ${cacheDir} does not match its manifest (shard-00001.msgpack has ${before.length - 10} bytes, the manifest says ${before.length}): it was damaged or edited; rebuilding it`,
    ),
    result.stderr,
  );
  assert.deepEqual(readFileSync(shard), before);
});

test('inspect --verify reads every shard: a same-size change fails with the shard named and exit 1; an intact cache passes', async () => {
  const { config, cacheDir } = await preparedCache('flipped');
  const ok = await runCli(['inspect', '--config', config, '--verify']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /verified [0-9a-f]{16}: 3 shard\(s\), every size and checksum matches/);

  const shard = path.join(cacheDir, 'shard-00001.msgpack');
  const bytes = readFileSync(shard);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(shard, bytes);
  // the cheap checks of a cache hit cannot see a same-size change...
  assert.equal(
    (JSON.parse((await runCli(['prepare', '--config', config, '--json', '-q'])).stdout) as { cacheHit: boolean })
      .cacheHit,
    true,
  );
  // ...--verify does
  const bad = await runCli(['inspect', '--config', config, '--verify', '--json']);
  assert.equal(bad.code, 1);
  const report = JSON.parse(bad.stdout) as { verified: Record<string, { shards: number; problems: string[] }> };
  const [result] = Object.values(report.verified);
  assert.deepEqual(result, {
    shards: 3,
    problems: [
      `cache shard ${shard} is corrupt (file checksum mismatch). Run 'galactic prepare --force' to rebuild the cache.`,
    ],
  });
  assert.match(bad.stderr, /^galactic: cache verification failed for [0-9a-f]{16} /);
});
