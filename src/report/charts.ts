import sharp from 'sharp';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';

/**
 * Vega-lite chart specs for the report and one renderer that turns any spec into SVG (vega's
 * headless `toSVG`, pure JS) and PNG (sharp/librsvg). Specs carry their data inline, so an SVG
 * is self-contained and the same spec renders the same picture anywhere.
 */

export type ChartSpec = TopLevelSpec;

export interface RenderedChart {
  svg: string;
  png: Buffer;
}

/** A font librsvg finds on a bare Linux box (DejaVu ships with fontconfig); generic fallback after it. */
const FONT = 'DejaVu Sans, Verdana, sans-serif';

const BASE_CONFIG = {
  font: FONT,
  background: 'white',
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 14, anchor: 'start' as const },
};

/** Renders a vega-lite spec to SVG and to a PNG at twice the SVG's pixel size (sharp on HiDPI screens). */
export async function renderChart(spec: ChartSpec): Promise<RenderedChart> {
  const withConfig = { ...spec, config: { ...BASE_CONFIG, ...(spec.config ?? {}) } } as ChartSpec;
  // vega and vega-lite log warnings to the console; stderr belongs to progress output
  const compiled = vl.compile(withConfig, { logger: vega.logger(vega.None) }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.None });
  try {
    const svg = await view.toSVG();
    const png = await sharp(Buffer.from(svg), { density: 144 }).png().toBuffer();
    return { svg, png };
  } finally {
    view.finalize();
  }
}

// ---------------------------------------------------------------------------------------------
// Inputs the specs are built from: the shapes of the run-directory files (docs/interfaces.md §7)
// as far as charts need them.

export interface EpochPoint {
  epoch: number;
  loss: number;
  accuracy: number;
  val_loss: number;
  val_accuracy: number;
}

export interface TrialPoint {
  id: string;
  values: Record<string, number | string | boolean>;
  status: string;
  score: number | null;
}

export interface ClassMetric {
  class: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface MemorySample {
  t: number;
  rssMB: number;
  stage: string;
}

export interface StageThroughput {
  name: string;
  itemsPerSecond: number;
  items: number;
  skipped: boolean;
}

const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** Loss or accuracy per epoch, training against validation (the notebook's two history plots). */
export function learningCurveSpec(history: EpochPoint[], metric: 'loss' | 'accuracy'): ChartSpec {
  const values = history
    .flatMap((h) => [
      { epoch: h.epoch, split: 'training', value: h[metric] },
      { epoch: h.epoch, split: 'validation', value: metric === 'loss' ? h.val_loss : h.val_accuracy },
    ])
    .filter((v) => finite(v.value));
  return {
    title: metric === 'loss' ? 'Loss per epoch' : 'Accuracy per epoch',
    width: 420,
    height: 240,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'Epoch', axis: { tickMinStep: 1, format: 'd' } },
      y: {
        field: 'value',
        type: 'quantitative',
        title: metric === 'loss' ? 'Loss' : 'Accuracy',
        ...(metric === 'accuracy' ? { scale: { domain: [0, 1] } } : {}),
      },
      color: { field: 'split', type: 'nominal', title: 'Split', scale: { domain: ['training', 'validation'] } },
    },
  };
}

/**
 * An axis range fitted to the scores, so trials that differ in the third decimal do not look alike:
 * a margin of a quarter of their spread below, more above for the value labels, on a grid that
 * suits the spread, and never outside [0, 1] for an accuracy.
 */
export function fittedScoreDomain(scores: number[], bounded: boolean): [number, number] {
  const lo = Math.min(...scores);
  const hi = Math.max(...scores);
  const spread = Math.max(hi - lo, Math.abs(hi) * 0.02, 1e-3);
  const grid = 10 ** Math.floor(Math.log10(spread / 2));
  let from = Math.floor((lo - spread * 0.25) / grid) * grid;
  let to = Math.ceil((hi + spread * 0.45) / grid) * grid;
  if (bounded) {
    from = Math.max(0, from);
    to = Math.min(1, Math.max(to, hi));
  } else if (lo >= 0) {
    from = Math.max(0, from);
  }
  return [Number(from.toPrecision(12)), Number(to.toPrecision(12))];
}

/** One bar per finished trial, best first; failed or unfinished trials have no score and no bar. */
export function leaderboardSpec(trials: TrialPoint[], objective: string): ChartSpec {
  const values = trials.filter((t) => finite(t.score)).map((t) => ({ trial: t.id, score: t.score, status: t.status }));
  const lowerIsBetter = /loss/.test(objective);
  const domain =
    values.length > 0
      ? fittedScoreDomain(
          values.map((v) => v.score as number),
          !lowerIsBetter,
        )
      : [0, 1];
  return {
    title: `Tuner leaderboard (${objective})`,
    width: 420,
    height: { step: 18 },
    data: { values },
    encoding: {
      y: {
        field: 'trial',
        type: 'nominal',
        title: 'Trial',
        sort: { field: 'score', order: lowerIsBetter ? 'ascending' : 'descending' },
      },
      x: { field: 'score', type: 'quantitative', title: objective, scale: { domain, zero: false, nice: false } },
      tooltip: [{ field: 'trial' }, { field: 'score', format: '.4f' }],
    },
    // close scores look alike as bars: each carries its value
    layer: [
      {
        mark: { type: 'bar', clip: true },
        encoding: { color: { field: 'status', type: 'nominal', title: 'Status', legend: { orient: 'bottom' } } },
      },
      {
        mark: { type: 'text', align: 'left', dx: 3 },
        encoding: { text: { field: 'score', type: 'quantitative', format: '.4f' } },
      },
    ],
  };
}

/** The objective against one hyperparameter (one point per scored trial); log axis for log-sampled floats. */
export function hyperparameterSpec(
  trials: TrialPoint[],
  name: string,
  objective: string,
  options: { log?: boolean; domain?: [number, number]; integerStep?: number } = {},
): ChartSpec {
  const values = trials
    .filter((t) => finite(t.score) && t.values[name] !== undefined)
    .map((t) => ({ trial: t.id, value: t.values[name], score: t.score }));
  const numeric = values.every((v) => typeof v.value === 'number');
  return {
    title: `${objective} against ${name}`,
    width: 260,
    height: 200,
    data: { values },
    mark: { type: 'point', filled: true, size: 70 },
    encoding: {
      x: numeric
        ? {
            field: 'value',
            type: 'quantitative',
            title: name,
            scale: {
              ...(options.log ? { type: 'log' as const } : { zero: false }),
              // the searched range, when known, so the points show where in it the trials fell
              ...(options.domain ? { domain: options.domain, nice: false } : {}),
              padding: 12, // points at the ends of the range stay whole
            },
            // an int hyperparameter takes whole values: ticks on its grid, no 12.5 filters
            ...(options.integerStep
              ? { axis: integerAxis(options.integerStep, options.domain, options.log ?? false) }
              : {}),
          }
        : { field: 'value', type: 'nominal', title: name },
      y: { field: 'score', type: 'quantitative', title: objective, scale: { zero: false } },
      tooltip: [{ field: 'trial' }, { field: 'value' }, { field: 'score', format: '.4f' }],
    },
  };
}

/**
 * Integer ticks: the values of the searched grid when it is short and linear, else whole numbers at least `step` apart.
 */
function integerAxis(step: number, domain: [number, number] | undefined, log: boolean): Record<string, unknown> {
  if (domain && !log && (domain[1] - domain[0]) / step <= 10) {
    const values: number[] = [];
    for (let v = domain[0]; v <= domain[1]; v += step) values.push(v);
    return { format: 'd', values };
  }
  return { format: 'd', tickMinStep: step };
}

/** Confusion matrix: rows are the true class, columns the predicted class, each cell labelled with its count. */
export function confusionSpec(classes: string[], confusion: number[][]): ChartSpec {
  const values = confusion.flatMap((row, i) =>
    row.map((count, j) => ({ actual: classes[i], predicted: classes[j], count })),
  );
  const max = Math.max(1, ...values.map((v) => v.count));
  return {
    title: 'Confusion matrix (validation)',
    data: { values },
    width: { step: 64 },
    height: { step: 48 },
    encoding: {
      x: { field: 'predicted', type: 'nominal', title: 'Predicted class', sort: classes, axis: { labelAngle: 0 } },
      y: { field: 'actual', type: 'nominal', title: 'True class', sort: classes },
    },
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: { field: 'count', type: 'quantitative', title: 'Count', scale: { scheme: 'blues', domain: [0, max] } },
        },
      },
      {
        mark: { type: 'text', fontSize: 13 },
        encoding: {
          text: { field: 'count', type: 'quantitative' },
          color: { condition: { test: `datum.count > ${max / 2}`, value: 'white' }, value: 'black' },
        },
      },
    ],
  };
}

/** Precision, recall and F1 per class as grouped bars. */
export function perClassSpec(perClass: ClassMetric[]): ChartSpec {
  const values = perClass
    .flatMap((c) => [
      { class: c.class, measure: 'precision', value: c.precision },
      { class: c.class, measure: 'recall', value: c.recall },
      { class: c.class, measure: 'F1', value: c.f1 },
    ])
    .filter((v) => finite(v.value));
  return {
    title: 'Per-class precision, recall and F1 (validation)',
    width: { step: 22 },
    height: 220,
    data: { values },
    mark: 'bar',
    encoding: {
      x: {
        field: 'class',
        type: 'nominal',
        title: 'Class',
        axis: { labelAngle: 0 },
        sort: perClass.map((c) => c.class),
      },
      xOffset: { field: 'measure', sort: ['precision', 'recall', 'F1'] },
      y: { field: 'value', type: 'quantitative', title: 'Score', scale: { domain: [0, 1] } },
      color: { field: 'measure', type: 'nominal', title: 'Measure', sort: ['precision', 'recall', 'F1'] },
      tooltip: [{ field: 'class' }, { field: 'measure' }, { field: 'value', format: '.3f' }],
    },
  };
}

/** Resident memory across the run, coloured by stage, with the budget as a dashed red line. */
export function memorySpec(samples: MemorySample[], limitMB: number): ChartSpec {
  const stages = [...new Set(samples.map((s) => s.stage))];
  // each stage's line runs on to the next stage's first sample, so the curve has no gaps at boundaries
  const values = samples.flatMap((s, i) =>
    i > 0 && samples[i - 1].stage !== s.stage ? [{ ...s, stage: samples[i - 1].stage }, s] : [s],
  );
  return {
    title: 'Memory (RSS) against the budget',
    width: 520,
    height: 220,
    layer: [
      {
        data: { values },
        mark: { type: 'line' },
        encoding: {
          x: { field: 't', type: 'quantitative', title: 'Seconds since start' },
          y: {
            field: 'rssMB',
            type: 'quantitative',
            title: 'MiB',
            scale: { domain: [0, Math.max(limitMB, ...samples.map((s) => s.rssMB)) * 1.05] },
          },
          color: { field: 'stage', type: 'nominal', title: 'Stage', sort: stages },
          detail: { field: 'stage' },
        },
      },
      {
        data: { values: [{ limitMB, label: `budget ${limitMB} MiB` }] },
        mark: { type: 'rule', color: '#d62728', strokeDash: [6, 4], strokeWidth: 2 },
        encoding: { y: { field: 'limitMB', type: 'quantitative' } },
      },
      {
        data: { values: [{ limitMB, label: `budget ${limitMB} MiB` }] },
        mark: { type: 'text', color: '#d62728', align: 'left', baseline: 'bottom', dx: 4, dy: -2, x: 0 },
        encoding: { y: { field: 'limitMB', type: 'quantitative' }, text: { field: 'label' } },
      },
    ],
  };
}

/** Items per second for each stage that did work (skipped stages did none and have no bar). */
export function throughputSpec(stages: StageThroughput[]): ChartSpec {
  const values = stages
    .filter((s) => !s.skipped && finite(s.itemsPerSecond) && s.itemsPerSecond > 0)
    .map((s) => ({ stage: s.name, rate: Number(s.itemsPerSecond.toFixed(1)), items: s.items }));
  return {
    title: 'Throughput per stage',
    width: 420,
    height: { step: 28 },
    data: { values },
    encoding: {
      y: { field: 'stage', type: 'nominal', title: 'Stage', sort: null },
      x: { field: 'rate', type: 'quantitative', title: 'Images per second' },
    },
    layer: [
      { mark: { type: 'bar', color: '#4c78a8' } },
      { mark: { type: 'text', align: 'left', dx: 3 }, encoding: { text: { field: 'rate', type: 'quantitative' } } },
    ],
  };
}
