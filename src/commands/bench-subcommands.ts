import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { positiveInt } from '../core/cli-options.ts';
import { Command, Option } from 'commander';
import { UsageError } from '../core/errors.ts';
import { formatSeconds } from '../core/console.ts';
import type { LoadedConfig } from '../config/load.ts';
import { commandContext, type CommandContext } from './context.ts';
import { describeMachine, machineInfo } from '../bench/machine.ts';
import type { PointResult } from '../bench/points.ts';
import { appendResults, defaultResultsFile, type StageResult } from '../bench/results.ts';
import type { TrainStageRunner } from '../bench/suite.ts';

/**
 * The CLI side of `galactic bench`: option parsing, the table on stdout (or the one JSON object
 * with --json), JSON lines appended to the results file, and the chart. The measuring is in
 * suite.ts (stages) and points.ts (scale, sweep).
 */

function integerAtLeast(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min)
      throw new UsageError(`${name} must be an integer of at least ${min} (got '${value}')`);
    return n;
  };
}

export function intList(name: string) {
  return (value: string): number[] => {
    const list = value
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean)
      .map(Number);
    if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new UsageError(`${name} must be a comma-separated list of positive integers (got '${value}')`);
    }
    return list;
  };
}

/** Options shared by the stage run and the scale/sweep subcommands. */
function addResultOptions(command: Command): Command {
  return command
    .option('--out <file>', 'append JSON lines here instead of bench/results/<date>.jsonl')
    .option('--no-save', 'do not append to any results file');
}

/** The options `galactic bench [stage...]` takes (added to the bench command). */
export function addStageOptions(command: Command): Command {
  return addResultOptions(
    command
      .option('--quick', 'small subset and few repeats: `bench all --quick` takes minutes', false)
      .option('--images <n>', 'images per repeat (default: 2000, or data.limit; 256 with --quick)', positiveInt)
      .option(
        '--repeats <n>',
        'repeats per stage; the median is reported with min and max (default 3; 2 with --quick)',
        positiveInt,
      )
      .option('--epochs <n>', 'feed epochs per repeat', positiveInt),
  );
}

function resultsFile(options: Record<string, unknown>): string | null {
  if (options.save === false) return null;
  return typeof options.out === 'string' ? path.resolve(options.out) : defaultResultsFile(process.cwd());
}

/** The action of `galactic bench [stage...]`. */
export async function runStagesAction(
  stageNames: string[],
  command: Command,
  trainStage: TrainStageRunner | null,
): Promise<void> {
  const ctx = commandContext(command);
  const { options, output } = ctx;
  // the measuring modules (tfjs, sharp, the synth renderer) load only when a bench runs
  const [{ ensureDemoData }, { runSuite, selectStages, suiteSettings }, { stageTable }] = await Promise.all([
    import('../images/synth/demo.ts'),
    import('../bench/suite.ts'),
    import('../bench/table.ts'),
  ]);
  const stages = selectStages(stageNames);
  const config = ctx.config();
  // the default config points at the built-in demo set: a fresh clone benchmarks it, synthesized once
  await ensureDemoData(config, output);
  const settings = suiteSettings(config, {
    quick: Boolean(options.quick),
    images: options.images as number | undefined,
    repeats: options.repeats as number | undefined,
    epochs: options.epochs as number | undefined,
  });
  output.info(`bench: ${describeMachine(machineInfo())}`);
  const report = await runSuite(config, stages, settings, output, trainStage);
  const time = new Date().toISOString();
  const file = resultsFile(options);
  if (file) {
    appendResults(
      file,
      Object.entries(report.stages).map(([key, result]) => ({
        kind: 'stage',
        time,
        machine: report.machine,
        config: report.config,
        settings: report.settings,
        key,
        result,
      })),
    );
    output.info(`bench: results appended to ${file}`);
  }
  if (output.json) {
    output.result({
      machine: report.machine,
      settings: report.settings,
      plannedMB: report.plannedMB,
      limitMB: report.limitMB,
      stages: report.stages,
    });
  } else {
    const rows = Object.values(report.stages).filter(
      (r): r is StageResult => typeof (r as StageResult).imagesPerSecond === 'number' && 'repeats' in r,
    );
    process.stdout.write(`${describeMachine(report.machine)}\n\n${stageTable(rows)}\n`);
  }
}

/** The base config of scale/sweep points: the --config file when it exists, otherwise the defaults. */
function baseConfig(ctx: CommandContext): LoadedConfig | null {
  return existsSync(ctx.options.config) ? ctx.config() : null;
}

function addPointOptions(command: Command): Command {
  return addResultOptions(
    command
      .option('--image-size <px>', 'side of the synthesized JPEGs (Galaxy Zoo 2: 424)', positiveInt, 424)
      .option('--seed <n>', 'synthesis seed', integerAtLeast('--seed', 0), 7)
      .option('--data-dir <dir>', 'where synthetic data sets are kept between runs', 'bench/.scale')
      .option('--chart <file.svg>', 'write the SVG chart here (default: beside the results file)')
      .option(
        '--passes <n>',
        'measure every point n times (alternating grid order); median [min–max] images/s, largest peak',
        positiveInt,
        1,
      ),
  );
}

async function runPoints(
  ctx: CommandContext,
  kind: 'scale' | 'sweep',
  grid: { size: number; limitMB: number }[],
): Promise<void> {
  const { options, output } = ctx;
  const [
    { renderBenchChart },
    { ensureSynthDataset },
    { chartPoints, combinePasses, measurePoint, peakSpread, pointTable, throughputSpread },
  ] = await Promise.all([import('../bench/chart.ts'), import('../bench/datasets.ts'), import('../bench/points.ts')]);
  const base = baseConfig(ctx);
  const dataDir = path.resolve(options.dataDir as string);
  const machineBefore = machineInfo();
  output.info(`bench ${kind}: ${describeMachine(machineBefore)}`);
  const passes = (options.passes as number | undefined) ?? 1;
  const measured = new Map<string, PointResult[]>();
  const raw: { pass: number; point: PointResult }[] = [];
  for (let pass = 0; pass < passes; pass++) {
    // every other pass runs the grid backwards, so a load that drifts during the run does not
    // line up with the x axis
    const order = pass % 2 === 0 ? grid : [...grid].reverse();
    for (const { size, limitMB } of order) {
      const key = `${size}/${limitMB}`;
      if (measured.get(key)?.some((p) => p.error && p.plannedMB === null)) continue; // refused by the planner: refused on every pass
      const dataset = await ensureSynthDataset(dataDir, size, {
        imageSize: options.imageSize as number,
        seed: options.seed as number,
        output,
      });
      output.info(
        `bench ${kind}: ${size} images under memory.limitMB ${limitMB} (prepare cold + 1 feed epoch, fresh process${passes > 1 ? `, pass ${pass + 1}/${passes}` : ''})`,
      );
      const point = await measurePoint(base, dataset, limitMB, path.join(dataDir, 'scratch'));
      output.info(
        point.error
          ? `  -> ${point.error}`
          : `  -> prepare ${point.prepare?.imagesPerSecond ?? '–'} images/s, feed ${point.feed?.imagesPerSecond ?? '–'} images/s, peak RSS ${point.peakRssMB} MB, ${formatSeconds(point.seconds)}`,
      );
      measured.set(key, [...(measured.get(key) ?? []), point]);
      raw.push({ pass, point });
    }
  }
  const points = grid.map(({ size, limitMB }) => combinePasses(measured.get(`${size}/${limitMB}`)!));
  const machine = machineInfo();
  const time = new Date().toISOString();
  const by = kind === 'scale' ? 'images' : 'limitMB';
  const spreads = {
    peakRss: peakSpread(points),
    prepareImagesPerSecond: throughputSpread(points, 'prepare'),
    feedImagesPerSecond: throughputSpread(points, 'feed'),
  };
  const file = resultsFile(options);
  if (file) {
    appendResults(
      file,
      raw.map(({ pass, point }) => ({
        kind,
        time,
        machine,
        loadAverageBefore: machineBefore.loadAverage1m,
        pass,
        point,
      })),
    );
    output.info(`bench ${kind}: results appended to ${file}`);
  }
  const chartFile = path.resolve(
    (options.chart as string | undefined) ??
      path.join(
        file ? path.dirname(file) : path.join(process.cwd(), 'bench', 'results'),
        `${kind}-${time.slice(0, 19).replace(/:/g, '')}.svg`,
      ),
  );
  const xTitle = kind === 'scale' ? 'data set size (images)' : 'memory.limitMB (MB)';
  const title =
    kind === 'scale'
      ? 'galactic bench scale: prepare + 1 feed epoch per size, fixed budget'
      : 'galactic bench sweep: prepare + 1 feed epoch per budget';
  mkdirSync(path.dirname(chartFile), { recursive: true });
  writeFileSync(chartFile, await renderBenchChart(chartPoints(points, by), xTitle, title));
  output.info(`bench ${kind}: chart written to ${chartFile}`);
  if (output.json) {
    output.result({ machine, kind, points, peakRssSpread: spreads.peakRss, spreads, chart: chartFile });
  } else {
    const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);
    const flat =
      spreads.peakRss === null
        ? ''
        : `\nspread across points, (max - min) / min: process peak RSS ${pct(spreads.peakRss)}, ` +
          `prepare images/s ${pct(spreads.prepareImagesPerSecond)}, feed images/s ${pct(spreads.feedImagesPerSecond)}\n`;
    process.stdout.write(`${describeMachine(machine)}\n\n${pointTable(points, by)}\n${flat}`);
  }
}

/** `galactic bench scale --sizes 2000,10000,50000 [--limit-mb 1024]` */
export function scaleCommand(): Command {
  return addPointOptions(
    new Command('scale')
      .description(
        'prepare + one feed epoch of synthetic data sets of growing size under one fixed budget, each in a fresh process: peak RSS should stay flat',
      )
      .addOption(
        new Option('--sizes <list>', 'data set sizes in images')
          .argParser(intList('--sizes'))
          .default([2000, 10000, 50000], '2000,10000,50000'),
      )
      .option('--limit-mb <mb>', 'memory.limitMB for every size', positiveInt, 1024),
  ).action(async (_options: unknown, command: Command) => {
    const ctx = commandContext(command);
    const sizes = ctx.options.sizes as number[];
    await runPoints(
      ctx,
      'scale',
      sizes.map((size) => ({ size, limitMB: ctx.options.limitMb as number })),
    );
  });
}

/** `galactic bench sweep --limits 512,1024,4096,8192 [--size 2000]` */
export function sweepCommand(): Command {
  return addPointOptions(
    new Command('sweep')
      .description(
        'prepare + one feed epoch of one synthetic data set under each budget, each in a fresh process: the peak must stay under every limit',
      )
      .addOption(
        new Option('--limits <list>', 'memory.limitMB values')
          .argParser(intList('--limits'))
          .default([512, 1024, 4096, 8192], '512,1024,4096,8192'),
      )
      .option('--size <n>', 'data set size in images', positiveInt, 2000),
  ).action(async (_options: unknown, command: Command) => {
    const ctx = commandContext(command);
    const limits = ctx.options.limits as number[];
    await runPoints(
      ctx,
      'sweep',
      limits.map((limitMB) => ({ size: ctx.options.size as number, limitMB })),
    );
  });
}
