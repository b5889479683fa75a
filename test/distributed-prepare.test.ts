import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliPath, repoRoot, runCli, type CliResult } from './support/run-cli.ts';
import { writeFixture } from './support/prepare-fixture.ts';
import { startRedis, type RedisServer } from './support/redis-server.ts';
import { startWorker, type WorkerProcess } from './support/worker-process.ts';

/**
 * Distributed cache building on a real redis-server (127.0.0.1, a free port): `galactic prepare
 * --queue` as the chief, `galactic worker` processes decoding row ranges into the shared cache.dir,
 * compared file by file with a single-process `galactic prepare` of the same data (the fixture
 * plants every reject reason, duplicate ids included).
 */

const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-distributed-prepare-'));
let redis: RedisServer;
const workers: WorkerProcess[] = [];

/** A config over `data` whose cache folder is `cache`. */
function configFor(data: string, cache: string): string {
  const file = path.join(root, `${data}-${cache}.config.json`);
  writeFileSync(
    file,
    JSON.stringify({
      data: { csv: `${data}/galaxy_df_final.csv`, imageDir: `${data}/images` },
      image: { width: 16, height: 16, channels: 3, fit: 'fill', maxInputPixels: 1_000_000 },
      cache: { dir: cache, shardImages: 8 },
      memory: { limitMB: 2048 },
    }),
  );
  return file;
}

function worker(config: string): WorkerProcess {
  const w = startWorker(['--queue', redis.url, '--config', config, '--lease-seconds', '2']);
  workers.push(w);
  return w;
}

function cacheFolder(cache: string): string {
  const keys = readdirSync(path.join(root, cache)).filter((name) => !name.startsWith('.'));
  assert.equal(keys.length, 1, `one cache in ${cache}: ${keys.join(', ')}`);
  return path.join(root, cache, keys[0]);
}

function manifestWithoutTimes(dir: string): unknown {
  const {
    createdAt: _c,
    updatedAt: _u,
    checksum: _s,
    ...rest
  } = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  return rest;
}

/** Every file of the two caches byte-identical, the manifest apart from its timestamps and their checksum. */
function assertSameCache(actual: string, expected: string): void {
  const files = (dir: string) =>
    readdirSync(dir)
      .filter((f) => f !== 'prepare.lock')
      .sort();
  assert.deepEqual(files(actual), files(expected));
  for (const file of files(expected)) {
    if (file === 'manifest.json') continue;
    assert.ok(
      readFileSync(path.join(actual, file)).equals(readFileSync(path.join(expected, file))),
      `${file} is byte-identical`,
    );
  }
  assert.deepEqual(manifestWithoutTimes(actual), manifestWithoutTimes(expected));
}

async function singlePrepare(data: string): Promise<string> {
  const single = await runCli(['prepare', '--config', configFor(data, `single-${data}`), '-q']);
  assert.equal(single.code, 0, single.stderr);
  return cacheFolder(`single-${data}`);
}

/** `galactic prepare --queue` running in the background. */
function startChief(
  config: string,
  extra: string[],
): { child: ChildProcess; result: CliResult; exited: Promise<CliResult> } {
  const chief = spawn(process.execPath, [cliPath, 'prepare', '--config', config, '--queue', redis.url, ...extra], {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const result: CliResult = { code: null, stdout: '', stderr: '' };
  chief.stdout.on('data', (d: Buffer) => (result.stdout += d.toString()));
  chief.stderr.on('data', (d: Buffer) => (result.stderr += d.toString()));
  const exited = new Promise<CliResult>((resolve) =>
    chief.on('exit', (code) => {
      result.code = code;
      resolve(result);
    }),
  );
  return { child: chief, result, exited };
}

/** Ranges each worker's stderr says it decoded. */
function rangesOf(w: WorkerProcess): string[] {
  return [...w.stderr().matchAll(/range (rows-\d+-(?:\d+|end)): \d+ images decoded/g)].map((m) => m[1]);
}

before(async () => {
  redis = await startRedis();
  await writeFixture(path.join(root, 'small'), { good: 60, hazards: true });
  // big enough images that a range takes a while to decode
  await writeFixture(path.join(root, 'large'), { good: 400, hazards: true, size: 320 });
});

after(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('galactic prepare --queue with galactic worker', () => {
  it('2 worker processes build the row ranges: every shard, rejects.jsonl and the manifest equal a single-process prepare', async () => {
    const expected = await singlePrepare('small');
    const config = configFor('small', 'shared');
    const pair = [worker(config), worker(config)];
    await Promise.all(pair.map((w) => w.waitFor(/serving the .* cache build [0-9a-f]{16}/)));
    const chief = await runCli(['prepare', '--config', config, '--queue', redis.url, '--range-rows', '10', '--json']);
    assert.equal(chief.code, 0, chief.stderr);
    const summary = JSON.parse(chief.stdout);
    assert.equal(summary.cacheHit, false);
    const actual = cacheFolder('shared');
    assert.equal(summary.cacheDir, actual);
    assertSameCache(actual, expected);
    // 74 rows in ranges of 10: each range decoded by one of the two workers, the parts gone afterwards
    const built = pair.flatMap(rangesOf).sort();
    assert.deepEqual(
      built,
      ['rows-1-10', 'rows-11-20', 'rows-21-30', 'rows-31-40', 'rows-41-50', 'rows-51-60', 'rows-61-70', 'rows-71-end'],
      pair.map((w) => w.stderr()).join('\n'),
    );
    assert.match(chief.stderr, /range rows-1-10: in \(decoded by .+:\d+\)/);
    assert.equal(existsSync(path.join(root, 'shared', '.parts', summary.cacheKey)), false, 'parts removed');

    // a second run is a cache hit, with no work for the workers
    const again = await runCli(['prepare', '--config', config, '--queue', redis.url, '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).cacheHit, true);
    assert.deepEqual(await Promise.all(pair.map((w) => w.stop())), [130, 130]);
  });

  it('a worker SIGKILLed mid-range: its range is decoded again by the other worker, and the cache is still identical', async () => {
    const expected = await singlePrepare('large');
    const config = configFor('large', 'shared-3');
    const doomed = worker(config);
    await doomed.waitFor(/serving the .* cache build/);
    const chief = startChief(config, ['--range-rows', '100000', '--json']);
    // the range's temp file exists only while a worker is writing it: kill the worker then
    const partsRoot = path.join(root, 'shared-3', '.parts');
    await new Promise<void>((resolve, reject) => {
      const poll = setInterval(() => {
        const writing = existsSync(partsRoot)
          ? readdirSync(partsRoot).flatMap((key) => readdirSync(path.join(partsRoot, key)))
          : [];
        if (writing.some((name) => name.endsWith('.tmp'))) {
          clearInterval(poll);
          doomed.child.kill('SIGKILL');
          resolve();
        } else if (chief.result.code !== null || doomed.child.exitCode !== null) {
          clearInterval(poll);
          reject(new Error(`nothing to kill mid-range:\n${doomed.stderr()}\n${chief.result.stderr}`));
        }
      }, 2);
    });
    assert.equal((await doomed.exited).signal, 'SIGKILL');
    assert.deepEqual(rangesOf(doomed), [], 'the killed worker finished no range');
    const rescuer = worker(config);
    const result = await chief.exited;
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(rangesOf(rescuer), ['rows-1-end']);
    assertSameCache(cacheFolder('shared-3'), expected);
    assert.equal(readdirSync(partsRoot).length, 0, "parts (and the killed worker's temp file) removed");
    await rescuer.stop();
  });

  it('the chief SIGKILLed after its first shards: rerun, it resumes the cache with the parts already built, still identical', async () => {
    const expected = await singlePrepare('large'); // a cache hit when the test before ran
    const config = configFor('large', 'shared-4');
    const pair = [worker(config), worker(config)];
    await Promise.all(pair.map((w) => w.waitFor(/serving the .* cache build/)));
    const first = startChief(config, ['--range-rows', '100', '--json']);
    // the manifest appears with the first committed shard: the chief is mid-build then
    await new Promise<void>((resolve, reject) => {
      const poll = setInterval(() => {
        const keys = existsSync(path.join(root, 'shared-4'))
          ? readdirSync(path.join(root, 'shared-4')).filter((name) => !name.startsWith('.'))
          : [];
        if (keys.some((key) => existsSync(path.join(root, 'shared-4', key, 'manifest.json')))) {
          clearInterval(poll);
          resolve();
        } else if (first.result.code !== null) {
          clearInterval(poll);
          reject(new Error(`the chief ended before its first shard:\n${first.result.stderr}`));
        }
      }, 2);
    });
    first.child.kill('SIGKILL');
    await first.exited;
    const manifest = JSON.parse(readFileSync(path.join(cacheFolder('shared-4'), 'manifest.json'), 'utf8'));
    assert.equal(manifest.complete, false, 'killed mid-build');
    const second = await startChief(config, ['--range-rows', '100', '--json']).exited;
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /resuming \S+ after row \d+/);
    assertSameCache(cacheFolder('shared-4'), expected);
    // each range decoded once: the second chief used the parts the first one's workers built
    const built = pair.flatMap(rangesOf).sort();
    assert.deepEqual(built, [...new Set(built)], built.join(', '));
    await Promise.all(pair.map((w) => w.stop()));
  });

  it('refuses a Redis that does not answer, naming the URL, before any work', async () => {
    const config = configFor('small', 'unreachable');
    const chief = await runCli(['prepare', '--config', config, '--queue', 'redis://127.0.0.1:1']);
    assert.equal(chief.code, 1);
    assert.match(
      chief.stderr,
      /galactic: cannot reach Redis at redis:\/\/127\.0\.0\.1:1 \(connect ECONNREFUSED 127\.0\.0\.1:1\)\. Start it .* nothing was changed, and rerunning 'galactic prepare --queue' resumes the build\./,
    );
    assert.doesNotMatch(chief.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(existsSync(path.join(root, 'unreachable')), false, 'no cache folder made');
  });

  it('refuses --limit with --queue as a usage error (the workers find the build by the config cache key)', async () => {
    const result = await runCli([
      'prepare',
      '--config',
      configFor('small', 'limited'),
      '--queue',
      redis.url,
      '--limit',
      '5',
    ]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--limit cannot be combined with --queue: .* Set data\.limit in the config/);
  });

  it('a worker that cannot see the chief’s cache.dir gives its range back and stops, saying so; a worker that can finishes the build', async () => {
    const chiefConfig = configFor('small', 'shared-2');
    const lone = worker(configFor('small', 'elsewhere'));
    await lone.waitFor(/serving the .* cache build/);
    const chief = startChief(chiefConfig, ['--range-rows', '40', '--json']);
    assert.equal((await lone.exited).code, 1, lone.stderr());
    assert.match(
      lone.stderr(),
      /galactic: this worker cannot see the cache folder the chief builds into: chief\.json is missing in \S*elsewhere\S* \(the chief on \S+ uses \S*shared-2\S*\)\. For 'galactic prepare --queue', cache\.dir must be one folder every worker and the chief share/,
    );
    assert.doesNotMatch(lone.stderr(), /\n\s+at /, 'no stack trace');
    const good = worker(chiefConfig);
    const result = await chief.exited;
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(rangesOf(good).sort(), ['rows-1-40', 'rows-41-end']);
    assertSameCache(cacheFolder('shared-2'), cacheFolder('single-small'));
    await good.stop();
  });
});
