import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import vm from 'node:vm';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/model/backend.ts';
import { withWasmThreads } from '../src/model/wasm-threads.ts';
import { collectHeap } from '../src/tune/heap-collection.ts';

/**
 * The threaded wasm build needs `globalThis.Worker` and `os.cpus` replaced while it initialises, and
 * the heap collection needs V8's --expose-gc for a moment: each is confined to that moment and
 * undone after it, so nothing else in the process sees a changed global.
 */

const globals = () => ({
  cpus: os.cpus,
  worker: Object.getOwnPropertyDescriptor(globalThis, 'Worker'),
  gc: Object.getOwnPropertyDescriptor(globalThis, 'gc'),
});

test('initialising the threaded wasm backend and collecting the heap leave os.cpus, globalThis.Worker and globalThis.gc exactly as they were', async () => {
  const before = globals();
  const choice = await selectBackend('wasm', undefined, { threads: 2 });
  assert.equal(choice.threads, 2, 'the threaded build initialised');
  collectHeap();
  collectHeap();
  const after = globals();
  assert.equal(after.cpus, before.cpus, 'os.cpus');
  assert.deepEqual(after.worker, before.worker, 'globalThis.Worker');
  assert.deepEqual(after.gc, before.gc, 'globalThis.gc');
  assert.equal(
    vm.runInNewContext('typeof gc'),
    'undefined',
    'a context created afterwards gets no gc: the flag is off',
  );
  // the backend still computes on its threads with the globals back
  const product = tf.tidy(
    () =>
      tf
        .matMul(tf.ones([64, 64]), tf.ones([64, 64]))
        .sum()
        .dataSync()[0],
  );
  assert.equal(product, 64 * 64 * 64);
});

test('the globals the threaded initialisation replaces are restored when it fails', async () => {
  const before = globals();
  let during: { cores: number; worker: unknown } | null = null;
  await assert.rejects(
    withWasmThreads({ setThreadsCount: () => {} }, 4, async () => {
      during = { cores: os.cpus().length, worker: (globalThis as { Worker?: unknown }).Worker };
      throw new Error('the module did not load');
    }),
    /the module did not load/,
  );
  assert.ok(during !== null);
  const seen = during as { cores: number; worker: unknown };
  assert.ok(seen.cores >= 8, `during the initialisation os.cpus() listed ${seen.cores} cores, twice the threads`);
  assert.equal(typeof seen.worker, 'function', 'during the initialisation a Worker class is there');
  const after = globals();
  assert.equal(after.cpus, before.cpus, 'os.cpus');
  assert.deepEqual(after.worker, before.worker, 'globalThis.Worker');
});
