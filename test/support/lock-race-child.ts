import { existsSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isLock, tryAcquireLock } from '../../src/core/lock.ts';

/**
 * One of several processes racing for the same stale lock, round after round: waits for
 * `<dir>/go-<r>`, tries `<dir>/round-<r>/the.lock` once, writes `held` or `busy` to
 * `<dir>/round-<r>/result-<pid>`, and never releases. It exits only once `<dir>/done` appears: a
 * holder that exited after the last round would leave a slower racer a truly stale lock to take.
 */
const [dir, roundsText] = process.argv.slice(2);
const rounds = Number(roundsText);
const tick = new Int32Array(new SharedArrayBuffer(4));
for (let r = 0; r < rounds; r++) {
  while (!existsSync(path.join(dir, `go-${r}`))) Atomics.wait(tick, 0, 0, 1);
  const attempt = tryAcquireLock(path.join(dir, `round-${r}`, 'the.lock'));
  // whole or not at all: the test reads a result as soon as its name appears
  const temp = path.join(dir, `round-${r}`, `.pending-${process.pid}`);
  writeFileSync(temp, isLock(attempt) ? 'held' : 'busy');
  renameSync(temp, path.join(dir, `round-${r}`, `result-${process.pid}`));
}
while (!existsSync(path.join(dir, 'done'))) Atomics.wait(tick, 0, 0, 1);
