/**
 * Distributed tuning and cache building benchmark (issue 16).
 *
 *   flock /work/bench.lock node --import tsx bench/distributed.ts [--trials 8] [--repeats 1]
 *   flock /work/bench.lock node --import tsx bench/distributed.ts --stage prepare [--repeats 1] [--range-rows 250]
 *
 * The same RandomSearch (examples/demo.config.json's data, model and space, `threads: 1`, wasm,
 * `--trials` trials) run by a chief (`galactic tune --queue`) with 1 and then 2 `galactic worker`
 * processes on this machine, against a real redis-server on a free loopback port started here.
 * Reports per worker count: wall seconds of the chief (prepare is done beforehand and is a cache
 * hit), the speed-up of 2 workers over 1 against the ideal 2x, and the queue's hand-off overhead
 * per trial: the chief's round trip (job added -> completion seen) minus the trial's time on its
 * worker, as a share of the median trial. Prints a table and one JSON line.
 *
 * `--stage prepare`: the demo data's cache built by a single-process `galactic prepare` and by
 * `galactic prepare --queue` with 2 `galactic worker` processes (wall seconds of each, the
 * distributed cache checked byte for byte against the single one). Redis is the tests' own
 * (test/support/redis-server.ts).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis } from '../test/support/redis-server.ts';

const repo = fileURLToPath(new URL('../', import.meta.url));
const cli = path.join(repo, 'bin/galactic.js');
const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const trialsWanted = Number(flag('--trials', '8'));
const repeats = Number(flag('--repeats', '1'));
const stage = flag('--stage', 'tune');
const rangeRows = flag('--range-rows', '250');
const env = { ...process.env, NO_COLOR: '1', GALACTIC_FROM_SOURCE: '1' };

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const work = mkdtempSync(path.join(os.tmpdir(), 'galactic-bench-distributed-'));
const demo = JSON.parse(readFileSync(path.join(repo, 'examples/demo.config.json'), 'utf8'));
function configFor(dir: string, cacheDir = 'cache'): string {
  const file = path.join(work, `${dir}.config.json`);
  writeFileSync(
    file,
    JSON.stringify({
      ...demo,
      $schema: undefined,
      data: {
        ...demo.data,
        csv: path.join(repo, 'data/demo/galaxy_df_final.csv'),
        imageDir: path.join(repo, 'data/demo/images'),
      },
      cache: { dir: path.join(work, cacheDir) },
      threads: 1,
      backend: 'wasm',
      tuner: { ...demo.tuner, maxTrials: trialsWanted, dir: path.join(work, dir) },
      runs: { ...demo.runs, dir: path.join(work, 'runs') },
    }),
  );
  return file;
}

function startWorker(config: string, url: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [cli, 'worker', '--queue', url, '--config', config], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let text = '';
    child.stderr!.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('serving the random search')) resolve(child);
    });
    child.on('exit', () => reject(new Error(`worker exited:\n${text}`)));
  });
}

async function stopAll(children: ChildProcess[]): Promise<void> {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(
    children.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.on('exit', resolve)))),
  );
}

function cacheFiles(cacheRoot: string): Map<string, Buffer> {
  const [key] = readdirSync(cacheRoot).filter((name) => !name.startsWith('.'));
  const dir = path.join(cacheRoot, key);
  return new Map(
    readdirSync(dir)
      .filter((f) => f.startsWith('shard-') || f === 'rejects.jsonl')
      .map((f) => [f, readFileSync(path.join(dir, f))]),
  );
}

function timed(argv: string[]): number {
  const started = performance.now();
  const run = spawnSync(process.execPath, [cli, ...argv], { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (run.status !== 0) throw new Error(run.stderr);
  return (performance.now() - started) / 1000;
}

async function benchPrepare(url: string): Promise<void> {
  const rows: { repeat: number; singleSeconds: number; twoWorkerSeconds: number }[] = [];
  for (let repeat = 0; repeat < repeats; repeat++) {
    const singleSeconds = timed(['prepare', '-q', '--config', configFor(`single-${repeat}`, `cache-single-${repeat}`)]);
    const config = configFor(`queue-${repeat}`, `cache-queue-${repeat}`);
    const children = await Promise.all([startWorker(config, url), startWorker(config, url)]);
    let twoWorkerSeconds: number;
    try {
      twoWorkerSeconds = timed(['prepare', '-q', '--config', config, '--queue', url, '--range-rows', rangeRows]);
    } finally {
      await stopAll(children);
    }
    const single = cacheFiles(path.join(work, `cache-single-${repeat}`));
    const queued = cacheFiles(path.join(work, `cache-queue-${repeat}`));
    const same = single.size === queued.size && [...single].every(([f, bytes]) => queued.get(f)?.equals(bytes));
    if (!same) throw new Error('the distributed cache differs from the single-process one');
    rows.push({ repeat, singleSeconds, twoWorkerSeconds });
    process.stderr.write(
      `repeat ${repeat + 1}: single ${singleSeconds.toFixed(1)} s, 2 workers ${twoWorkerSeconds.toFixed(1)} s (identical)\n`,
    );
  }
  const result = {
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}`,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    images: demo.data.synthesize,
    rangeRows: Number(rangeRows),
    repeats,
    singleSeconds: Math.round(median(rows.map((r) => r.singleSeconds)) * 10) / 10,
    twoWorkerSeconds: Math.round(median(rows.map((r) => r.twoWorkerSeconds)) * 10) / 10,
    runs: rows,
  };
  process.stdout.write(
    `| prepare | wall s (median of ${repeats}) |\n|---|---|\n| single process | ${result.singleSeconds} |\n| chief + 2 workers | ${result.twoWorkerSeconds} |\n`,
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

async function main(): Promise<void> {
  const redis = await startRedis();
  if (stage === 'prepare') {
    try {
      await benchPrepare(redis.url);
    } finally {
      await redis.stop();
      rmSync(work, { recursive: true, force: true });
    }
    return;
  }
  const rows: { workers: number; repeat: number; seconds: number; trialSeconds: number[]; handoffMs: number[] }[] = [];
  try {
    const prepared = spawnSync(process.execPath, [cli, 'prepare', '--config', configFor('prepare')], {
      env,
      encoding: 'utf8',
    });
    if (prepared.status !== 0) throw new Error(prepared.stderr);
    for (let repeat = 0; repeat < repeats; repeat++) {
      for (const workers of [1, 2]) {
        const dir = `tuning-${workers}-${repeat}`;
        const config = configFor(dir);
        const children = await Promise.all(Array.from({ length: workers }, () => startWorker(config, redis.url)));
        const started = performance.now();
        const chief = spawnSync(process.execPath, [cli, 'tune', '--config', config, '--queue', redis.url, '--json'], {
          env,
          encoding: 'utf8',
          maxBuffer: 1 << 26,
        });
        const seconds = (performance.now() - started) / 1000;
        await stopAll(children);
        if (chief.status !== 0) throw new Error(chief.stderr);
        const summary = JSON.parse(chief.stdout);
        const oracle = JSON.parse(readFileSync(path.join(work, dir, 'oracle.json'), 'utf8'));
        const trialSeconds = oracle.state.trials.map(
          (t: { id: string }) =>
            JSON.parse(readFileSync(path.join(work, dir, `trial_${t.id}`, 'trial.json'), 'utf8')).seconds as number,
        );
        rows.push({ workers, repeat, seconds, trialSeconds, handoffMs: summary.queue.handoffMs });
        process.stderr.write(
          `${workers} worker(s), repeat ${repeat + 1}: ${seconds.toFixed(1)} s for ${summary.trials} trials\n`,
        );
      }
    }
  } finally {
    await redis.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const wall = (n: number) => median(rows.filter((r) => r.workers === n).map((r) => r.seconds));
  const trialMedian = median(rows.flatMap((r) => r.trialSeconds));
  const handoff = rows.flatMap((r) => r.handoffMs);
  const speedUp = wall(1) / wall(2);
  const result = {
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}`,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    trials: trialsWanted,
    repeats,
    wallSeconds: { one: Math.round(wall(1) * 10) / 10, two: Math.round(wall(2) * 10) / 10 },
    speedUp: Math.round(speedUp * 100) / 100,
    ofIdeal: Math.round((speedUp / 2) * 1000) / 10,
    medianTrialSeconds: Math.round(trialMedian * 100) / 100,
    handoffMs: { median: Math.round(median(handoff)), max: Math.round(Math.max(...handoff)) },
    handoffShareOfTrial: Math.round((median(handoff) / 1000 / trialMedian) * 10000) / 100,
    runs: rows,
  };
  process.stdout.write(
    `| workers | wall s | speed-up | of ideal 2x |\n|---|---|---|---|\n| 1 | ${result.wallSeconds.one} | 1.00 | - |\n| 2 | ${result.wallSeconds.two} | ${result.speedUp} | ${result.ofIdeal}% |\n`,
  );
  process.stdout.write(
    `hand-off per trial: median ${result.handoffMs.median} ms, max ${result.handoffMs.max} ms = ${result.handoffShareOfTrial}% of the median trial (${result.medianTrialSeconds} s)\n`,
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
