import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, ConfigInvalidError, ConfigNotFoundError, ConfigSyntaxError } from '../src/config/load.ts';
import { configJsonSchema } from '../src/config/schema.ts';
import { repoRoot } from './support/run-cli.ts';

function writeConfig(content: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'galactic-config-'));
  const file = path.join(dir, 'c.json');
  writeFileSync(file, content);
  return file;
}

const minimal = { data: { csv: 'labels.csv', imageDir: 'images' } };

test('the root config reproduces the notebook setup', () => {
  const cfg = loadConfig(path.join(repoRoot, 'pipeline.config.json'));
  assert.deepEqual([cfg.image.width, cfg.image.height, cfg.image.channels], [128, 128, 3]);
  assert.deepEqual(
    cfg.data.classes.map((c) => [c.name, c.match]),
    [
      ['elliptical', '^E'],
      ['spiral', '^S'],
      ['artifact', '^A'],
    ],
  );
  assert.equal(cfg.data.labelColumn, 'gz2class');
  assert.equal(cfg.split.validation, 0.2);
  assert.equal(cfg.split.stratify, true);
  assert.equal(cfg.seed, 42);
  assert.equal(cfg.train.batchSize, 32);
  assert.equal(cfg.train.epochs, 50);
  assert.equal(cfg.train.earlyStopping?.patience, 5);
  assert.equal(cfg.memory.limitMB, 8192);
  assert.equal(cfg.tuner.algorithm, 'random');
  assert.equal(cfg.tuner.maxTrials, 30);
  assert.deepEqual(cfg.tuner.space.filters_1, { type: 'int', min: 16, max: 64, step: 16, sampling: 'linear' });
  assert.deepEqual(cfg.tuner.space.filters_2, { type: 'int', min: 32, max: 128, step: 32, sampling: 'linear' });
  assert.deepEqual(cfg.tuner.space.filters_3, { type: 'int', min: 64, max: 256, step: 64, sampling: 'linear' });
  assert.deepEqual(cfg.tuner.space.dense_units, { type: 'int', min: 32, max: 256, step: 32, sampling: 'linear' });
  assert.deepEqual(cfg.tuner.space.learning_rate, { type: 'float', min: 1e-4, max: 1e-2, step: null, sampling: 'log' });
});

test('paths resolve relative to the config file', () => {
  const file = writeConfig(JSON.stringify(minimal));
  const cfg = loadConfig(file);
  assert.equal(cfg.data.csv, path.join(path.dirname(file), 'labels.csv'));
  assert.equal(cfg.cache.dir, path.join(path.dirname(file), '.galactic/cache'));
});

test('the gz2 two-file layout is configurable and needs the mapping CSV', () => {
  const ok = loadConfig(
    writeConfig(
      JSON.stringify({
        data: {
          layout: 'gz2',
          csv: 'gz2_hart16.csv',
          mappingCsv: 'gz2_filename_mapping.csv',
          imageDir: 'images_gz2',
          idColumn: 'dr7objid',
          labelColumn: 'gz2_class',
        },
      }),
    ),
  );
  assert.equal(ok.data.layout, 'gz2');
  assert.throws(
    () => loadConfig(writeConfig(JSON.stringify({ data: { layout: 'gz2', csv: 'h.csv', imageDir: 'i' } }))),
    (e: Error) =>
      e instanceof ConfigInvalidError && e.message.includes('data.mappingCsv is required when data.layout is "gz2"'),
  );
});

test('a missing config file is named', () => {
  assert.throws(
    () => loadConfig('/nonexistent/galactic.json'),
    (e: Error) => e instanceof ConfigNotFoundError && e.message.includes('/nonexistent/galactic.json does not exist'),
  );
});

test('invalid JSON is reported with line and column', () => {
  const file = writeConfig('{\n  "data": {\n    "csv": "x",\n  }\n}\n');
  assert.throws(
    () => loadConfig(file),
    (e: Error) => e instanceof ConfigSyntaxError && /at line 4, column 3/.test(e.message),
  );
});

test('wrong types and out-of-range values are named by their path', () => {
  const file = writeConfig(
    JSON.stringify({ ...minimal, split: { validation: 1.5 }, seed: 'x', train: { batchSize: 0 } }),
  );
  assert.throws(
    () => loadConfig(file),
    (e: Error) => {
      assert.ok(e instanceof ConfigInvalidError);
      assert.deepEqual(e.problems, [
        'seed must be a number (got string "x")',
        'split.validation must be between 0 and 1',
        'train.batchSize must be at least 1',
      ]);
      return true;
    },
  );
});

test('unknown keys are errors, not silently ignored', () => {
  const file = writeConfig(JSON.stringify({ data: { ...minimal.data, imagedir: 'x' } }));
  assert.throws(
    () => loadConfig(file),
    (e: Error) => e instanceof ConfigInvalidError && e.message.includes('data has unknown key "imagedir" (typo?)'),
  );
});

test('bad class rules and search spaces are refused', () => {
  const file = writeConfig(
    JSON.stringify({
      data: {
        ...minimal.data,
        classes: [
          { name: 'a', match: '(' },
          { name: 'a', match: 'x' },
        ],
      },
      tuner: { space: { lr: { type: 'float', min: 0, max: 1, sampling: 'log' } } },
    }),
  );
  assert.throws(
    () => loadConfig(file),
    (e: Error) => {
      assert.ok(e instanceof ConfigInvalidError);
      assert.ok(e.problems.includes('data.classes.0.match is not a valid regular expression: ('));
      assert.ok(e.problems.includes('data.classes must not repeat a class name'));
      assert.ok(e.problems.includes('tuner.space.lr.min must be positive for log sampling'));
      return true;
    },
  );
});

test('the committed JSON Schema is generated from the zod definition', () => {
  const committed = JSON.parse(readFileSync(path.join(repoRoot, 'pipeline.config.schema.json'), 'utf8'));
  assert.deepEqual(committed, JSON.parse(JSON.stringify(configJsonSchema())));
  assert.equal(
    JSON.parse(readFileSync(path.join(repoRoot, 'pipeline.config.json'), 'utf8')).$schema,
    './pipeline.config.schema.json',
  );
});

test('threads is "auto" by default and a bad count names the knob and its range', () => {
  assert.equal(loadConfig(writeConfig(JSON.stringify(minimal))).threads, 'auto');
  assert.equal(loadConfig(writeConfig(JSON.stringify({ ...minimal, threads: 2 }))).threads, 2);
  assert.throws(
    () => loadConfig(writeConfig(JSON.stringify({ ...minimal, threads: 'all' }))),
    (e: Error) =>
      e instanceof ConfigInvalidError &&
      e.message.includes('threads has an invalid value (must be "auto" or a whole number from 1 to 8)'),
  );
  assert.throws(
    () => loadConfig(writeConfig(JSON.stringify({ ...minimal, threads: 9 }))),
    (e: Error) => e instanceof ConfigInvalidError && /threads must be at most 8/.test(e.message),
  );
});
