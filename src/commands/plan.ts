import { Command } from 'commander';
import { commandContext } from './context.ts';
import { planMemory, formatPlan } from '../memory/plan.ts';

export function planCommand(): Command {
  return new Command('plan')
    .description('print the memory plan for the configured budget (every buffer and concurrency level)')
    .action((_opts, command: Command) => {
      const ctx = commandContext(command);
      const config = ctx.config();
      // The table first, whichever phase does not fit: it shows what to turn.
      const shown = planMemory(config, { need: [] });
      if (!ctx.output.json) process.stderr.write(`memory plan for ${config.configPath} (memory.limitMB ${config.memory.limitMB}):\n${formatPlan(shown)}\n`);
      const plan = planMemory(config);
      if (ctx.output.json) ctx.output.result({ limitMB: config.memory.limitMB, ...plan });
    });
}
