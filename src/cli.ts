import { Command, CommanderError } from 'commander';
import { writeSync } from 'node:fs';
import { UserError } from './core/errors.ts';
import { installInterruptHandler, interruptSignal, INTERRUPTED_EXIT_CODE } from './core/interrupt.ts';
import { GALACTIC_VERSION } from './core/version.ts';
import { benchCommand } from './commands/bench.ts';
import { inspectCommand } from './commands/inspect.ts';
import { planCommand } from './commands/plan.ts';
import { predictCommand } from './commands/predict.ts';
import { prepareCommand } from './commands/prepare.ts';
import { reportCommand } from './commands/report.ts';
import { runCommand } from './commands/run.ts';
import { schemaCommand } from './commands/schema.ts';
import { synthCommand } from './commands/synth.ts';
import { trainCommand } from './commands/train.ts';
import { tuneCommand } from './commands/tune.ts';
import { loadConfigModule } from './commands/context.ts';
import { workerCommand } from './commands/worker.ts';
import { queueCommand } from './commands/queue.ts';

export function buildProgram(): Command {
  const program = new Command('galactic')
    .description('Train a galaxy-morphology classifier on data sets far larger than memory.')
    .version(GALACTIC_VERSION, '-V, --version')
    .option('-c, --config <file>', 'pipeline config file', 'pipeline.config.json')
    .option('--json', 'print one machine-readable summary object on stdout', false)
    .option('-q, --quiet', 'no progress output on stderr', false)
    .showHelpAfterError('(run galactic --help for usage)')
    .hook('preAction', loadConfigModule)
    .exitOverride();
  for (const command of [
    prepareCommand(),
    planCommand(),
    inspectCommand(),
    tuneCommand(),
    trainCommand(),
    runCommand(),
    reportCommand(),
    predictCommand(),
    synthCommand(),
    benchCommand(),
    schemaCommand(),
    workerCommand(),
    queueCommand(),
  ]) {
    program.addCommand(withGlobalOptionsInHelp(command.exitOverride()));
  }
  return program;
}

/** addCommand does not pass help settings down: every subcommand's --help lists --config, --json, --quiet. */
function withGlobalOptionsInHelp(command: Command): Command {
  command.configureHelp({ showGlobalOptions: true });
  for (const sub of command.commands) withGlobalOptionsInHelp(sub);
  return command;
}

/** Runs the CLI; user mistakes print one message and set a non-zero exit code, never a stack trace. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    if (process.env.GALACTIC_TEST_NEVER_SETTLE === '1') await new Promise(() => {}); // tests the net below
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander already printed the message (or help/version); only the code is ours to set
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof UserError) {
      process.stderr.write(`galactic: ${error.message}\n`);
      return error.exitCode;
    }
    throw error;
  }
}

const isEntry = process.argv[1] && /galactic(\.js)?$|cli\.[jt]s$/.test(process.argv[1]);
if (isEntry) {
  installInterruptHandler();
  // The net under a pipeline that waits on a promise nothing will settle: Node would end with
  // code 13 and no word; say what happened instead of a silent stop.
  let settled = false;
  process.on('exit', () => {
    if (settled || process.exitCode !== 13) return;
    writeSync(
      2,
      'galactic: internal error: the command stopped before finishing (it waited for work that could never complete). This is a bug in galactic; please report it with the command you ran. Its outputs may be incomplete; rerunning resumes what was saved.\n',
    );
    process.exitCode = 70;
  });
  const code = await main(process.argv.slice(2));
  settled = true;
  // interrupted: 130 even when the work happened to finish inside the grace period
  process.exitCode = interruptSignal.aborted ? INTERRUPTED_EXIT_CODE : code;
}
