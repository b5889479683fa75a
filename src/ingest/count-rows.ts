import { closeSync, openSync, readSync } from 'node:fs';

/**
 * Data rows of a CSV for a progress total: its line breaks, less the header, plus a last line
 * without one. A quoted field holding a line break counts twice, so it is an estimate for
 * display only; it reads 1 MB at a time (about 20 ms for Galaxy Zoo 2's 240,000-row catalogue).
 */
export function estimateCsvRows(file: string): number | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const chunk = Buffer.allocUnsafe(1 << 20);
    let lines = 0;
    let last = 0x0a;
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) {
      for (let at = chunk.indexOf(0x0a); at >= 0 && at < n; at = chunk.indexOf(0x0a, at + 1)) lines += 1;
      last = chunk[n - 1]!;
    }
    if (last !== 0x0a) lines += 1;
    return Math.max(0, lines - 1);
  } finally {
    closeSync(fd);
  }
}
