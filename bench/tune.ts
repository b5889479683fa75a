/**
 * Tuner memory benchmark (issue 6).
 *
 *   node --import tsx bench/tune.ts [estimate] [flat] [--trials 30] [--backend wasm] [--backends wasm,node]
 *           [--images 2000] [--epochs 1]
 *
 * estimate  per backend (--backends, default every training backend that loads), one child process
 *           runs a search as `galactic tune` does (src/bench/trial-memory.ts): the time plan's timed
 *           steps (rates measured afresh), then the first three trials of the notebook's search
 *           (seed 42) at 128x128, batch 32, on --images synthetic images, with validation and the
 *           tuner's checkpoints. Each trial's peak RSS (VmHWM, reset at its start) is compared with
 *           the estimate the tuner made just before it (goal: never below the peak, within 2x).
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
import { estimateTrialMemory } from '../src/memory/trial-estimate.ts';
import { availableBackends, selectBackend, type BackendName } from '../src/model/backend.ts';
import { measureTrialMemory, type TrialMemoryRun } from '../src/bench/trial-memory.ts';
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
    backend,
  });
}

function cacheDirOf(config: LoadedConfig): string {
  const out = execFileSync(process.execPath, [cli, 'prepare', '--config', config.configPath, '--json', '-q'], {
    encoding: 'utf8',
  });
  return (JSON.parse(out) as { cacheDir: string }).cacheDir;
}

/** The first `count` trials the notebook's search (pipeline.config.json's space, seed 42) schedules. */
function notebookTrials(config: LoadedConfig, count: number): HyperparameterValues[] {
  const search = describeSearch(config, 'bench');
  const oracle = createOracle(search, config, {});
  const trials: HyperparameterValues[] = [];
  for (let i = 0; i < count; i++) {
    const decision = oracle.next();
    if (decision.kind !== 'run') break;
    trials.push(decision.trial.values);
    oracle.report(decision.trial.id, 'COMPLETED', 0.5);
  }
  return trials;
}

/** Child: a search in this process, printing each trial's estimate and peak as one JSON line. */
async function childSearch(configFile: string, trials: string, epochs: string): Promise<void> {
  const run = await measureTrialMemory({
    config: loadConfig(configFile),
    backend,
    trials: JSON.parse(trials) as HyperparameterValues[],
    epochs: Number(epochs),
    timePlan: true,
  });
  process.stdout.write(`${JSON.stringify(run)}\n`);
}

async function benchEstimate(): Promise<void> {
  const images = Number(flag('--images', '2000'));
  const epochs = flag('--epochs', '1');
  const notebook = JSON.parse(readFileSync(new URL('../pipeline.config.json', import.meta.url), 'utf8')) as {
    tuner: { space: unknown };
  };
  const configFile = dataset(128, images, {
    train: { batchSize: 32 },
    memory: { limitMB: 8192 }, // the default budget, as in the runs
    tuner: { epochs: Number(epochs), dir: path.join(work, 'estimate-tuning'), space: notebook.tuner.space },
  });
  const config = loadConfig(configFile);
  const trials = notebookTrials(config, 3);
  const backends = flag('--backends', (await availableBackends()).filter((b) => b !== 'cpu').join(','))
    .split(',')
    .filter(Boolean);
  const rows: Record<string, unknown>[] = [];
  for (const name of backends) {
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', here, 'child', configFile, JSON.stringify(trials), epochs, '--backend', name],
      {
        encoding: 'utf8',
        // rates measured afresh, as on a first run: the time plan trains the space's dearest model in the process
        env: {
          ...process.env,
          XDG_CACHE_HOME: path.join(work, `xdg-${name}-${Date.now()}`),
          TF_CPP_MIN_LOG_LEVEL: '2',
        },
      },
    );
    if (child.status !== 0) {
      rows.push({ backend: name, error: child.stderr.split('\n').filter(Boolean).slice(-3).join(' | ') });
      continue;
    }
    const run = JSON.parse(child.stdout.trim().split('\n').pop()!) as TrialMemoryRun;
    for (const r of run.rows) {
      const v = r.values;
      rows.push({
        backend: name,
        trial: r.trialId || '-',
        model: `${String(v.filters_1)}/${String(v.filters_2)}/${String(v.filters_3)}, ${String(v.dense_units)}`,
        batch: config.train.batchSize,
        parameters: r.parameters,
        estimateMB: r.estimateMB,
        peakRssMB: r.peakRssMB,
        errorPct: r.peakRssMB > 0 ? Math.round((1000 * (r.estimateMB - r.peakRssMB)) / r.peakRssMB) / 10 : null,
        startRssMB: r.startRssMB,
        wasmHeapMB: r.wasmHeapMB,
        status: r.status,
        components: r.components,
        baselineRssMB: run.baselineRssMB,
        timePlanPeakMB: run.beforeTrialsPeakMB,
      });
    }
  }
  const load = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');
  console.log(
    `\nestimate vs measured per-trial peak RSS: 128x128, ${images} images, ${epochs} epoch(s) per trial, one search per backend (load average ${load})`,
  );
  console.log('backend trial  model (filters, dense)  batch    params  estimate    peak   error  start  wasm heap');
  for (const r of rows) {
    if (r.error) {
      console.log(`${String(r.backend).padEnd(7)} failed: ${String(r.error)}`);
      continue;
    }
    if (r.status !== 'completed') {
      console.log(
        `${String(r.backend).padEnd(7)} ${String(r.model).padEnd(29)} estimate ${String(r.estimateMB)} MB: ${String(r.status)}`,
      );
      continue;
    }
    console.log(
      `${String(r.backend).padEnd(7)} ${String(r.trial).padEnd(6)} ${String(r.model).padEnd(22)} ${String(r.batch).padStart(5)} ${String(r.parameters).padStart(9)} ${String(r.estimateMB).padStart(6)} MB ${String(r.peakRssMB).padStart(5)} MB ${String(r.errorPct).padStart(6)}% ${String(r.startRssMB).padStart(6)} ${String(r.wasmHeapMB).padStart(6)} MB`,
    );
  }
  console.log(JSON.stringify({ part: 'estimate', images, epochs: Number(epochs), loadAverage: os.loadavg(), rows }));
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
  await childSearch(args[1], args[2], args[3]);
} else {
  const parts = args.filter((a) => a === 'estimate' || a === 'flat');
  const run = parts.length ? parts : ['estimate', 'flat'];
  if (args.includes('--clean')) rmSync(work, { recursive: true, force: true });
  if (run.includes('estimate')) await benchEstimate();
  if (run.includes('flat')) await benchFlat(Number(flag('--trials', '30')));
}
