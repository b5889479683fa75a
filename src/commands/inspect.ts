import type { Command } from 'commander';
import { notYetCommand } from './not-yet.ts';

export function inspectCommand(): Command {
  return notYetCommand('inspect', 'list caches, shards and what config they match');
}
