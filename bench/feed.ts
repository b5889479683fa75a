/**
 * Feed speed beside training speed, in one run:
 *   node --import tsx bench/feed.ts [--count 1000] [--size 128] [--epochs 2] [--train-batches 8] [--backend wasm]
 * Synthesizes a data set once (reused from the temp folder), prepares it at the notebook's
 * 128x128, then measures the feed alone (whole epochs through tf.data, no model) and the
 * notebook CNN's training step on the chosen backend. The feed must run at least 20x faster.
 * Progress on stderr, one JSON line on stdout.
 */
import { planMemory } from '../src/memory/plan.ts';
import { measureData } from '../src/ingest/data-facts.ts';
import { feedSettings } from '../src/data/feed.ts';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { validateConfig } from '../src/config/load.ts';
import { measureFeed } from '../src/data/measure-feed.ts';
import { selectBackend, type BackendName } from '../src/model/backend.ts';
import { runPrepare } from '../src/prepare/run-prepare.ts';
import { Output } from '../src/core/console.ts';
import { measureTraining } from '../src/train/measure-training.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '1000' },
    size: { type: 'string', default: '128' },
    image: { type: 'string', default: '128' },
    epochs: { type: 'string', default: '2' },
    'train-batches': { type: 'string', default: '8' },
    backend: { type: 'string', default: 'wasm' },
  },
});
const count = Number(values.count);
const output = new Output({ json: false });
const cli = fileURLToPath(new URL('../bin/galactic.js', import.meta.url));
const root = path.join(os.tmpdir(), `galactic-bench-feed-${count}-${values.size}`);
if (!existsSync(path.join(root, 'galaxy_df_final.csv'))) {
  output.info(`synthesizing ${count} images at ${values.size}px into ${root}`);
  execFileSync(
    process.execPath,
    [cli, 'synth', '--out', root, '--count', String(count), '--size', String(values.size), '--seed', '7', '--force'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
}
const configFile = path.join(root, 'bench-feed.config.json');
const raw = {
  data: { csv: 'galaxy_df_final.csv', imageDir: 'images' },
  image: { width: Number(values.image), height: Number(values.image) },
  cache: { dir: 'cache' },
  memory: { limitMB: 8192 },
  train: { batchSize: 32 },
};
writeFileSync(configFile, JSON.stringify(raw, null, 2));
const config = validateConfig(raw, configFile, root);

const plan = planMemory(config, measureData(config));
const prepared = await runPrepare(config, { output, plan });
const backend = await selectBackend(values.backend as BackendName, output);
output.info('measuring the feed alone…');
const feed = await measureFeed(config, prepared.cacheDir, {
  epochs: Number(values.epochs),
  settings: feedSettings(plan),
});
output.info(
  `feed: ${feed.imagesPerSecond.toFixed(0)} images/s (${feed.images} images in ${feed.seconds.toFixed(2)} s; split ${feed.splitSeconds.toFixed(2)} s; shuffle buffer ${feed.shuffleBufferRecords} records)`,
);
output.info(
  `measuring training (notebook CNN ${config.model.filters.join('/')}, dense ${config.model.denseUnits}) on ${backend.name}…`,
);
const training = await measureTraining(config, prepared.cacheDir, {
  batches: Number(values['train-batches']),
  settings: feedSettings(plan),
});
const ratio = training.imagesPerSecond > 0 ? feed.imagesPerSecond / training.imagesPerSecond : Number.POSITIVE_INFINITY;
output.info(
  `training: ${training.imagesPerSecond.toFixed(1)} images/s; feed/training = ${ratio.toFixed(0)}x (target >= 20x)`,
);
process.stdout.write(
  `${JSON.stringify({
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.versions.node },
    images: prepared.images,
    image: `${config.image.width}x${config.image.height}`,
    feed: { ...feed, imagesPerSecond: Math.round(feed.imagesPerSecond) },
    train: { ...training, backend: backend.name },
    ratio: Math.round(ratio * 10) / 10,
  })}\n`,
);
