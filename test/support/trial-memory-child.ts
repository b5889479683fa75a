import { loadConfig } from '../../src/config/load.ts';
import { measureTrialMemory } from '../../src/bench/trial-memory.ts';
import type { BackendName } from '../../src/model/backend.ts';

/**
 * Child of trial-memory.test.ts: a real search in this process (time plan, then the listed trials),
 * printing each trial's estimate and measured peak RSS as one JSON line.
 *   trial-memory-child.ts <config> <backend> <trials JSON> <epochs>
 */
const [configFile, backend, trials, epochs] = process.argv.slice(2);
const run = await measureTrialMemory({
  config: loadConfig(configFile),
  backend: backend as BackendName,
  trials: JSON.parse(trials),
  epochs: Number(epochs),
  timePlan: true,
});
process.stdout.write(`${JSON.stringify(run)}\n`);
