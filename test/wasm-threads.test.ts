import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { resolveWasmThreads } from '../src/core/thread-count.ts';

/** Each thread count needs its own process: the wasm backend's pool is fixed when it initialises. */
function trainStep(threads: string, cpus?: number): { threads: number; reason: string; weights: number[][] } {
  const child = fileURLToPath(new URL('./support/wasm-threads-child.ts', import.meta.url));
  const args = cpus === undefined ? [threads] : [threads, String(cpus)];
  const result = spawnSync(process.execPath, ['--import', 'tsx', child, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(
    result.signal,
    null,
    `the child with ${threads} thread(s) did not exit by itself (a pthread worker kept it alive?)`,
  );
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout);
}

test('the wasm backend runs XNNPACK on the requested threads, and the process still exits on its own', () => {
  const one = trainStep('1');
  const two = trainStep('2');
  assert.equal(one.threads, 1);
  assert.equal(two.threads, 2);
  assert.match(two.reason, /2 threads/);
  // Threads split output tiles, never a sum, so the step is the same to the last bit.
  assert.deepEqual(two.weights, one.weights);
});

test("threads 'auto' gives one thread per core, at most the build's pool of 8; a fixed count is taken as it is", () => {
  assert.deepEqual(
    [1, 2, 3, 8, 12, 64].map((cores) => resolveWasmThreads('auto', cores)),
    [1, 2, 3, 8, 8, 8],
  );
  assert.deepEqual(
    [1, 3, 8, 9].map((threads) => resolveWasmThreads(threads, 2)),
    [1, 3, 8, 8],
  );
});

test("the backend sizes threads 'auto' from the cores it counts: 3 cores, 3 threads", () => {
  const auto = trainStep('auto', 3);
  assert.equal(auto.threads, 3);
  assert.match(auto.reason, /3 threads/);
});
