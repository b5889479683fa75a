import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { validateConfig } from '../src/config/load.ts';
import { NO_DATA, planComponents, planMemory, MemoryPlanError, type DataFacts } from '../src/memory/plan.ts';
import { refusePhases, refuseResume, trialRefusal } from '../src/memory/refusals.ts';
import { runCli } from './support/run-cli.ts';

const MiB = 1024 * 1024;
const config = (over: Record<string, Record<string, unknown>> = {}) =>
  validateConfig(
    {
      data: { csv: '/nonexistent/x.csv', imageDir: '/nonexistent/img', ...over.data },
      ...Object.fromEntries(Object.entries(over).filter(([k]) => k !== 'data')),
    },
    'inline',
    '/tmp',
  );
const plan = (over: Record<string, Record<string, unknown>> = {}, facts: DataFacts = NO_DATA, cpus = 2) =>
  planMemory(config(over), facts, { cpus });
const refusal = (fn: () => void): MemoryPlanError => {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof MemoryPlanError, String(error));
    return error;
  }
  assert.fail('expected a refusal');
};

test('at 8 GB both phases fit, every reserve is shown, and the peak is the larger phase', () => {
  const p = plan({ memory: { limitMB: 8192 } });
  refusePhases(config({ memory: { limitMB: 8192 } }), p);
  assert.ok(p.totalBytes <= p.limitBytes);
  const components = planComponents(p);
  for (const phase of ['prepare', 'train'] as const) {
    const shown = components.filter((c) => c.phase === null || c.phase === phase).reduce((s, c) => s + c.bytes, 0);
    assert.equal(shown, p[phase].totalBytes, `${phase}: the rows shown add up to the phase`);
  }
  assert.ok(p.train.totalBytes > p.prepare.totalBytes, 'training is the larger phase at the defaults');
  assert.equal(p.totalBytes, p.train.totalBytes);
});

test('the documented plan (docs/prepare.md, "Measured"): 1024 MB, 128x128x3 uint8 records, 2 cores', () => {
  const p = plan({ memory: { limitMB: 1024 } });
  assert.deepEqual(
    {
      decodeConcurrency: p.decodeConcurrency,
      sharpThreads: p.sharpThreads,
      shardImages: p.shardImages,
      permits: p.permits,
      recordBytes: p.recordBytes,
      prefetchBatches: p.prefetchBatches,
      heapMB: p.heapMB,
    },
    {
      // one decode per core plus one (bench/README.md, start-up); the "Measured" runs predate it (2, 694)
      decodeConcurrency: 3,
      sharpThreads: 1,
      shardImages: 341,
      permits: 696,
      recordBytes: 49_152,
      prefetchBatches: 2,
      heapMB: 96,
    },
  );
  assert.equal(
    plan({ memory: { limitMB: 8192 } }).shuffleBufferRecords,
    20_000,
    'the auto shuffle buffer at its ceiling',
  );
});

test('the plan at each limit fits under it, and doubling the limit never lowers a capacity', () => {
  const capacities = (p: ReturnType<typeof plan>) => ({
    decodeConcurrency: p.decodeConcurrency,
    shardImages: p.shardImages,
    permits: p.permits,
    orderSlots: p.orderSlots,
    shuffleBufferRecords: p.shuffleBufferRecords,
    prefetchBatches: p.prefetchBatches,
  });
  const million = { csvRows: 1_000_000, csvBytes: 15_000_000, mappingRows: 0, mappingBytes: 0 };
  for (const image of [32, 128]) {
    for (const facts of [NO_DATA, million]) {
      for (let limitMB = 512; limitMB <= 16_384; limitMB *= 2) {
        const over = { image: { width: image, height: image }, memory: { limitMB } };
        const p = plan(over, facts);
        for (const phase of ['prepare', 'train'] as const) {
          let fits = true;
          try {
            refusePhases(config(over), p, [phase]);
          } catch {
            fits = false;
          }
          if (fits) assert.ok(p[phase].totalBytes <= p.limitBytes, `${image}px at ${limitMB} MB: ${phase} fits`);
        }
        if (limitMB >= 2048) refusePhases(config(over), p); // both phases fit from 2 GB on
        const doubled = capacities(plan({ ...over, memory: { limitMB: 2 * limitMB } }, facts));
        for (const [name, value] of Object.entries(capacities(p))) {
          const more = doubled[name as keyof typeof doubled];
          assert.ok(more >= value, `${image}px: ${name} ${value} at ${limitMB} MB, ${more} at twice that`);
        }
        // the records a shard holds stay in flight until it is flushed: the permits cover two shards
        assert.ok(p.permits > 2 * p.shardImages);
      }
    }
  }
});

test('the threaded wasm pool is reserved only when wasm may run on more than one thread', () => {
  assert.ok(plan({ memory: { limitMB: 2048 } }, NO_DATA, 2).train.wasmPool);
  assert.equal(plan({ memory: { limitMB: 2048 } }, NO_DATA, 1).train.wasmPool, null);
  assert.equal(plan({ memory: { limitMB: 2048 }, threads: 1 as never }, NO_DATA, 2).train.wasmPool, null);
  assert.equal(plan({ memory: { limitMB: 2048 }, backend: 'cpu' as never }, NO_DATA, 2).train.wasmPool, null);
});

test('a smaller budget shrinks the auto knobs and still fits', () => {
  const big = plan({ memory: { limitMB: 8192 } });
  const small = plan({ memory: { limitMB: 2048 } });
  assert.ok(small.totalBytes <= 2048 * MiB);
  assert.ok(small.shuffleBufferRecords < big.shuffleBufferRecords);
});

test('fixed knobs are honoured', () => {
  const p = plan({
    cache: { shardImages: 100 },
    memory: { limitMB: 4096, decodeConcurrency: 3 },
    feed: { shuffleBuffer: 500, prefetch: 4 },
  });
  assert.deepEqual([p.shardImages, p.decodeConcurrency, p.shuffleBufferRecords, p.prefetchBatches], [100, 3, 500, 4]);
});

test('the id tables grow with the rows the data has, and the plan reserves them', () => {
  const few = plan(
    { memory: { limitMB: 1024 } },
    { csvRows: 2_000, csvBytes: 30_000, mappingRows: 0, mappingBytes: 0 },
  );
  const many = plan(
    { memory: { limitMB: 1024 } },
    { csvRows: 1_000_000, csvBytes: 15_000_000, mappingRows: 0, mappingBytes: 0 },
  );
  assert.equal(many.prepare.seenIds.entries, 1_000_000);
  assert.ok(many.prepare.seenIds.bytes > few.prepare.seenIds.bytes);
  assert.ok(many.prepare.seenIds.bytes < 64 * MiB, `${many.prepare.seenIds.bytes / MiB} MB for a million short ids`);
  const gz2 = plan(
    { data: { layout: 'gz2', mappingCsv: '/nonexistent/m.csv' } },
    { csvRows: 240_000, csvBytes: 200 * MiB, mappingRows: 355_990, mappingBytes: 12 * MiB },
  );
  assert.equal(gz2.prepare.mapping?.objects.entries, 355_990);
  assert.ok(gz2.prepare.mapping!.objects.bytes + gz2.prepare.mapping!.images.bytes < 64 * MiB);
});

test('impossible configs are refused, naming the knob to turn', () => {
  const tiny = config({ memory: { limitMB: 64 } });
  let error = refusal(() => refusePhases(tiny, planMemory(tiny, NO_DATA, { cpus: 2 }), ['prepare']));
  assert.equal(error.knob, 'memory.limitMB');
  assert.match(
    error.message,
    /^memory plan does not fit: memory\.limitMB is 64 but in the prepare phase .* Raise memory\.limitMB to at least \d+ \(or choose a smaller image size\)\.$/,
  );
  const shards = config({ cache: { shardImages: 100_000 }, memory: { limitMB: 2048 } });
  error = refusal(() => refusePhases(shards, planMemory(shards, NO_DATA, { cpus: 2 }), ['prepare']));
  assert.equal(error.knob, 'cache.shardImages');
  assert.match(error.message, /a shard of 100000 x 49152 B images .* Set cache\.shardImages to at most \d+ or "auto"/);
  const shuffle = config({ feed: { shuffleBuffer: 40_000 }, memory: { limitMB: 2048 } });
  error = refusal(() => refusePhases(shuffle, planMemory(shuffle, NO_DATA, { cpus: 2 }), ['train']));
  assert.equal(error.knob, 'feed.shuffleBuffer');
  assert.match(
    error.message,
    /in the train phase the phase needs \d+ MB\. Lower feed\.shuffleBuffer \(or set it to "auto"\), or raise memory\.limitMB to at least \d+\./,
  );
});

test('the minimum a refusal names is the fixed point: the plan at that limit fits, one MB less does not, and the message says it once', () => {
  for (const image of [16, 32, 128]) {
    for (const facts of [NO_DATA, { csvRows: 1_000_000, csvBytes: 10_000_000, mappingRows: 0, mappingBytes: 0 }]) {
      const at = (limitMB: number) => config({ image: { width: image, height: image }, memory: { limitMB } });
      const error = refusal(() => refusePhases(at(100), planMemory(at(100), facts, { cpus: 2 }), ['prepare']));
      const minimum = Number(/Raise memory\.limitMB to at least (\d+)/.exec(error.message)?.[1]);
      assert.equal(error.message.match(/memory\.limitMB to at least/g)?.length, 1);
      assert.doesNotMatch(error.message, /Lower memory\.limitMB/);
      assert.doesNotThrow(
        () => refusePhases(at(minimum), planMemory(at(minimum), facts, { cpus: 2 }), ['prepare']),
        `${image}px: ${minimum} MB fits`,
      );
      const below = refusal(() =>
        refusePhases(at(minimum - 1), planMemory(at(minimum - 1), facts, { cpus: 2 }), ['prepare']),
      );
      assert.match(
        below.message,
        new RegExp(`Raise memory\\.limitMB to at least ${minimum} `),
        'the same minimum from just below',
      );
      assert.ok(planMemory(at(minimum), facts, { cpus: 2 }).prepare.totalBytes <= minimum * MiB);
    }
  }
});

test("the notebook's model does not fit 1024 MB for training, but prepare alone does", () => {
  const tight = config({ memory: { limitMB: 1024 } });
  const p = planMemory(tight, NO_DATA, { cpus: 2 });
  refusePhases(tight, p, ['prepare']);
  const error = refusal(() => refusePhases(tight, p, ['train']));
  assert.equal(error.knob, 'memory.limitMB');
  assert.match(
    error.message,
    /memory\.limitMB is 1024 but in the train phase the runtime, tfjs and the model alone need \d+ MB .* Raise memory\.limitMB to at least \d+ \(or choose a smaller train\.batchSize, image size or model\)/,
  );
  assert.ok(p.train.totalBytes > 1024 * MiB, 'the train phase is still sized and shown');
  assert.ok(p.train.model.bytes > 1000 * MiB && p.train.model.bytes < 1500 * MiB, `${p.train.model.bytes / MiB} MB`);
});

test('a trial over the limit is refused by the plan, one under it is not', () => {
  const p = plan({ memory: { limitMB: 500 } });
  assert.equal(
    trialRefusal(p, { totalBytes: 900 * MiB, totalMB: 900 }),
    'estimated peak 900 MB exceeds memory.limitMB 500',
  );
  assert.equal(trialRefusal(p, { totalBytes: 400 * MiB, totalMB: 400 }), null);
});

test('resuming shards bigger than the plan holds is refused with the limit that would hold them', () => {
  const at = (limitMB: number) => config({ image: { width: 32, height: 32 }, memory: { limitMB } });
  const low = at(300);
  const p = planMemory(low, NO_DATA, { cpus: 2 });
  assert.doesNotThrow(() => refuseResume(low, p, '/c', p.shardImages));
  const oldShards = p.shardImages + 1000;
  const error = refusal(() => refuseResume(low, p, '/c', oldShards));
  const named = (message: string) =>
    Number(/Raise memory\.limitMB to at least (\d+) to resume it, or run prepare with --force/.exec(message)?.[1]);
  const minimum = named(error.message);
  assert.ok(minimum > 300);
  // the fixed point: at the minimum the resume goes ahead and its phase fits; one MB less is refused, same minimum
  const there = planMemory(at(minimum), NO_DATA, { cpus: 2 });
  assert.doesNotThrow(() => refuseResume(at(minimum), there, '/c', oldShards));
  assert.doesNotThrow(() => refusePhases(at(minimum), there, ['prepare']));
  const below = planMemory(at(minimum - 1), NO_DATA, { cpus: 2 });
  assert.equal(named(refusal(() => refuseResume(at(minimum - 1), below, '/c', oldShards)).message), minimum);
});

test('galactic plan prints the table on stdout (also with --quiet), --json only the plan object; prepare refuses an impossible plan before any work', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'galactic-plan-'));
  const file = path.join(dir, 'c.json');
  writeFileSync(
    file,
    JSON.stringify({ data: { csv: 'x.csv', imageDir: 'img' }, cache: { dir: 'cache' }, memory: { limitMB: 2048 } }),
  );
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
  const p = JSON.parse(json.stdout) as {
    limitMB: number;
    permits: number;
    components: unknown[];
    prepare: { totalBytes: number };
    train: { totalBytes: number };
  };
  assert.equal(p.limitMB, 2048);
  assert.ok(p.prepare.totalBytes > 0 && p.train.totalBytes > 0);
  assert.ok(p.permits > 0 && p.components.length > 0);

  writeFileSync(
    file,
    JSON.stringify({ data: { csv: 'x.csv', imageDir: 'img' }, cache: { dir: 'cache' }, memory: { limitMB: 64 } }),
  );
  for (const command of ['plan', 'prepare']) {
    const refused = await runCli([command, '--config', file]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^galactic: memory plan does not fit: memory\.limitMB is 64/m);
    assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
  }
  assert.equal(existsSync(path.join(dir, 'cache')), false, 'nothing was created');
});
