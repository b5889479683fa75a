import path from 'node:path';
import { UserError } from '../core/errors.ts';
import { splitFileName } from './image-index.ts';

/**
 * Ids are data, never paths: an id that could address anything but one file directly inside
 * the image folder is rejected `invalid-id` before it is ever joined to a path.
 */

export class FileNamePatternError extends UserError {
  constructor(pattern: string) {
    super(
      `data.fileName "${pattern}" must name a file directly inside data.imageDir: it may not contain "/", "\\" or "..". Use a pattern like "{id}.jpg".`,
    );
  }
}

/** Refuses a file-name pattern that could leave the image folder on its own. */
export function checkFileNamePattern(pattern: string): void {
  const { prefix, suffix } = splitFileName(pattern);
  const fixed = prefix + suffix;
  if (/[/\\\0]/.test(fixed) || fixed.includes('..') || pattern.indexOf('{id}') !== pattern.lastIndexOf('{id}')) {
    throw new FileNamePatternError(pattern);
  }
}

/** Why an id cannot be used, or null when it is fine. */
export function idProblem(id: string): string | null {
  if (id.length === 0) return 'the id is empty';
  if (id.includes('\0')) return 'the id contains a NUL byte';
  if (id.includes('/') || id.includes('\\')) return 'the id contains a path separator';
  if (id.includes('..')) return 'the id contains ".."';
  if (id.length > 255) return 'the id is longer than 255 characters';
  return null;
}

/** The image file for `id`; the resolved path is checked to stay inside `imageDir`. */
export function imageFileName(pattern: string, id: string): string {
  return pattern.replace('{id}', id);
}

export function imagePathInside(imageDir: string, fileName: string): string | null {
  const resolved = path.resolve(imageDir, fileName);
  return path.dirname(resolved) === path.resolve(imageDir) ? resolved : null;
}
