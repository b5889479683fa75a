import { Command } from 'commander';
import { commandContext } from './context.ts';

export function planCommand(): Command {
  return new Command('plan')
    .description('print the memory plan for the configured budget (every buffer and concurrency level) and the time plan (trials, epochs, expected duration)')
    .action(async (_opts, command: Command) => {
      const { planMemory, formatPlan } = await import('../memory/plan.ts');
      const ctx = commandContext(command);
      const config = ctx.config();
      // The table first, whichever phase does not fit: it shows what to turn.
      const shown = planMemory(config, { need: [] });
      ctx.output.print(`memory plan for ${config.configPath} (memory.limitMB ${config.memory.limitMB}):\n${formatPlan(shown)}`);
      const plan = planMemory(config);
      // beside the memory plan: how long `galactic run` would take (docs/tuning.md, "Time plan")
      const { timePlanForPlan } = await import('./time-estimate.ts');
      const time = await timePlanForPlan(config, ctx.output);
      const { formatTimePlan } = await import('../tune/time-plan.ts');
      ctx.output.print(time.plan ? `time plan for galactic run:\n${formatTimePlan(time.plan)}` : time.problem!);
      if (ctx.output.json) ctx.output.result({ limitMB: config.memory.limitMB, ...plan, timePlan: time.plan });
    });
}
