import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isLock, tryAcquireLock } from '../../src/core/lock.ts';

/**
 * One of several processes racing for the same stale lock, round after round: waits for
 * `<dir>/go-<r>`, tries `<dir>/round-<r>/the.lock` once, writes `held` or `busy` to
 * `<dir>/round-<r>/result-<pid>`, and never releases (the holder stays alive until all rounds end).
 */
const [dir, roundsText] = process.argv.slice(2);
const rounds = Number(roundsText);
const tick = new Int32Array(new SharedArrayBuffer(4));
for (let r = 0; r < rounds; r++) {
  while (!existsSync(path.join(dir, `go-${r}`))) Atomics.wait(tick, 0, 0, 1);
  const attempt = tryAcquireLock(path.join(dir, `round-${r}`, 'the.lock'));
  writeFileSync(path.join(dir, `round-${r}`, `result-${process.pid}`), isLock(attempt) ? 'held' : 'busy');
}
