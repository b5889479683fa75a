import { planMemory } from '../memory/plan.ts';
import { measureData } from '../ingest/data-facts.ts';
import { Command } from 'commander';
import { backendOption, positiveInt } from '../core/cli-options.ts';
import { UsageError } from '../core/errors.ts';
import type { BackendName } from '../model/backend.ts';
import { formatSeconds, type Output } from '../core/console.ts';
import { hyperbandSchedule } from '../tune/hyperband.ts';
import type { SearchOverrides } from '../tune/search-setup.ts';
import type { TrialRunner, TrialRunRequest, TrialRunResult } from '../tune/trial-runner.ts';
import { commandContext, type CommandContext } from './context.ts';
import type { LoadedConfig } from '../config/load.ts';
import type { TuneSummary } from '../tune/tuner.ts';

const ALGORITHMS = ['random', 'hyperband', 'bayesian'];

export function tuneCommand(): Command {
  return new Command('tune')
    .description(
      'search hyperparameters (RandomSearch, Hyperband or Bayesian optimisation) on the cached shards; resumes an interrupted search',
    )
    .option('--algorithm <name>', 'search algorithm: random, hyperband or bayesian (overrides tuner.algorithm)')
    .option('--max-trials <n>', 'most trials (overrides tuner.maxTrials; caps Hyperband too)', positiveInt)
    .option('--overwrite', 'delete the trials in tuner.dir and start the search afresh', false)
    .addOption(backendOption('tfjs backend (overrides backend)'))
    .option(
      '--queue <url>',
      'be the chief of a distributed search: hand trials to `galactic worker`s through Redis, e.g. redis://127.0.0.1:6379 (docs/distributed.md)',
    )
    .action((_opts, command: Command) => runTune(commandContext(command)));
}

async function runTune(ctx: CommandContext): Promise<void> {
  const { options, output } = ctx;
  if (options.algorithm !== undefined && !ALGORITHMS.includes(options.algorithm as string)) {
    throw new UsageError(`--algorithm must be one of ${ALGORITHMS.join(', ')} (got '${String(options.algorithm)}')`);
  }
  const distributed = options.queue === undefined ? null : await import('../distributed/chief.ts');
  const queue = distributed ? distributed.parseQueueUrl(options.queue as string) : null;
  const config = ctx.config();
  const [{ RssSampler }, { tuneOnCache }, { formatLeaderboard }] = await Promise.all([
    import('../memory/rss-sampler.ts'),
    import('../tune/tune-on-cache.ts'),
    import('../tune/leaderboard.ts'),
  ]);
  const overrides: SearchOverrides = {
    algorithm: options.algorithm as SearchOverrides['algorithm'],
    maxTrials: options.maxTrials as number | undefined,
  };
  // an unreachable Redis is refused before any work
  if (queue) await distributed?.probeRedis(queue);
  const started = performance.now();
  const rss = new RssSampler(200).start();
  try {
    const { plan, prepared, backend, objective } = await prepareSearch(config, ctx, overrides);
    const { summary } = await tuneOnCache({
      config,
      cacheDir: prepared.cacheDir,
      cacheKey: prepared.cacheKey,
      backend,
      plan,
      output,
      overrides,
      overwrite: Boolean(options.overwrite),
      signal: ctx.interrupt,
      trainerOutput: output, // a batch bar inside each trial (on a terminal)
      wrapRunner: (inner) => new EpochLinesRunner(inner, output),
      ...(distributed && queue ? { tunerLoop: distributed.queueTunerLoop({ queue }) } : {}),
    });
    rss.stop();
    describeResult(output, config, summary, formatLeaderboard(summary, objective.name));
    output.result({
      tuningDir: summary.tuningDir,
      algorithm: summary.algorithm,
      trials: summary.trials,
      completed: summary.completed,
      failed: summary.failed,
      infeasible: summary.infeasible,
      ranNow: summary.ranNow,
      endReason: summary.endReason,
      best: summary.best,
      leaderboard: summary.leaderboard,
      seconds: Math.round((performance.now() - started) / 10) / 100,
      peakRssMB: rss.peakMB,
      limitMB: config.memory.limitMB,
      ...(queue && 'handoffMs' in summary ? { queue: { url: queue.url, handoffMs: summary.handoffMs } } : {}),
    });
  } finally {
    rss.stop();
  }
}

/**
 * Everything before the first trial: the cache prepared under the command's one memory plan, the
 * backend, and the search with its expected duration announced.
 */
async function prepareSearch(config: LoadedConfig, ctx: CommandContext, overrides: SearchOverrides) {
  const { options, output } = ctx;
  const [{ selectBackend }, { runPrepare }, { describeSearch, objectiveOf }, { announceTime }] = await Promise.all([
    import('../model/backend.ts'),
    import('../prepare/run-prepare.ts'),
    import('../tune/search-setup.ts'),
    import('../tune/time-plan.ts'),
  ]);
  const plan = planMemory(config, measureData(config));
  const prepared = await runPrepare(config, { output, plan });
  const backend = await selectBackend(
    ((options.backend as string | undefined) ?? config.backend) as 'auto' | BackendName,
    output,
    { threads: config.threads },
  );
  const search = describeSearch(config, prepared.cacheKey, overrides);
  const objective = objectiveOf(config);
  announce(output, search.algorithm, config.tuner, overrides, objective.name, objective.direction);
  await announceTime(config, output, {
    backend,
    cacheDir: prepared.cacheDir,
    cacheKey: prepared.cacheKey,
    search: overrides,
    plan,
    what: 'galactic tune',
  });
  return { plan, prepared, backend, objective };
}

function describeResult(output: Output, config: LoadedConfig, summary: TuneSummary, leaderboard: string): void {
  output.info(
    `tuning finished: ${summary.endReason}; ${summary.completed} completed, ${summary.failed} failed, ${summary.infeasible} infeasible of ${summary.trials} trials`,
  );
  output.info(leaderboard);
  if (summary.best)
    output.info(`best values written to ${config.tuner.dir}/best_hp.json (train with: galactic train --from-tuner)`);
  else output.warn('no trial completed, so there is no best_hp.json; see the trial.json files for the reasons');
}

function announce(
  output: Output,
  algorithm: 'random' | 'hyperband' | 'bayesian',
  tuner: { maxTrials: number; epochs: number; dir: string; hyperband: { factor: number; iterations: number } },
  overrides: SearchOverrides,
  objective: string,
  direction: string,
): void {
  if (algorithm === 'bayesian') {
    output.info(
      `tuning: Bayesian optimisation (Gaussian process, UCB), up to ${overrides.maxTrials ?? tuner.maxTrials} trials of up to ${tuner.epochs} epochs, objective ${objective} (${direction}), folder ${tuner.dir}`,
    );
    return;
  }
  if (algorithm === 'random') {
    output.info(
      `tuning: RandomSearch, up to ${overrides.maxTrials ?? tuner.maxTrials} trials of up to ${tuner.epochs} epochs, objective ${objective} (${direction}), folder ${tuner.dir}`,
    );
    return;
  }
  const schedule = hyperbandSchedule(tuner.epochs, tuner.hyperband.factor);
  const trials = schedule.reduce((n, b) => n + b.rounds.reduce((m, r) => m + r.trials, 0), 0);
  output.info(
    `tuning: Hyperband, maxEpochs ${tuner.epochs}, factor ${tuner.hyperband.factor}, ${tuner.hyperband.iterations} iteration(s) of ${schedule.length} brackets (${trials} trials each)${overrides.maxTrials ? `, capped at ${overrides.maxTrials} trials` : ''}, objective ${objective} (${direction}), folder ${tuner.dir}`,
  );
  for (const b of schedule) {
    output.info(`  bracket ${b.bracket}: ${b.rounds.map((r) => `${r.trials} x ${r.epochs} ep`).join(' -> ')}`);
  }
}

/** One stderr line per finished epoch, so a long trial shows it is alive. */
class EpochLinesRunner implements TrialRunner {
  constructor(
    private readonly inner: TrialRunner,
    private readonly output: Output,
  ) {}

  run(request: TrialRunRequest): Promise<TrialRunResult> {
    return this.inner.run({
      ...request,
      onEpochEnd: (info) => {
        const r = info.record;
        this.output.info(
          `  trial ${request.trialId} epoch ${r.epoch}/${request.epochs}: loss ${r.loss.toFixed(4)} acc ${r.accuracy.toFixed(3)} val_loss ${r.val_loss.toFixed(4)} val_acc ${r.val_accuracy.toFixed(3)} (${formatSeconds(r.seconds)}, ${Math.round(r.peakRssMB)} MB)`,
        );
        return request.onEpochEnd(info);
      },
    });
  }
}
