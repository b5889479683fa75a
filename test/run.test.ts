import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliPath, repoRoot, runCli } from './support/run-cli.ts';
import { withoutLibtensorflowNotice } from './support/libtensorflow-notice.ts';

/**
 * `galactic run` end to end on a tiny synthetic set (150 images at 32x32, 2 trials x 1 epoch,
 * 2 training epochs): killed mid-search and resumed, then again to check that every stage is
 * skipped, then with a changed training setting to check that only training and the report run.
 */

interface StageFlags {
  skipped: boolean;
}
interface RunJson {
  runDir: string;
  report: string;
  stages: Record<'data' | 'prepare' | 'tune' | 'train' | 'report', StageFlags & Record<string, unknown>>;
  // (tune carries ranNow and completed; train carries reason)
  seconds: number;
  peakRssMB: number;
  limitMB: number;
}

function skippedFlags(summary: RunJson): Record<string, boolean> {
  return Object.fromEntries(Object.entries(summary.stages).map(([name, s]) => [name, s.skipped]));
}

/**
 * Runs the CLI and SIGKILLs it once `done()` holds (checked every 100 ms); resolves with the ending signal or exit
 * code.
 */
function runUntil(args: string[], done: () => boolean): Promise<string | number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      cwd: repoRoot,
      stdio: 'ignore',
      env: { ...process.env, NO_COLOR: '1' },
    });
    const timer = setInterval(() => {
      if (done()) child.kill('SIGKILL');
    }, 100);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      resolve(signal ?? code);
    });
  });
}

function parseSummary(stdout: string): RunJson {
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 1, `stdout must hold only the --json summary, got:\n${stdout}`);
  return JSON.parse(lines[0]) as RunJson;
}

describe('galactic run', () => {
  let root: string;
  let configFile: string;
  const config = (train: { epochs: number }) => ({
    data: { csv: 'data/galaxy_df_final.csv', imageDir: 'data/images' },
    image: { width: 32, height: 32 },
    cache: { dir: 'cache' },
    memory: { limitMB: 2048 },
    seed: 7,
    model: { filters: [8, 16, 16], denseUnits: 16 },
    train: { batchSize: 32, epochs: train.epochs, earlyStopping: null },
    tuner: {
      maxTrials: 2,
      epochs: 1,
      dir: 'tuning',
      patience: null,
      space: {
        filters_1: { type: 'int', min: 4, max: 8, step: 4 },
        learning_rate: { type: 'float', min: 0.001, max: 0.01, sampling: 'log' },
      },
    },
    runs: { dir: 'runs', name: 'tiny' },
  });

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'galactic-run-'));
    const synth = await runCli([
      'synth',
      '--out',
      path.join(root, 'data'),
      '--count',
      '150',
      '--size',
      '64',
      '--seed',
      '3',
      '--quiet',
    ]);
    assert.equal(synth.code, 0, synth.stderr);
    configFile = path.join(root, 'run.config.json');
    writeFileSync(configFile, JSON.stringify(config({ epochs: 2 })));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('killed during the search, resumes it on the next run and finishes, writing every artefact', async () => {
    // SIGKILL as soon as the first trial is on disk as completed: no chance to clean up
    const firstTrial = path.join(root, 'tuning', 'trial_0000', 'trial.json');
    const killed = await runUntil(['run', '--config', configFile, '--quiet'], () => {
      try {
        return JSON.parse(readFileSync(firstTrial, 'utf8')).status === 'COMPLETED';
      } catch {
        return false;
      }
    });
    assert.equal(killed, 'SIGKILL', 'the run ended before the first trial completed');

    const result = await runCli(['run', '--config', configFile, '--json'], { timeoutMs: 240_000 });
    assert.equal(result.code, 0, result.stderr);
    const summary = parseSummary(result.stdout);
    // prepare finished before the kill; the search resumes with the trial it had not run
    assert.deepEqual(skippedFlags(summary), { data: true, prepare: true, tune: false, train: false, report: false });
    assert.equal(summary.stages.tune.ranNow, 1);
    assert.equal(summary.stages.tune.completed, 2);
    assert.equal(summary.limitMB, 2048);
    assert.ok(summary.peakRssMB > 0);

    const runDir = path.join(root, 'runs', 'tiny');
    assert.equal(summary.runDir, runDir);
    for (const file of [
      'model.json',
      'weights.bin',
      'metadata.json',
      'history.json',
      'metrics.json',
      'timeline.json',
      'report.html',
    ]) {
      assert.ok(existsSync(path.join(runDir, file)), `${file} is missing`);
    }
    const charts = readdirSync(path.join(runDir, 'charts'));
    for (const chart of [
      'loss',
      'accuracy',
      'leaderboard',
      'hp-filters_1',
      'hp-learning_rate',
      'confusion',
      'per-class',
      'memory',
      'throughput',
    ]) {
      assert.ok(charts.includes(`${chart}.svg`) && charts.includes(`${chart}.png`), `chart ${chart} is missing`);
    }
    for (const file of ['oracle.json', 'best_hp.json', 'trial_0000/trial.json', 'trial_0001/trial.json']) {
      assert.ok(existsSync(path.join(root, 'tuning', file)), `tuning/${file} is missing`);
    }
    const timeline = JSON.parse(readFileSync(path.join(runDir, 'timeline.json'), 'utf8'));
    assert.equal(timeline.limitMB, 2048);
    assert.ok(timeline.samples.length > 2);
    assert.deepEqual(
      timeline.stages.map((s: { name: string }) => s.name),
      ['data', 'prepare', 'tune', 'train'],
    );
    assert.ok(timeline.stages.find((s: { name: string }) => s.name === 'train').itemsPerSecond > 0);
    const html = readFileSync(summary.report, 'utf8');
    assert.match(html, /<img src="data:image\/png;base64,/);
    // piped stderr is not a TTY: plain lines only
    // eslint-disable-next-line no-control-regex -- looking for control characters
    assert.doesNotMatch(result.stderr, /\x1b|\r/);
    assert.match(result.stderr, /\[5\/5\] report/);
  });

  it('skips every stage the second time', async () => {
    const result = await runCli(['run', '--config', configFile, '--json']);
    assert.equal(result.code, 0, result.stderr);
    const summary = parseSummary(result.stdout);
    assert.deepEqual(skippedFlags(summary), { data: true, prepare: true, tune: true, train: true, report: true });
  });

  it('rewrites only the report when report.html is gone', async () => {
    rmSync(path.join(root, 'runs', 'tiny', 'report.html'));
    const result = await runCli(['run', '--config', configFile, '--json', '--quiet']);
    assert.equal(result.code, 0, result.stderr);
    const summary = parseSummary(result.stdout);
    assert.deepEqual(skippedFlags(summary), { data: true, prepare: true, tune: true, train: true, report: false });
    assert.ok(existsSync(summary.report));
  });

  it('prints nothing on stderr with --quiet', async () => {
    const result = await runCli(['run', '--config', configFile, '--json', '--quiet']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(withoutLibtensorflowNotice(result.stderr), '');
    parseSummary(result.stdout);
  });

  it('retrains (and reports) when a training setting changes, reusing the cache and the search', async () => {
    writeFileSync(configFile, JSON.stringify(config({ epochs: 3 })));
    const result = await runCli(['run', '--config', configFile, '--json', '--quiet'], { timeoutMs: 240_000 });
    assert.equal(result.code, 0, result.stderr);
    const summary = parseSummary(result.stdout);
    assert.deepEqual(skippedFlags(summary), { data: true, prepare: true, tune: true, train: false, report: false });
    assert.equal(summary.stages.train.reason, 'the config changed');
  });
});
