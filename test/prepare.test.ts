import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, existsSync, statSync, cpSync, rmSync } from 'node:fs';
import os from 'node:os';
import { Writable } from 'node:stream';
import path from 'node:path';
import { loadConfig, type LoadedConfig } from '../src/config/load.ts';
import { Output } from '../src/core/console.ts';
import { runPrepare, CacheDirNotWritableError } from '../src/prepare/run-prepare.ts';
import { prepareProgressTotal } from '../src/prepare/progress-total.ts';
import { readManifest } from '../src/cache/manifest.ts';
import { readShard } from '../src/cache/reader.ts';
import { resolveCacheDir } from '../src/cache/key.ts';
import { CsvNotFoundError, CsvColumnsError } from '../src/ingest/csv-source.ts';
import { ImageDirNotFoundError } from '../src/ingest/image-index.ts';
import { FileWriteError, writeAndSync } from '../src/core/atomic-file.ts';
import { writeFixture, writeFixtureConfig, type Fixture } from './support/prepare-fixture.ts';
import { runCli } from './support/run-cli.ts';

const quiet = new Output({ quiet: true });
let fixture: Fixture;
let configFile: string;

before(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'galactic-prepare-'));
  fixture = await writeFixture(dir, { good: 60, hazards: true });
  configFile = writeFixtureConfig(dir);
});

/** A copy of the fixture config with `overrides`, in the same folder (so it shares the data and cache dir). */
function configWith(
  overrides: Record<string, Record<string, unknown>>,
  name = `c-${Math.random().toString(36).slice(2)}.json`,
): LoadedConfig {
  const raw = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, Record<string, unknown>>;
  for (const [section, values] of Object.entries(overrides)) raw[section] = { ...raw[section], ...values };
  const file = path.join(fixture.dir, name);
  writeFileSync(file, JSON.stringify(raw));
  return loadConfig(file);
}

async function shardIds(cacheDir: string): Promise<string[]> {
  const manifest = readManifest(cacheDir);
  const ids: string[] = [];
  for (const entry of manifest.shards) ids.push(...(await readShard(cacheDir, entry)).ids);
  return ids;
}

function shardBytes(cacheDir: string): Record<string, string> {
  const files = readdirSync(cacheDir)
    .filter((f) => f.endsWith('.msgpack') || f === 'rejects.jsonl')
    .sort();
  return Object.fromEntries(files.map((f) => [f, readFileSync(path.join(cacheDir, f)).toString('base64')]));
}

test('every planted hazard is rejected with its reason, every good record is in the shards exactly once', async () => {
  const config = loadConfig(configFile);
  const summary = await runPrepare(config, { output: quiet, force: true });
  assert.equal(summary.cacheHit, false);
  assert.equal(summary.rows, fixture.rows);
  assert.deepEqual(await shardIds(summary.cacheDir), fixture.accepted);
  const rejects = readFileSync(path.join(summary.cacheDir, 'rejects.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { row: number; id: string; reason: string; detail: string });
  const expected = fixture.hazards.filter((h) => h.outcome === 'rejected');
  assert.deepEqual(
    rejects.map((r) => [r.row, r.id, r.reason]),
    expected.map((h) => [h.row, h.id, h.reason]),
  );
  for (const r of rejects) assert.ok(r.detail.length > 0);
  const counts: Record<string, number> = {};
  for (const h of expected) counts[h.reason!] = (counts[h.reason!] ?? 0) + 1;
  assert.deepEqual(Object.entries(summary.rejected).sort(), Object.entries(counts).sort());
});

test('the manifest carries class counts and per-channel statistics gathered in the same pass', async () => {
  const config = loadConfig(configFile);
  const { cacheDir } = await runPrepare(config, { output: quiet });
  const manifest = readManifest(cacheDir);
  const sums = [0, 0, 0];
  const squares = [0, 0, 0];
  const classCounts = [0, 0, 0];
  let pixels = 0;
  for (const entry of manifest.shards) {
    const shard = await readShard(cacheDir, entry);
    for (const label of shard.labels) classCounts[label]++;
    for (let i = 0; i < shard.data.length; i++) {
      sums[i % 3] += shard.data[i];
      squares[i % 3] += shard.data[i] ** 2;
    }
    pixels += shard.data.length / 3;
  }
  assert.deepEqual(manifest.classCounts, classCounts);
  assert.deepEqual(manifest.classes, ['elliptical', 'spiral', 'artifact']);
  for (let c = 0; c < 3; c++) {
    const mean = sums[c] / pixels;
    assert.ok(Math.abs(manifest.channelStats.mean[c] - mean) < 1e-9);
    assert.ok(Math.abs(manifest.channelStats.std[c] - Math.sqrt(squares[c] / pixels - mean * mean)) < 1e-6);
  }
  assert.equal(manifest.complete, true);
  assert.equal(manifest.resume, undefined);
  assert.equal(manifest.totals.images, fixture.accepted.length);
  assert.equal(resolveCacheDir(config), cacheDir, 'resolveCacheDir names the same cache');
});

test('same inputs again: a cache hit with no decoding; training-only changes keep the key; image size makes a new cache beside', async () => {
  const config = loadConfig(configFile);
  const first = await runPrepare(config, { output: quiet });
  const before = readdirSync(first.cacheDir).map((f) => [f, statSync(path.join(first.cacheDir, f)).mtimeMs]);
  const hit = await runPrepare(config, { output: quiet });
  assert.equal(hit.cacheHit, true);
  assert.equal(hit.cacheDir, first.cacheDir);
  assert.equal(hit.images, first.images);
  assert.equal(hit.imagesPerSecond, 0);
  assert.deepEqual(
    readdirSync(first.cacheDir).map((f) => [f, statSync(path.join(first.cacheDir, f)).mtimeMs]),
    before,
    'nothing rewritten',
  );

  const training = configWith({
    model: { filters: [8, 16, 32] },
    train: { batchSize: 8, epochs: 2 },
    memory: { limitMB: 3000 },
    feed: { normalize: 'standardize' },
    split: { validation: 0.3 },
  });
  const same = await runPrepare(training, { output: quiet });
  assert.equal(same.cacheHit, true);
  assert.equal(same.cacheKey, first.cacheKey);

  const bigger = await runPrepare(configWith({ image: { width: 20 } }), { output: quiet });
  assert.equal(bigger.cacheHit, false);
  assert.notEqual(bigger.cacheKey, first.cacheKey);
  assert.ok(existsSync(path.join(first.cacheDir, 'manifest.json')), 'the old cache stays');
  assert.equal(path.dirname(bigger.cacheDir), path.dirname(first.cacheDir));
});

test('--force rebuilds the same bytes; --limit keeps the first N usable records', async () => {
  const config = loadConfig(configFile);
  const first = await runPrepare(config, { output: quiet });
  const bytes = shardBytes(first.cacheDir);
  // what a crash may leave: a temp file, a shard no manifest lists, a .stale file from the
  // background delete of an earlier run; --force must leave none of them behind
  for (const name of ['shard-00000.msgpack.tmp', 'shard-00099.msgpack', 'shard-00098.msgpack.stale'])
    writeFileSync(path.join(first.cacheDir, name), 'x');
  const forced = await runPrepare(config, { output: quiet, force: true });
  assert.equal(forced.cacheHit, false);
  assert.deepEqual(
    readdirSync(forced.cacheDir).filter((f) => /\.(tmp|stale)$|00099|00098/.test(f)),
    [],
    'stray files removed before prepare returns',
  );
  const rebuilt = shardBytes(forced.cacheDir);
  for (const f of Object.keys({ ...rebuilt, ...bytes }))
    assert.equal(
      Buffer.from(rebuilt[f] ?? '', 'base64').toString(),
      Buffer.from(bytes[f] ?? '', 'base64').toString(),
      `${f} differs after --force`,
    );

  const limited = await runPrepare(config, { output: quiet, limit: 10 });
  assert.notEqual(limited.cacheKey, first.cacheKey);
  assert.equal(limited.images, 10);
  assert.deepEqual(await shardIds(limited.cacheDir), fixture.accepted.slice(0, 10));
  const tenthRow = readFileSync(fixture.csv, 'utf8')
    .split('\n')
    .findIndex((line) => line.startsWith(`${fixture.accepted[9]},`));
  assert.equal(limited.rows, tenthRow, 'rows counts up to the Nth usable record');
});

test('errors that stop a run: missing CSV, missing columns, missing image folder, unwritable cache folder', async () => {
  await assert.rejects(
    runPrepare(configWith({ data: { csv: 'nope.csv' } }), { output: quiet }),
    (e: unknown) => e instanceof CsvNotFoundError && e.message.includes('nope.csv does not exist'),
  );
  await assert.rejects(
    runPrepare(configWith({ data: { labelColumn: 'klass' } }), { output: quiet }),
    (e: unknown) =>
      e instanceof CsvColumnsError &&
      e.message.includes(
        'has no column "klass"; the columns found are: "asset_id", "dr7objid", "gz2class". Set data.labelColumn',
      ),
  );
  await assert.rejects(
    runPrepare(configWith({ data: { imageDir: 'no-images' } }), { output: quiet }),
    (e: unknown) => e instanceof ImageDirNotFoundError && /no-images does not exist/.test(e.message),
  );
  writeFileSync(path.join(fixture.dir, 'a-file'), '');
  await assert.rejects(
    runPrepare(configWith({ cache: { dir: 'a-file/cache' } }), { output: quiet }),
    (e: unknown) =>
      e instanceof CacheDirNotWritableError && /a-file\/cache is not writable \(ENOTDIR\)/.test(e.message),
  );
});

test('disk full during a shard write: one clear error, the last good manifest untouched, the next run resumes', async () => {
  const config = configWith({ cache: { dir: 'cache-enospc' } });
  const clean = await runPrepare(configWith({ cache: { dir: 'cache-enospc-clean' } }), { output: quiet });
  let shardWrites = 0;
  let manifestAtFailure: string | null = null;
  const cacheDir = resolveCacheDir(config);
  await assert.rejects(
    runPrepare(config, {
      output: quiet,
      writeFile: async (file, data) => {
        if (file.includes('shard-') && ++shardWrites === 4) {
          manifestAtFailure = readFileSync(path.join(cacheDir, 'manifest.json'), 'utf8');
          const error = new Error('ENOSPC: no space left on device, write') as NodeJS.ErrnoException;
          error.code = 'ENOSPC';
          throw error;
        }
        await writeAndSync(file, data);
      },
    }),
    (e: unknown) =>
      e instanceof FileWriteError &&
      /could not write .*shard-00003\.msgpack \(ENOSPC\): no space left on the device\..*'galactic prepare' again/.test(
        e.message,
      ),
  );
  assert.equal(
    readFileSync(path.join(cacheDir, 'manifest.json'), 'utf8'),
    manifestAtFailure,
    'manifest untouched by the failure',
  );
  assert.equal(JSON.parse(manifestAtFailure!).shards.length, 3);
  assert.deepEqual(
    readdirSync(cacheDir).filter((f) => f.includes('.tmp')),
    [],
    'no temp file left',
  );
  const resumed = await runPrepare(config, { output: quiet });
  assert.equal(resumed.images, clean.images);
  assert.deepEqual(
    shardBytes(cacheDir),
    shardBytes(clean.cacheDir.replace('cache-enospc-clean', 'cache-enospc-clean')),
  );
});

test('the CLI prints exactly the --json summary on stdout and progress on stderr', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'galactic-prepare-cli-'));
  cpSync(fixture.dir, dir, { recursive: true });
  rmSync(path.join(dir, 'cache'), { recursive: true, force: true });
  const result = await runCli(['prepare', '--config', path.join(dir, 'galactic.config.json'), '--json']);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const summary = JSON.parse(lines[0]) as Record<string, unknown>;
  assert.deepEqual(Object.keys(summary), [
    'cacheKey',
    'cacheDir',
    'cacheHit',
    'rows',
    'images',
    'rejected',
    'shards',
    'seconds',
    'imagesPerSecond',
    'peakRssMB',
    'limitMB',
  ]);
  assert.equal(summary.images, fixture.accepted.length);
  assert.equal(summary.limitMB, 2048);
  assert.ok((summary.peakRssMB as number) > 0);
  assert.match(result.stderr, /memory plan/);
  assert.match(result.stderr, /prepared \d+ images from \d+ rows into \d+ shards/);
  const again = await runCli(['prepare', '--config', path.join(dir, 'galactic.config.json'), '--json', '--limit', '5']);
  assert.equal((JSON.parse(again.stdout) as { images: number }).images, 5);
  const missing = await runCli(['prepare', '--config', path.join(dir, 'galactic.config.json'), '--json'], {
    cwd: dir,
    env: {},
  });
  assert.equal(missing.code, 0);
  assert.equal((JSON.parse(missing.stdout) as { cacheHit: boolean }).cacheHit, true);
  rmSync(path.join(dir, 'galaxy_df_final.csv'));
  const failed = await runCli(['prepare', '--config', path.join(dir, 'galactic.config.json'), '--json']);
  assert.equal(failed.code, 1);
  assert.equal(failed.stdout, '');
  assert.match(failed.stderr, /^galactic: CSV file .*galaxy_df_final\.csv does not exist\. Check data\.csv/m);
  assert.doesNotMatch(failed.stderr, /\n\s+at /);
});

test('with --limit the progress total is the rows the limit needs, not the whole CSV', async () => {
  assert.equal(prepareProgressTotal(300, null, { pulled: 0, accepted: 0, committedRow: 0 }), 300);
  assert.equal(prepareProgressTotal(300, 5, { pulled: 0, accepted: 0, committedRow: 0 }), 5);
  assert.equal(prepareProgressTotal(3, 5, { pulled: 0, accepted: 0, committedRow: 0 }), 3);
  assert.equal(prepareProgressTotal(null, 5, { pulled: 0, accepted: 0, committedRow: 0 }), 5);
  // two rows rejected so far: the bar grows to the rows still needed
  assert.equal(prepareProgressTotal(300, 5, { pulled: 4, accepted: 2, committedRow: 0 }), 7);
  assert.equal(prepareProgressTotal(300, 5, { pulled: 7, accepted: 5, committedRow: 0 }), 7);
  // a resumed run pulls its 10 committed rows again before 3 more records
  assert.equal(prepareProgressTotal(300, 5, { pulled: 0, accepted: 2, committedRow: 10 }), 13);

  let written = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      written += chunk.toString();
      done();
    },
  });
  const config = configWith({ cache: { dir: path.join(fixture.dir, 'cache-progress-limit') } });
  const summary = await runPrepare(config, { output: new Output({ stream, tty: false }), force: true, limit: 5 });
  assert.equal(summary.images, 5);
  const final = written.split('\n').find((line) => line.startsWith('prepare: '));
  assert.ok(final, written);
  // every row pulled to reach 5 records (the fixture's hazards are rejected along the way), and no more
  assert.match(final, new RegExp(`^prepare: ${summary.rows}/${summary.rows} rows `));
  assert.ok(summary.rows < fixture.rows, `${summary.rows} of ${fixture.rows} rows`);
});

test('image.kernel: linear is its own cache (other pixels, same ids); the default lanczos3 leaves the key as it was', async () => {
  const dir = path.join(fixture.dir, 'cache-kernel');
  const lanczos = await runPrepare(configWith({ cache: { dir } }), { output: quiet });
  const linear = await runPrepare(configWith({ cache: { dir }, image: { kernel: 'linear' } }), { output: quiet });
  assert.notEqual(linear.cacheKey, lanczos.cacheKey);
  assert.equal(linear.images, lanczos.images);
  assert.deepEqual(await shardIds(linear.cacheDir), await shardIds(lanczos.cacheDir));
  assert.notDeepEqual(shardBytes(linear.cacheDir), shardBytes(lanczos.cacheDir));
  const inputs = (cacheDir: string) => readManifest(cacheDir).inputs as { image: Record<string, unknown> };
  assert.equal(inputs(linear.cacheDir).image.kernel, 'linear');
  assert.ok(!('kernel' in inputs(lanczos.cacheDir).image), 'caches built before image.kernel existed keep their keys');
  const explicit = await runPrepare(configWith({ cache: { dir }, image: { kernel: 'lanczos3' } }), { output: quiet });
  assert.equal(explicit.cacheKey, lanczos.cacheKey);
  assert.equal(explicit.cacheHit, true);
});
