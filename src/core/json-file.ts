import { readFileSync } from 'node:fs';
import type { z } from 'zod';

/**
 * Reading back a JSON file the product wrote (manifest, trial files, oracle, run metadata,
 * checkpoint index): parsed and checked against its zod schema, so a damaged or hand-edited file
 * stops with one message naming the file and the first things wrong, never a TypeError later.
 */

/** The first few issues of a failed check, e.g. `shards.0.bytes: expected number, received string`. */
export function describeIssues(error: z.ZodError): string {
  const shown = error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`);
  return shown.join('; ') + (error.issues.length > 3 ? `; and ${error.issues.length - 3} more` : '');
}

/** The text's JSON checked against `schema`; `bad(detail)` makes the error for a file that fails. */
export function parseJsonAs<S extends z.ZodType>(text: string, schema: S, bad: (detail: string) => Error): z.output<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw bad(`not valid JSON: ${(error as Error).message}`);
  }
  const checked = schema.safeParse(raw);
  if (!checked.success) throw bad(`unexpected content: ${describeIssues(checked.error)}`);
  return checked.data;
}

/** readFileSync + parseJsonAs; null when the file does not exist. */
export function readJsonFileAs<S extends z.ZodType>(
  file: string,
  schema: S,
  bad: (detail: string) => Error,
): z.output<S> | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw bad((error as Error).message);
  }
  return parseJsonAs(text, schema, bad);
}
