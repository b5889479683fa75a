import { readFileSync, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { UserError } from '../core/errors.ts';
import { configSchema, type PipelineConfig } from './schema.ts';

export class ConfigNotFoundError extends UserError {
  constructor(file: string, problem: 'missing' | 'missing-default' | 'folder' | 'not-a-file') {
    const absolute = path.resolve(file);
    const inside = path.join(file, DEFAULT_CONFIG);
    super(
      problem === 'missing-default'
        ? `no config file ${DEFAULT_CONFIG} in ${path.dirname(absolute)} (the folder galactic was started in). Run galactic from the folder that holds it, or pass one with --config FILE.`
        : problem === 'folder'
          ? `--config ${file} is a folder, not a config file. Pass the file itself${existsSync(inside) ? `, e.g. --config ${inside}` : ' (e.g. --config FOLDER/pipeline.config.json)'}.`
          : problem === 'not-a-file'
            ? `--config ${file} is not a regular file (a FIFO, socket or device?); it was not opened. Pass the config file itself.`
            : `config file ${file} does not exist (looked for ${absolute}). Pass an existing file with --config FILE.`,
    );
  }
}

/** What --config means when it is not given: this name in the folder galactic was started in. */
export const DEFAULT_CONFIG = 'pipeline.config.json';

export class ConfigSyntaxError extends UserError {
  constructor(file: string, line: number, column: number, detail: string) {
    super(
      `config file ${file} is not valid JSON at line ${line}, column ${column}: ${detail}. Fix the JSON syntax there (comments and trailing commas are not allowed).`,
    );
  }
}

export class ConfigInvalidError extends UserError {
  readonly problems: string[];
  constructor(file: string, problems: string[]) {
    super(
      `config file ${file} is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}\nSee the config reference in README.md (or pipeline.config.schema.json).`,
    );
    this.problems = problems;
  }
}

/**
 * A validated config whose paths are absolute (resolved against the config file's folder),
 * plus where it came from. Everything downstream takes this, never the raw JSON.
 */
export interface LoadedConfig extends PipelineConfig {
  /** Absolute path of the config file (or '<inline>' for configs built in code). */
  readonly configPath: string;
  readonly configDir: string;
}

/** Converts a JSON.parse error position into a 1-based line and column. */
function locate(text: string, error: Error): { line: number; column: number; detail: string } {
  const message = error.message;
  let position = -1;
  const pos = /position (\d+)/.exec(message);
  if (pos) position = Number(pos[1]);
  const lineCol = /line (\d+) column (\d+)/.exec(message);
  if (lineCol)
    return { line: Number(lineCol[1]), column: Number(lineCol[2]), detail: message.replace(/ in JSON.*$/, '') };
  if (position < 0) position = text.length;
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return { line, column, detail: message.replace(/ in JSON at position \d+.*$/, '').replace(/^.*?SyntaxError: /, '') };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
  switch (issue.code) {
    case 'unrecognized_keys':
      return `${where === '(top level)' ? 'the top level' : where} has unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (typo?)`;
    case 'invalid_type':
      return issue.input === undefined
        ? `${where} is required`
        : `${where} must be ${article(issue.expected)} (got ${typeName(issue.input)})`;
    case 'too_small':
      if (issue.origin === 'number')
        return `${where} ${issue.message.startsWith('must') ? issue.message : `must be ${issue.inclusive ? 'at least' : 'greater than'} ${issue.minimum}`}`;
      if (issue.origin === 'array')
        return `${where} ${issue.message.startsWith('must') ? issue.message : `must have at least ${issue.minimum} item(s)`}`;
      return `${where} must not be empty`;
    case 'too_big':
      if (issue.origin === 'number')
        return `${where} ${issue.message.startsWith('must') ? issue.message : `must be ${issue.inclusive ? 'at most' : 'less than'} ${issue.maximum}`}`;
      return `${where} is too long (at most ${issue.maximum})`;
    case 'invalid_value':
      return `${where} must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_union':
      return `${where} has an invalid value (${issue.message})`;
    default:
      return `${where} ${issue.message}`;
  }
}

function article(expected: string): string {
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? `string ${JSON.stringify(value)}` : `${typeof value} ${JSON.stringify(value)}`;
}

/** Validates an already parsed config object; `source` names it in error messages. */
export function validateConfig(raw: unknown, source: string, baseDir: string): LoadedConfig {
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (!result.success) throw new ConfigInvalidError(source, result.error.issues.map(describeIssue));
  return resolvePaths(result.data, source, baseDir);
}

function resolvePaths(cfg: PipelineConfig, configPath: string, baseDir: string): LoadedConfig {
  const abs = (p: string) => path.resolve(baseDir, p);
  return {
    ...cfg,
    data: {
      ...cfg.data,
      csv: abs(cfg.data.csv),
      mappingCsv: cfg.data.mappingCsv ? abs(cfg.data.mappingCsv) : null,
      imageDir: abs(cfg.data.imageDir),
    },
    cache: { ...cfg.cache, dir: abs(cfg.cache.dir) },
    tuner: { ...cfg.tuner, dir: abs(cfg.tuner.dir) },
    runs: { ...cfg.runs, dir: abs(cfg.runs.dir) },
    configPath,
    configDir: baseDir,
  };
}

/** Reads, parses and validates a config file. Paths inside resolve relative to the file. */
export function loadConfig(file: string, options: { isDefault?: boolean } = {}): LoadedConfig {
  const configPath = path.resolve(file);
  // stat, never open first: a FIFO given as --config would block the read forever
  const stats = statSync(configPath, { throwIfNoEntry: false });
  if (!stats) throw new ConfigNotFoundError(file, options.isDefault ? 'missing-default' : 'missing');
  if (stats.isDirectory()) throw new ConfigNotFoundError(file, 'folder');
  if (!stats.isFile()) throw new ConfigNotFoundError(file, 'not-a-file');
  const text = readFileSync(configPath, 'utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    const { line, column, detail } = locate(text, error as Error);
    throw new ConfigSyntaxError(file, line, column, detail);
  }
  return validateConfig(raw, file, path.dirname(configPath));
}
