import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { isLock, tryAcquireLock, type FolderLock } from '../src/core/lock.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-lock-'));
after(() => rmSync(root, { recursive: true, force: true }));
// above Linux's largest possible pid_max (2^22): never a live process, never reused under load
// (a finished child's pid was, once in 60 rounds on a loaded machine)
const deadPid = () => 4_194_305;
const staleLock = (pid: number) => JSON.stringify({ pid, host: os.hostname(), startedAt: '2026-01-01T00:00:00.000Z' });

describe('folder lock', () => {
  it('is held by one process; release frees it, and only its own holder releases it', () => {
    const file = path.join(root, 'one.lock');
    const first = tryAcquireLock(file);
    assert.ok(isLock(first));
    const second = tryAcquireLock(file);
    assert.ok(!isLock(second));
    assert.equal(second.holder.pid, process.pid);
    assert.equal(second.sameHost, true);
    first.release();
    assert.equal(existsSync(file), false);
    const third = tryAcquireLock(file) as FolderLock;
    first.release(); // a second release of the old lock leaves the new one alone
    assert.ok(existsSync(file));
    third.release();
  });

  it('takes over a stale lock (dead pid) or an unreadable one, reporting it', () => {
    for (const content of [staleLock(deadPid()), '']) {
      const file = path.join(root, `stale-${content.length}.lock`);
      writeFileSync(file, content);
      const seen: unknown[] = [];
      const lock = tryAcquireLock(file, { onStaleTakeover: (stale) => seen.push(stale) });
      assert.ok(isLock(lock));
      assert.equal(seen.length, 1);
      assert.equal(JSON.parse(readFileSync(file, 'utf8')).pid, process.pid);
      lock.release();
    }
  });

  it('never takes over a lock held on another host', () => {
    const file = path.join(root, 'remote.lock');
    writeFileSync(
      file,
      JSON.stringify({ pid: deadPid(), host: 'elsewhere.example', startedAt: '2026-01-01T00:00:00.000Z' }),
    );
    const attempt = tryAcquireLock(file);
    assert.ok(!isLock(attempt));
    assert.equal(attempt.sameHost, false);
    assert.equal(attempt.holder.host, 'elsewhere.example');
  });

  it('three processes taking over the same stale lock at once: exactly one holder, every round', async () => {
    const rounds = 60;
    const dir = path.join(root, 'race');
    mkdirSync(dir);
    const stale = staleLock(deadPid());
    for (let r = 0; r < rounds; r++) {
      mkdirSync(path.join(dir, `round-${r}`));
      writeFileSync(path.join(dir, `round-${r}`, 'the.lock'), stale);
    }
    const child = fileURLToPath(new URL('./support/lock-race-child.ts', import.meta.url));
    const racers = [0, 1, 2].map(() =>
      spawn(process.execPath, ['--import', 'tsx', child, dir, String(rounds)], {
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
    );
    const exits = racers.map((p) => new Promise<number | null>((resolve) => p.on('close', resolve)));
    const results = (r: number) => readdirSync(path.join(dir, `round-${r}`)).filter((f) => f.startsWith('result-'));
    const holders: number[] = [];
    for (let r = 0; r < rounds; r++) {
      writeFileSync(path.join(dir, `go-${r}`), '');
      while (results(r).length < 3) await new Promise((resolve) => setTimeout(resolve, 2));
      holders.push(results(r).filter((f) => readFileSync(path.join(dir, `round-${r}`, f), 'utf8') === 'held').length);
    }
    writeFileSync(path.join(dir, 'done'), '');
    assert.deepEqual(await Promise.all(exits), [0, 0, 0]);
    assert.deepEqual(holders, Array(rounds).fill(1), 'holders per round');
    for (let r = 0; r < rounds; r++) {
      assert.deepEqual(
        readdirSync(path.join(dir, `round-${r}`)).filter((f) => !f.startsWith('result-')),
        ['the.lock'],
        'no marker or temp file left',
      );
    }
  });
});
