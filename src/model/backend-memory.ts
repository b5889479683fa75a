import * as tf from '@tensorflow/tfjs';
import type { ProcessMemoryState } from '../memory/trial-estimate.ts';

/**
 * What this process holds now, for a trial estimate made after other work in the same process
 * (earlier trials, the time plan's timed steps): its resident set and the wasm backend's heap,
 * which never shrinks. Callers collect garbage first so that only what is really kept counts.
 */
export function wasmHeapBytes(): number {
  return (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.byteLength ?? 0;
}

export function processMemoryState(): ProcessMemoryState {
  return { rssBytes: process.memoryUsage.rss(), wasmHeapBytes: wasmHeapBytes() };
}
