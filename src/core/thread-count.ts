import os from 'node:os';

/**
 * How many XNNPACK threads the wasm backend gets (tfjs-free, so the memory planner can ask too).
 * The threaded build pre-starts a pool of 8 pthread workers, which bounds the count.
 */
export const MAX_WASM_THREADS = 8;

/** 'auto' is every core this process may use, within the build's pool. */
export function resolveWasmThreads(threads: 'auto' | number, cpus: number = os.availableParallelism()): number {
  const wanted = threads === 'auto' ? cpus : threads;
  return Math.max(1, Math.min(MAX_WASM_THREADS, Math.floor(wanted)));
}

/** "1 thread", "2 threads": how the backend reason and `bench train` name the pool. */
export function describeThreads(threads: number): string {
  return `${threads} thread${threads === 1 ? '' : 's'}`;
}
