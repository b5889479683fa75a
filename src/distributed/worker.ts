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

export async function runWorker(options: WorkerOptions): Promise<WorkerSummary> {
  const { config, queue, output } = options;
  await probeRedis(queue);
  const name = workerName();
  const dataKey = path.basename(resolveCacheDir(config));
  const search = describeSearch(config, dataKey, { algorithm: options.algorithm });
  const key = searchKey(search);
  const queueName = trialQueueName(key);
  const leaseMs = options.leaseSeconds * 1000;
  const trials: Record<string, string> = {};
  const ranges: string[] = [];
  let jobs = 0;
  let fatal: Error | null = null;
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

  // Ctrl-C: every job this worker holds goes back to the queue at once (the process ends within
  // the CLI's grace period); the next worker resumes each trial from its last saved epoch
  const active = new Map<string, { job: Job; token?: string }>();
  const handedBack = new Set<string>();
  const handBack = async (job: Job, token?: string) => {
    const id = String(job.id);
    if (handedBack.has(id)) return;
    handedBack.add(id);
    await job.moveToWait(token).catch(() => undefined);
  };
  stop.signal.addEventListener(
    'abort',
    () => {
      for (const { job, token } of active.values()) void handBack(job, token);
    },
    { once: true },
  );

  // trials and ranges share the --concurrency slots: the memory plan holds one job per slot, whatever its kind
  const slots = pLimit(options.concurrency);
  /** Runs a job; a machine that cannot see the shared folders gives it back and stops, as does Ctrl-C. */
  const guarded =
    <D, R>(run: (job: Job<D>, token?: string) => Promise<R>) =>
    async (job: Job<D>, token?: string): Promise<R> => {
      jobs++;
      active.set(String(job.id), { job, token });
      try {
        return await slots(async () => {
          if (stop.signal.aborted) {
            await handBack(job, token);
            throw new WaitingError();
          }
          return run(job, token);
        });
      } catch (error) {
        if (error instanceof TuningDirNotSharedError || error instanceof CacheDirNotSharedError) {
          // this machine is misconfigured, not the job: give the job back and stop
          fatal = error;
          stop.abort();
        }
        if (stop.signal.aborted) {
          await handBack(job, token);
          throw new WaitingError();
        }
        throw error;
      } finally {
        active.delete(String(job.id));
      }
    };
  const processor = guarded<TrialJobData, TrialJobResult>(async (job, token) => {
    rangeInputs = null;
    const result = await processTrialJob(job, token, context);
    trials[result.trialId] = result.status;
    return result;
  });
  const rangeProcessor = guarded<RangeJobData, RangeJobResult>(async (job) => {
    const result = await processRangeJob(job, rangeContext);
    ranges.push(result.range);
    return result;
  });

  const workerOptions = {
    connection: queue.connection,
    concurrency: options.concurrency,
    lockDuration: leaseMs,
    stalledInterval: leaseMs,
    // a stalled job (its worker died) is always handed on: the trial resumes from its checkpoint, the range is redone
    maxStalledCount: 1_000_000,
    name,
  };
  const prepareQueue = prepareQueueName(dataKey);
  const bullWorkers = [
    new Worker<TrialJobData, TrialJobResult>(queueName, processor, workerOptions),
    new Worker<RangeJobData, RangeJobResult>(prepareQueue, rangeProcessor, workerOptions),
  ];
  for (const worker of bullWorkers) {
    worker.on('error', () => undefined); // connection trouble is reported by the watch below
    worker.on('failed', (job, error) => {
      if (job && !(error instanceof WaitingError) && error.name !== 'DelayedError' && error.name !== 'WaitingError') {
        output.warn(`job ${job.id} failed on this worker: ${error.message}`);
      }
    });
  }
  const watch = watchConnection(queue, output, 'a trial in progress keeps training and saving its epochs to tuner.dir');
  output.info(
    `worker ${name}: serving the ${search.algorithm} search ${key} (queue ${queueName} on ${queue.url}, tuner.dir ${config.tuner.dir}) and the cache build ${dataKey} (queue ${prepareQueue}), ${options.concurrency} job(s) at a time; Ctrl-C finishes or hands back its job`,
  );
  try {
    await new Promise<void>((resolve) => {
      if (stop.signal.aborted) resolve();
      else stop.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    output.info(
      `worker ${name}: stopping; ${active.size > 0 ? `job(s) ${[...active.keys()].join(', ')} go back to the queue (the next worker resumes from the last saved epoch)` : 'no job in progress'}`,
    );
    await Promise.all(bullWorkers.map((worker) => worker.close()));
  } finally {
    watch.close();
  }
  if (fatal) throw fatal;
  return { worker: name, queue: queueName, jobs, trials, ranges };
}
