import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Worker as NodeWorker, type TransferListItem, type WorkerOptions } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';

/**
 * Lets tfjs-backend-wasm run its threaded XNNPACK build under Node, which tfjs 4.22 refuses
 * (`WASM_HAS_MULTITHREAD_SUPPORT` is hard-wired to false when IS_NODE, tfjs issue #3830).
 * The build itself supports Node's worker_threads; three things stand in its way, each worked
 * around here for the one backend initialisation (`withWasmThreads`):
 *
 *  1. tfjs hands Emscripten its pthread worker as a Blob URL and the main script as a Blob,
 *     which Node's Worker cannot load. `PthreadWorker` starts the same worker source from the
 *     package's `wasm-out/` folder instead and points it at the main script's file.
 *  2. The C++ side caps the pool at `emscripten_num_logical_cores() / 2` (it assumes two
 *     hyper-threads per core), read once from `os.cpus()` while the module initialises: 1 on
 *     a 2-core machine. For that moment `os.cpus()` reports twice the cores wanted.
 *  3. Emscripten refs a worker while its pthread runs; XNNPACK's pool threads never end, so
 *     the process would never exit. The workers are unref'd: they only ever compute for a
 *     synchronous kernel call of the main thread, which is what keeps the process busy.
 */

const require = createRequire(import.meta.url);
const WASM_OUT = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'wasm-out');
const WORKER_SOURCE = path.join(WASM_OUT, 'tfjs-backend-wasm-threaded-simd.worker.js');
const MAIN_SCRIPT = path.join(WASM_OUT, 'tfjs-backend-wasm-threaded-simd.js');

let workerSource: string | null = null;

/** A pthread worker of the threaded build, started from files, never keeping the process alive. */
class PthreadWorker extends NodeWorker {
  constructor(_blobUrl: string | URL, options?: WorkerOptions) {
    // The package stores the source as a template literal; tfjs escapes its newlines the same way.
    workerSource ??= (require(WORKER_SOURCE) as { wasmWorkerContents: string }).wasmWorkerContents.replace(
      /\n/g,
      '\\n',
    );
    super(workerSource, { ...options, eval: true });
    this.unref();
  }

  override ref(): void {
    // See 3. above.
  }

  override postMessage(message: unknown, transfer?: readonly TransferListItem[]): void {
    if (isLoadMessage(message)) message = { ...message, urlOrBlob: MAIN_SCRIPT };
    super.postMessage(message, transfer);
  }
}

function isLoadMessage(message: unknown): message is { cmd: 'load'; urlOrBlob: unknown } {
  return typeof message === 'object' && message !== null && (message as { cmd?: unknown }).cmd === 'load';
}

/**
 * Runs `init`, the one wasm backend initialisation, with the threaded build set up for `threads`
 * threads (call after the package is imported; `init` is `tf.setBackend('wasm')`). The two globals
 * it needs, `globalThis.Worker` (1.) and `os.cpus` (2.), are replaced for that call alone and put
 * back when it settles, also when it fails. Nothing needs them afterwards: the module starts its 8
 * pthread workers while it initialises, and XNNPACK's pool (at most MAX_WASM_THREADS = 8 threads)
 * is created there too, so no worker is constructed later. With threads = 1 it leaves tfjs's own
 * single-threaded choice alone and patches nothing.
 */
export async function withWasmThreads<T>(
  wasm: { setThreadsCount(n: number): void },
  threads: number,
  init: () => Promise<T>,
): Promise<T> {
  if (threads <= 1) {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    return init();
  }
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  const restoreWorker = replaceGlobalWorker();
  const restoreCpus = reportCoresFor(threads);
  try {
    return await init();
  } finally {
    restoreCpus();
    restoreWorker();
  }
}

/**
 * Emscripten's Node glue assigns `global.Worker` and constructs pthread workers from it: it gets
 * PthreadWorker, its own assignment is ignored. Returns the function that puts the original back.
 */
function replaceGlobalWorker(): () => void {
  const original = Object.getOwnPropertyDescriptor(globalThis, 'Worker');
  Object.defineProperty(globalThis, 'Worker', { configurable: true, get: () => PthreadWorker, set: () => {} });
  return () => {
    if (original) Object.defineProperty(globalThis, 'Worker', original);
    else delete (globalThis as { Worker?: unknown }).Worker;
  };
}

/** `os.cpus()` lists at least twice `threads` cores (see 2. above) until the returned function restores it. */
function reportCoresFor(threads: number): () => void {
  const realCpus = os.cpus;
  os.cpus = () => {
    const cores = realCpus();
    const like = cores[0] ?? { model: 'unknown', speed: 0, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } };
    return Array.from({ length: Math.max(threads * 2, cores.length) }, (_, i) => cores[i] ?? like);
  };
  return () => {
    os.cpus = realCpus;
  };
}
