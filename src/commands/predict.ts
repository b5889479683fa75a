import type { Command } from 'commander';
import { notYetCommand } from './not-yet.ts';

export function predictCommand(): Command {
  return notYetCommand('predict', 'classify images with a trained model');
}
