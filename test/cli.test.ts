import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runCli, repoRoot } from './support/run-cli.ts';

const version = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version;

test('--version prints the package version', async () => {
  const r = await runCli(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), version);
});

test('--help lists the commands', async () => {
  const r = await runCli(['--help']);
  assert.equal(r.code, 0);
  for (const name of ['prepare', 'plan', 'inspect', 'tune', 'train', 'run', 'predict', 'synth', 'bench']) {
    assert.match(r.stdout, new RegExp(`\\n  ${name}\\b`));
  }
});

test('an unknown command is one clear error with a non-zero exit', async () => {
  const r = await runCli(['frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command 'frobnicate'/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('an unknown flag is one clear error with a non-zero exit', async () => {
  const r = await runCli(['schema', '--frob']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option '--frob'/);
  assert.equal(r.stdout, '');
});
