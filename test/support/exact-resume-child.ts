import os from 'node:os';
import { Output } from '../../src/core/console.ts';
import { validateConfig } from '../../src/config/load.ts';
import { selectBackend } from '../../src/model/backend.ts';
import { createOracle, describeSearch } from '../../src/tune/search-setup.ts';
import { TrainerTrialRunner } from '../../src/tune/trainer-runner.ts';
import type { TrialRunner } from '../../src/tune/trial-runner.ts';
import { runTuner } from '../../src/tune/tuner.ts';

/**
 * Child process for the exact-resume test: one 4-epoch trial on the fixture cache at argv[2],
 * tuning folder argv[3], on backend argv[4]. With KILL_AFTER=<n> it SIGKILLs itself once the
 * tuner has saved epoch n (checkpoint, trial.json): no cleanup, the lock left behind.
 */
const [cacheDir, tuningDir, backend] = process.argv.slice(2) as [string, string, 'wasm' | 'cpu'];
const killAfter = process.env.KILL_AFTER ? Number(process.env.KILL_AFTER) : null;
await selectBackend(backend);
const config = validateConfig(
  {
    data: { csv: 'none.csv', imageDir: 'images' },
    image: { width: 16, height: 16 },
    memory: { limitMB: 2048 },
    seed: 7,
    train: { batchSize: 4 },
    feed: { shuffleBuffer: 24, prefetch: 1 },
    model: { filters: [4, 8], denseUnits: 8, dropout: 0.25 },
    tuner: {
      maxTrials: 1,
      epochs: 4,
      patience: null,
      dir: tuningDir,
      space: { learning_rate: { type: 'float', min: 1e-3, max: 1e-2, sampling: 'log' } },
    },
  },
  '<test>',
  os.tmpdir(),
);
const search = describeSearch(config, 'fixture');
const inner = new TrainerTrialRunner({
  config,
  cacheDir,
  feedSettings: { batchSize: 4, shuffleBufferRecords: 24, prefetchBatches: 1 },
});
const runner: TrialRunner = {
  run: (request) =>
    inner.run({
      ...request,
      onEpochEnd: async (info) => {
        const verdict = await request.onEpochEnd(info);
        if (info.record.epoch === killAfter) process.kill(process.pid, 'SIGKILL');
        return verdict;
      },
    }),
};
const summary = await runTuner({
  dir: tuningDir,
  search,
  runner,
  createOracle: (state) => createOracle(search, config, {}, state),
  estimate: () => ({ estimateMB: 100, refusal: null }),
  output: new Output(),
});
process.stdout.write(`${JSON.stringify({ completed: summary.completed })}\n`);
