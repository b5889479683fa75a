/**
 * galactic against Keras, the seed's own stack, on the same machine in the same run (issue 12):
 *   node --import tsx bench/keras-compare.ts [--size 128] [--batch 32] [--steps 10] [--rounds 1]
 * Trains the notebook's CNN on one random batch per step in Keras (bench/keras_train.py) and in
 * galactic on every training backend that loads here (`galactic bench train --backend B`), each in
 * its own fresh process, back to back; with --rounds N the engines take turns N times and the
 * median rate counts. Prints a table with images/s and the ratio to Keras on stderr, one JSON line
 * on stdout. Keras is optional: the Python is GALACTIC_KERAS_PYTHON, else
 * ~/.cache/galactic/keras-venv/bin/python, else python3, whichever imports tensorflow; with none
 * the Keras column is skipped with a message. Run timed benchmarks under `flock /work/bench.lock`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeMachine, machineInfo } from '../src/bench/machine.ts';
import { availableBackends } from '../src/model/backend.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '128' },
    batch: { type: 'string', default: '32' },
    steps: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '1' },
  },
});
const settings = { size: Number(values.size), batch: Number(values.batch), steps: Number(values.steps) };
const rounds = Number(values.rounds);
const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, '..', 'bin', 'galactic.js');

interface Measured {
  imagesPerSecond: number;
  msPerStep: { median: number };
  cpuMsPerStep: number;
}

/** A Python that imports tensorflow, and its version; null (with the reason) when there is none. */
function findKerasPython(): { ok: true; python: string; version: string } | { ok: false; why: string } {
  const candidates = [
    process.env.GALACTIC_KERAS_PYTHON,
    path.join(os.homedir(), '.cache', 'galactic', 'keras-venv', 'bin', 'python'),
    'python3',
  ];
  for (const python of candidates) {
    if (!python || (python.includes(path.sep) && !existsSync(python))) continue;
    const r = spawnSync(python, ['-c', 'import tensorflow as tf; print(tf.__version__)'], {
      encoding: 'utf8',
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' },
    });
    if (r.status === 0) return { ok: true, python, version: r.stdout.trim() };
  }
  return {
    ok: false,
    why:
      'no Python with TensorFlow found (tried GALACTIC_KERAS_PYTHON, ~/.cache/galactic/keras-venv, python3). To compare, create a throwaway venv: ' +
      'python3 -m venv ~/.cache/galactic/keras-venv && ~/.cache/galactic/keras-venv/bin/pip install tensorflow-cpu==2.21.0',
  };
}

function runJson(command: string, args: string[]): Measured & Record<string, unknown> {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0)
    throw new Error(`${path.basename(command)} ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Measured & Record<string, unknown>;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const keras = findKerasPython();
if (!keras.ok) process.stderr.write(`keras-compare: Keras skipped: ${keras.why}\n`);
const backends = (await availableBackends()).filter((b) => b !== 'cpu');
const engines: { name: string; run: () => Measured & Record<string, unknown> }[] = [];
if (keras.ok) {
  const python = keras.python;
  engines.push({
    name: `keras (TensorFlow ${keras.version})`,
    run: () =>
      runJson(python, [
        path.join(here, 'keras_train.py'),
        '--size',
        String(settings.size),
        '--batch',
        String(settings.batch),
        '--steps',
        String(settings.steps),
      ]),
  });
}
for (const backend of backends) {
  engines.push({
    name: `galactic ${backend}`,
    run: () =>
      runJson(process.execPath, [
        cli,
        'bench',
        'train',
        '--backend',
        backend,
        '--size',
        String(settings.size),
        '--batch',
        String(settings.batch),
        '--steps',
        String(settings.steps),
        '--json',
      ]),
  });
}

const results = new Map<string, Measured[]>(engines.map((e) => [e.name, []]));
for (let round = 1; round <= rounds; round++) {
  for (const engine of engines) {
    process.stderr.write(`keras-compare: round ${round}/${rounds}: ${engine.name} ...`);
    const m = engine.run();
    results.get(engine.name)!.push(m);
    process.stderr.write(
      ` ${m.imagesPerSecond} images/s (median ${m.msPerStep.median} ms per step, ${m.cpuMsPerStep} CPU ms)\n`,
    );
  }
}

const rate = (name: string) => median(results.get(name)!.map((m) => m.imagesPerSecond));
const kerasName = engines.find((e) => e.name.startsWith('keras'))?.name;
const rows = engines.map((e) => ({
  engine: e.name,
  imagesPerSecond: Math.round(rate(e.name) * 10) / 10,
  rounds: results.get(e.name)!.map((m) => m.imagesPerSecond),
  cpuMsPerStep: Math.round(median(results.get(e.name)!.map((m) => m.cpuMsPerStep))),
  ratioToKeras: kerasName ? Math.round((rate(e.name) / rate(kerasName)) * 100) / 100 : null,
}));
const machine = machineInfo();
process.stderr.write(
  `\n${describeMachine(machine)}\nnotebook CNN, ${settings.size}x${settings.size}x3, batch ${settings.batch}, ${settings.steps} timed steps, ${rounds} round(s)\n\n`,
);
process.stderr.write(
  '| engine | images/s (median) | per round | CPU ms per step | x Keras |\n|---|---:|---|---:|---:|\n',
);
for (const r of rows)
  process.stderr.write(
    `| ${r.engine} | ${r.imagesPerSecond} | ${r.rounds.join(', ')} | ${r.cpuMsPerStep} | ${r.ratioToKeras ?? 'n/a'} |\n`,
  );
process.stdout.write(
  JSON.stringify({
    settings: { ...settings, rounds },
    keras: keras.ok ? { python: keras.python, tensorflow: keras.version } : { skipped: keras.why },
    results: rows,
    machine,
  }) + '\n',
);
