import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFixture, writeFixtureConfig } from './support/prepare-fixture.ts';
import { runCli } from './support/run-cli.ts';

/**
 * Issue 13's small items, through the CLI: trailing blank CSV lines are no rows; --config naming
 * a folder (or a FIFO) says so; a missing default config names the folder it was looked for in;
 * a binary file given as the CSV is refused without its bytes.
 */

let root: string;
before(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'galactic-messages-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

test('blank lines in the CSV (trailing, CRLF, in between) are ignored, not malformed-row rejects', async () => {
  const dir = path.join(root, 'blank');
  const fixture = await writeFixture(dir, { good: 3 });
  const [header, ...rows] = readFileSync(fixture.csv, 'utf8').trim().split('\n');
  writeFileSync(fixture.csv, `${header}\r\n${rows[0]}\r\n\r\n${rows[1]}\n   \n${rows[2]}\n\n\n`);
  const result = await runCli(['prepare', '--config', writeFixtureConfig(dir), '--json', '-q']);
  assert.equal(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as {
    rows: number;
    images: number;
    rejected: Record<string, number>;
    cacheDir: string;
  };
  assert.deepEqual(
    { rows: summary.rows, images: summary.images, rejected: summary.rejected },
    { rows: 3, images: 3, rejected: {} },
  );
  assert.equal(readFileSync(path.join(summary.cacheDir, 'rejects.jsonl'), 'utf8'), '');
});

test('--config naming a folder says it is a folder (and points at the file inside); a FIFO is refused unopened', async () => {
  const dir = path.join(root, 'folder');
  mkdirSync(dir);
  const bare = await runCli(['plan', '--config', dir]);
  assert.equal(bare.code, 1);
  assert.equal(
    bare.stderr,
    `galactic: --config ${dir} is a folder, not a config file. Pass the file itself (e.g. --config FOLDER/pipeline.config.json).\n`,
  );
  writeFileSync(path.join(dir, 'pipeline.config.json'), '{}');
  const withFile = await runCli(['plan', '--config', dir]);
  assert.equal(
    withFile.stderr,
    `galactic: --config ${dir} is a folder, not a config file. Pass the file itself, e.g. --config ${path.join(dir, 'pipeline.config.json')}.\n`,
  );
  const fifo = path.join(root, 'config.fifo');
  execFileSync('mkfifo', [fifo]);
  const piped = await runCli(['plan', '--config', fifo], { timeoutMs: 30_000 });
  assert.equal(piped.code, 1, `exit ${piped.code} (null = killed after hanging)`);
  assert.match(piped.stderr, /is not a regular file \(a FIFO, socket or device\?\); it was not opened/);
});

test('a missing default config names the folder it looked in; a missing --config names the file', async () => {
  const dir = path.join(root, 'empty');
  mkdirSync(dir);
  const missing = await runCli(['plan'], { cwd: dir });
  assert.equal(missing.code, 1);
  assert.equal(
    missing.stderr,
    `galactic: no config file pipeline.config.json in ${dir} (the folder galactic was started in). Run galactic from the folder that holds it, or pass one with --config FILE.\n`,
  );
  const named = await runCli(['plan', '--config', 'nope.json'], { cwd: dir });
  assert.equal(
    named.stderr,
    `galactic: config file nope.json does not exist (looked for ${path.join(dir, 'nope.json')}). Pass an existing file with --config FILE.\n`,
  );
});

test('a binary file given as the CSV is refused with a message that carries none of its bytes', async () => {
  const dir = path.join(root, 'binary');
  const fixture = await writeFixture(dir, { good: 2 });
  copyFileSync(path.join(fixture.imageDir, '100000.jpg'), path.join(dir, 'labels.jpg'));
  const result = await runCli(['prepare', '--config', writeFixtureConfig(dir, { data: { csv: 'labels.jpg' } })]);
  assert.equal(result.code, 1);
  assert.equal(
    result.stderr,
    `galactic: CSV file ${path.join(dir, 'labels.jpg')} is not a text CSV: its first line holds binary data (an image, an archive or a compressed file?). Point data.csv (or data.mappingCsv) at the labels CSV, extracted if it came zipped.\n`,
  );
  assert.equal(result.stdout, '');
});
