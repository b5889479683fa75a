import { mkdirSync } from 'node:fs';
import { DelayedError, WaitingError, type Job } from 'bullmq';
import type { LoadedConfig } from '../config/load.ts';
import { feedSettings } from '../data/feed.ts';
import type { MemoryPlan } from '../memory/plan.ts';
import { UserError } from '../core/errors.ts';
import type { BackendChoice } from '../model/backend.ts';
import type { Output } from '../core/console.ts';
import type { Objective } from '../tune/oracle.ts';
import { TrainerTrialRunner } from '../tune/trainer-runner.ts';
import { executeTrial, newTrialRecord } from '../tune/trial-execution.ts';
import type { EpochRecord, TrialRunner, TrialRunRequest, TrialRunResult } from '../tune/trial-runner.ts';
import { TrialStore, type SearchDescription } from '../tune/trial-store.ts';
import { trialMemoryChecks } from '../tune/tune-on-cache.ts';
import { collectHeap } from '../tune/heap-collection.ts';
import { searchKey } from './names.ts';
import { claimTrial } from './trial-lease.ts';
import type { TrialJobData, TrialJobProgress, TrialJobResult } from './trial-jobs.ts';

/**
 * One trial job on a worker, run by the same code as a local trial (`executeTrial`: memory check
 * with this machine's plan, start from the trial's own last checkpoint or its parent's best,
 * per-epoch persistence in the shared tuning folder). The queue only decides who runs it.
 */

/** An epoch as a worker records it in trial.json: which worker trained it. */
export interface WorkerEpochRecord extends EpochRecord {
  worker: string;
}

export class TuningDirNotSharedError extends UserError {
  constructor(dir: string, job: TrialJobData, detail: string) {
    super(
      `this worker cannot see the tuning folder the chief wrote: ${detail} in ${dir} (the chief on ${job.chiefHost} uses ${job.chiefTuningDir}). ` +
        `tuner.dir must be one folder every worker and the chief share (NFS, EFS, SMB), named by tuner.dir in each machine's config; see docs/distributed.md.`,
    );
  }
}

export interface TrialWorkerContext {
  config: LoadedConfig;
  /** The worker's memory plan (its feed sizes and the limit each trial must fit). */
  plan: MemoryPlan;
  search: SearchDescription;
  worker: string;
  output: Output;
  /** The cache this worker trains on (prepared once, on the first job). */
  cacheDir: () => Promise<string>;
  backend: () => Promise<BackendChoice>;
  /** Heartbeat of the trial claim, ms. */
  heartbeatMs: number;
  /** Aborted on Ctrl-C: the trial stops after its current epoch and its job goes back to the queue. */
  signal: AbortSignal;
}

/** Annotates each epoch with the worker and reports it as job progress. */
class WorkerEpochRunner implements TrialRunner {
  constructor(
    private readonly inner: TrialRunner,
    private readonly job: Job<TrialJobData>,
    private readonly context: TrialWorkerContext,
  ) {}

  run(request: TrialRunRequest): Promise<TrialRunResult> {
    const { worker, output } = this.context;
    return this.inner.run({
      ...request,
      onEpochEnd: async (info) => {
        const r = info.record;
        const record: WorkerEpochRecord = { ...r, worker };
        output.info(
          `  trial ${request.trialId} epoch ${r.epoch}/${request.epochs}: loss ${r.loss.toFixed(4)} acc ${r.accuracy.toFixed(3)} val_loss ${r.val_loss.toFixed(4)} val_acc ${r.val_accuracy.toFixed(3)} (${r.seconds.toFixed(1)} s)`,
        );
        const progress: TrialJobProgress = { worker, trialId: request.trialId, epoch: r.epoch, epochs: request.epochs };
        // progress is for `queue status` only: a Redis hiccup must not fail the epoch
        this.job.updateProgress(progress as unknown as object).catch(() => undefined);
        return request.onEpochEnd({ ...info, record });
      },
    });
  }
}

export async function processTrialJob(
  job: Job<TrialJobData>,
  token: string | undefined,
  context: TrialWorkerContext,
): Promise<TrialJobResult> {
  const { config, output, worker } = context;
  const data = job.data;
  const dir = config.tuner.dir;
  const store = new TrialStore(dir);
  const oracle = store.readOracle();
  if (!oracle) throw new TuningDirNotSharedError(dir, data, 'oracle.json is missing');
  if (searchKey(oracle.search) !== data.searchKey)
    throw new TuningDirNotSharedError(dir, data, 'oracle.json holds another search');
  if (!oracle.state.trials.some((t) => t.id === data.trialId))
    throw new TuningDirNotSharedError(dir, data, `oracle.json does not list trial ${data.trialId}`);

  mkdirSync(store.trialDir(data.trialId), { recursive: true });
  const claim = claimTrial(store.trialDir(data.trialId), worker, context.heartbeatMs);
  if ('busy' in claim) {
    // another worker still trains it (the queue handed the job out twice): look again after a heartbeat or three
    output.info(
      `trial ${data.trialId} is being trained by ${claim.busy?.worker ?? 'another worker'}; handing its job back`,
    );
    await job.moveToDelayed(Date.now() + context.heartbeatMs * 3, token);
    throw new DelayedError();
  }
  const startedAt = Date.now();
  try {
    const existing = store.readTrial(data.trialId);
    if (existing && existing.status !== 'RUNNING' && existing.status !== 'STOPPED') {
      // finished before (e.g. by a worker whose completion did not reach the queue): never rerun
      return { trialId: data.trialId, status: existing.status, worker, startedAt, finishedAt: Date.now() };
    }
    const cacheDir = await context.cacheDir();
    const backend = await context.backend();
    const { trainRecords: _trainRecords, ...checks } = trialMemoryChecks(config, context.plan, cacheDir, backend);
    const objective: Objective = {
      name: context.search.objective as Objective['name'],
      direction: context.search.direction,
    };
    const runner = new WorkerEpochRunner(
      new TrainerTrialRunner({ config, cacheDir, feedSettings: feedSettings(context.plan) }),
      job,
      context,
    );
    const record = existing ?? newTrialRecord(data.plan);
    const resumedAt = record.initialEpoch + record.metrics.length;
    output.info(
      `trial ${data.trialId}: ${record.metrics.length > 0 ? `resuming from epoch ${resumedAt}` : 'starting'} on ${worker}`,
    );
    const finished = await executeTrial(store, data.plan, record, objective, {
      runner,
      ...checks,
      patience: context.search.patience,
      output,
      signal: context.signal,
    });
    collectHeap();
    if (finished.status === 'STOPPED') {
      // Ctrl-C on this worker (the job is handed back by the worker loop): the saved epochs stay
      output.info(
        `trial ${data.trialId}: stopped after epoch ${finished.initialEpoch + finished.metrics.length}; its job is back on the queue`,
      );
      throw new WaitingError();
    }
    output.info(
      `trial ${data.trialId}: ${finished.status}${finished.score !== null ? ` (score ${finished.score.toFixed(4)})` : ''}${finished.reason ? ` (${finished.reason})` : ''}`,
    );
    return { trialId: data.trialId, status: finished.status, worker, startedAt, finishedAt: Date.now() };
  } finally {
    claim.release();
  }
}
