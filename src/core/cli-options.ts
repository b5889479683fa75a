import { InvalidArgumentError, Option } from 'commander';

/**
 * Command-line option values every command parses the same way, checked by commander so a bad
 * value is one usage message naming the option (`option '--limit <n>' argument 'x' is invalid.
 * must be a positive integer`) and exit code 2.
 */

export const BACKEND_CHOICES = ['auto', 'node', 'wasm', 'cpu'] as const;
export type BackendChoiceName = (typeof BACKEND_CHOICES)[number];

/** Parser for an option that takes a whole number of at least 1. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/** `--backend <name>`: one of BACKEND_CHOICES. */
export function backendOption(description: string, defaultValue?: BackendChoiceName): Option {
  const option = new Option('--backend <name>', description).choices(BACKEND_CHOICES);
  return defaultValue === undefined ? option : option.default(defaultValue);
}
