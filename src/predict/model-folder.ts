import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { ModelFilesError } from '../model/model-files-error.ts';

/** The files a run folder needs to predict, checked without tfjs (before a backend loads). */
export function checkModelFolder(dir: string): void {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ModelFilesError(dir, 'does not exist');
  if (!existsSync(path.join(dir, 'metadata.json')))
    throw new ModelFilesError(dir, 'has no metadata.json (classes and normalization are needed to predict)');
  if (!existsSync(path.join(dir, 'model.json'))) throw new ModelFilesError(dir, 'has no model.json');
}
