import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openCsv } from '../src/ingest/csv-source.ts';
import { LabelRules } from '../src/ingest/labels.ts';
import { validateConfig } from '../src/config/load.ts';
import { planMemory } from '../src/memory/plan.ts';
import { measureData } from '../src/ingest/data-facts.ts';
import { StringTable } from '../src/ingest/string-table.ts';
import { PermitPool } from '../src/prepare/permits.ts';
import { RowScreen } from '../src/prepare/row-screen.ts';
import { streamRecords, newProbe, type Outcome, type RecordSink } from '../src/prepare/pipeline.ts';
import { ImageRejection } from '../src/core/reject-reasons.ts';

const ROWS = 200_000;
const ROWS_CEILING = 1_000_000;

/**
 * The end-to-end bound (design principle 1): a 200,000-row CSV through a deliberately slow sink.
 * No images: the existence check and the decoder are injected. At every moment the sink checks
 * that no more records are in flight than the plan's permits, that the decoder never runs more
 * than the planned concurrency, and that the rows read from the file never run ahead of the rows
 * pulled by more than the parser's own buffers.
 */
test('200,000 rows through a slow sink never exceed the planned permits, and reading never runs ahead', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'galactic-bp-'));
  try {
    const csvPath = path.join(dir, 'rows.csv');
    const lines = ['asset_id,gz2class'];
    for (let i = 0; i < ROWS; i++) lines.push(`${100000 + i},${i % 7 === 0 ? 'Xx' : 'Ei'}`);
    writeFileSync(csvPath, `${lines.join('\n')}\n`);

    const config = validateConfig(
      {
        data: { csv: csvPath, imageDir: dir },
        image: { width: 8, height: 8 },
        cache: { shardImages: 500 },
        memory: { limitMB: 1024, decodeConcurrency: 3 },
      },
      'inline',
      dir,
    );
    const plan = planMemory(config, measureData(config));
    const permits = new PermitPool(plan.permits);
    const csv = await openCsv(csvPath, [{ column: 'asset_id', knob: 'data.idColumn' }], config.data.maxRowBytes);
    const screen = new RowScreen({
      data: config.data,
      labels: new LabelRules(config.data.classes),
      hasImage: () => true,
      headerCount: csv.headerCount,
      seen: new StringTable({ entries: ROWS_CEILING, bytes: 64 * 1024 * 1024 }, () => new Error('full')),
    });
    const probe = newProbe();
    const rowBytes = '300000,Ei\n'.length;
    const readAheadBound = csv.bufferRows + Math.ceil(csv.bufferBytes / rowBytes) + 1;
    let maxReadAhead = 0;
    let records = 0;
    let rejects = 0;
    let held = 0;
    let handled = 0;

    const sink: RecordSink = {
      done: false,
      async handle(outcome: Outcome) {
        handled++;
        // instruments, checked at every row
        assert.ok(permits.inFlight <= plan.permits, `in flight ${permits.inFlight} > ${plan.permits}`);
        const readAhead = csv.linesRead() - 1 - probe.pulled; // header line excluded
        maxReadAhead = Math.max(maxReadAhead, readAhead);
        if (outcome.kind === 'reject') {
          rejects++; // its permit came back when it was rejected
          return;
        }
        assert.equal(outcome.kind, 'record');
        records++;
        held++;
        if (held === plan.shardImages) {
          // a slow "flush": the permits of this shard's records come back only afterwards
          await new Promise((resolve) => setTimeout(resolve, 2));
          permits.release(held);
          held = 0;
        }
      },
    };
    await streamRecords({
      source: csv,
      permits,
      orderSlots: new PermitPool(plan.orderSlots),
      screen: (row) => screen.screen(row),
      decode: async () => {
        await new Promise((resolve) => setImmediate(resolve));
        return new Uint8Array(8 * 8 * 3);
      },
      decodeConcurrency: plan.decodeConcurrency,
      sink,
      probe,
    });
    permits.release(held);

    assert.equal(handled, ROWS);
    assert.equal(rejects, Math.ceil(ROWS / 7));
    assert.equal(records, ROWS - rejects);
    assert.ok(permits.maxInFlight <= plan.permits, `max in flight ${permits.maxInFlight} > plan ${plan.permits}`);
    assert.ok(permits.maxInFlight >= plan.shardImages, 'the pipeline did fill a shard before flushing');
    assert.ok(
      probe.maxDecoding <= plan.decodeConcurrency,
      `max decoding ${probe.maxDecoding} > ${plan.decodeConcurrency}`,
    );
    assert.ok(
      maxReadAhead <= readAheadBound,
      `read ahead ${maxReadAhead} rows > parser buffer bound ${readAheadBound}`,
    );
    assert.ok(readAheadBound < ROWS / 10, 'the bound is meaningful (far below the file size)');
    assert.equal(permits.inFlight, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--limit stops decoding at the limit: no permit-full of rows decoded and dropped', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'galactic-limit-'));
  try {
    const csvPath = path.join(dir, 'rows.csv');
    const lines = ['asset_id,gz2class'];
    for (let i = 0; i < 5000; i++) lines.push(`${100000 + i},Ei`);
    writeFileSync(csvPath, `${lines.join('\n')}\n`);
    const config = validateConfig(
      { data: { csv: csvPath, imageDir: dir }, image: { width: 8, height: 8 }, cache: { shardImages: 100 } },
      'inline',
      dir,
    );
    const plan = planMemory(config, measureData(config));
    const permits = new PermitPool(plan.permits);
    const csv = await openCsv(csvPath, [{ column: 'asset_id', knob: 'data.idColumn' }], config.data.maxRowBytes);
    const screen = new RowScreen({
      data: config.data,
      labels: new LabelRules(config.data.classes),
      hasImage: () => true,
      headerCount: csv.headerCount,
      seen: new StringTable({ entries: ROWS_CEILING, bytes: 64 * 1024 * 1024 }, () => new Error('full')),
    });
    const LIMIT = 250;
    let accepted = 0;
    let decodes = 0;
    const probe = newProbe();
    await streamRecords({
      source: csv,
      permits,
      probe,
      orderSlots: new PermitPool(plan.orderSlots),
      screen: (row) => screen.screen(row),
      // every 10th image is corrupt: the gate must reopen for those
      decode: async (candidate) => {
        decodes++;
        await new Promise((resolve) => setImmediate(resolve));
        if (candidate.row % 10 === 0) throw new ImageRejection('corrupt-image', 'test');
        return new Uint8Array(8 * 8 * 3);
      },
      decodeConcurrency: 4,
      limit: { records: LIMIT, alreadyAccepted: 0 },
      sink: {
        get done() {
          return accepted >= LIMIT;
        },
        handle(outcome: Outcome) {
          if (outcome.kind !== 'record') return;
          if (accepted < LIMIT) accepted++;
          permits.release();
        },
      },
    });
    assert.equal(accepted, LIMIT);
    // 250 records need rows 1..277 (every 10th rejected); at most the decode concurrency more
    assert.ok(decodes <= 278 + 4, `decoded ${decodes} rows for ${LIMIT} records`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
