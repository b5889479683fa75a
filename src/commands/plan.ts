import { Command } from 'commander';
import { commandContext } from './context.ts';

export function planCommand(): Command {
  return new Command('plan')
    .description('print the memory plan for the configured budget (every buffer and concurrency level)')
    .action(async (_opts, command: Command) => {
      const { planMemory, formatPlan } = await import('../memory/plan.ts');
      const ctx = commandContext(command);
      const config = ctx.config();
      // The table first, whichever phase does not fit: it shows what to turn.
      const shown = planMemory(config, { need: [] });
      ctx.output.print(`memory plan for ${config.configPath} (memory.limitMB ${config.memory.limitMB}):\n${formatPlan(shown)}`);
      const plan = planMemory(config);
      if (ctx.output.json) ctx.output.result({ limitMB: config.memory.limitMB, ...plan });
    });
}
