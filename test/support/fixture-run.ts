import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from '../../src/cache/crc32.ts';
import { CACHE_FORMAT_VERSION, encodeShard, MANIFEST_FORMAT } from '../../src/cache/format.ts';
import { sealManifest } from '../../src/cache/manifest.ts';
import type { Timeline } from '../../src/memory/timeline.ts';

/**
 * A fake finished run for report tests: run directory files (docs/interfaces.md §7), a tuning
 * directory with trials, a timeline and a one-shard cache holding the sample pixels.
 */
export interface FixtureRun {
  root: string;
  runDir: string;
  tuningDir: string;
  cacheDir: string;
  classes: string[];
  sampleIds: string[];
  /** Sample ids whose prediction is wrong. */
  wrongIds: string[];
  hyperparameters: string[];
  epochs: number;
  trials: number;
}

const classes = ['elliptical', 'spiral', 'artifact'];

export function makeFixtureRun(options: { withCache?: boolean } = {}): FixtureRun {
  const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-report-'));
  const runDir = path.join(root, 'runs', 'fixture');
  const tuningDir = path.join(root, 'tuning');
  const cacheDir = path.join(root, 'cache', 'abc123');
  mkdirSync(runDir, { recursive: true });
  mkdirSync(tuningDir, { recursive: true });
  mkdirSync(cacheDir, { recursive: true });

  const epochs = 6;
  const history = Array.from({ length: epochs }, (_, i) => ({
    epoch: i + 1,
    loss: 1.1 / (i + 1),
    accuracy: 0.4 + i * 0.08,
    val_loss: 1.2 / (i + 1) + 0.05,
    val_accuracy: 0.38 + i * 0.07,
    seconds: 2.5,
    imagesPerSecond: 48,
    peakRssMB: 300 + i,
  }));
  writeFileSync(path.join(runDir, 'history.json'), JSON.stringify(history));

  const samples = [
    { id: '1001', label: 0, predicted: 0, probabilities: [0.8, 0.15, 0.05] },
    { id: '1002', label: 1, predicted: 1, probabilities: [0.1, 0.85, 0.05] },
    { id: '1003', label: 2, predicted: 2, probabilities: [0.2, 0.1, 0.7] },
    { id: '1004', label: 0, predicted: 1, probabilities: [0.3, 0.6, 0.1] },
    { id: '1005', label: 1, predicted: 0, probabilities: [0.55, 0.4, 0.05] },
  ];
  const metrics = {
    classes,
    confusion: [
      [20, 4, 1],
      [3, 25, 2],
      [0, 1, 9],
    ],
    perClass: [
      { class: 'elliptical', precision: 0.87, recall: 0.8, f1: 0.833, support: 25 },
      { class: 'spiral', precision: 0.833, recall: 0.833, f1: 0.833, support: 30 },
      { class: 'artifact', precision: 0.75, recall: 0.9, f1: 0.818, support: 10 },
    ],
    accuracy: 54 / 65,
    samples,
  };
  writeFileSync(path.join(runDir, 'metrics.json'), JSON.stringify(metrics));
  const hyperparameters = ['filters_1', 'dense_units', 'learning_rate'];
  const trialValues = [
    { filters_1: 8, dense_units: 32, learning_rate: 0.001, filters_3: 32 },
    { filters_1: 16, dense_units: 64, learning_rate: 0.003, filters_3: 32 },
    { filters_1: 8, dense_units: 64, learning_rate: 0.0007, filters_3: 32 },
    { filters_1: 16, dense_units: 32, learning_rate: 0.004, filters_3: 32 },
  ];
  writeFileSync(
    path.join(runDir, 'metadata.json'),
    JSON.stringify({
      classes,
      image: { width: 8, height: 8, channels: 3 },
      normalization: { kind: 'scale' },
      backend: { name: 'cpu', reason: 'requested' },
      versions: { galactic: '0.1.0', tfjs: '4.22.0' },
      cacheKey: 'abc123',
      hyperparameters: trialValues[2],
      split: { validation: 0.2, stratify: true, trainImages: 260, validationImages: 65 },
    }),
  );
  trialValues.forEach((values, i) => {
    const id = String(i).padStart(2, '0');
    const dir = path.join(tuningDir, `trial_${id}`);
    mkdirSync(dir, { recursive: true });
    const failed = i === 3;
    writeFileSync(
      path.join(dir, 'trial.json'),
      JSON.stringify({
        id,
        values,
        status: failed ? 'failed' : 'completed',
        metrics: failed ? [] : history.slice(0, 3),
        bestEpoch: failed ? null : 3,
        score: failed ? null : 0.5 + i * 0.1,
        seconds: 7,
        peakRssMB: 320,
        reason: failed ? 'nan-loss' : undefined,
      }),
    );
  });
  writeFileSync(path.join(tuningDir, 'oracle.json'), JSON.stringify({ algorithm: 'random', trials: 4 }));
  writeFileSync(path.join(tuningDir, 'best_hp.json'), JSON.stringify({ values: trialValues[2] }));

  const timeline: Timeline = {
    limitMB: 1024,
    startedAt: '2026-01-01T00:00:00.000Z',
    samples: [
      { t: 0, rssMB: 120, stage: 'prepare' },
      { t: 1, rssMB: 180, stage: 'prepare' },
      { t: 2, rssMB: 260, stage: 'tune' },
      { t: 3, rssMB: 330, stage: 'tune' },
      { t: 4, rssMB: 340, stage: 'train' },
      { t: 5, rssMB: 350, stage: 'train' },
      { t: 6, rssMB: 360, stage: 'report' },
    ],
    stages: [
      { name: 'prepare', seconds: 2, items: 150, itemsPerSecond: 75, skipped: false },
      { name: 'tune', seconds: 2, items: 720, itemsPerSecond: 360, skipped: false },
      { name: 'train', seconds: 1, items: 240, itemsPerSecond: 240, skipped: false },
      { name: 'report', seconds: 1, items: 5, itemsPerSecond: 5, skipped: false },
    ],
  };
  writeFileSync(path.join(runDir, 'timeline.json'), JSON.stringify(timeline));

  if (options.withCache ?? true) {
    // 8x8 RGB tiles, each sample a different flat colour so thumbnails differ
    const ids = samples.map((s) => s.id).concat(['2001']);
    const [h, w, c] = [8, 8, 3];
    const data = new Uint8Array(ids.length * h * w * c);
    ids.forEach((_, i) => data.fill(40 * i + 20, i * h * w * c, (i + 1) * h * w * c));
    const shard = encodeShard({
      dtype: 'uint8',
      shape: [ids.length, h, w, c],
      ids,
      labels: Int32Array.from(ids.map((_, i) => i % 3)),
      data,
    });
    writeFileSync(path.join(cacheDir, 'shard-00000.msgpack'), shard);
    writeFileSync(
      path.join(cacheDir, 'manifest.json'),
      JSON.stringify(
        sealManifest({
          format: MANIFEST_FORMAT,
          version: CACHE_FORMAT_VERSION,
          cacheKey: 'abc123',
          inputs: {},
          classes,
          image: { width: w, height: h, channels: c, fit: 'fill' },
          dtype: 'uint8',
          shardImages: 64,
          shards: [{ file: 'shard-00000.msgpack', count: ids.length, bytes: shard.byteLength, crc32: crc32(shard) }],
          classCounts: [2, 2, 2],
          channelStats: { mean: [0, 0, 0], std: [1, 1, 1] },
          totals: { rows: ids.length, images: ids.length, rejected: 0, bytes: shard.byteLength },
          rejects: {},
          complete: true,
          toolVersion: '0.1.0',
          createdAt: '2026-01-01T00:00:00.000Z',
          updatedAt: '2026-01-01T00:00:00.000Z',
        }),
      ),
    );
  }
  return {
    root,
    runDir,
    tuningDir,
    cacheDir,
    classes,
    sampleIds: samples.map((s) => s.id),
    wrongIds: ['1004', '1005'],
    hyperparameters,
    epochs,
    trials: 4,
  };
}
