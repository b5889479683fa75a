import { planMemory, type MemoryPlan } from '../memory/plan.ts';
import { measureData } from '../ingest/data-facts.ts';
import path from 'node:path';
import type { LoadedConfig } from '../config/load.ts';
import type { HyperparameterValues } from '../model/architecture.ts';
import { selectBackend, type BackendChoice, type BackendName } from '../model/backend.ts';
import { runPrepare, type PrepareSummary } from '../prepare/run-prepare.ts';
import { formatSeconds, type Output, type Progress } from '../core/console.ts';
import { writeReport, type ReportSummary } from '../report/report.ts';
import { readRunMetadata } from '../train/run-directory.ts';
import { finalValues, trainRun, type TrainRunSummary } from '../train/run-training.ts';
import { ensureDemoStage, type DataStageSummary } from './data-stage.ts';
import { reportIsCurrent, staleTrainingReason } from './freshness.ts';
import { TimelineRecorder, writeTimeline, type TimelineStage } from '../memory/timeline.ts';
import { tuneStage, type TuneStageOptions, type TuneStageSummary } from './tune-stage.ts';
import { announceTime, searchFinished } from '../tune/time-plan.ts';

/**
 * `galactic run`: demo data → prepare → tune → train + evaluate → report, each stage skipped when
 * its outputs are current (docs/report.md, "Skip rules") and each resumable by its own means
 * after an interruption (prepare after its last complete shard, tune from the unfinished trial's
 * last epoch; the final training restarts). RSS is sampled throughout into timeline.json.
 */

export interface RunOptions {
  output: Output;
  /** Overrides the config's `backend`. */
  backend?: 'auto' | BackendName;
  /** Delete a tuning folder's trials and search afresh (the tuner refuses a folder holding a different search). */
  overwriteSearch?: boolean;
  /** Aborted on Ctrl-C (the CLI's handler): the search stops after its epoch if that ends in time. */
  signal?: AbortSignal;
  /** Replaces the tuner loop (`run --queue`: the distributed chief). */
  tunerLoop?: TuneStageOptions['tunerLoop'];
}

type Skippable<T> = T & { skipped: boolean; seconds: number };

export interface RunSummary {
  config: string;
  runDir: string;
  report: string;
  stages: {
    data: Skippable<DataStageSummary>;
    prepare: Skippable<PrepareSummary>;
    tune: Skippable<TuneStageSummary>;
    train: Skippable<Partial<TrainRunSummary> & { reason: string; values: HyperparameterValues }>;
    report: Skippable<Partial<ReportSummary>>;
  };
  backend: string | null;
  seconds: number;
  peakRssMB: number;
  limitMB: number;
}

const STAGES = ['data', 'prepare', 'tune', 'train', 'report'] as const;

export async function runPipeline(config: LoadedConfig, options: RunOptions): Promise<RunSummary> {
  const { output } = options;
  const limitMB = config.memory.limitMB;
  output.setMemoryLimit(limitMB);
  const recorder = new TimelineRecorder(limitMB).start(STAGES[0]);
  const runDir = path.join(config.runs.dir, config.runs.name);
  const stages = new StageLine(output, recorder);
  try {
    const data = await dataStage(config, output, stages);
    const prepared = await prepareStage(config, output, stages);
    // the backend is chosen once, for both the search and the final training
    let backend: BackendChoice | null = null;
    const ensureBackend = async () =>
      (backend ??= await selectBackend(options.backend ?? config.backend, output, { threads: config.threads }));
    await announceRemainingTime(config, output, prepared.summary, prepared.plan, runDir, ensureBackend);
    const tuned = await tuneRunStage(config, options, stages, prepared, ensureBackend);
    const trained = await trainStage(config, output, stages, { runDir, prepared, tuned, ensureBackend });
    const workDone = [data, prepared, tuned, trained].some((stage) => !stage.record.skipped);
    const cacheDir = prepared.summary.cacheDir;
    const report = await reportStage(config, output, stages, { runDir, cacheDir, workDone, recorder });
    stages.clear();
    output.info(
      `run: done in ${recorder.elapsed().toFixed(1)} s, peak RSS ${recorder.peakRssMB} MB of ${limitMB} MB; report ${path.join(runDir, 'report.html')}`,
    );

    const timeline = recorder.stop();
    const seconds = (name: string) => timeline.stages.find((s) => s.name === name)?.seconds ?? 0;
    const chosen = backend as BackendChoice | null;
    return {
      config: config.configPath,
      runDir,
      report: path.join(runDir, 'report.html'),
      stages: {
        data: { ...data.summary, seconds: seconds('data') },
        prepare: { ...prepared.summary, skipped: prepared.summary.cacheHit },
        tune: { ...tuned.summary, seconds: seconds('tune') },
        train: { ...trained.summary, seconds: seconds('train') },
        report: { ...(report ?? {}), skipped: !report, seconds: seconds('report') },
      },
      backend: chosen?.name ?? null,
      seconds: Math.round(recorder.elapsed() * 1000) / 1000,
      peakRssMB: recorder.peakRssMB,
      limitMB,
    };
  } finally {
    recorder.stop();
    stages.clear();
  }
}

type StageName = (typeof STAGES)[number];

/** A stage's result and its record in the timeline. */
interface Staged<T> {
  summary: T;
  record: TimelineStage;
}

/**
 * The stages as they run: the timeline's stage tags, one bar over the stages on a TTY, and off a
 * TTY each stage's end as its own line.
 */
class StageLine {
  private done = 0;
  private started = 0;
  private readonly overall: Progress;

  constructor(
    private readonly output: Output,
    private readonly recorder: TimelineRecorder,
  ) {
    this.overall = output.progress('run', STAGES.length, 'stages', { ttyOnly: true, rate: false });
  }

  begin(name: StageName): void {
    this.recorder.enter(name);
    this.overall.update(this.done, { stage: name });
    this.started = performance.now();
  }

  /** Ends the stage begun last: `what` it did, or why it was skipped. */
  finish(name: StageName, items: number, skipped: boolean, what: string): TimelineStage {
    const seconds = (performance.now() - this.started) / 1000;
    const stage = this.recorder.finishStage(name, { seconds, items, skipped });
    this.done += 1;
    this.overall.update(this.done, { stage: name });
    this.output.info(
      `[${this.done}/${STAGES.length}] ${name}: ${skipped ? `skipped (${what})` : `${what} in ${formatSeconds(stage.seconds)}`}`,
    );
    return stage;
  }

  clear(): void {
    this.overall.clear();
  }
}

/** 1. demo data (only for configs that point at the demo data folder) */
async function dataStage(config: LoadedConfig, output: Output, stages: StageLine): Promise<Staged<DataStageSummary>> {
  stages.begin('data');
  const data = await ensureDemoStage(config, output);
  const what = data.skipped ? data.reason : `synthesized ${data.images} images`;
  return { summary: data, record: stages.finish('data', data.images, data.skipped, what) };
}

/** 2. prepare under the run's one memory plan; a cache hit is the skip */
async function prepareStage(
  config: LoadedConfig,
  output: Output,
  stages: StageLine,
): Promise<Staged<PrepareSummary> & { plan: MemoryPlan }> {
  stages.begin('prepare');
  // the memory plan, once, from the config and the data (now that the demo data exists)
  const plan = planMemory(config, measureData(config));
  const prepared = await runPrepare(config, { output, plan });
  const record = stages.finish(
    'prepare',
    prepared.cacheHit ? 0 : prepared.images,
    prepared.cacheHit,
    prepared.cacheHit
      ? `cache ${prepared.cacheKey} is complete`
      : `${prepared.images} images into ${prepared.shards} shards`,
  );
  return { summary: prepared, record, plan };
}

/**
 * The expected duration of what is left, before any training starts (a warning over an hour);
 * nothing to say when the search is over and a model is there (a rerun that skips its stages).
 */
async function announceRemainingTime(
  config: LoadedConfig,
  output: Output,
  prepared: PrepareSummary,
  plan: MemoryPlan,
  runDir: string,
  ensureBackend: () => Promise<BackendChoice>,
): Promise<void> {
  if (searchFinished(config, prepared.cacheKey) && readRunMetadata(runDir) !== null) return;
  await announceTime(config, output, {
    backend: await ensureBackend(),
    cacheDir: prepared.cacheDir,
    cacheKey: prepared.cacheKey,
    search: {},
    train: { values: null, epochs: config.train.epochs },
    plan,
    what: 'galactic run',
  });
}

/** 3. tune: the tuner's own resume makes a finished search a no-op */
async function tuneRunStage(
  config: LoadedConfig,
  options: RunOptions,
  stages: StageLine,
  prepared: Staged<PrepareSummary> & { plan: MemoryPlan },
  ensureBackend: () => Promise<BackendChoice>,
): Promise<Staged<TuneStageSummary>> {
  stages.begin('tune');
  const tuned = await tuneStage(config, {
    cacheDir: prepared.summary.cacheDir,
    cacheKey: prepared.summary.cacheKey,
    output: options.output,
    ensureBackend,
    plan: prepared.plan,
    signal: options.signal,
    overwrite: options.overwriteSearch,
    tunerLoop: options.tunerLoop,
  });
  const record = stages.finish(
    'tune',
    tuned.imageEpochs,
    tuned.skipped,
    tuned.skipped
      ? 'the search is finished'
      : `${tuned.ranNow} trials run, best ${tuned.best ? tuned.best.score.toFixed(4) : '–'}`,
  );
  return { summary: tuned, record };
}

type TrainStageSummary = RunSummary['stages']['train'];

/** 4. train + evaluate with the tuner's best values (train --from-tuner semantics), unless the model is current */
async function trainStage(
  config: LoadedConfig,
  output: Output,
  stages: StageLine,
  run: {
    runDir: string;
    prepared: Staged<PrepareSummary> & { plan: MemoryPlan };
    tuned: Staged<TuneStageSummary>;
    ensureBackend: () => Promise<BackendChoice>;
  },
): Promise<Staged<Omit<TrainStageSummary, 'seconds'>>> {
  const { runDir, prepared, tuned } = run;
  stages.begin('train');
  const { values } = finalValues(config, tuned.summary.bestValues);
  const stale = staleTrainingReason(runDir, { cacheKey: prepared.summary.cacheKey, config, values });
  let trained: TrainRunSummary | null = null;
  if (stale) {
    output.info(`training: ${stale}`);
    trained = await trainRun(config, {
      cacheDir: prepared.summary.cacheDir,
      cacheKey: prepared.summary.cacheKey,
      backend: await run.ensureBackend(),
      values: tuned.summary.bestValues,
      plan: prepared.plan,
      output,
    });
  }
  const trainImageEpochs = trained ? trained.epochs * (readRunMetadata(runDir)?.split.trainImages ?? 0) : 0;
  const record = stages.finish(
    'train',
    trainImageEpochs,
    !trained,
    trained
      ? `validation accuracy ${trained.valAccuracy}`
      : 'the model in the run folder was trained on the same data, config and hyperparameters',
  );
  return { summary: { ...(trained ?? {}), values, reason: stale ?? 'current', skipped: !trained }, record };
}

/** 5. report: the timeline first (it is one of the report's inputs), unless no stage did work */
async function reportStage(
  config: LoadedConfig,
  output: Output,
  stages: StageLine,
  run: { runDir: string; cacheDir: string; workDone: boolean; recorder: TimelineRecorder },
): Promise<ReportSummary | null> {
  const { runDir, workDone } = run;
  stages.begin('report');
  let report: ReportSummary | null = null;
  if (workDone || !reportIsCurrent(runDir)) {
    if (workDone) writeTimeline(runDir, run.recorder.snapshot());
    report = await writeReport({ runDir, tuningDir: config.tuner.dir, config, cacheDir: run.cacheDir, output });
  }
  stages.finish(
    'report',
    0,
    !report,
    report ? `${report.charts.length} charts, ${report.thumbnails} thumbnails` : 'report.html is newer than its inputs',
  );
  return report;
}
