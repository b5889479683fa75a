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

test('every subcommand --help lists the global options', async () => {
  for (const args of [
    ['prepare'],
    ['plan'],
    ['inspect'],
    ['tune'],
    ['train'],
    ['run'],
    ['predict'],
    ['synth'],
    ['bench'],
    ['bench', 'scale'],
    ['schema'],
  ]) {
    const r = await runCli([...args, '--help']);
    assert.equal(r.code, 0, args.join(' '));
    assert.match(
      r.stdout,
      /Global Options:\n[\s\S]*-c, --config <file>[\s\S]*--json[\s\S]*-q, --quiet/,
      args.join(' '),
    );
  }
});

test('tune --help names every search algorithm', async () => {
  const r = await runCli(['tune', '--help']);
  for (const name of ['random', 'hyperband', 'bayesian']) assert.match(r.stdout, new RegExp(`\\b${name}\\b`));
  assert.match(r.stdout, /RandomSearch, Hyperband or Bayesian/);
});

test('predict refuses a missing --model folder before loading a backend', async () => {
  const r = await runCli(['predict', '--model', '/nonexistent/run', '--backend', 'cpu', 'x.jpg']);
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr,
    "galactic: the model folder /nonexistent/run does not exist. Point --model at a run folder written by 'galactic train' (runs/<name>), or train again.\n",
  );
});
