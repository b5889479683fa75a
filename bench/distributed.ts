/**
 * Distributed tuning benchmark (issue 16).
 *
 *   flock /work/bench.lock node --import tsx bench/distributed.ts [--trials 8] [--repeats 1]
 *
 * The same RandomSearch (examples/demo.config.json's data, model and space, `threads: 1`, wasm,
 * `--trials` trials) run by a chief (`galactic tune --queue`) with 1 and then 2 `galactic worker`
 * processes on this machine, against a real redis-server on a free loopback port started here.
 * Reports per worker count: wall seconds of the chief (prepare is done beforehand and is a cache
 * hit), the speed-up of 2 workers over 1 against the ideal 2x, and the queue's hand-off overhead
 * per trial: the chief's round trip (job added -> completion seen) minus the trial's time on its
 * worker, as a share of the median trial. Prints a table and one JSON line.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../', import.meta.url));
const cli = path.join(repo, 'bin/galactic.js');
const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const trialsWanted = Number(flag('--trials', '8'));
const repeats = Number(flag('--repeats', '1'));
const env = { ...process.env, NO_COLOR: '1', GALACTIC_FROM_SOURCE: '1' };

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const work = mkdtempSync(path.join(os.tmpdir(), 'galactic-bench-distributed-'));
const demo = JSON.parse(readFileSync(path.join(repo, 'examples/demo.config.json'), 'utf8'));
function configFor(dir: string): string {
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
      cache: { dir: path.join(work, 'cache') },
      threads: 1,
      backend: 'wasm',
      tuner: { ...demo.tuner, maxTrials: trialsWanted, dir: path.join(work, dir) },
      runs: { ...demo.runs, dir: path.join(work, 'runs') },
    }),
  );
  return file;
}

function startWorker(config: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [cli, 'worker', '--queue', `redis://127.0.0.1:${port}`, '--config', config], {
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

async function main(): Promise<void> {
  const port = await freePort();
  mkdirSync(path.join(work, 'redis'));
  const redis = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      path.join(work, 'redis'),
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    { stdio: 'ignore' },
  );
  await new Promise((resolve) => setTimeout(resolve, 500));
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
        const children = await Promise.all(Array.from({ length: workers }, () => startWorker(config, port)));
        const started = performance.now();
        const chief = spawnSync(
          process.execPath,
          [cli, 'tune', '--config', config, '--queue', `redis://127.0.0.1:${port}`, '--json'],
          { env, encoding: 'utf8', maxBuffer: 1 << 26 },
        );
        const seconds = (performance.now() - started) / 1000;
        for (const child of children) child.kill('SIGTERM');
        await Promise.all(
          children.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.on('exit', resolve)))),
        );
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
    redis.kill('SIGTERM');
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
