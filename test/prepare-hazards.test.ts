import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config/load.ts';
import { Output } from '../src/core/console.ts';
import { runPrepare } from '../src/prepare/run-prepare.ts';
import { readManifest } from '../src/cache/manifest.ts';
import { readShard } from '../src/cache/reader.ts';
import { runCli } from './support/run-cli.ts';

/** Contract §1 end to end: the data set `galactic synth --hazards` plants, through prepare. */

interface Hazards {
  hazards: { kind: string; id: string; row: number; outcome: 'accepted' | 'rejected'; reason?: string }[];
  expected: { accepted: number; rejected: Record<string, number> };
}

let dir: string;
let hazards: Hazards;
const quiet = new Output({ quiet: true });

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'galactic-hazards-'));
  const synth = await runCli([
    'synth',
    '--out',
    path.join(dir, 'data'),
    '--count',
    '60',
    '--hazards',
    '--size',
    '64',
    '--seed',
    '7',
    '-q',
  ]);
  assert.equal(synth.code, 0, synth.stderr);
  hazards = JSON.parse(readFileSync(path.join(dir, 'data', 'hazards.json'), 'utf8')) as Hazards;
});

async function idsInShards(cacheDir: string): Promise<string[]> {
  const ids: string[] = [];
  for (const entry of readManifest(cacheDir).shards) ids.push(...(await readShard(cacheDir, entry)).ids);
  return ids;
}

test('joined layout: every hazard gets the outcome hazards.json gives, every good record is in the shards once', async () => {
  const file = path.join(dir, 'joined.json');
  writeFileSync(
    file,
    JSON.stringify({
      data: { csv: 'data/galaxy_df_final.csv', imageDir: 'data/images' },
      image: { width: 32, height: 32 },
      cache: { dir: 'cache', shardImages: 8 },
      memory: { limitMB: 2048 },
    }),
  );
  const summary = await runPrepare(loadConfig(file), { output: quiet });
  assert.equal(summary.images, hazards.expected.accepted);
  assert.deepEqual(Object.entries(summary.rejected).sort(), Object.entries(hazards.expected.rejected).sort());
  const rejects = readFileSync(path.join(summary.cacheDir, 'rejects.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { row: number; id: string; reason: string });
  const byRow = new Map(rejects.map((r) => [r.row, r]));
  for (const hazard of hazards.hazards) {
    if (hazard.outcome === 'rejected') {
      assert.equal(byRow.get(hazard.row)?.reason, hazard.reason, `${hazard.kind} at row ${hazard.row}`);
      assert.equal(byRow.get(hazard.row)?.id, hazard.id);
    } else {
      assert.equal(byRow.has(hazard.row), false, `${hazard.kind} at row ${hazard.row} is accepted`);
    }
  }
  assert.equal(rejects.length, hazards.hazards.filter((h) => h.outcome === 'rejected').length);

  // the good records: every CSV row not rejected, in row order, exactly once
  const lines = readFileSync(path.join(dir, 'data', 'galaxy_df_final.csv'), 'utf8')
    .trimEnd()
    .split('\n')
    .slice(1);
  const expectedIds = lines
    .map((line, i) => ({ row: i + 1, id: line.split(',')[0] }))
    .filter((r) => !byRow.has(r.row))
    .map((r) => r.id);
  const ids = await idsInShards(summary.cacheDir);
  assert.deepEqual(ids, expectedIds);
  assert.equal(new Set(ids).size, ids.length);
  for (const hazard of hazards.hazards.filter((h) => h.outcome === 'accepted'))
    assert.ok(ids.includes(hazard.id), `${hazard.kind} ${hazard.id} is in the shards`);
});

test('gz2 layout: labels joined through the filename mapping; objects without a mapping row are unmapped-id', async () => {
  const file = path.join(dir, 'gz2.json');
  writeFileSync(
    file,
    JSON.stringify({
      data: {
        layout: 'gz2',
        csv: 'data/gz2_hart16.csv',
        mappingCsv: 'data/gz2_filename_mapping.csv',
        imageDir: 'data/images',
        idColumn: 'dr7objid',
        labelColumn: 'gz2_class',
      },
      image: { width: 32, height: 32 },
      cache: { dir: 'cache', shardImages: 8 },
      memory: { limitMB: 2048 },
    }),
  );
  const summary = await runPrepare(loadConfig(file), { output: quiet });
  const ids = await idsInShards(summary.cacheDir);
  assert.equal(new Set(ids).size, ids.length);
  assert.ok((summary.rejected['unmapped-id'] ?? 0) >= 1, 'synth leaves objects without a mapping row');
  // the same records as the joined layout, except objects the mapping does not know
  const mapped = new Set(
    readFileSync(path.join(dir, 'data', 'gz2_filename_mapping.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(',')[0]),
  );
  const objidOf = new Map(
    readFileSync(path.join(dir, 'data', 'galaxy_df_final.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => [l.split(',')[0], l.split(',')[1]]),
  );
  const joined = await idsInShards(
    path.join(
      path.dirname(summary.cacheDir),
      readdirSync(path.dirname(summary.cacheDir)).find((k) => k !== path.basename(summary.cacheDir))!,
    ),
  );
  assert.deepEqual(
    ids,
    joined.filter((id) => mapped.has(objidOf.get(id)!)),
  );
  assert.equal(summary.images, joined.length - (summary.rejected['unmapped-id'] ?? 0));
  for (const id of ids) assert.match(id, /^\d+$/, 'shards hold image (asset) ids');
});
