import type { Command } from 'commander';
import { notYetCommand } from './not-yet.ts';

export function tuneCommand(): Command {
  return notYetCommand('tune', 'search hyperparameters (RandomSearch or Hyperband)');
}
