import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from './support/run-cli.ts';

/**
 * End to end as a user runs it: synth → train (which prepares the cache) → predict, on wasm.
 * 600 synthetic galaxies rendered at 64x64 and trained at 32x32 keep it to seconds.
 */

let root: string;
let configFile: string;
let trainSummary: Record<string, unknown>;

before(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'galactic-predict-'));
  const synth = await runCli([
    'synth',
    '--out',
    path.join(root, 'data'),
    '--count',
    '600',
    '--size',
    '64',
    '--seed',
    '3',
  ]);
  assert.equal(synth.code, 0, synth.stderr);
  configFile = path.join(root, 'galactic.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      data: { csv: 'data/galaxy_df_final.csv', imageDir: 'data/images' },
      image: { width: 32, height: 32 },
      cache: { dir: 'cache' },
      memory: { limitMB: 2048 },
      seed: 7,
      model: { filters: [8, 16], denseUnits: 32 },
      train: { batchSize: 16, epochs: 8 },
      backend: 'wasm',
      runs: { dir: 'runs' },
      tuner: { dir: 'tuning' },
    }),
  );
  const train = await runCli(['train', '--config', configFile, '--name', 'e2e', '--json'], { timeoutMs: 240_000 });
  assert.equal(train.code, 0, train.stderr);
  trainSummary = JSON.parse(train.stdout);
});

after(() => rmSync(root, { recursive: true, force: true }));

test('galactic train writes a complete run folder and a --json summary', () => {
  const runDir = path.join(root, 'runs', 'e2e');
  assert.equal(trainSummary.run, 'e2e');
  assert.equal(trainSummary.runDir, runDir);
  assert.equal(trainSummary.backend, 'wasm');
  assert.equal(trainSummary.limitMB, 2048);
  for (const key of ['epochs', 'bestEpoch', 'valAccuracy', 'valLoss', 'seconds', 'imagesPerSecond', 'peakRssMB'])
    assert.equal(typeof trainSummary[key], 'number', key);
  assert.ok((trainSummary.valAccuracy as number) >= 0.7, `validation accuracy ${trainSummary.valAccuracy}`);
  assert.ok((trainSummary.peakRssMB as number) < 2048);
  for (const file of ['model.json', 'weights.bin', 'metadata.json', 'history.json', 'metrics.json'])
    assert.ok(existsSync(path.join(runDir, file)), file);
  const metadata = JSON.parse(readFileSync(path.join(runDir, 'metadata.json'), 'utf8'));
  assert.deepEqual(metadata.classes, ['elliptical', 'spiral', 'artifact']);
  assert.equal(metadata.normalization.mode, 'scale');
  assert.equal(metadata.backend.name, 'wasm');
  assert.match(metadata.configDigest, /^sha256:[0-9a-f]{64}$/);
  assert.equal(typeof metadata.cacheKey, 'string');
  assert.equal(metadata.learningRate.source, 'model.learningRate');
  const history = JSON.parse(readFileSync(path.join(runDir, 'history.json'), 'utf8'));
  assert.equal(history.length, trainSummary.epochs);
  const metrics = JSON.parse(readFileSync(path.join(runDir, 'metrics.json'), 'utf8'));
  assert.equal(metrics.confusion.length, 3);
  assert.equal(metrics.perClass.length, 3);
  assert.ok(metrics.samples.length > 0);
});

test('predict reproduces the validation predictions and reports a corrupt or missing file without stopping', async () => {
  const runDir = path.join(root, 'runs', 'e2e');
  const metrics = JSON.parse(readFileSync(path.join(runDir, 'metrics.json'), 'utf8')) as {
    samples: { id: string; predicted: string; probabilities: number[] }[];
  };
  const samples = metrics.samples.slice(0, 10);
  const corrupt = path.join(root, 'corrupt.jpg');
  writeFileSync(corrupt, readFileSync(path.join(root, 'data', 'images', `${samples[0].id}.jpg`)).subarray(0, 300));
  const files = [
    ...samples.map((s) => path.join(root, 'data', 'images', `${s.id}.jpg`)),
    corrupt,
    path.join(root, 'missing.jpg'),
  ];
  const r = await runCli(['predict', '--model', runDir, '--backend', 'wasm', '--json', ...files]);
  assert.equal(r.code, 0, r.stderr);
  const { predictions } = JSON.parse(r.stdout) as {
    predictions: (
      { file: string; class: string; probabilities: Record<string, number> } | { file: string; error: string }
    )[];
  };
  assert.equal(predictions.length, files.length);
  samples.forEach((s, i) => {
    const p = predictions[i];
    assert.ok('class' in p, JSON.stringify(p));
    assert.equal(p.class, s.predicted);
    Object.values(p.probabilities).forEach((v, c) =>
      assert.ok(Math.abs(v - s.probabilities[c]) < 1e-5, `${s.id}: ${v} vs ${s.probabilities[c]}`),
    );
  });
  const bad = predictions[samples.length];
  assert.ok('error' in bad && /corrupt-image/.test(bad.error), JSON.stringify(bad));
  const missing = predictions[samples.length + 1];
  assert.ok('error' in missing && /missing-image/.test(missing.error), JSON.stringify(missing));
  assert.match(r.stderr, /2 of 12 image\(s\) could not be classified/);
});

test('predict on a folder prints its table on stdout, the same with --quiet', async () => {
  const folder = path.join(root, 'few');
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder);
  for (const name of readdirSync(path.join(root, 'data', 'images')).slice(0, 3))
    copyFileSync(path.join(root, 'data', 'images', name), path.join(folder, name));
  const r = await runCli(['predict', '--model', path.join(root, 'runs', 'e2e'), '--backend', 'wasm', folder]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^file\s+class\s+elliptical\s+spiral\s+artifact\n/);
  assert.equal(r.stdout.split('\n').filter((l) => l.startsWith(folder)).length, 3);
  assert.doesNotMatch(r.stderr, /elliptical\s+spiral/);
  const quiet = await runCli([
    'predict',
    '--model',
    path.join(root, 'runs', 'e2e'),
    '--backend',
    'wasm',
    '--quiet',
    folder,
  ]);
  assert.equal(quiet.stdout, r.stdout);
  assert.equal(quiet.stderr, '');
});

test('a model folder without weights.bin, and --from-tuner without a tuner result, fail clearly', async () => {
  const broken = path.join(root, 'broken');
  cpSync(path.join(root, 'runs', 'e2e'), broken, { recursive: true });
  rmSync(path.join(broken, 'weights.bin'));
  const r = await runCli(['predict', '--model', broken, '--backend', 'cpu', path.join(root, 'corrupt.jpg')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /is missing weights.bin/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  const t = await runCli(['train', '--config', configFile, '--from-tuner']);
  assert.equal(t.code, 1);
  assert.match(t.stderr, /best_hp\.json, which does not exist. Run 'galactic tune' first/);
});

test('a final training whose model cannot fit memory.limitMB is refused before any work, naming the knob', async () => {
  const tight = path.join(root, 'tight.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8'));
  // prepare fits 300 MB (the runtime and a small pipeline); training this model does not
  writeFileSync(tight, JSON.stringify({ ...config, memory: { limitMB: 300 } }));
  const r = await runCli(['train', '--config', tight, '--name', 'tight']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /galactic: memory plan does not fit: training this model needs an estimated \d+ MB \(runtime 224 MB, tfjs 64 MB, .*\), more than memory\.limitMB 300\. Raise memory\.limitMB to at least \d+, or lower train\.batchSize \(now 16\)/,
  );
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.equal(existsSync(path.join(root, 'runs', 'tight')), false, 'no run folder was written');
});
