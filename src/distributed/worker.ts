import { planMemory } from '../memory/plan.ts';
import { measureData } from '../ingest/data-facts.ts';
import path from 'node:path';
import pLimit from 'p-limit';
import { Worker, WaitingError, type Job } from 'bullmq';
import type { LoadedConfig } from '../config/load.ts';
import { resolveCacheDir } from '../cache/key.ts';
import { selectBackend, type BackendChoice, type BackendName } from '../model/backend.ts';
import { runPrepare } from '../prepare/run-prepare.ts';
import type { Output } from '../core/console.ts';
import { describeSearch, type SearchOverrides } from '../tune/search-setup.ts';
import { prepareQueueName, searchKey, trialQueueName, workerName } from './names.ts';
import { loadRangeInputs, type RangeInputs } from '../prepare/range-build.ts';
import type { RangeJobData, RangeJobResult } from './range-jobs.ts';
import { CacheDirNotSharedError, processRangeJob } from './range-worker.ts';
import { probeRedis, watchConnection, type QueueSettings } from './redis-connection.ts';
import type { TrialJobData, TrialJobResult } from './trial-jobs.ts';
import { processTrialJob, TuningDirNotSharedError } from './trial-worker.ts';

/**
 * `galactic worker`: takes trial jobs of the search its config describes from the queue and runs
 * them one at a time (or `concurrency` at a time), with this machine's memory plan and backend;
 * and row-range jobs of a distributed prepare of its config's cache (`galactic prepare --queue`).
 * The lease (`leaseSeconds`) is how long a job stays this worker's without a heartbeat: a worker
 * that dies loses its job after that, and another worker resumes the trial from its last epoch.
 * Ctrl-C hands the jobs it holds back to the queue at once.
 */

export interface WorkerOptions {
  config: LoadedConfig;
  queue: QueueSettings;
  output: Output;
  concurrency: number;
  leaseSeconds: number;
  algorithm?: SearchOverrides['algorithm'];
  backend?: 'auto' | BackendName;
  /** Aborting (Ctrl-C) stops taking jobs; a running trial stops after its epoch and its job goes back. */
  signal: AbortSignal;
}

export interface WorkerSummary {
  worker: string;
  queue: string;
  jobs: number;
  trials: Record<string, string>;
  /** Row ranges this worker built for a distributed prepare. */
  ranges: string[];
}

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | null = null;
  return () => (value ??= make());
}

/**
 * The jobs this worker holds and the slots they share. Trials and ranges share the --concurrency
 * slots: the memory plan holds one job per slot, whatever its kind. On Ctrl-C every held job goes
 * back to the queue at once (the process ends within the CLI's grace period) and the next worker
 * resumes each trial from its last saved epoch; a machine that cannot see the shared folders gives
 * its job back and stops.
 */
class JobGuard {
  readonly active = new Map<string, { job: Job; token?: string }>();
  private readonly handedBack = new Set<string>();
  private readonly slots: ReturnType<typeof pLimit>;
  jobs = 0;
  fatal: Error | null = null;

  constructor(
    concurrency: number,
    private readonly stop: AbortController,
  ) {
    this.slots = pLimit(concurrency);
    stop.signal.addEventListener(
      'abort',
      () => {
        for (const { job, token } of this.active.values()) void this.handBack(job, token);
      },
      { once: true },
    );
  }

  private async handBack(job: Job, token?: string): Promise<void> {
    const id = String(job.id);
    if (this.handedBack.has(id)) return;
    this.handedBack.add(id);
    await job.moveToWait(token).catch(() => undefined);
  }

  /** A BullMQ processor that runs `run` in a slot, under the rules above. */
  processor<D, R>(run: (job: Job<D>, token?: string) => Promise<R>) {
    return async (job: Job<D>, token?: string): Promise<R> => {
      this.jobs++;
      this.active.set(String(job.id), { job, token });
      try {
        return await this.slots(async () => {
          if (this.stop.signal.aborted) {
            await this.handBack(job, token);
            throw new WaitingError();
          }
          return run(job, token);
        });
      } catch (error) {
        if (error instanceof TuningDirNotSharedError || error instanceof CacheDirNotSharedError) {
          // this machine is misconfigured, not the job: give the job back and stop
          this.fatal = error;
          this.stop.abort();
        }
        if (this.stop.signal.aborted) {
          await this.handBack(job, token);
          throw new WaitingError();
        }
        throw error;
      } finally {
        this.active.delete(String(job.id));
      }
    };
  }
}

/** BullMQ workers on both queues, sharing the lease settings; failures other than a hand-back are reported. */
function startBullWorkers(
  queues: { trials: string; ranges: string },
  processors: {
    trial: (job: Job<TrialJobData>, token?: string) => Promise<TrialJobResult>;
    range: (job: Job<RangeJobData>, token?: string) => Promise<RangeJobResult>;
  },
  settings: { connection: QueueSettings['connection']; concurrency: number; leaseMs: number; name: string },
  output: Output,
): Worker[] {
  const workerOptions = {
    connection: settings.connection,
    concurrency: settings.concurrency,
    lockDuration: settings.leaseMs,
    stalledInterval: settings.leaseMs,
    // a stalled job (its worker died) is always handed on: the trial resumes from its checkpoint, the range is redone
    maxStalledCount: 1_000_000,
    name: settings.name,
  };
  const workers = [
    new Worker<TrialJobData, TrialJobResult>(queues.trials, processors.trial, workerOptions),
    new Worker<RangeJobData, RangeJobResult>(queues.ranges, processors.range, workerOptions),
  ];
  for (const worker of workers) {
    worker.on('error', () => undefined); // connection trouble is reported by the connection watch
    worker.on('failed', (job, error) => {
      if (job && !(error instanceof WaitingError) && error.name !== 'DelayedError' && error.name !== 'WaitingError') {
        output.warn(`job ${job.id} failed on this worker: ${error.message}`);
      }
    });
  }
  return workers;
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

export async function runWorker(options: WorkerOptions): Promise<WorkerSummary> {
  const { config, queue, output } = options;
  await probeRedis(queue);
  const name = workerName();
  const dataKey = path.basename(resolveCacheDir(config));
  const search = describeSearch(config, dataKey, { algorithm: options.algorithm });
  const key = searchKey(search);
  const queueName = trialQueueName(key);
  const prepareQueue = prepareQueueName(dataKey);
  const leaseMs = options.leaseSeconds * 1000;
  const trials: Record<string, string> = {};
  const ranges: string[] = [];
  const stop = new AbortController();
  options.signal.addEventListener('abort', () => stop.abort(), { once: true });

  // the worker's memory plan, once, from the config and the data: prepare, the feed and each trial's check read it
  const plan = planMemory(config, measureData(config));
  const context = {
    config,
    plan,
    search,
    worker: name,
    output,
    heartbeatMs: Math.max(500, Math.floor(leaseMs / 3)),
    signal: stop.signal,
    cacheDir: once(async () => (await runPrepare(config, { output, plan })).cacheDir),
    backend: once<BackendChoice>(() =>
      selectBackend(options.backend ?? config.backend, output, { threads: config.threads }),
    ),
  };
  // the image listing and gz2 mapping of range jobs are prepare-phase tables: dropped when a trial starts
  let rangeInputs: Promise<RangeInputs> | null = null;
  const rangeContext = {
    config,
    plan,
    worker: name,
    output,
    signal: stop.signal,
    inputs: () => (rangeInputs ??= loadRangeInputs(config, plan)),
  };

  const guard = new JobGuard(options.concurrency, stop);
  const bullWorkers = startBullWorkers(
    { trials: queueName, ranges: prepareQueue },
    {
      trial: guard.processor<TrialJobData, TrialJobResult>(async (job, token) => {
        rangeInputs = null;
        const result = await processTrialJob(job, token, context);
        trials[result.trialId] = result.status;
        return result;
      }),
      range: guard.processor<RangeJobData, RangeJobResult>(async (job) => {
        const result = await processRangeJob(job, rangeContext);
        ranges.push(result.range);
        return result;
      }),
    },
    { connection: queue.connection, concurrency: options.concurrency, leaseMs, name },
    output,
  );
  const watch = watchConnection(queue, output, 'a trial in progress keeps training and saving its epochs to tuner.dir');
  output.info(
    `worker ${name}: serving the ${search.algorithm} search ${key} (queue ${queueName} on ${queue.url}, tuner.dir ${config.tuner.dir}) and the cache build ${dataKey} (queue ${prepareQueue}), ${options.concurrency} job(s) at a time; Ctrl-C finishes or hands back its job`,
  );
  try {
    await untilAborted(stop.signal);
    const held = [...guard.active.keys()];
    output.info(
      `worker ${name}: stopping; ${held.length > 0 ? `job(s) ${held.join(', ')} go back to the queue (the next worker resumes from the last saved epoch)` : 'no job in progress'}`,
    );
    await Promise.all(bullWorkers.map((worker) => worker.close()));
  } finally {
    watch.close();
  }
  if (guard.fatal) throw guard.fatal;
  return { worker: name, queue: queueName, jobs: guard.jobs, trials, ranges };
}
