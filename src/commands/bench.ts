import type { Command } from 'commander';
import { notYetCommand } from './not-yet.ts';

export function benchCommand(): Command {
  return notYetCommand('bench', 'measure memory and throughput of each stage');
}
