import type { Command } from 'commander';
import { notYetCommand } from './not-yet.ts';

export function planCommand(): Command {
  return notYetCommand('plan', 'print the memory plan for the configured budget');
}
