import type { Command } from 'commander';
import { notYetCommand } from './not-yet.ts';

export function runCommand(): Command {
  return notYetCommand('run', 'prepare, tune, train, evaluate and report: the main job');
}
