import os from 'node:os';
import { Queue, QueueEvents, type Job } from 'bullmq';
import { UserError } from '../core/errors.ts';
import { describeTrial } from '../tune/leaderboard.ts';
import { acquireTunerLock } from '../tune/tuner-lock.ts';
import type { Objective, Oracle, OracleTrial } from '../tune/oracle.ts';
import { newTrialRecord } from '../tune/trial-execution.ts';
import { TrialStore, type TrialRecord } from '../tune/trial-store.ts';
import { FailureStreak, finishSearch, openOracle, type TunerOptions, type TuneSummary } from '../tune/tuner.ts';
import { searchKey, trialJobId, trialQueueName } from './names.ts';
import { probeRedis, watchConnection, type QueueSettings } from './redis-connection.ts';

// what the tune and run commands need, loaded with the chief only when --queue is given
export { parseQueueUrl, probeRedis } from './redis-connection.ts';
import type { TrialJobData, TrialJobResult } from './trial-jobs.ts';

/**
 * The chief of a distributed search: the tuner loop of `runTuner` with the trials handed to
 * workers through a BullMQ queue named after the search, several at once (one per connected
 * worker). The oracle, its state and every decision stay here: Hyperband's promotions and the
 * Bayesian model see only what the chief reports, in the order trials finish. Trial state lives
 * in the shared tuning folder, written by the workers with the same code as a local trial, so a
 * restarted chief resumes from the folder and the queue (jobs are keyed by trial id: a trial is
 * never queued twice), and a finished trial is never rerun.
 */

export interface QueueTunerSettings {
  queue: QueueSettings;
  /** How often in-flight jobs are looked at when no queue event arrives (ms). */
  pollMs?: number;
  /** Trials in flight at most; default one per worker connected to the queue (at least 1). */
  maxInFlight?: number;
}

export interface QueueTuneSummary extends TuneSummary {
  /** Per trial run now: the queue's round trip minus the trial's time on its worker (ms). */
  handoffMs: number[];
}

export class ChiefInterruptedError extends UserError {
  constructor(inFlight: string[]) {
    super(
      `the chief stopped${inFlight.length > 0 ? `; trial(s) ${inFlight.join(', ')} stay on the queue and keep running on the workers` : ''}. ` +
        `Rerun the same command to collect them and continue the search.`,
      130,
    );
  }
}

const FINISHED = new Set(['COMPLETED', 'FAILED', 'INFEASIBLE']);

export function queueTunerLoop(settings: QueueTunerSettings): (options: TunerOptions) => Promise<QueueTuneSummary> {
  return async (options) => {
    await probeRedis(settings.queue);
    const store = new TrialStore(options.dir);
    const lock = acquireTunerLock(options.dir, options.output);
    try {
      return await runChief(store, options, settings);
    } finally {
      lock.release();
    }
  };
}

interface InFlight {
  plan: OracleTrial;
  addedAt: number;
}

async function runChief(
  store: TrialStore,
  options: TunerOptions,
  settings: QueueTunerSettings,
): Promise<QueueTuneSummary> {
  const { output, search } = options;
  const key = searchKey(search);
  const name = trialQueueName(key);
  const connection = settings.queue.connection;
  const queue = new Queue<TrialJobData, TrialJobResult>(name, { connection });
  const events = new QueueEvents(name, { connection });
  queue.on('error', () => undefined);
  events.on('error', () => undefined);
  const watch = watchConnection(
    settings.queue,
    output!,
    'the workers keep training the trials they hold and saving them to tuner.dir',
  );
  let wake: () => void = () => undefined;
  const onEvent = () => wake();
  events.on('completed', onEvent);
  events.on('failed', onEvent);
  try {
    if (options.overwrite) await queue.obliterate({ force: true });
    const oracle = openOracle(store, options);
    output?.info(
      `chief: search ${key} on queue ${name} at ${settings.queue.url}; start workers with 'galactic worker --queue ${settings.queue.url} --config <the same config>${search.algorithm !== 'random' ? ` --algorithm ${search.algorithm}` : ''}'`,
    );
    return await chiefLoop({
      store,
      options,
      settings,
      queue,
      oracle,
      key,
      waitForEvent: (ms) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        }),
    });
  } finally {
    watch.close();
    await events.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
  }
}

interface LoopContext {
  store: TrialStore;
  options: TunerOptions;
  settings: QueueTunerSettings;
  queue: Queue<TrialJobData, TrialJobResult>;
  oracle: Oracle;
  key: string;
  waitForEvent: (ms: number) => Promise<void>;
}

async function chiefLoop(context: LoopContext): Promise<QueueTuneSummary> {
  const { store, options, queue, oracle } = context;
  const { search } = options;
  const objective: Objective = { name: search.objective as Objective['name'], direction: search.direction };
  const failures = new FailureStreak(options.maxConsecutiveFailures ?? 3, options.dir);
  const pollMs = context.settings.pollMs ?? 1000;
  const inFlight = new Map<string, InFlight>();
  const handoffMs: number[] = [];
  let ranNow = 0;

  const capacity = async () => context.settings.maxInFlight ?? Math.max(1, await queue.getWorkersCount());
  const report = (record: TrialRecord) => {
    oracle.report(record.id, record.status as 'COMPLETED' | 'FAILED' | 'INFEASIBLE', record.score);
    store.writeOracle(search, oracle.getState());
    describeTrial(options.output, record, objective);
    failures.note(record);
  };

  let endReason = '';
  for (;;) {
    let done: string | null = null;
    while (inFlight.size < (await capacity())) {
      if (options.signal?.aborted) throw new ChiefInterruptedError([...inFlight.keys()]);
      const decision = oracle.next(new Set(inFlight.keys()));
      if (decision.kind === 'done') {
        done = decision.reason;
        break;
      }
      const plan = decision.trial;
      // the schedule (and the generator position) reaches disk before the trial is handed out
      store.writeOracle(search, oracle.getState());
      const record = store.readTrial(plan.id);
      if (record && FINISHED.has(record.status)) {
        report(record); // finished while no chief listened
        continue;
      }
      await enqueueTrial(context, plan);
      inFlight.set(plan.id, { plan, addedAt: Date.now() });
      ranNow++;
    }
    if (inFlight.size === 0 && done !== null) {
      endReason = done;
      break;
    }
    if (options.signal?.aborted) throw new ChiefInterruptedError([...inFlight.keys()]);
    await context.waitForEvent(pollMs);
    for (const [id, entry] of [...inFlight]) {
      const record = await finishedTrial(context, id, entry, handoffMs);
      if (record) {
        inFlight.delete(id);
        report(record);
      }
    }
  }
  return { ...finishSearch(store, oracle, objective, options, ranNow, endReason), handoffMs };
}

/**
 * Queues a trial's job, keyed by trial id: a restarted chief finds the job it queued before
 * instead of adding another (its outcome is read by `finishedTrial`). A finished job left by
 * the same search in another tuner.dir is replaced now: kept, the add would be a no-op and the
 * chief would only find it stale at its next poll, a second later for every trial.
 */
async function enqueueTrial(context: LoopContext, plan: OracleTrial): Promise<void> {
  const { queue, options } = context;
  const leftover = await queue.getJob(trialJobId(plan.id));
  if (leftover && leftover.data.chiefTuningDir !== options.dir) {
    const state = await leftover.getState();
    if (state === 'completed' || state === 'failed') {
      options.output?.info(
        `trial ${plan.id}: replacing the queue's finished job of this search from ${leftover.data.chiefTuningDir}`,
      );
      await leftover.remove();
    }
  }
  const data: TrialJobData = {
    kind: 'trial',
    searchKey: context.key,
    trialId: plan.id,
    plan,
    chiefTuningDir: context.options.dir,
    chiefHost: os.hostname(),
  };
  await context.queue.add('trial', data, {
    jobId: trialJobId(plan.id),
    attempts: 3,
    backoff: { type: 'fixed', delay: 5000 },
    removeOnComplete: false,
    removeOnFail: false,
  });
}

/**
 * Looks at one in-flight job; returns the trial's final record when it is done (noting the
 * hand-off time in `handoffMs`), queues it again when its job was lost or finished elsewhere.
 */
async function finishedTrial(
  context: LoopContext,
  id: string,
  entry: InFlight,
  handoffMs: number[],
): Promise<TrialRecord | null> {
  const { store, queue, options } = context;
  const { output } = options;
  const jobId = trialJobId(id);
  const state = await queue.getJobState(jobId);
  if (state === 'unknown') {
    // Redis lost the job (restarted without its data, or the queue was emptied): queue it again
    output?.warn(`trial ${id}: its job is no longer on the queue; queueing it again`);
    await enqueueTrial(context, entry.plan);
    return null;
  }
  if (state !== 'completed' && state !== 'failed') return null;
  const job = (await queue.getJob(jobId)) as Job<TrialJobData, TrialJobResult> | undefined;
  let record = store.readTrial(id);
  if (state === 'failed' && (!record || !FINISHED.has(record.status))) {
    record ??= newTrialRecord(entry.plan);
    record.status = 'FAILED';
    record.reason = `the trial's job failed on the workers: ${job?.failedReason ?? 'no reason recorded'}`;
    store.writeTrial(record);
  }
  if (!record || !FINISHED.has(record.status)) {
    // completed on the queue but not in the folder: only a worker that cannot see this folder does that
    output?.warn(
      `trial ${id}: its job completed but ${options.dir}/trial_${id}/trial.json does not say the trial finished; queueing it again`,
    );
    await job?.remove().catch(() => undefined);
    await enqueueTrial(context, entry.plan);
    return null;
  }
  const result = job?.returnvalue;
  if (result && typeof result.startedAt === 'number') {
    handoffMs.push(Math.max(0, Date.now() - entry.addedAt - (result.finishedAt - result.startedAt)));
  }
  return record;
}
