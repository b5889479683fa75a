import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { validateConfig } from '../src/config/load.ts';
import { Output } from '../src/core/console.ts';
import { ensureDemoData, synthesisRoot } from '../src/images/synth/demo.ts';
import { synthesizeDataset, type SynthOptions } from '../src/images/synth/dataset.ts';
import { gz2Header, joinedHeader, mappingHeader } from '../src/images/synth/layout.ts';
import {
  asOutputError,
  SynthOutputNotDirectoryError,
  SynthOutputUnwritableError,
} from '../src/images/synth/output-dir.ts';
import { hazardKinds, hazardRules, plantedHazardCount } from '../src/images/synth/hazards.ts';
import { runCli } from './support/run-cli.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'galactic-synth-test-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));
const quiet = new Output({ quiet: true });

function dir(name: string): string {
  return path.join(scratch, name);
}

/** Rows of a CSV synth wrote (no quoted fields occur in its output). */
function readCsv(file: string): { header: string[]; rows: string[][] } {
  const lines = readFileSync(file, 'utf8').split('\n');
  assert.equal(lines.pop(), '', `${file} ends with a newline`);
  const [header, ...rows] = lines.map((line) => line.split(','));
  return { header, rows };
}

/** Every file under `root` (relative path → bytes). */
function snapshot(root: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else files.set(path.relative(root, full), readFileSync(full));
    }
  };
  walk(root);
  return files;
}

const base: SynthOptions = { out: '', count: 60, seed: 7, size: 64, hazards: true, imbalance: false, force: false };

// one hazard data set shared by the layout and hazard tests (built once, lazily)
let hazardSet: Promise<string> | null = null;
function hazardDataSet(): Promise<string> {
  hazardSet ??= synthesizeDataset({ ...base, out: dir('hazards-a') }, quiet).then((s) => s.out);
  return hazardSet;
}

test('synth is deterministic: same seed, byte-identical files; another seed, different ones', async () => {
  const a = snapshot(await hazardDataSet());
  await synthesizeDataset({ ...base, out: dir('hazards-b'), threads: 1 }, quiet);
  const b = snapshot(dir('hazards-b'));
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [name, bytes] of a)
    assert.ok(bytes.equals(b.get(name)!), `${name} differs between two runs with the same seed`);

  await synthesizeDataset({ ...base, out: dir('hazards-c'), seed: 8 }, quiet);
  const c = snapshot(dir('hazards-c'));
  assert.ok(
    !a.get('galaxy_df_final.csv')!.equals(c.get('galaxy_df_final.csv')!),
    'another seed gives another catalogue',
  );
  const common = [...a.keys()].filter((k) => k.startsWith('images/') && c.has(k));
  assert.ok(common.length > 10);
  assert.ok(
    common.filter((k) => !a.get(k)!.equals(c.get(k)!)).length > common.length / 2,
    'another seed gives other images',
  );
});

test('the layout matches docs/interfaces.md §1: joined CSV, gz2 two-file layout, images by asset_id', async () => {
  const out = await hazardDataSet();
  const joined = readCsv(path.join(out, 'galaxy_df_final.csv'));
  const gz2 = readCsv(path.join(out, 'gz2_hart16.csv'));
  const mapping = readCsv(path.join(out, 'gz2_filename_mapping.csv'));
  assert.deepEqual(joined.header, [...joinedHeader]);
  assert.deepEqual(joined.header.slice(0, 3), ['asset_id', 'dr7objid', 'gz2class']);
  assert.deepEqual(gz2.header.slice(0, 5), ['dr7objid', 'ra', 'dec', 'gz2_class', 'total_votes']);
  assert.deepEqual(gz2.header, [...gz2Header]);
  assert.ok(gz2.header.includes('t01_smooth_or_features_a01_smooth_fraction'));
  assert.deepEqual(mapping.header, [...mappingHeader]);
  assert.equal(joined.rows.length, base.count);
  assert.equal(gz2.rows.length, base.count);

  const good = joined.rows.filter((r) => r.length === 5 && /^\d+$/.test(r[0]) && r[2] !== '' && r[2] !== 'X');
  for (const row of good) {
    assert.match(row[1], /^\d{18}$/, 'dr7objid has 18 digits');
    assert.ok(BigInt(row[1]) > BigInt(Number.MAX_SAFE_INTEGER), 'dr7objid is beyond 2^53');
    assert.match(row[2], /^(E[ric]|S(B?[a-d]([1-4+?][tml])?|e[rbn])|A)(\([a-z]\))?$/, `realistic gz2 class ${row[2]}`);
  }
  const ids = good.map((r) => Number(r[0]));
  assert.notDeepEqual(
    ids,
    [...ids].sort((x, y) => x - y),
    'row order is shuffled relative to ids',
  );

  // a third of the mapping has no image, like the real file; every good record is mapped to its image
  const images = new Set(readdirSync(path.join(out, 'images')));
  const unmatched = mapping.rows.filter((r) => !images.has(`${r[2]}.jpg`)).length;
  assert.ok(
    unmatched >= mapping.rows.length / 3 - 1,
    `${unmatched} of ${mapping.rows.length} mapping rows have no image`,
  );
  const mapped = new Map(mapping.rows.map((r) => [r[0], r[2]]));
  for (const [pos, row] of joined.rows.entries()) {
    if (row.length < 5) continue;
    assert.equal(gz2.rows[pos][0], row[1], 'the gz2 rows line up with the joined rows');
    assert.equal(gz2.rows[pos][3], row[2], 'same class string in both layouts');
  }
  for (const row of good.filter((r) => mapped.has(r[1]))) assert.equal(mapped.get(row[1]), row[0]);
  assert.ok(images.size > 30);
});

test('vote fractions agree with the class', async () => {
  const gz2 = readCsv(path.join(await hazardDataSet(), 'gz2_hart16.csv'));
  const column = (name: string): number => gz2.header.indexOf(name);
  const smooth = column('t01_smooth_or_features_a01_smooth_fraction');
  const features = column('t01_smooth_or_features_a02_features_or_disk_fraction');
  const artifact = column('t01_smooth_or_features_a03_star_or_artifact_fraction');
  const edgeOn = column('t02_edgeon_a04_yes_fraction');
  let checked = 0;
  for (const row of gz2.rows) {
    const label = row[3];
    if (row.length !== gz2.header.length || !/^[ESA]/.test(label)) continue;
    const f = [smooth, features, artifact].map((i) => Number(row[i]));
    assert.ok(Math.abs(f[0] + f[1] + f[2] - 1) < 0.005, 'task 1 fractions sum to 1');
    const winner = 'ESA'[f.indexOf(Math.max(...f))];
    assert.equal(winner, label[0], `votes for ${label}: ${f.join(' ')}`);
    // follow-up questions: at least 0.6 yes exactly when the class string says so, at most 0.3 otherwise
    const followUps: [number, boolean][] = [
      [edgeOn, label.startsWith('Se')],
      [column('t03_bar_a06_bar_fraction'), label.startsWith('SB')],
      [column('t04_spiral_a08_spiral_fraction'), /^SB?[a-d][1-4+?]/.test(label)],
    ];
    for (const [i, yes] of followUps) {
      const value = Number(row[i]);
      if (yes) assert.ok(value >= 0.6, `${gz2.header[i]} ${value} for ${label}`);
      else assert.ok(value <= 0.3, `${gz2.header[i]} ${value} for ${label}`);
    }
    checked++;
  }
  assert.ok(checked > 30);
});

test('every hazard kind is planted on disk and listed in hazards.json with its outcome', async () => {
  const out = await hazardDataSet();
  const report = JSON.parse(readFileSync(path.join(out, 'hazards.json'), 'utf8'));
  const joined = readCsv(path.join(out, 'galaxy_df_final.csv'));
  assert.equal(report.seed, base.seed);
  assert.equal(report.count, base.count);
  assert.equal(report.hazards.length, plantedHazardCount);
  assert.deepEqual(new Set(report.hazards.map((h: { kind: string }) => h.kind)), new Set(hazardKinds));

  const rejected = Object.values(report.expected.rejected as Record<string, number>).reduce((a, b) => a + b, 0);
  assert.equal(report.expected.accepted + rejected, base.count);
  assert.equal(report.expected.rejected['missing-image'], 2);
  assert.equal(report.expected.rejected['invalid-id'], 3);

  for (const hazard of report.hazards) {
    const row = joined.rows[hazard.row - 1];
    assert.ok(row, `row ${hazard.row} exists`);
    assert.equal(row[0], hazard.id, `${hazard.kind}: id at row ${hazard.row}`);
    const rule = hazardRules[hazard.kind as keyof typeof hazardRules];
    assert.equal(hazard.outcome, rule.reason ? 'rejected' : 'accepted');
    assert.equal(hazard.reason, rule.reason ?? undefined);
    const file = hazard.file ? path.join(out, hazard.file) : null;
    const bytes = file && existsSync(file) ? readFileSync(file) : null;
    switch (hazard.kind) {
      case 'missing-image':
        assert.equal(bytes, null, 'the image does not exist');
        assert.equal(row.length, 5);
        break;
      case 'empty-file':
        assert.equal(bytes!.length, 0);
        break;
      case 'truncated-jpeg':
        assert.deepEqual([...bytes!.subarray(0, 2)], [0xff, 0xd8], 'starts as a JPEG');
        assert.notDeepEqual([...bytes!.subarray(-2)], [0xff, 0xd9], 'but has no end-of-image marker');
        await assert.rejects(sharp(bytes!, { failOn: 'truncated' }).raw().toBuffer());
        break;
      case 'not-an-image':
        assert.ok(bytes!.length > 0);
        assert.notEqual(bytes![0], 0xff);
        await assert.rejects(sharp(bytes!).metadata());
        break;
      case 'png-as-jpg': {
        assert.match(hazard.file, /\.jpg$/);
        assert.deepEqual([...bytes!.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], 'PNG magic');
        const meta = await sharp(bytes!).metadata();
        assert.equal(meta.format, 'png');
        assert.equal(meta.width, base.size);
        break;
      }
      case 'grayscale-jpeg': {
        const meta = await sharp(bytes!).metadata();
        assert.equal(meta.format, 'jpeg');
        assert.equal(meta.channels, 1);
        assert.equal(meta.space, 'b-w');
        break;
      }
      case 'cmyk-jpeg': {
        const meta = await sharp(bytes!).metadata();
        assert.equal(meta.format, 'jpeg');
        assert.equal(meta.space, 'cmyk');
        assert.equal(meta.channels, 4);
        break;
      }
      case 'huge-image': {
        const meta = await sharp(bytes!).metadata();
        assert.equal(meta.format, 'jpeg');
        assert.equal(meta.width, 12000);
        assert.equal(meta.height, 12000);
        assert.ok(bytes!.length < 2_000_000, 'small on disk');
        break;
      }
      case 'duplicate-id': {
        assert.ok(hazard.firstRow < hazard.row, 'the first occurrence comes earlier');
        assert.deepEqual(joined.rows[hazard.firstRow - 1], row, 'a repeated row');
        break;
      }
      case 'empty-label':
        assert.equal(row[2], '');
        break;
      case 'unknown-label':
        assert.ok(!/^[ESA]/.test(row[2]) && row[2] !== '');
        break;
      case 'id-with-slash':
        assert.ok(row[0].includes('/'));
        break;
      case 'id-with-dotdot':
        assert.equal(row[0], '..');
        break;
      case 'too-few-columns':
        assert.ok(row.length < joined.header.length);
        break;
      default:
        assert.fail(`unexpected hazard kind ${hazard.kind}`);
    }
  }
  // the rows not listed are good: a valid 3-channel JPEG of the requested size
  const listed = new Set(report.hazards.map((h: { row: number }) => h.row));
  const firstGood = joined.rows.findIndex((_r, i) => !listed.has(i + 1));
  const meta = await sharp(path.join(out, 'images', `${joined.rows[firstGood][0]}.jpg`)).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['jpeg', base.size, base.size, 3]);
});

test('hazards are mirrored in the gz2 layout, plus one object without a mapping row', async () => {
  const out = await hazardDataSet();
  const report = JSON.parse(readFileSync(path.join(out, 'hazards.json'), 'utf8'));
  const gz2 = readCsv(path.join(out, 'gz2_hart16.csv'));
  const mapping = readCsv(path.join(out, 'gz2_filename_mapping.csv'));
  const mapped = new Map(mapping.rows.map((r) => [r[0], r[2]]));
  assert.equal(report.gz2.hazards.length, plantedHazardCount + 1);
  assert.equal(report.gz2.expected.rejected['unmapped-id'], 1);
  assert.equal(report.gz2.expected.accepted, report.expected.accepted - 1);
  for (const hazard of report.gz2.hazards) {
    const row = gz2.rows[hazard.row - 1];
    assert.equal(row[0], hazard.id, `${hazard.kind}: dr7objid at row ${hazard.row}`);
    if (hazard.kind === 'unmapped-id') assert.equal(mapped.has(hazard.id), false);
    if (hazard.kind === 'id-with-slash') assert.ok(mapped.get(hazard.id)!.includes('/'));
    if (hazard.kind === 'id-with-dotdot') assert.equal(mapped.get(hazard.id), '..');
    if (hazard.kind === 'too-few-columns') assert.ok(row.length < gz2.header.length);
    if (hazard.kind === 'empty-label') assert.equal(row[3], '');
  }
});

test('galactic synth CLI: default 424x424 RGB JPEGs, --json summary on stdout, progress on stderr', async () => {
  const out = dir('cli-default');
  const r = await runCli(['synth', '--out', out, '--count', '4', '--seed', '3', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.equal(summary.out, out);
  assert.equal(summary.count, 4);
  assert.equal(summary.images, 4);
  assert.equal(summary.hazards, null);
  assert.ok(summary.imagesPerSecond > 0 && summary.seconds > 0);
  assert.match(r.stderr, /synth/);
  const files = readdirSync(path.join(out, 'images'));
  assert.equal(files.length, 4);
  for (const file of files) {
    assert.match(file, /^\d+\.jpg$/);
    const meta = await sharp(path.join(out, 'images', file)).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height, meta.channels, meta.space], ['jpeg', 424, 424, 3, 'srgb']);
  }
  assert.equal(existsSync(path.join(out, 'hazards.json')), false);
});

test('synth refuses a non-empty --out without --force and writes nothing', async () => {
  const out = dir('occupied');
  mkdirSync(out);
  writeFileSync(path.join(out, 'notes.txt'), 'mine');
  const r = await runCli(['synth', '--out', out, '--count', '3', '--size', '32']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not empty/);
  assert.match(r.stderr, /--force/);
  assert.ok(r.stderr.includes(out));
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.deepEqual(readdirSync(out), ['notes.txt']);
});

test('an --out that is a file, or lies under one, is one clear error', async () => {
  const file = dir('a-file');
  writeFileSync(file, 'not a folder');
  await assert.rejects(
    synthesizeDataset({ ...base, out: file, hazards: false, count: 2 }, quiet),
    SynthOutputNotDirectoryError,
  );
  await assert.rejects(
    synthesizeDataset({ ...base, out: path.join(file, 'sub'), hazards: false, count: 2 }, quiet),
    SynthOutputUnwritableError,
  );
  assert.equal(readFileSync(file, 'utf8'), 'not a folder');
  // a full disk while a worker writes: reported as the same user error, without the worker's stack
  const full = asOutputError(
    Object.assign(new Error("synth worker failed: ENOSPC: no space left on device, open 'x.jpg'\n    at write"), {
      code: 'ENOSPC',
    }),
    '/data',
  );
  assert.ok(full instanceof SynthOutputUnwritableError);
  assert.match(
    (full as Error).message,
    /^cannot write into --out \/data \(ENOSPC: no space left on device, open 'x.jpg'\)/,
  );
  const bug = new TypeError('a programming error');
  assert.equal(asOutputError(bug, '/data'), bug, 'other errors pass through');
});

test('--force replaces only what synth writes', async () => {
  const out = dir('forced');
  await synthesizeDataset({ ...base, out, hazards: false, count: 6, threads: 1 }, quiet);
  writeFileSync(path.join(out, 'notes.txt'), 'mine');
  writeFileSync(path.join(out, 'images', 'stale.jpg'), 'old');
  const summary = await synthesizeDataset({ ...base, out, hazards: false, count: 3, force: true, threads: 1 }, quiet);
  assert.equal(summary.images, 3);
  assert.equal(readFileSync(path.join(out, 'notes.txt'), 'utf8'), 'mine');
  assert.equal(readdirSync(path.join(out, 'images')).length, 3, 'old images are gone');
  assert.equal(readCsv(path.join(out, 'galaxy_df_final.csv')).rows.length, 3);
});

/** Runs the CLI in this process (a child process per case would be slow), capturing what it prints. */
async function runInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { main } = await import('../src/cli.ts');
  const written = { stdout: '', stderr: '' };
  const originals = { stdout: process.stdout.write, stderr: process.stderr.write };
  process.stdout.write = ((chunk: string | Uint8Array) => (
    (written.stdout += String(chunk)),
    true
  )) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => (
    (written.stderr += String(chunk)),
    true
  )) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, ...written };
  } finally {
    process.stdout.write = originals.stdout;
    process.stderr.write = originals.stderr;
  }
}

test('bad --count, --size and --seed values exit 2 and name the flag', async () => {
  const cases = [
    ['--count', '0'],
    ['--count', 'ten'],
    ['--size', '1.5'],
    ['--size', '-3'],
    ['--seed', '-1'],
    ['--seed', '2x'],
    ['--count', ''],
  ];
  for (const [flag, value] of cases) {
    const r = await runInProcess(['synth', '--out', dir('never'), '--count', '3', flag, value]);
    assert.equal(r.code, 2, `${flag} ${value}: ${r.stderr}`);
    assert.ok(r.stderr.includes(flag), `${flag} ${value} names the flag: ${r.stderr}`);
    assert.equal(r.stdout, '');
  }
  // and once as a real process, for the exit code a shell sees
  const r = await runCli(['synth', '--out', dir('never'), '--count', '1.5']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--count must be an integer/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(existsSync(dir('never')), false, 'nothing written');
});

test('--hazards needs enough records to plant them all', async () => {
  await assert.rejects(
    synthesizeDataset({ ...base, out: dir('too-few'), count: 10 }, quiet),
    /--count must be at least 40 with --hazards/,
  );
  assert.equal(existsSync(dir('too-few')), false);
});

test('--imbalance gives Galaxy Zoo 2 proportions; the default is balanced', async () => {
  const count = 200;
  const first = (s: string): string => s[0];
  const share = async (imbalance: boolean): Promise<Record<string, number>> => {
    const out = dir(`mix-${imbalance}`);
    await synthesizeDataset({ ...base, out, hazards: false, imbalance, count, size: 16 }, quiet);
    const counts: Record<string, number> = { E: 0, S: 0, A: 0 };
    for (const row of readCsv(path.join(out, 'galaxy_df_final.csv')).rows) counts[first(row[2])]++;
    return counts;
  };
  const gz2 = await share(true);
  assert.deepEqual(gz2, { E: 90, S: 106, A: 4 });
  const balanced = await share(false);
  for (const kind of ['E', 'S', 'A'])
    assert.ok(Math.abs(balanced[kind] - count / 3) <= 4, `balanced ${JSON.stringify(balanced)}`);
});

test('ensureDemoData synthesizes only when the config says data.synthesize, and only when its CSV is missing', async () => {
  const root = dir('project');
  const config = (csv: string, imageDir: string, synthesize: number | null = 5) =>
    validateConfig({ data: { csv, imageDir, synthesize } }, path.join(root, 'demo.config.json'), root);
  const demo = config('data/demo/galaxy_df_final.csv', 'data/demo/images');
  assert.equal(synthesisRoot(demo), path.join(root, 'data', 'demo'));
  // any folder works when the config asks for it; none does when it does not
  assert.equal(
    synthesisRoot(config('elsewhere/galaxy_df_final.csv', 'elsewhere/images')),
    path.join(root, 'elsewhere'),
  );
  assert.equal(synthesisRoot(config('data/demo/galaxy_df_final.csv', 'data/demo/images', null)), null);
  assert.throws(
    () => synthesisRoot(config('data/demo/galaxy_df_final.csv', '/elsewhere/images')),
    /data.synthesize is set, but synth can only write/,
  );
  assert.throws(() => synthesisRoot(config('data/demo/labels.csv', 'data/demo/images')), /galaxy_df_final.csv/);

  const notDemo = await ensureDemoData(config('data/real/galaxy_df_final.csv', 'data/real/images', null), quiet);
  assert.deepEqual(notDemo, { synthesized: false });
  assert.equal(existsSync(path.join(root, 'data', 'real')), false, 'a missing real data set is never faked');

  const lines: string[] = [];
  const output = new Output({
    stream: { write: (s: string) => lines.push(s) } as unknown as NodeJS.WritableStream,
    tty: false,
  });
  const made = await ensureDemoData(demo, output);
  assert.deepEqual(made, { synthesized: true });
  assert.equal(readdirSync(path.join(root, 'data', 'demo', 'images')).length, 5);
  assert.match(lines.join(''), /synthesiz/);
  const again = await ensureDemoData(demo, output);
  assert.deepEqual(again, { synthesized: false });
  assert.ok(statSync(demo.data.csv).isFile());
});
