import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { isTempName } from '../../core/atomic-file.ts';
import { UserError } from '../../core/errors.ts';
import { imagesDirName, synthOutputList, synthOutputs } from './layout.ts';

export class SynthOutputNotEmptyError extends UserError {
  constructor(dir: string, entries: string[]) {
    const shown = entries.slice(0, 5).join(', ') + (entries.length > 5 ? `, ... (${entries.length} entries)` : '');
    super(
      `--out ${dir} is not empty (it contains ${shown}); nothing was written. Choose a new or empty folder, ` +
        `or pass --force to replace what synth writes there (${synthOutputList}); other files are left alone.`,
    );
  }
}

export class SynthOutputNotDirectoryError extends UserError {
  constructor(dir: string) {
    super(`--out ${dir} exists and is not a folder. Pass the path of a new or empty folder.`);
  }
}

export class SynthOutputUnwritableError extends UserError {
  constructor(dir: string, cause: string) {
    super(`cannot write into --out ${dir} (${cause}). Choose a folder you can write to, on a disk with free space.`);
  }
}

/** Refuses a non-empty --out unless forced; with --force removes only synth's own outputs. */
export function prepareOutputDir(out: string, force: boolean): void {
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw new SynthOutputNotDirectoryError(out);
    const entries = readdirSync(out);
    if (entries.length > 0) {
      if (!force) throw new SynthOutputNotEmptyError(out, entries);
      const ours = new Set<string>(synthOutputs);
      try {
        for (const entry of entries)
          if (ours.has(entry) || (isTempName(entry) && ours.has(entry.replace(/\.\d+\.tmp$/, ''))))
            rmSync(path.join(out, entry), { recursive: true, force: true });
      } catch (error) {
        throw asOutputError(error, out);
      }
    }
  }
  try {
    mkdirSync(path.join(out, imagesDirName), { recursive: true });
  } catch (error) {
    throw asOutputError(error, out);
  }
}

/** File-system failures the user can fix (permissions, read-only or full disk) become a UserError. */
const outputErrorCodes = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EEXIST', 'ENOSPC', 'EDQUOT']);

export function asOutputError(error: unknown, out: string): unknown {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (!code || !outputErrorCodes.has(code)) return error;
  const message = (error as Error).message.replace(/^synth worker failed: /, '').split('\n')[0];
  return new SynthOutputUnwritableError(out, message);
}
