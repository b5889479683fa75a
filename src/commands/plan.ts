import { Command } from 'commander';
import { commandContext } from './context.ts';

export function planCommand(): Command {
  return new Command('plan')
    .description(
      'print the memory plan for the configured budget (every buffer and concurrency level) and the time plan (trials, epochs, expected duration)',
    )
    .action(async (_opts, command: Command) => {
      const [{ planMemory, formatPlan, planComponents }, { refusePhases }, { measureData }] = await Promise.all([
        import('../memory/plan.ts'),
        import('../memory/refusals.ts'),
        import('../ingest/data-facts.ts'),
      ]);
      const ctx = commandContext(command);
      const config = ctx.config();
      // The table first, whichever phase does not fit: it shows what to turn.
      const plan = planMemory(config, measureData(config));
      ctx.output.print(
        `memory plan for ${config.configPath} (memory.limitMB ${config.memory.limitMB}):\n${formatPlan(plan)}`,
      );
      refusePhases(config, plan);
      // beside the memory plan: how long `galactic run` would take (docs/tuning.md, "Time plan")
      const { timePlanForPlan } = await import('./time-estimate.ts');
      const time = await timePlanForPlan(config, plan, ctx.output);
      const { formatTimePlan } = await import('../tune/time-plan.ts');
      ctx.output.print(time.plan ? `time plan for galactic run:\n${formatTimePlan(time.plan)}` : time.problem!);
      if (ctx.output.json) ctx.output.result({ ...plan, components: planComponents(plan), timePlan: time.plan });
    });
}
