import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config/load.ts';
import { resolveCacheDir } from '../src/cache/key.ts';
import { writeFixture, writeFixtureConfig } from './support/prepare-fixture.ts';
import { cliPath, runCli } from './support/run-cli.ts';

/** Runs `prepare` in a child and SIGKILLs it as soon as `when` holds for the cache folder. */
function prepareKilledWhen(
  configFile: string,
  cacheDir: string,
  when: (files: string[]) => boolean,
): Promise<{ killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, 'prepare', '--config', configFile, '-q'], { stdio: 'ignore' });
    let killed = false;
    const poll = setInterval(() => {
      let files: string[] = [];
      try {
        files = readdirSync(cacheDir);
      } catch {
        return;
      }
      if (when(files)) {
        killed = child.kill('SIGKILL');
        clearInterval(poll);
      }
    }, 1);
    child.on('error', reject);
    child.on('exit', () => {
      clearInterval(poll);
      resolve({ killed });
    });
  });
}

function cacheFiles(cacheDir: string): Record<string, Buffer> {
  return Object.fromEntries(
    readdirSync(cacheDir)
      .sort()
      .filter((f) => f !== 'manifest.json')
      .map((f) => [f, readFileSync(path.join(cacheDir, f))]),
  );
}

function manifestWithoutTimes(cacheDir: string): unknown {
  const {
    createdAt: _c,
    updatedAt: _u,
    checksum: _s,
    ...rest
  } = JSON.parse(readFileSync(path.join(cacheDir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  return rest;
}

test('SIGKILL at several points, then resume: shards byte-identical to an uninterrupted run, manifest equal apart from timestamps', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'galactic-resume-'));
  await writeFixture(dir, { good: 100, hazards: true });
  const cleanFile = writeFixtureConfig(dir, { cache: { dir: 'clean', shardImages: 6 } });
  const clean = await runCli(['prepare', '--config', cleanFile, '--json', '-q']);
  assert.equal(clean.code, 0, clean.stderr);
  const cleanDir = (JSON.parse(clean.stdout) as { cacheDir: string }).cacheDir;

  const configFile = writeFixtureConfig(dir, { cache: { dir: 'killed', shardImages: 6 } });
  const cacheDir = resolveCacheDir(loadConfig(configFile));
  assert.equal(path.basename(cacheDir), path.basename(cleanDir), 'same inputs, same key');
  const shardsIn = (files: string[]) => files.filter((f) => /^shard-\d+\.msgpack$/.test(f)).length;
  const kills = [
    (files: string[]) => shardsIn(files) >= 1, // the first shard just renamed (manifest may still be the old one)
    (files: string[]) => files.some((f) => f.endsWith('.tmp')), // mid-write of a temp file
    (files: string[]) => shardsIn(files) >= 10,
    (files: string[]) => shardsIn(files) >= 14,
  ];
  let killedCount = 0;
  for (const when of kills) {
    const { killed } = await prepareKilledWhen(configFile, cacheDir, when);
    if (killed) killedCount++;
  }
  assert.ok(killedCount >= 2, `at least two runs were really killed mid-way (${killedCount})`);
  const partial = JSON.parse(readFileSync(path.join(cacheDir, 'manifest.json'), 'utf8')) as { complete: boolean };
  if (killedCount === kills.length) assert.equal(partial.complete, false);

  const final = await runCli(['prepare', '--config', configFile, '--json']);
  assert.equal(final.code, 0, final.stderr);
  const summary = JSON.parse(final.stdout) as { cacheHit: boolean; images: number };
  if (!partial.complete) assert.match(final.stderr, /resuming .* after row \d+/);
  assert.equal(existsSync(path.join(cacheDir, 'manifest.json')), true);
  assert.deepEqual(
    readdirSync(cacheDir).filter((f) => f.endsWith('.tmp')),
    [],
    'stale temp files removed',
  );
  const expected = cacheFiles(cleanDir);
  const actual = cacheFiles(cacheDir);
  assert.deepEqual(Object.keys(actual), Object.keys(expected));
  for (const file of Object.keys(expected)) assert.ok(actual[file].equals(expected[file]), `${file} is byte-identical`);
  assert.deepEqual(manifestWithoutTimes(cacheDir), manifestWithoutTimes(cleanDir));
  assert.ok(summary.images > 0);
});
