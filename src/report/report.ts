import { ensureDir, replaceFileAtomicSync } from '../core/atomic-file.ts';
import path from 'node:path';
import sharp from 'sharp';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { LoadedConfig } from '../config/load.ts';
import type { Output } from '../core/console.ts';
import {
  confusionSpec,
  hyperparameterSpec,
  leaderboardSpec,
  learningCurveSpec,
  memorySpec,
  perClassSpec,
  renderChart,
  throughputSpec,
  type ChartSpec,
} from './charts.ts';
import {
  escapeHtml,
  figure,
  formatNumber,
  note,
  reportPage,
  sampleGrid,
  table,
  type ReportSection,
  type SampleCard,
} from './page.ts';
import { readRunFiles, readTuningFiles, type RunFiles, type TuningFiles } from './run-files.ts';
import { cachePixelSource, imageFolderPixelSource, sampleThumbnails, type PixelSource } from './thumbnails.ts';
import { GALACTIC_VERSION } from '../core/version.ts';

/**
 * Builds `runs/<name>/report.html` (self-contained: inline SVG charts and CSS, thumbnails as
 * data: URIs) and writes every chart beside it as `charts/<name>.svg` and `charts/<name>.png`.
 */

export interface ReportOptions {
  runDir: string;
  /** Tuning directory with trial_<id>/trial.json; null or absent: no tuner sections. */
  tuningDir?: string | null;
  /** The run's config: objective, log-sampled hyperparameters, image folder, config summary. */
  config?: LoadedConfig | null;
  /** Cache directory whose shards hold the sample pixels. */
  cacheDir?: string | null;
  /** Overrides where thumbnail pixels come from (default: the cache, then the config's image folder). */
  pixelSources?: PixelSource[];
  output?: Output;
}

export interface ReportSummary {
  report: string;
  chartsDir: string;
  charts: string[];
  thumbnails: number;
  samples: number;
  /** Inputs that were absent, so their sections only carry a note. */
  missing: string[];
  seconds: number;
}

export async function writeReport(options: ReportOptions): Promise<ReportSummary> {
  const started = performance.now();
  const { runDir, config = null } = options;
  const run = readRunFiles(runDir);
  const tuning = readTuningFiles(options.tuningDir ?? null);
  const objective = config?.tuner.objective ?? 'val_accuracy';
  const missing: string[] = [];
  const chartsDir = path.join(runDir, 'charts');
  ensureDir(chartsDir);

  const specs = chartSpecs(run, tuning, config, objective, missing);
  const progress = options.output?.progress('report', specs.length + 1, 'charts');
  const svgs = new Map<string, string>();
  for (const { name, spec } of specs) {
    const { svg, png } = await renderChart(spec);
    writeAtomic(path.join(chartsDir, `${name}.svg`), svg);
    writeAtomic(path.join(chartsDir, `${name}.png`), png);
    svgs.set(name, svg);
    progress?.increment();
  }

  const samples = run.metrics?.samples ?? [];
  const sources = options.pixelSources ?? defaultPixelSources(options.cacheDir ?? null, config);
  const thumbnails = await sampleThumbnails(
    samples.map((s) => s.id),
    sources,
  );
  progress?.increment();

  const sections = [
    learningSection(run, svgs),
    tunerSection(tuning, svgs, objective),
    confusionSection(run, svgs),
    perClassSection(run, svgs),
    samplesSection(run, thumbnails),
    memorySection(run, svgs),
    throughputSection(run, svgs),
    configSection(config, run),
  ];
  const name = path.basename(runDir);
  const accuracy = run.metrics?.accuracy;
  const headline = [
    { label: 'validation accuracy', value: typeof accuracy === 'number' ? accuracy.toFixed(3) : '–' },
    { label: 'epochs trained', value: String(run.history?.length ?? '–') },
    { label: 'tuning trials', value: String(tuning.trials.length) },
    { label: 'backend', value: backendOf(run) },
    {
      label: 'peak RSS / budget',
      value: run.timeline
        ? `${Math.round(Math.max(0, ...run.timeline.samples.map((s) => s.rssMB)))} / ${run.timeline.limitMB} MiB`
        : '–',
    },
  ];
  const html = reportPage({
    title: `galactic report: ${name}`,
    subtitle: `${runDir} · generated ${new Date().toISOString()}`,
    headline,
    sections,
  });
  const report = path.join(runDir, 'report.html');
  writeAtomic(report, html);
  progress?.stop(`report: ${specs.length} charts, ${thumbnails.size} thumbnails → ${report}`);
  return {
    report,
    chartsDir,
    charts: specs.map((s) => s.name),
    thumbnails: thumbnails.size,
    samples: samples.length,
    missing,
    seconds: (performance.now() - started) / 1000,
  };
}

function defaultPixelSources(cacheDir: string | null, config: LoadedConfig | null): PixelSource[] {
  const sources: PixelSource[] = [];
  if (cacheDir) sources.push(cachePixelSource(cacheDir));
  if (config)
    sources.push(imageFolderPixelSource(config.data.imageDir, config.data.fileName, Math.min(config.image.width, 96)));
  return sources;
}

function chartSpecs(
  run: RunFiles,
  tuning: TuningFiles,
  config: LoadedConfig | null,
  objective: string,
  missing: string[],
) {
  const specs: { name: string; spec: ChartSpec }[] = [];
  if (run.history?.length) {
    specs.push({ name: 'loss', spec: learningCurveSpec(run.history, 'loss') });
    specs.push({ name: 'accuracy', spec: learningCurveSpec(run.history, 'accuracy') });
  } else missing.push('history.json');
  if (tuning.trials.some((t) => t.score !== null)) {
    specs.push({ name: 'leaderboard', spec: leaderboardSpec(tuning.trials, objective) });
    for (const hp of tunedHyperparameters(tuning, config)) {
      specs.push({
        name: `hp-${hp.name}`,
        spec: hyperparameterSpec(tuning.trials, hp.name, objective, {
          log: hp.log,
          domain: hp.domain,
          integerStep: hp.integerStep,
        }),
      });
    }
  } else missing.push('tuning trials');
  if (run.metrics) {
    specs.push({ name: 'confusion', spec: confusionSpec(run.metrics.classes, run.metrics.confusion) });
    specs.push({ name: 'per-class', spec: perClassSpec(run.metrics.perClass) });
  } else missing.push('metrics.json');
  if (run.timeline) {
    specs.push({ name: 'memory', spec: memorySpec(run.timeline.samples, run.timeline.limitMB) });
    if (run.timeline.stages.some((s) => !s.skipped && s.itemsPerSecond > 0)) {
      specs.push({ name: 'throughput', spec: throughputSpec(run.timeline.stages) });
    }
  } else missing.push('timeline.json');
  return specs;
}

/** Hyperparameters worth a scatter: searched (not fixed) in the config, or varying across trials. */
function tunedHyperparameters(
  tuning: TuningFiles,
  config: LoadedConfig | null,
): { name: string; log: boolean; domain?: [number, number]; integerStep?: number }[] {
  const names = [...new Set(tuning.trials.flatMap((t) => Object.keys(t.values)))];
  return names
    .filter((name) => {
      const spec = config?.tuner.space[name];
      if (spec) return spec.type !== 'fixed';
      return new Set(tuning.trials.map((t) => JSON.stringify(t.values[name]))).size > 1;
    })
    .map((name) => {
      const spec = config?.tuner.space[name];
      const numbers = tuning.trials.map((t) => t.values[name]).filter((v): v is number => typeof v === 'number');
      const allIntegers = numbers.length > 0 && numbers.every((v) => Number.isInteger(v));
      if (spec && spec.type === 'int')
        return {
          name,
          log: spec.sampling === 'log',
          domain: [spec.min, spec.max] as [number, number],
          integerStep: spec.sampling === 'log' ? 1 : (spec.step ?? 1),
        };
      if (spec && spec.type === 'float')
        return { name, log: spec.sampling === 'log', domain: [spec.min, spec.max] as [number, number] };
      if (spec) return { name, log: false, ...(spec.type === 'choice' && allIntegers ? { integerStep: 1 } : {}) };
      // without the config: a positive numeric range spanning a decade or more reads better on a log axis
      const min = Math.min(...numbers);
      return {
        name,
        log: numbers.length > 1 && min > 0 && Math.max(...numbers) / min >= 10,
        ...(allIntegers ? { integerStep: 1 } : {}),
      };
    });
}

function charts(svgs: Map<string, string>, entries: [string, string][]): string {
  const figures = entries
    .filter(([name]) => svgs.has(name))
    .map(([name, caption]) => figure(name, svgs.get(name)!, caption));
  return figures.length ? `<div class="charts">${figures.join('')}</div>` : '';
}

function learningSection(run: RunFiles, svgs: Map<string, string>): ReportSection {
  const history = run.history ?? [];
  const html = history.length
    ? charts(svgs, [
        ['loss', 'Loss, training against validation.'],
        ['accuracy', 'Accuracy, training against validation.'],
      ]) +
      table(
        ['epoch', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'seconds', 'images/s', 'peak RSS MiB'],
        history.map((h) => [
          h.epoch,
          h.loss,
          h.accuracy,
          h.val_loss,
          h.val_accuracy,
          h.seconds,
          h.imagesPerSecond,
          h.peakRssMB,
        ]),
      )
    : note(`No history.json in ${run.runDir}: the model has not been trained yet.`);
  return { id: 'learning-curves', title: 'Learning curves', html };
}

function tunerSection(tuning: TuningFiles, svgs: Map<string, string>, objective: string): ReportSection {
  if (tuning.trials.length === 0) {
    return {
      id: 'tuner',
      title: 'Tuner',
      html: note(tuning.tuningDir ? `No tuning trials in ${tuning.tuningDir}.` : 'This run was not tuned.'),
    };
  }
  const lowerIsBetter = /loss/.test(objective);
  const ranked = [...tuning.trials].sort((a, b) =>
    a.score === null ? 1 : b.score === null ? -1 : lowerIsBetter ? a.score - b.score : b.score - a.score,
  );
  const hpNames = [...new Set(tuning.trials.flatMap((t) => Object.keys(t.values)))];
  const rows = ranked.map((t, i) => [
    t.score === null ? '–' : i + 1,
    t.id,
    t.status,
    t.score,
    t.bestEpoch ?? '–',
    t.metrics?.length ?? '–',
    t.seconds,
    t.peakRssMB,
    ...hpNames.map((n) => t.values[n]),
    t.reason ?? '',
  ]);
  const leaderboard = table(
    ['rank', 'trial', 'status', objective, 'best epoch', 'epochs', 'seconds', 'peak RSS MiB', ...hpNames, 'note'],
    rows,
    'leaderboard',
  ).replace('<tbody><tr>', ranked[0]?.score !== null ? '<tbody><tr class="best">' : '<tbody><tr>');
  const hpCharts = [...svgs.keys()]
    .filter((n) => n.startsWith('hp-'))
    .map((n): [string, string] => [n, `${objective} against ${n.slice(3)}, one point per trial.`]);
  const best = tuning.bestValues
    ? `<h3>Best hyperparameters</h3>${table(
        ['name', 'value'],
        Object.entries(tuning.bestValues).map(([k, v]) => [k, v]),
      )}`
    : '';
  return {
    id: 'tuner',
    title: 'Tuner',
    html:
      charts(svgs, [['leaderboard', `Trials ranked by ${objective}.`]]) +
      `<h3>Leaderboard</h3>${leaderboard}${best}` +
      (hpCharts.length ? `<h3>Each hyperparameter against the objective</h3>${charts(svgs, hpCharts)}` : ''),
  };
}

function confusionSection(run: RunFiles, svgs: Map<string, string>): ReportSection {
  return {
    id: 'confusion',
    title: 'Confusion matrix',
    html: run.metrics
      ? charts(svgs, [['confusion', 'Rows: true class; columns: predicted class; counts of validation images.']])
      : note('No metrics.json: the model has not been evaluated yet.'),
  };
}

function perClassSection(run: RunFiles, svgs: Map<string, string>): ReportSection {
  if (!run.metrics) return { id: 'per-class', title: 'Per-class metrics', html: note('No metrics.json.') };
  const rows = run.metrics.perClass.map((c) => [c.class, c.precision, c.recall, c.f1, c.support]);
  return {
    id: 'per-class',
    title: 'Per-class metrics',
    html:
      charts(svgs, [['per-class', 'Precision, recall and F1 per class on the validation split.']]) +
      table(['class', 'precision', 'recall', 'F1', 'support'], rows, 'per-class') +
      `<p>Overall validation accuracy: <b>${escapeHtml(formatNumber(run.metrics.accuracy))}</b></p>`,
  };
}

function samplesSection(run: RunFiles, thumbnails: Map<string, string>): ReportSection {
  const metrics = run.metrics;
  if (!metrics?.samples?.length)
    return { id: 'samples', title: 'Validation samples', html: note('No validation samples in metrics.json.') };
  const cards: SampleCard[] = metrics.samples.map((s) => ({
    id: s.id,
    label: metrics.classes[s.label] ?? String(s.label),
    predicted: metrics.classes[s.predicted] ?? String(s.predicted),
    correct: s.label === s.predicted,
    probabilities: s.probabilities.map((p, i) => ({ class: metrics.classes[i] ?? String(i), p })),
    thumbnail: thumbnails.get(s.id) ?? null,
  }));
  const right = cards.filter((c) => c.correct);
  const wrong = cards.filter((c) => !c.correct);
  const validation = metrics.confusion.flat().reduce((a, b) => a + b, 0);
  const misclassified = validation - metrics.confusion.reduce((sum, row, i) => sum + (row[i] ?? 0), 0);
  const perClass = Math.max(
    ...metrics.classes.map((_, k) => cards.filter((c) => c.label === (metrics.classes[k] ?? String(k))).length),
  );
  const what = `${cards.length} of ${validation} validation images; ${misclassified} misclassified overall.`;
  const how = `Shown: up to ${perClass} images of each true class, the first in cache order; the misclassified ones among them (${wrong.length}) first, then the correct ones (${right.length}).`;
  return {
    id: 'samples',
    title: 'Validation samples',
    html:
      `<p class="samples-summary"><b>${escapeHtml(what)}</b> ${escapeHtml(how)}</p>` +
      `<h3>Misclassified (${wrong.length} of the ${cards.length} shown)</h3>${sampleGrid(wrong)}<h3>Correct (${right.length} of the ${cards.length} shown)</h3>${sampleGrid(right)}`,
  };
}

function memorySection(run: RunFiles, svgs: Map<string, string>): ReportSection {
  if (!run.timeline) return { id: 'memory', title: 'Memory', html: note('No timeline.json: written by galactic run.') };
  const peak = Math.max(0, ...run.timeline.samples.map((s) => s.rssMB));
  return {
    id: 'memory',
    title: 'Memory',
    html:
      charts(svgs, [
        [
          'memory',
          'Resident set size sampled through the run, coloured by stage; the dashed line is the budget (memory.limitMB).',
        ],
      ]) +
      `<p>Peak RSS <b>${peak.toFixed(0)} MiB</b> of a <b>${run.timeline.limitMB} MiB</b> budget (${run.timeline.samples.length} samples).</p>`,
  };
}

function throughputSection(run: RunFiles, svgs: Map<string, string>): ReportSection {
  if (!run.timeline)
    return { id: 'throughput', title: 'Throughput', html: note('No timeline.json: written by galactic run.') };
  const rows = run.timeline.stages.map((s) => [
    s.name,
    s.skipped ? 'skipped (outputs current)' : 'ran',
    s.seconds,
    s.items,
    s.itemsPerSecond,
  ]);
  return {
    id: 'throughput',
    title: 'Throughput per stage',
    html:
      charts(svgs, [['throughput', 'Images per second of each stage that ran (tune and train count image-epochs).']]) +
      table(['stage', 'status', 'seconds', 'items', 'items/s'], rows, 'stages'),
  };
}

function backendOf(run: RunFiles): string {
  const backend = run.metadata?.backend;
  if (typeof backend === 'string') return backend;
  if (backend && typeof backend === 'object' && 'name' in backend) return String((backend as { name: unknown }).name);
  return '–';
}

function configSection(config: LoadedConfig | null, run: RunFiles): ReportSection {
  const parts: string[] = [];
  if (config) {
    const rows: [string, unknown][] = [
      ['config file', config.configPath],
      ['data', `${config.data.layout}: ${config.data.csv} (${config.data.limit ?? 'all'} records)`],
      ['images', config.data.imageDir],
      ['classes', config.data.classes.map((c) => `${c.name} (${c.match})`).join(', ')],
      ['image size', `${config.image.width}x${config.image.height}x${config.image.channels}, fit ${config.image.fit}`],
      ['cache', `${config.cache.dir} (${config.cache.dtype})`],
      ['memory budget', `${config.memory.limitMB} MiB`],
      ['seed', config.seed],
      ['split', `validation ${config.split.validation}${config.split.stratify ? ', stratified' : ''}`],
      [
        'feed',
        `normalize ${config.feed.normalize}; augment flip ${config.feed.augment.flip}, rotate90 ${config.feed.augment.rotate90}`,
      ],
      ['backend (requested)', config.backend],
      [
        'train',
        `batch ${config.train.batchSize}, ${config.train.epochs} epochs, early stopping ${config.train.earlyStopping ? `${config.train.earlyStopping.monitor} patience ${config.train.earlyStopping.patience}` : 'off'}`,
      ],
      [
        'tuner',
        `${config.tuner.algorithm}, ${config.tuner.maxTrials} trials × ${config.tuner.epochs} epochs, objective ${config.tuner.objective}`,
      ],
    ];
    parts.push(table(['setting', 'value'], rows));
    const { configPath: _p, configDir: _d, ...plain } = config;
    parts.push(
      `<details><summary>Full config (defaults filled in)</summary>${table(['key', 'value'], flattenForTable(plain), 'full-config')}</details>`,
    );
  } else {
    parts.push(note('The config was not given to the report.'));
  }
  if (run.metadata) {
    parts.push(`<h3>Model metadata</h3>${table(['field', 'value'], flattenForTable(run.metadata), 'metadata')}`);
  }
  // the versions that trained the model (from metadata.json) first, then those that drew the report
  const trainedWith =
    run.metadata?.versions && typeof run.metadata.versions === 'object'
      ? Object.entries(run.metadata.versions as Record<string, unknown>).map(([k, v]): [string, unknown] => [
          `${k} (training)`,
          v,
        ])
      : [];
  const versions: [string, unknown][] = [
    ...trainedWith,
    ['backend (training)', backendOf(run)],
    ['galactic', GALACTIC_VERSION],
    ['node', process.versions.node],
    ['vega', vega.version],
    ['vega-lite', vl.version],
    ['sharp', sharp.versions.sharp ?? '–'],
    ['libvips', sharp.versions.vips],
  ];
  parts.push(`<h3>Versions</h3>${table(['component', 'version'], versions, 'versions')}`);
  return { id: 'config', title: 'Configuration, backend and versions', html: parts.join('') };
}

/**
 * Nested JSON as table rows: one row per leaf, named by its dotted path (`split.trainImages`);
 * a list of plain values is one row, its items joined; a list of objects gets an index (`classes.0.name`).
 */
export function flattenForTable(value: unknown, prefix = ''): [string, unknown][] {
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object'))
      return [[prefix, value.length ? value.map((v) => formatNumber(v)).join(', ') : '(none)']];
    return value.flatMap((v, i) => flattenForTable(v, prefix ? `${prefix}.${i}` : String(i)));
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return [[prefix, '(none)']];
    return entries.flatMap(([k, v]) => flattenForTable(v, prefix ? `${prefix}.${k}` : k));
  }
  return [[prefix, value === null ? 'null' : value]];
}

function writeAtomic(file: string, content: string | Buffer): void {
  replaceFileAtomicSync(file, content, "then rerun the same command: the report is rebuilt from the run's files");
}
