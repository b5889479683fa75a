/**
 * Tuner memory benchmark (issue 6).
 *
 *   node --import tsx bench/tune.ts [estimate] [flat] [--trials 30] [--backend wasm]
 *
 * estimate  one trial per model size, each in a fresh child process at 128x128, batch 32, one
 *           epoch; the child's peak RSS (VmHWM) is compared with estimateTrialMemory (goal: within 30%).
 * flat      30 trials of a fixed-size model (only learning_rate varies) at 32x32 in one tuner
 *           process: per-trial peak RSS (trial 30 vs trial 3, goal: within 10%) and
 *           tf.memory().numTensors after every trial (goal: back to its baseline).
 * Data: synthetic images made with `galactic synth` and prepared with `galactic prepare` under a
 * temp folder. Prints a table and one JSON line per part.
 */
import { planMemory } from '../src/memory/plan.ts';
import { measureData } from '../src/ingest/data-facts.ts';
import { feedSettings } from '../src/data/feed.ts';
import { trialRefusal } from '../src/memory/refusals.ts';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { loadConfig, type LoadedConfig } from '../src/config/load.ts';
import { hashString } from '../src/core/rng.ts';
import { loadManifest } from '../src/data/cache-access.ts';
import { estimateTrialMemory, wasmHeapRefusal } from '../src/memory/trial-estimate.ts';
import { selectBackend, type BackendName } from '../src/model/backend.ts';
import type { HyperparameterValues } from '../src/tune/hyperparameters.ts';
import { createOracle, describeSearch } from '../src/tune/search-setup.ts';
import { TrainerTrialRunner } from '../src/tune/trainer-runner.ts';
import type { TrialRunner } from '../src/tune/trial-runner.ts';
import { runTuner } from '../src/tune/tuner.ts';

const here = fileURLToPath(import.meta.url);
const cli = fileURLToPath(new URL('../bin/galactic.js', import.meta.url));
const work = path.join(os.tmpdir(), 'galactic-bench-tune');
const MiB = 1024 * 1024;

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const backend = flag('--backend', 'wasm') as BackendName;

function peakRssMB(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

/** Synthetic data + config + prepared cache for one image size; reused across bench runs. */
function dataset(size: number, count: number, extra: Record<string, unknown>): string {
  const dir = path.join(work, `s${size}-n${count}`);
  const configFile = path.join(dir, `config-${hashString(JSON.stringify(extra)).toString(16)}.json`);
  if (!existsSync(path.join(dir, 'data', 'galaxy_df_final.csv'))) {
    mkdirSync(dir, { recursive: true });
    execFileSync(
      process.execPath,
      [
        cli,
        'synth',
        '--out',
        path.join(dir, 'data'),
        '--count',
        String(count),
        '--size',
        String(size),
        '--seed',
        '11',
        '--force',
      ],
      { stdio: 'inherit' },
    );
  }
  writeFileSync(
    configFile,
    JSON.stringify({
      data: { csv: 'data/galaxy_df_final.csv', imageDir: 'data/images' },
      image: { width: size, height: size },
      cache: { dir: 'cache' },
      memory: { limitMB: 4096 },
      backend,
      ...extra,
    }),
  );
  execFileSync(process.execPath, [cli, 'prepare', '--config', configFile, '-q'], { stdio: 'inherit' });
  return configFile;
}

function estimateFor(config: LoadedConfig, cacheDir: string, values: HyperparameterValues) {
  const manifest = loadManifest(cacheDir);
  const trainRecords = Math.ceil(manifest.totals.images * (1 - config.split.validation));
  return estimateTrialMemory({
    values,
    config,
    plan: planMemory(config, measureData(config)),
    numClasses: manifest.classes.length,
    trainRecords,
  });
}

function cacheDirOf(config: LoadedConfig): string {
  const out = execFileSync(process.execPath, [cli, 'prepare', '--config', config.configPath, '--json', '-q'], {
    encoding: 'utf8',
  });
  return (JSON.parse(out) as { cacheDir: string }).cacheDir;
}

/** Child: one real trial (one epoch) and its process peak RSS. */
async function childTrial(configFile: string, cacheDir: string, valuesJson: string): Promise<void> {
  const config = loadConfig(configFile);
  await selectBackend(backend);
  const baseline = peakRssMB();
  const values = JSON.parse(valuesJson) as HyperparameterValues;
  const runner = new TrainerTrialRunner({
    config,
    cacheDir,
    feedSettings: feedSettings(planMemory(config, measureData(config))),
  });
  const records: number[] = [];
  await runner.run({
    trialId: 'bench',
    values,
    epochs: 1,
    initialEpoch: 0,
    checkpoint: null,
    onEpochEnd: async ({ record, saveCheckpoint }) => {
      records.push(record.imagesPerSecond);
      await saveCheckpoint(path.join(work, 'bench-checkpoint'));
      return 'continue';
    },
  });
  // Where the memory lives: the wasm backend's heap only grows, so its size is its high-water mark.
  const wasmHeap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.byteLength ?? 0;
  const usage = process.memoryUsage();
  process.stdout.write(
    `${JSON.stringify({
      peakRssMB: peakRssMB(),
      runtimeMB: baseline,
      imagesPerSecond: records[0],
      wasmHeapMB: wasmHeap / MiB,
      jsHeapMB: usage.heapUsed / MiB,
      arrayBuffersMB: usage.arrayBuffers / MiB,
    })}\n`,
  );
}

async function benchEstimate(): Promise<void> {
  const rows: Record<string, unknown>[] = [];
  for (const batchSize of [8, 32]) rows.push(...(await estimateRows(batchSize)));
  console.log('\nestimate vs measured peak RSS (128x128, 1 epoch with a checkpoint, backend ' + backend + ')');
  console.log('model                    batch    params   estimate  measured  error  wasm heap');
  for (const r of rows) {
    const measured =
      r.peakRssMB === null
        ? `  ${String(r.note)}`
        : `${String(r.peakRssMB).padStart(6)} MB  ${String(r.errorPct).padStart(5)}%  ${String(r.wasmHeapMB)} MB (est. tensors ${String(r.tensorMB)} MB)`;
    console.log(
      `${String(r.model).padEnd(24)} ${String(r.batch).padStart(5)} ${String(r.parameters).padStart(9)}  ${String(r.estimateMB).padStart(6)} MB ${measured}`,
    );
  }
  console.log(JSON.stringify({ part: 'estimate', backend, rows }));
}

async function estimateRows(batchSize: number): Promise<Record<string, unknown>[]> {
  const configFile = dataset(128, 120, { train: { batchSize }, feed: { prefetch: 2 } });
  const config = loadConfig(configFile);
  const cacheDir = cacheDirOf(config);
  const sizes: { name: string; values: HyperparameterValues }[] = [
    {
      name: 'small 16/32/64 d32',
      values: { filters_1: 16, filters_2: 32, filters_3: 64, dense_units: 32, learning_rate: 1e-3 },
    },
    {
      name: 'notebook 32/64/128 d64',
      values: { filters_1: 32, filters_2: 64, filters_3: 128, dense_units: 64, learning_rate: 1e-3 },
    },
    {
      name: 'large 64/128/256 d256',
      values: { filters_1: 64, filters_2: 128, filters_3: 256, dense_units: 256, learning_rate: 1e-3 },
    },
  ];
  const rows: Record<string, unknown>[] = [];
  for (const size of sizes) {
    const estimate = estimateFor(config, cacheDir, size.values);
    const components = Object.fromEntries(estimate.components.map((c) => [c.name, Math.round(c.bytes / MiB)]));
    const tensorMB = Math.round(estimate.tensorBytes / MiB);
    if (backend === 'wasm' && wasmHeapRefusal(estimate)) {
      // the tuner records this trial INFEASIBLE; running it would abort the wasm module
      rows.push({
        model: size.name,
        parameters: estimate.parameters,
        estimateMB: estimate.totalMB,
        tensorMB,
        peakRssMB: null,
        errorPct: null,
        note: 'INFEASIBLE: tensors beyond the 4 GiB wasm heap',
        components,
      });
      continue;
    }
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', here, 'child', configFile, cacheDir, JSON.stringify(size.values), '--backend', backend],
      { encoding: 'utf8' },
    );
    if (child.status !== 0) {
      rows.push({
        model: size.name,
        parameters: estimate.parameters,
        estimateMB: estimate.totalMB,
        tensorMB,
        peakRssMB: null,
        errorPct: null,
        note: `child failed: ${
          child.stderr
            .split('\n')
            .filter((l) => /Error/.test(l))
            .slice(-1)[0] ?? child.status
        }`,
        components,
      });
      continue;
    }
    const measured = JSON.parse(child.stdout.trim().split('\n').pop()!) as {
      peakRssMB: number;
      runtimeMB: number;
      imagesPerSecond: number;
      wasmHeapMB: number;
      arrayBuffersMB: number;
    };
    const errorPct = (100 * (estimate.totalMB - measured.peakRssMB)) / measured.peakRssMB;
    rows.push({
      model: size.name,
      parameters: estimate.parameters,
      estimateMB: estimate.totalMB,
      tensorMB,
      peakRssMB: Math.round(measured.peakRssMB),
      errorPct: Math.round(errorPct * 10) / 10,
      runtimeAfterBackendMB: Math.round(measured.runtimeMB),
      wasmHeapMB: Math.round(measured.wasmHeapMB),
      arrayBuffersMB: Math.round(measured.arrayBuffersMB),
      components,
    });
  }
  return rows.map((r) => ({ batch: batchSize, ...r }));
}

async function benchFlat(trials: number): Promise<void> {
  const configFile = dataset(32, 160, {
    train: { batchSize: 16 },
    model: { filters: [8, 16, 16], denseUnits: 16 },
    tuner: {
      maxTrials: trials,
      epochs: 1,
      patience: null,
      dir: path.join(work, 'flat-tuning'),
      space: {
        filters_1: { type: 'fixed', value: 8 },
        filters_2: { type: 'fixed', value: 16 },
        filters_3: { type: 'fixed', value: 16 },
        dense_units: { type: 'fixed', value: 16 },
        learning_rate: { type: 'float', min: 1e-4, max: 1e-2, sampling: 'log' },
      },
    },
  });
  const config = loadConfig(configFile);
  const cacheDir = cacheDirOf(config);
  await selectBackend(backend);
  const search = describeSearch(config, path.basename(cacheDir));
  const plan = planMemory(config, measureData(config));
  const inner = new TrainerTrialRunner({ config, cacheDir, feedSettings: feedSettings(plan) });
  const perTrial: {
    peakRssMB: number;
    numTensors: number;
    rssAfterMB: number;
    heapUsedMB: number;
    wasmHeapMB: number;
    externalMB: number;
  }[] = [];
  const wasmHeapMB = () =>
    ((tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.byteLength ?? 0) / MiB;
  const gc = (globalThis as { gc?: () => void }).gc;
  const baselineTensors = tf.memory().numTensors;
  const runner: TrialRunner = {
    run: async (request) => {
      let peak = 0;
      try {
        return await inner.run({
          ...request,
          onEpochEnd: (info) => {
            peak = Math.max(peak, info.record.peakRssMB);
            return request.onEpochEnd(info);
          },
        });
      } finally {
        gc?.(); // with --expose-gc: separates garbage not yet collected from memory still referenced
        const usage = process.memoryUsage();
        perTrial.push({
          peakRssMB: peak,
          numTensors: tf.memory().numTensors,
          rssAfterMB: Math.round(usage.rss / MiB),
          heapUsedMB: Math.round(usage.heapUsed / MiB),
          wasmHeapMB: Math.round(wasmHeapMB()),
          externalMB: Math.round(usage.external / MiB),
        });
      }
    },
  };
  const started = performance.now();
  const summary = await runTuner({
    dir: config.tuner.dir,
    search,
    runner,
    overwrite: true,
    createOracle: (state) => createOracle(search, config, {}, state),
    estimate: (values) => {
      const e = estimateFor(config, cacheDir, values);
      return { estimateMB: e.totalMB, refusal: trialRefusal(plan, e) };
    },
  });
  const seconds = (performance.now() - started) / 1000;
  const t3 = perTrial[2]?.peakRssMB ?? Number.NaN;
  const tLast = perTrial[perTrial.length - 1]?.peakRssMB ?? Number.NaN;
  const driftPct = (100 * (tLast - t3)) / t3;
  const tensorsFlat = perTrial.every((p) => p.numTensors === baselineTensors);
  console.log(
    `\nflat memory: ${summary.completed} trials of a fixed-size model at 32x32 in ${seconds.toFixed(1)} s (backend ${backend})`,
  );
  console.log(`per-trial peak RSS MB: ${perTrial.map((p) => Math.round(p.peakRssMB)).join(' ')}`);
  console.log(
    `trial 3 ${t3.toFixed(1)} MB, trial ${perTrial.length} ${tLast.toFixed(1)} MB: ${driftPct >= 0 ? '+' : ''}${driftPct.toFixed(1)}%`,
  );
  console.log(`after each trial${gc ? ' (after gc)' : ''}: rss ${perTrial.map((p) => p.rssAfterMB).join(' ')}`);
  console.log(`  js heap used ${perTrial.map((p) => p.heapUsedMB).join(' ')}`);
  console.log(
    `  wasm heap ${perTrial.map((p) => p.wasmHeapMB).join(' ')}; external ${perTrial.map((p) => p.externalMB).join(' ')}`,
  );
  console.log(
    `numTensors after every trial = baseline ${baselineTensors}: ${tensorsFlat} (${perTrial.map((p) => p.numTensors).join(' ')})`,
  );
  console.log(
    JSON.stringify({
      part: 'flat',
      backend,
      trials: perTrial.length,
      trial3PeakRssMB: t3,
      lastPeakRssMB: tLast,
      driftPct: Math.round(driftPct * 10) / 10,
      baselineTensors,
      tensorsFlat,
      seconds: Math.round(seconds),
    }),
  );
}

if (args[0] === 'child') {
  await childTrial(args[1], args[2], args[3]);
} else {
  const parts = args.filter((a) => a === 'estimate' || a === 'flat');
  const run = parts.length ? parts : ['estimate', 'flat'];
  if (args.includes('--clean')) rmSync(work, { recursive: true, force: true });
  if (run.includes('estimate')) await benchEstimate();
  if (run.includes('flat')) await benchFlat(Number(flag('--trials', '30')));
}
