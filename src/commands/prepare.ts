import type { Command } from 'commander';
import { notYetCommand } from './not-yet.ts';

export function prepareCommand(): Command {
  return notYetCommand('prepare', 'stream the CSV and images into sharded msgpack tensor caches');
}
