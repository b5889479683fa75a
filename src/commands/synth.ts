import type { Command } from 'commander';
import { notYetCommand } from './not-yet.ts';

export function synthCommand(): Command {
  return notYetCommand('synth', 'render a synthetic Galaxy Zoo 2 data set');
}
