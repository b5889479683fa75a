import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeFixture, writeFixtureConfig, type Fixture } from './support/prepare-fixture.ts';
import { runCli } from './support/run-cli.ts';

/** prepare.lock: one prepare per cache folder; a second one waits, then answers from the first's cache. */

const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-prepare-lock-'));
after(() => rmSync(root, { recursive: true, force: true }));
let fixture: Fixture;
let configFile: string;

before(async () => {
  fixture = await writeFixture(root, { good: 60, hazards: true });
  configFile = writeFixtureConfig(root);
});

const rejectLines = (cacheDir: string) => readFileSync(path.join(cacheDir, 'rejects.jsonl'), 'utf8').trim().split('\n');

describe('prepare lock', () => {
  it('two prepares started together: both exit 0, every reject is written once, the second waits and hits the cache', async () => {
    const [a, b] = await Promise.all([0, 1].map(() => runCli(['prepare', '--config', configFile, '--json'])));
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const summaries = [a, b].map(
      (r) => JSON.parse(r.stdout) as { cacheHit: boolean; cacheDir: string; images: number },
    );
    assert.deepEqual(summaries.map((s) => s.cacheHit).sort(), [false, true], 'one built the cache, the other used it');
    assert.ok(
      [a, b].some((r) => /waiting for another prepare of this cache \(process \d+ on/.test(r.stderr)),
      'the second one said it waits',
    );
    const lines = rejectLines(summaries[0].cacheDir);
    assert.equal(new Set(lines).size, lines.length, 'no reject written twice');
    assert.equal(lines.length, fixture.hazards.filter((h) => h.outcome === 'rejected').length);
    assert.deepEqual(
      readdirSync(summaries[0].cacheDir).filter((f) => f.startsWith('prepare.lock')),
      [],
      'the lock is released',
    );
  });

  it('a lock left by a prepare that died is taken over with a warning and the cache is resumed', async () => {
    const cacheDir = path.join(root, 'cache-stale');
    const config = writeFixtureConfig(root, { cache: { dir: 'cache-stale' } });
    const first = await runCli(['prepare', '--config', config, '--json']);
    const key = (JSON.parse(first.stdout) as { cacheKey: string }).cacheKey;
    rmSync(cacheDir, { recursive: true });
    mkdirSync(path.join(cacheDir, key), { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(
      path.join(cacheDir, key, 'prepare.lock'),
      JSON.stringify({ pid: dead, host: os.hostname(), startedAt: '2026-01-01T00:00:00.000Z' }),
    );
    const rerun = await runCli(['prepare', '--config', config, '--json']);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stderr, new RegExp(`taking over the lock of a prepare that stopped \\(process ${dead}`));
    assert.equal((JSON.parse(rerun.stdout) as { images: number }).images, fixture.accepted.length);
  });

  it('a lock held on another host is refused, naming the holder and the file to delete', async () => {
    const config = writeFixtureConfig(root, { cache: { dir: 'cache-remote' } });
    const first = await runCli(['prepare', '--config', config, '--json']);
    const { cacheDir } = JSON.parse(first.stdout) as { cacheDir: string };
    writeFileSync(
      path.join(cacheDir, 'prepare.lock'),
      JSON.stringify({ pid: 42, host: 'elsewhere.example', startedAt: '2026-01-01T00:00:00.000Z' }),
    );
    const refused = await runCli(['prepare', '--config', config]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      new RegExp(
        `galactic: cache folder ${cacheDir} is being prepared by process 42 on elsewhere.example, started 2026-01-01T00:00:00.000Z\\. If that prepare is no longer running on elsewhere.example, delete ${cacheDir}/prepare\\.lock`,
      ),
    );
    assert.doesNotMatch(refused.stderr, /\n\s+at /);
  });
});
