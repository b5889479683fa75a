import { planMemory } from '../memory/plan.ts';
import { measureData } from '../ingest/data-facts.ts';
import path from 'node:path';
import type { LoadedConfig } from '../config/load.ts';
import type { HyperparameterValues } from '../model/architecture.ts';
import { selectBackend, type BackendChoice, type BackendName } from '../model/backend.ts';
import { runPrepare, type PrepareSummary } from '../prepare/run-prepare.ts';
import { formatSeconds, type Output } from '../core/console.ts';
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
  // one bar over the stages on a TTY; off a TTY each stage's end is its own line
  const overall = output.progress('run', STAGES.length, 'stages', { ttyOnly: true, rate: false });
  let done = 0;
  const begin = (name: (typeof STAGES)[number]) => {
    recorder.enter(name);
    overall.update(done, { stage: name });
    return performance.now();
  };
  const finish = (name: string, started: number, items: number, skipped: boolean, what: string): TimelineStage => {
    const stage = recorder.finishStage(name, { seconds: (performance.now() - started) / 1000, items, skipped });
    done += 1;
    overall.update(done, { stage: name });
    output.info(
      `[${done}/${STAGES.length}] ${name}: ${skipped ? `skipped (${what})` : `${what} in ${formatSeconds(stage.seconds)}`}`,
    );
    return stage;
  };

  try {
    // 1. demo data (only for configs that point at the demo data folder)
    let started = begin('data');
    const data = await ensureDemoStage(config, output);
    const dataStage = finish(
      'data',
      started,
      data.images,
      data.skipped,
      data.skipped ? data.reason : `synthesized ${data.images} images`,
    );

    // 2. prepare: a cache hit is the skip
    started = begin('prepare');
    // the memory plan, once, from the config and the data (now that the demo data exists)
    const plan = planMemory(config, measureData(config));
    const prepared = await runPrepare(config, { output, plan });
    const prepareStage = finish(
      'prepare',
      started,
      prepared.cacheHit ? 0 : prepared.images,
      prepared.cacheHit,
      prepared.cacheHit
        ? `cache ${prepared.cacheKey} is complete`
        : `${prepared.images} images into ${prepared.shards} shards`,
    );

    // the backend is chosen once, for both the search and the final training
    let backend: BackendChoice | null = null;
    const ensureBackend = async () =>
      (backend ??= await selectBackend(options.backend ?? config.backend, output, { threads: config.threads }));

    // the expected duration of what is left, before any training starts (a warning over an hour);
    // nothing to say when the search is over and a model is there (a rerun that skips its stages)
    if (!(searchFinished(config, prepared.cacheKey) && readRunMetadata(runDir) !== null)) {
      await announceTime(config, output, {
        backend: await ensureBackend(),
        cacheDir: prepared.cacheDir,
        cacheKey: prepared.cacheKey,
        search: {},
        train: { values: null, epochs: config.train.epochs },
        what: 'galactic run',
      });
    }

    // 3. tune: the tuner's own resume makes a finished search a no-op
    started = begin('tune');
    const tuned = await tuneStage(config, {
      cacheDir: prepared.cacheDir,
      cacheKey: prepared.cacheKey,
      output,
      ensureBackend,
      plan,
      signal: options.signal,
      overwrite: options.overwriteSearch,
      tunerLoop: options.tunerLoop,
    });
    const tuneStageRecord = finish(
      'tune',
      started,
      tuned.imageEpochs,
      tuned.skipped,
      tuned.skipped
        ? 'the search is finished'
        : `${tuned.ranNow} trials run, best ${tuned.best ? tuned.best.score.toFixed(4) : '–'}`,
    );

    // 4. train + evaluate with the tuner's best values (train --from-tuner semantics)
    started = begin('train');
    const { values } = finalValues(config, tuned.bestValues);
    const stale = staleTrainingReason(runDir, { cacheKey: prepared.cacheKey, config, values });
    let trained: TrainRunSummary | null = null;
    if (stale) {
      output.info(`training: ${stale}`);
      trained = await trainRun(config, {
        cacheDir: prepared.cacheDir,
        cacheKey: prepared.cacheKey,
        backend: await ensureBackend(),
        values: tuned.bestValues,
        plan,
        output,
      });
    }
    const trainImageEpochs = trained ? trained.epochs * (readRunMetadata(runDir)?.split.trainImages ?? 0) : 0;
    const trainStage = finish(
      'train',
      started,
      trainImageEpochs,
      !trained,
      trained
        ? `validation accuracy ${trained.valAccuracy}`
        : 'the model in the run folder was trained on the same data, config and hyperparameters',
    );

    // 5. report: the timeline first (it is one of the report's inputs), unless no stage did work
    started = begin('report');
    const workDone = [dataStage, prepareStage, tuneStageRecord, trainStage].some((s) => !s.skipped);
    let report: ReportSummary | null = null;
    if (workDone || !reportIsCurrent(runDir)) {
      if (workDone) writeTimeline(runDir, recorder.snapshot());
      report = await writeReport({ runDir, tuningDir: config.tuner.dir, config, cacheDir: prepared.cacheDir, output });
    }
    finish(
      'report',
      started,
      0,
      !report,
      report
        ? `${report.charts.length} charts, ${report.thumbnails} thumbnails`
        : 'report.html is newer than its inputs',
    );
    overall.clear();
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
        data: { ...data, seconds: seconds('data') },
        prepare: { ...prepared, skipped: prepared.cacheHit },
        tune: { ...tuned, seconds: seconds('tune') },
        train: { ...(trained ?? {}), values, reason: stale ?? 'current', skipped: !trained, seconds: seconds('train') },
        report: { ...(report ?? {}), skipped: !report, seconds: seconds('report') },
      },
      backend: chosen?.name ?? null,
      seconds: Math.round(recorder.elapsed() * 1000) / 1000,
      peakRssMB: recorder.peakRssMB,
      limitMB,
    };
  } finally {
    recorder.stop();
    overall.clear();
  }
}
