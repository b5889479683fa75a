import { runTuner } from '../../src/tune/tuner.ts';
import { FakeTrialRunner } from './fake-trial-runner.ts';
import { captureOutput, fakeTunerOptions } from './fake-tuner.ts';

/**
 * Child process for the SIGKILL test: runs the fake tuner on argv[2]; with KILL_AT=<trial>@<epoch>
 * the process SIGKILLs itself when it reaches that epoch (no cleanup, lock left behind).
 * Prints the summary as JSON on stdout and the tuner's stderr lines on stderr.
 */
const dir = process.argv[2]!;
const algorithm = (process.argv[3] ?? 'random') as 'random' | 'hyperband';
const killAt = process.env.KILL_AT ?? null;
const runner = new FakeTrialRunner({ fault: (trialId, epoch) => (`${trialId}@${epoch}` === killAt ? 'kill' : null) });
const { output, text } = captureOutput();
const summary = await runTuner(
  fakeTunerOptions({ dir, runner, algorithm, epochs: algorithm === 'hyperband' ? 9 : 6 }, output),
);
process.stderr.write(text());
process.stdout.write(`${JSON.stringify({ summary, starts: runner.starts, epochsRun: runner.epochsRun })}\n`);
