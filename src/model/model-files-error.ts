import { UserError } from '../core/errors.ts';

/** A --model folder that cannot be used; kept free of tfjs so the CLI can check a folder before loading a backend. */
export class ModelFilesError extends UserError {
  constructor(dir: string, problem: string) {
    super(
      `the model folder ${dir} ${problem}. Point --model at a run folder written by 'galactic train' (runs/<name>), or train again.`,
    );
  }
}
