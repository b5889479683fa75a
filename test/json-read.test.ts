import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ManifestUnreadableError, readManifestIfPresent } from '../src/cache/manifest.ts';
import { CheckpointError, loadCheckpoint } from '../src/model/checkpoint.ts';
import { readRunMetadata, RunMetadataError } from '../src/train/run-directory.ts';
import { TrialStore, TuningStateCorruptError } from '../src/tune/trial-store.ts';

/** Every JSON file the product reads back is checked on read: a damaged one is one message naming the file. */

const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-json-read-'));
after(() => rmSync(root, { recursive: true, force: true }));

function folderWith(name: string, file: string, content: unknown): string {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, file), typeof content === 'string' ? content : JSON.stringify(content));
  return dir;
}

describe('reading back JSON files', () => {
  it('manifest.json: a wrong field type or a file name leaving the folder is named, with the file', () => {
    const base = {
      format: 'galactic-manifest',
      version: 1,
      cacheKey: 'k',
      classes: ['a'],
      image: { width: 8, height: 8, channels: 3 },
      dtype: 'uint8',
      shardImages: 8,
      classCounts: [1],
      totals: { rows: 1, images: 1, rejected: 0, bytes: 10 },
      rejects: {},
      complete: true,
    };
    const bad = folderWith('manifest-bad', 'manifest.json', {
      ...base,
      shards: [{ file: 'shard-00000.msgpack', count: 1, bytes: '10', crc32: 1 }],
    });
    assert.throws(
      () => readManifestIfPresent(bad),
      (e: unknown) =>
        e instanceof ManifestUnreadableError &&
        e.message.startsWith(
          `cache manifest ${path.join(bad, 'manifest.json')} is unreadable (unexpected content: shards.0.bytes: `,
        ) &&
        e.message.endsWith("Run 'galactic prepare --force' to rebuild the cache."),
    );
    const escaping = folderWith('manifest-escape', 'manifest.json', {
      ...base,
      shards: [{ file: '../../etc/passwd', count: 1, bytes: 10, crc32: 1 }],
    });
    assert.throws(() => readManifestIfPresent(escaping), /shards\.0\.file: a file name inside the cache folder/);
    const torn = folderWith('manifest-torn', 'manifest.json', '{"format":');
    assert.throws(() => readManifestIfPresent(torn), /is unreadable \(not valid JSON: /);
  });

  it('trial.json and oracle.json: a bad status or a missing state names the file', () => {
    const dir = path.join(root, 'tuning');
    const store = new TrialStore(dir);
    folderWith(path.join('tuning', 'trial_0000'), 'trial.json', {
      id: '0000',
      values: {},
      status: 'DONE',
      metrics: [],
    });
    assert.throws(
      () => store.readTrial('0000'),
      (e: unknown) =>
        e instanceof TuningStateCorruptError &&
        e.message.includes(
          `tuning state file ${path.join(dir, 'trial_0000', 'trial.json')} is unreadable (unexpected content: status: `,
        ),
    );
    writeFileSync(
      store.oracleFile,
      JSON.stringify({
        format: 'galactic-oracle',
        version: 1,
        search: { algorithm: 'random', objective: 'val_loss', seed: 1 },
      }),
    );
    assert.throws(
      () => store.readOracle(),
      (e: unknown) =>
        e instanceof TuningStateCorruptError &&
        /oracle\.json is unreadable \(unexpected content: state: /.test(e.message),
    );
  });

  it('metadata.json of a run folder: missing classes is named, with the file and what to do', () => {
    const dir = folderWith('run', 'metadata.json', { format: 'galactic-run', version: 1 });
    assert.throws(
      () => readRunMetadata(dir),
      (e: unknown) =>
        e instanceof RunMetadataError &&
        e.message.startsWith(
          `run metadata ${path.join(dir, 'metadata.json')} is unreadable (unexpected content: classes: `,
        ),
    );
  });

  it('checkpoint.json: a data file outside the checkpoint folder is refused before anything is read', async () => {
    const dir = folderWith('checkpoint', 'checkpoint.json', {
      format: 'galactic-checkpoint',
      version: 1,
      data: '../../secret.bin',
      modelWeights: 0,
      specs: [],
    });
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
    await assert.rejects(
      loadCheckpoint(dir, model),
      (e: unknown) =>
        e instanceof CheckpointError &&
        /unreadable checkpoint\.json \(unexpected content: data: a state-\*\.bin file name\)/.test(e.message),
    );
    model.dispose();
  });
});
