import { closeSync, constants, fstatSync, openSync, realpathSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { ImageRejection } from '../core/reject-reasons.ts';

/**
 * Opening an image file safely: the path is resolved once to its real path (links followed),
 * which must stay inside the real image folder when one is given, and must be a regular file:
 * a FIFO, socket, device or folder is refused from its metadata, never opened, because a
 * blocking open of a FIFO hangs the process and opening a device can have side effects. The
 * file is then opened with O_NONBLOCK and O_NOFOLLOW and checked again with fstat, so a file
 * swapped for a FIFO between the two checks still cannot block: O_NONBLOCK has no effect on
 * reads of a regular file, so it does not need clearing for the head read done here.
 */

export interface OpenedImageFile {
  fd: number;
  /** The real path, every link resolved: what is handed on to the decoder. */
  real: string;
  size: number;
}

const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOFOLLOW ?? 0);

/** What a non-regular file is, in words for the reject detail. */
function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a folder';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/** True when `real` is `dir` itself or lies anywhere below it (both real paths). */
export function isInside(real: string, dir: string): boolean {
  const rel = path.relative(dir, real);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

function accessRejection(file: string, error: NodeJS.ErrnoException): ImageRejection {
  const code = error.code;
  if (code === 'ENOENT' || code === 'ENOTDIR')
    return new ImageRejection('missing-image', `${file} does not exist (or is a link to nothing)`);
  if (code === 'ELOOP') return new ImageRejection('not-a-file', `${file} is a loop of symbolic links`);
  return new ImageRejection('corrupt-image', `${file} cannot be read (${code ?? error.message})`);
}

/**
 * Opens `file` for reading its head, or throws an ImageRejection: `missing-image`,
 * `outside-image-dir` (its real path leaves `within`, the real image folder), `not-a-file`.
 * `within` null: a file named explicitly (predict's arguments), which may link anywhere.
 * The caller closes `fd`.
 */
export function openImageFile(file: string, within: string | null): OpenedImageFile {
  let real: string;
  try {
    real = realpathSync.native(file);
  } catch (error) {
    throw accessRejection(file, error as NodeJS.ErrnoException);
  }
  if (within !== null && !isInside(real, within)) {
    throw new ImageRejection(
      'outside-image-dir',
      `${file} resolves to ${real}, outside the image folder ${within}; it was not read`,
    );
  }
  let stats: Stats;
  try {
    stats = statSync(real);
  } catch (error) {
    throw accessRejection(file, error as NodeJS.ErrnoException);
  }
  if (!stats.isFile())
    throw new ImageRejection('not-a-file', `${file} is ${kindOf(stats)}, not a regular file; it was not opened`);
  let fd: number;
  try {
    fd = openSync(real, OPEN_FLAGS);
  } catch (error) {
    throw accessRejection(file, error as NodeJS.ErrnoException);
  }
  const opened = fstatSync(fd);
  if (!opened.isFile()) {
    closeQuietly(fd);
    throw new ImageRejection('not-a-file', `${file} is ${kindOf(opened)}, not a regular file`);
  }
  return { fd, real, size: opened.size };
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // nothing was read from it; a failed close changes nothing
  }
}
