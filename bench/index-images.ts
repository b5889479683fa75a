/**
 * Existence-check bench: 243,434 empty files named like Galaxy Zoo 2's images (random order of
 * creation, like the extracted zip), indexed once by ImageIndex (streaming fs.opendir into a
 * sorted packed buffer). Reports time and memory, against a plain Set<string> of the same names.
 *
 *   node --expose-gc --import tsx bench/index-images.ts [dir] [count]
 */
import { mkdirSync, existsSync, readdirSync, closeSync, openSync } from 'node:fs';
import path from 'node:path';
import { opendir } from 'node:fs/promises';
import { ImageIndex } from '../src/ingest/image-index.ts';

const dir = process.argv[2] ?? '/tmp/galactic-bench/index-243k';
const count = Number(process.argv[3] ?? 243_434);
const gc = (globalThis as { gc?: () => void }).gc;

if (!existsSync(dir) || readdirSync(dir).length !== count) {
  mkdirSync(dir, { recursive: true });
  const started = performance.now();
  for (let i = 0; i < count; i++) closeSync(openSync(path.join(dir, `${((i * 7919) % 1_000_000) + 1}.jpg`), 'w'));
  console.error(`created ${count} empty files in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

function memory(): { heap: number; rss: number; external: number } {
  gc?.();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss, external: m.external + m.arrayBuffers };
}
const mb = (b: number) => (b / 1048576).toFixed(1);

const before = memory();
let started = performance.now();
const index = await ImageIndex.build(dir, '{id}.jpg');
const seconds = (performance.now() - started) / 1000;
const after = memory();
started = performance.now();
let hits = 0;
for (let i = 0; i < count; i++) if (index.has(`${((i * 7919) % 1_000_000) + 1}.jpg`)) hits++;
const lookupSeconds = (performance.now() - started) / 1000;
console.log(
  `ImageIndex: ${index.size} names in ${seconds.toFixed(2)} s; index ${mb(index.bytes)} MB; heap +${mb(after.heap - before.heap)} MB, RSS +${mb(after.rss - before.rss)} MB; ${count} lookups in ${lookupSeconds.toFixed(2)} s (${hits} hits)`,
);

const setBefore = memory();
started = performance.now();
const names = new Set<string>();
for await (const entry of await opendir(dir, { bufferSize: 256 })) names.add(entry.name);
const setSeconds = (performance.now() - started) / 1000;
const setAfter = memory();
console.log(
  `Set<string> for comparison: ${names.size} names in ${setSeconds.toFixed(2)} s; heap +${mb(setAfter.heap - setBefore.heap)} MB`,
);
console.log(
  JSON.stringify({
    entries: index.size,
    seconds,
    indexMB: index.bytes / 1048576,
    heapDeltaMB: (after.heap - before.heap) / 1048576,
    rssDeltaMB: (after.rss - before.rss) / 1048576,
    lookupSeconds,
    setHeapMB: (setAfter.heap - setBefore.heap) / 1048576,
  }),
);
started = performance.now();
let setHits = 0;
for (let i = 0; i < count; i++) if (names.has(`${((i * 7919) % 1_000_000) + 1}.jpg`)) setHits++;
console.log(`Set<string> lookups: ${setHits} in ${((performance.now() - started) / 1000).toFixed(2)} s`);
