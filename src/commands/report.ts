import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { UserError } from '../core/errors.ts';
import { commandContext } from './context.ts';

/**
 * `galactic report [--run NAME]`: re-renders runs/<name>/report.html from the run's own files,
 * for a `galactic run` as for a `galactic train`-only run. The tuning folder's sections are drawn
 * only when its best values are the ones the run trained with (otherwise the run was not tuned
 * by that search), and sample pixels come from the cache the run trained on.
 */

export class RunNotFoundError extends UserError {
  constructor(runDir: string, available: string[]) {
    super(
      `there is no trained run in ${runDir} (no metadata.json or history.json). ` +
        (available.length > 0
          ? `Runs in ${path.dirname(runDir)}: ${available.join(', ')}; choose one with --run NAME.`
          : `Train one first with 'galactic run' or 'galactic train', or point runs.dir in the config at the folder that holds it.`),
    );
  }
}

function trainedRuns(runsDir: string): string[] {
  if (!existsSync(runsDir)) return [];
  return readdirSync(runsDir, { withFileTypes: true })
    .filter(
      (d) =>
        d.isDirectory() &&
        (existsSync(path.join(runsDir, d.name, 'metadata.json')) ||
          existsSync(path.join(runsDir, d.name, 'history.json'))),
    )
    .map((d) => d.name)
    .sort();
}

function sameValues(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const keys = Object.keys(a);
  return keys.length > 0 && keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

export function reportCommand(): Command {
  return new Command('report')
    .description("re-render a run's report.html from its files (runs/<name>/), also for a train-only run")
    .option('--run <name>', 'run folder name under runs.dir (default: runs.name)')
    .action(async (_opts, command: Command) => {
      const ctx = commandContext(command);
      const { options, output } = ctx;
      const config = ctx.config();
      const name = (options.run as string | undefined) ?? config.runs.name;
      if (!/^[A-Za-z0-9._-]+$/.test(name))
        throw new UserError(`--run must be a run folder name (letters, digits, ., - and _), got '${name}'`);
      const runDir = path.join(config.runs.dir, name);
      if (!existsSync(path.join(runDir, 'metadata.json')) && !existsSync(path.join(runDir, 'history.json'))) {
        throw new RunNotFoundError(runDir, trainedRuns(config.runs.dir));
      }
      const [{ writeReport }, { readRunFiles, readTuningFiles }] = await Promise.all([
        import('../report/report.ts'),
        import('../report/run-files.ts'),
      ]);
      const run = readRunFiles(runDir);
      const trained = (run.metadata?.hyperparameters ?? {}) as Record<string, unknown>;
      const tuning = readTuningFiles(config.tuner.dir);
      const tuned = tuning.bestValues !== null && sameValues(trained, tuning.bestValues);
      if (!tuned && tuning.trials.length > 0)
        output.info(
          `report: the search in ${config.tuner.dir} did not pick this run's values, so the report has no tuner section`,
        );
      const cacheKey = typeof run.metadata?.cacheKey === 'string' ? run.metadata.cacheKey : null;
      const cacheDir = cacheKey ? path.join(config.cache.dir, cacheKey) : null;
      const summary = await writeReport({
        runDir,
        tuningDir: tuned ? config.tuner.dir : null,
        config,
        cacheDir: cacheDir && existsSync(cacheDir) ? cacheDir : null,
        output,
      });
      output.info(
        `report: ${summary.report}${summary.missing.length ? ` (without ${summary.missing.join(', ')})` : ''}`,
      );
      output.result(summary);
    });
}
