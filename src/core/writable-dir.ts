import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Creates `dir` if needed and proves it writable with a probe file, before any real work, so an
 * unwritable output folder is one clear error at the start instead of a failure mid-run.
 * Returns null when writable, else the error code (EACCES, EROFS, ENOTDIR, ...).
 */
export function probeWritableDir(dir: string): string | null {
  try {
    mkdirSync(dir, { recursive: true });
    const probe = path.join(dir, `.write-probe-${process.pid}`);
    writeFileSync(probe, '');
    rmSync(probe);
    return null;
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    return e.code ?? e.message;
  }
}
