import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Each thread count needs its own process: the wasm backend's pool is fixed when it initialises. */
function trainStep(threads: string): { threads: number; reason: string; weights: number[][] } {
  const child = fileURLToPath(new URL('./support/wasm-threads-child.ts', import.meta.url));
  const result = spawnSync(process.execPath, ['--import', 'tsx', child, threads], {
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

test("threads 'auto' uses the cores available, within the build's pool of 8", async () => {
  const { availableParallelism } = await import('node:os');
  assert.equal(trainStep('auto').threads, Math.min(8, availableParallelism()));
});
