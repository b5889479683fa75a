import type { Command } from 'commander';
import { notYetCommand } from './not-yet.ts';

export function trainCommand(): Command {
  return notYetCommand('train', 'train the classifier from the cached shards');
}
