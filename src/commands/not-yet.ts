import { Command } from 'commander';
import { NotYetAvailableError } from '../core/errors.ts';

/** A command whose issue has not landed: it refuses clearly instead of pretending to work. */
export function notYetCommand(name: string, description: string): Command {
  return new Command(name)
    .description(`${description} (not available yet)`)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      throw new NotYetAvailableError(name);
    });
}
