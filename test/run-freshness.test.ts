import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateConfig, type LoadedConfig } from '../src/config/load.ts';
import { reportIsCurrent, staleTrainingReason, TRAINED_FILES } from '../src/run/freshness.ts';
import { configDigest } from '../src/train/run-directory.ts';

describe('stage freshness', () => {
  let root: string;
  let runDir: string;
  let config: LoadedConfig;
  const values = { filters_1: 8, learning_rate: 0.001 };

  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'galactic-fresh-'));
    runDir = path.join(root, 'runs', 'a');
    config = validateConfig({ data: { csv: 'x.csv', imageDir: 'img' } }, '<test>', root);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const writeTrained = (metadata: Record<string, unknown>) => {
    rmSync(runDir, { recursive: true, force: true });
    mkdirSync(runDir, { recursive: true });
    // the fields every metadata.json has (checked on read), then the ones a test varies
    const whole = {
      format: 'galactic-run',
      version: 1,
      classes: ['a', 'b'],
      image: { width: 8, height: 8, channels: 3 },
      normalization: {},
      split: { trainImages: 1, validationImages: 1 },
      cacheKey: '',
      configDigest: '',
      hyperparameters: {},
      ...metadata,
    };
    for (const name of TRAINED_FILES)
      writeFileSync(path.join(runDir, name), name === 'metadata.json' ? JSON.stringify(whole) : '{}');
  };

  it('reuses a model trained on the same cache key, config and hyperparameters', () => {
    writeTrained({
      cacheKey: 'k1',
      configDigest: configDigest(config),
      hyperparameters: { learning_rate: 0.001, filters_1: 8 },
    });
    assert.equal(staleTrainingReason(runDir, { cacheKey: 'k1', config, values }), null);
  });

  it('says why a model is stale', () => {
    writeTrained({ cacheKey: 'k1', configDigest: configDigest(config), hyperparameters: values });
    assert.match(staleTrainingReason(runDir, { cacheKey: 'k2', config, values })!, /cache key/);
    assert.match(
      staleTrainingReason(runDir, { cacheKey: 'k1', config: { ...config, seed: 1 }, values })!,
      /config changed/,
    );
    assert.match(
      staleTrainingReason(runDir, { cacheKey: 'k1', config, values: { ...values, filters_1: 16 } })!,
      /hyperparameters changed/,
    );
    rmSync(path.join(runDir, 'weights.bin'));
    assert.match(staleTrainingReason(runDir, { cacheKey: 'k1', config, values })!, /weights.bin is missing/);
  });

  it('treats the report as current only when it is newer than the trained files', () => {
    writeTrained({});
    assert.equal(reportIsCurrent(runDir), false);
    const report = path.join(runDir, 'report.html');
    writeFileSync(report, '<!DOCTYPE html>');
    const past = new Date(Date.now() - 60_000);
    for (const name of TRAINED_FILES) utimesSync(path.join(runDir, name), past, past);
    assert.equal(reportIsCurrent(runDir), true);
    utimesSync(report, new Date(past.getTime() - 60_000), new Date(past.getTime() - 60_000));
    assert.equal(reportIsCurrent(runDir), false);
  });
});
