/**
 * galactic as a library, every stage once on a small synthetic set: synth -> config -> plan ->
 * prepare -> openCache -> createFeed -> train -> tune -> predict. Run it in a project where
 * galactic is installed (npm install galactic-0.1.0.tgz, or npm link galactic):
 *
 *   npx tsx library.ts [work-folder]
 *
 * It writes only into the work folder (a new temporary folder by default).
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  createFeed,
  openCache,
  planFor,
  predict,
  prepare,
  synth,
  tf,
  train,
  tune,
  validateConfig,
  version,
  type GalacticEvent,
} from 'galactic';

const work = path.resolve(process.argv[2] ?? mkdtempSync(path.join(os.tmpdir(), 'galactic-library-')));
// the stages are silent unless given a listener; this one prints their lines, not their progress
const onEvent = (event: GalacticEvent) => {
  if (event.type !== 'progress')
    console.log(`    ${event.type === 'warning' ? 'warning: ' : ''}${event.message.split('\n')[0]}`);
};

console.log(`galactic ${version}, tfjs ${tf.version.tfjs}, working in ${work}`);

// 1. a data set: 120 synthetic galaxies in the Galaxy Zoo 2 layout
const data = await synth({ out: path.join(work, 'data'), count: 120, size: 64, seed: 7 });
console.log(`synth: ${data.images} images`);

// 2. a config, validated exactly as galactic.config.json files are (paths relative to `work`)
const config = validateConfig(
  {
    data: {
      csv: 'data/galaxy_df_final.csv',
      imageDir: 'data/images',
      idColumn: 'asset_id',
      labelColumn: 'gz2class',
      classes: [
        { name: 'elliptical', match: '^E' },
        { name: 'spiral', match: '^S' },
        { name: 'artifact', match: '^A' },
      ],
    },
    image: { width: 24, height: 24, channels: 3, fit: 'fill' },
    cache: { dir: 'cache' },
    memory: { limitMB: 1024 },
    model: { filters: [8, 16], kernelSize: 3, denseUnits: 16, learningRate: 0.003 },
    train: { batchSize: 16, epochs: 2 },
    tuner: { maxTrials: 2, epochs: 1, dir: 'tuning' },
    runs: { dir: 'runs', name: 'library' },
  },
  'examples/library.ts',
  work,
);

// 3. the memory plan for that budget
const plan = planFor(config); // planMemory(config, measureData(config)): the CSV's rows size the id tables
console.log(
  `plan: peak ${Math.round(plan.totalBytes / 2 ** 20)} MB of ${config.memory.limitMB} MB, ${plan.decodeConcurrency} decodes in flight`,
);

// 4. prepare: CSV + images -> sharded cache (a second call is a cache hit)
const prepared = await prepare(config, { onEvent });
const rejected = Object.values(prepared.rejected).reduce((sum, n) => sum + n, 0);
console.log(
  `prepare: ${prepared.images} images in ${prepared.shards} shards, ${rejected} rejected, cache hit ${prepared.cacheHit}`,
);

// 5. the cache itself: manifest and shards
const cache = openCache(prepared.cacheDir);
const shard = await cache.readShard(0);
console.log(
  `openCache: classes ${cache.manifest.classes.join(', ')}; shard 0 holds ${shard.ids.length} images of ${shard.shape.slice(1).join('x')}`,
);

// 6. the tf.data feed the trainer uses (selects the tfjs backend first: tfjs-node, wasm or cpu)
const { train: trainSet, feed } = await createFeed(config, prepared.cacheDir, { onEvent });
const first = await trainSet.take(1).toArray();
console.log(
  `createFeed: ${feed.trainBatchCount} training batches per epoch; the first is xs [${first[0]!.xs.shape.join(', ')}], ys [${first[0]!.ys.shape.join(', ')}]`,
);
tf.dispose(first);

// 7. train: writes runs/library/ (model.json, weights.bin, metadata.json, history, metrics)
const trained = await train(config, { cacheDir: prepared.cacheDir, onEvent });
console.log(
  `train: ${trained.epochs} epochs on ${trained.backend}, val_accuracy ${trained.valAccuracy.toFixed(3)} -> ${trained.runDir}`,
);

// 8. tune: a two-trial RandomSearch, resumable; best values in tuning/best_hp.json
const search = await tune(config, { cacheDir: prepared.cacheDir, algorithm: 'random', onEvent });
console.log(
  `tune: ${search.completed} of ${search.trials} trials completed; best ${search.best ? search.best.score.toFixed(3) : 'none'}`,
);

// 9. predict: class and probabilities per image, through training's decode and normalization
const images = readdirSync(path.join(work, 'data', 'images'))
  .slice(0, 3)
  .map((name) => path.join(work, 'data', 'images', name));
for (const p of await predict(trained.runDir, images)) {
  console.log(`predict: ${path.basename(p.file)} -> ${'error' in p ? `error ${p.error}` : p.class}`);
}
