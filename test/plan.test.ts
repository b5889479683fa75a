import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { validateConfig } from '../src/config/load.ts';
import { planMemory, MemoryPlanError, recordBytes } from '../src/memory/plan.ts';
import { runCli } from './support/run-cli.ts';

const MiB = 1024 * 1024;
const config = (over: Record<string, Record<string, unknown>> = {}) => validateConfig({
  data: { csv: '/nonexistent/x.csv', imageDir: '/nonexistent/img', ...over.data },
  ...Object.fromEntries(Object.entries(over).filter(([k]) => k !== 'data')),
}, 'inline', '/tmp');

test('the plan sizes every buffer from the budget; each phase sums its components and the peak is the larger one', () => {
  const plan = planMemory(config({ memory: { limitMB: 8192 } }), { cpus: 2 });
  assert.equal(plan.limitBytes, 8192 * MiB);
  const phaseSum = (phase: string) => plan.components.filter((c) => !c.phase || c.phase === phase).reduce((s, c) => s + c.bytes, 0);
  assert.equal(plan.phaseBytes.prepare, phaseSum('prepare'));
  assert.equal(plan.phaseBytes.train, phaseSum('train'));
  assert.equal(plan.totalBytes, Math.max(plan.phaseBytes.prepare, plan.phaseBytes.train));
  assert.ok(plan.totalBytes <= plan.limitBytes);
  assert.deepEqual(plan.components.map((c) => `${c.phase ?? 'all'}:${c.name}`), [
    'all:runtime', 'prepare:seen ids', 'prepare:image index', 'train:tfjs', 'train:model', 'train:wasm thread pool',
    'prepare:decode', 'prepare:shard buffer', 'prepare:in flight', 'train:feed prefetch', 'train:feed shuffle',
  ]);
  assert.equal(plan.decodeConcurrency, 2);
  assert.equal(plan.sharpThreads, 1);
  // auto shards: about 16 MB of 128x128x3 uint8 records
  assert.equal(plan.shardImages, Math.floor((16 * MiB) / (128 * 128 * 3)));
  assert.equal(plan.permits, 2 * plan.shardImages + 2 * plan.decodeConcurrency + 8);
  assert.equal(plan.batchSize, 32);
  assert.equal(plan.prefetchBatches, 2);
  assert.ok(plan.heapMB >= 96);
});

test('the threaded wasm pool is reserved only when wasm may run on more than one thread', () => {
  const names = (over: Record<string, unknown>, cpus: number) => planMemory(config({ memory: { limitMB: 2048 }, ...over }), { cpus }).components.map((c) => c.name);
  assert.ok(names({}, 2).includes('wasm thread pool'));
  assert.ok(!names({}, 1).includes('wasm thread pool'));
  assert.ok(!names({ threads: 1 }, 2).includes('wasm thread pool'));
  assert.ok(!names({ backend: 'cpu' }, 2).includes('wasm thread pool'));
  assert.equal(planMemory(config({ memory: { limitMB: 2048 } }), { cpus: 2 }).components.find((c) => c.name === 'wasm thread pool')?.bytes, 80 * MiB);
});

test('a smaller budget shrinks the auto knobs and still fits', () => {
  const big = planMemory(config({ memory: { limitMB: 8192 } }), { cpus: 2 });
  const small = planMemory(config({ memory: { limitMB: 2048 } }), { cpus: 2 });
  assert.ok(small.totalBytes <= 2048 * MiB);
  assert.ok(small.shuffleBufferRecords < big.shuffleBufferRecords);
});

test('fixed knobs are honoured', () => {
  const plan = planMemory(config({ cache: { shardImages: 100 }, memory: { limitMB: 4096, decodeConcurrency: 3 }, feed: { shuffleBuffer: 500, prefetch: 4 } }), { cpus: 2 });
  assert.equal(plan.shardImages, 100);
  assert.equal(plan.decodeConcurrency, 3);
  assert.equal(plan.shuffleBufferRecords, 500);
  assert.equal(plan.prefetchBatches, 4);
  assert.equal(plan.components.find((c) => c.name === "shard buffer")!.bytes, 2 * 100 * recordBytes(config()));
});

test('impossible configs are refused, naming the knob to turn', () => {
  assert.throws(() => planMemory(config({ memory: { limitMB: 64 } })), (error: unknown) => {
    assert.ok(error instanceof MemoryPlanError);
    assert.equal(error.knob, 'memory.limitMB');
    assert.match(error.message, /memory\.limitMB is 64 .* Raise memory\.limitMB to at least \d+/);
    return true;
  });
  assert.throws(() => planMemory(config({ cache: { shardImages: 100_000 }, memory: { limitMB: 2048 } })), (error: unknown) => {
    assert.ok(error instanceof MemoryPlanError);
    assert.equal(error.knob, 'cache.shardImages');
    assert.match(error.message, /cache\.shardImages is 100000: .* Set cache\.shardImages to at most \d+ or "auto"/);
    return true;
  });
  assert.throws(() => planMemory(config({ feed: { shuffleBuffer: 40_000 }, memory: { limitMB: 2048 } })), (error: unknown) => {
    assert.ok(error instanceof MemoryPlanError);
    assert.equal(error.knob, 'feed.shuffleBuffer');
    assert.match(error.message, /the train phase needs \d+ MB, \d+ MB over memory\.limitMB 2048\. Lower feed\.shuffleBuffer/);
    return true;
  });
});

test("the notebook's model does not fit 1024 MB for training, but prepare alone does: each caller asks only for its phases", () => {
  const tight = config({ memory: { limitMB: 1024 } });
  assert.throws(() => planMemory(tight, { cpus: 2 }), (error: unknown) => {
    assert.ok(error instanceof MemoryPlanError);
    assert.equal(error.knob, 'memory.limitMB');
    assert.match(error.message, /memory\.limitMB is 1024 but in the train phase the runtime, tfjs and the model alone need \d+ MB .* Raise memory\.limitMB to at least \d+ \(or choose a smaller train\.batchSize, image size or model\)/);
    return true;
  });
  const prepareOnly = planMemory(tight, { cpus: 2, need: ['prepare'] });
  assert.ok(prepareOnly.phaseBytes.prepare <= 1024 * MiB);
  assert.ok(prepareOnly.phaseBytes.train > 1024 * MiB, 'the train phase is still sized and shown');
  // the model line is the tuner's estimate for config.model (the two cannot disagree)
  const model = prepareOnly.components.find((c) => c.name === 'model')!;
  assert.ok(model.bytes > 1000 * MiB && model.bytes < 1500 * MiB, `${model.bytes / MiB} MB`);
});

test('the gz2 mapping is counted in the plan', () => {
  const plan = planMemory(config({ data: { layout: 'gz2', mappingCsv: '/nonexistent/m.csv' } }), { mappingRows: 355_990 });
  const mapping = plan.components.find((c) => c.name === 'gz2 mapping');
  assert.ok(mapping && mapping.bytes === 355_990 * 128);
});

test('galactic plan prints the table on stdout (also with --quiet), --json only the plan object; prepare refuses an impossible plan before any work', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'galactic-plan-'));
  const file = path.join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ data: { csv: 'x.csv', imageDir: 'img' }, cache: { dir: 'cache' }, memory: { limitMB: 2048 } }));
  const human = await runCli(['plan', '--config', file]);
  assert.equal(human.code, 0, human.stderr);
  assert.equal(human.stderr, '');
  assert.match(human.stdout, /^memory plan for .*c\.json \(memory\.limitMB 2048\):\n/);
  assert.match(human.stdout, /feed shuffle .* MB/);
  assert.match(human.stdout, /prepare total .* MB .*\n[\s\S]*train total .* MB/);
  assert.match(human.stdout, /peak \(larger phase\) .* of 2048\.0 MB limit/);
  const quiet = await runCli(['plan', '--config', file, '--quiet']);
  assert.equal(quiet.stdout, human.stdout);
  const json = await runCli(['plan', '--config', file, '--json']);
  const plan = JSON.parse(json.stdout) as { limitMB: number; permits: number; components: unknown[]; phaseBytes: { prepare: number; train: number } };
  assert.equal(plan.limitMB, 2048);
  assert.ok(plan.phaseBytes.prepare > 0 && plan.phaseBytes.train > 0);
  assert.ok(plan.permits > 0 && plan.components.length > 0);

  writeFileSync(file, JSON.stringify({ data: { csv: 'x.csv', imageDir: 'img' }, cache: { dir: 'cache' }, memory: { limitMB: 64 } }));
  for (const command of ['plan', 'prepare']) {
    const refused = await runCli([command, '--config', file]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^galactic: memory plan does not fit: memory\.limitMB is 64/m);
    assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
  }
  assert.equal(existsSync(path.join(dir, 'cache')), false, 'nothing was created');
});
