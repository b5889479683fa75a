import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliPath, repoRoot, runCli } from './support/run-cli.ts';

/**
 * Ctrl-C / SIGTERM end every command promptly, on a terminal or not, naming the command to rerun.
 * The deadline below is a hang detector (the product's own bound is 2 s), not a speed assertion.
 */

const HANG_MS = 30_000;
const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-interrupt-'));
after(() => rmSync(root, { recursive: true, force: true }));
const configFile = path.join(root, 'interrupt.config.json');

before(async () => {
  const synth = await runCli([
    'synth',
    '--out',
    path.join(root, 'data'),
    '--count',
    '64',
    '--size',
    '32',
    '--seed',
    '9',
  ]);
  assert.equal(synth.code, 0, synth.stderr);
  writeFileSync(
    configFile,
    JSON.stringify({
      data: { csv: 'data/galaxy_df_final.csv', imageDir: 'data/images' },
      image: { width: 32, height: 32 },
      cache: { dir: 'cache' },
      memory: { limitMB: 2048 },
      train: { batchSize: 4, epochs: 1 },
      model: { filters: [4, 4, 4], denseUnits: 8 },
      backend: 'wasm',
      runs: { dir: 'runs' },
      tuner: {
        maxTrials: 5,
        epochs: 200,
        patience: null,
        dir: 'tuning',
        space: { dense_units: { type: 'choice', values: [8] } },
      },
    }),
  );
});

interface Interrupted {
  code: number | null;
  signal: string | null;
  output: string;
  hung: boolean;
}

/** Starts `command`, sends Ctrl-C (`interrupt`) once `ready` matches its output, and collects how it ended. */
function interruptWhen(
  command: string,
  args: string[],
  ready: RegExp,
  interrupt: (child: ReturnType<typeof spawn>) => void,
  env: NodeJS.ProcessEnv = {},
): Promise<Interrupted> {
  return new Promise((resolve) => {
    // npm_lifecycle_event cleared: under 'npm test' the children would otherwise name 'npm test'
    const child = spawn(command, args, {
      cwd: repoRoot,
      env: { ...process.env, NO_COLOR: '1', npm_lifecycle_event: '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    let sent = false;
    let hung = false;
    let timer: NodeJS.Timeout | undefined;
    const onData = (d: Buffer) => {
      output += d.toString();
      if (!sent && ready.test(output)) {
        sent = true;
        interrupt(child);
        timer = setTimeout(() => {
          hung = true;
          child.kill('SIGKILL');
        }, HANG_MS);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, hung });
    });
  });
}

describe('interrupting a command', () => {
  it('SIGINT mid-tune off a terminal: exits 130 promptly, naming `npm start` when run through npm', async () => {
    const result = await interruptWhen(
      process.execPath,
      [cliPath, 'tune', '--config', configFile],
      /trial 0000 epoch 1\//,
      (child) => child.kill('SIGINT'),
      { npm_lifecycle_event: 'start' },
    );
    assert.equal(result.hung, false, `still running ${HANG_MS} ms after SIGINT:\n${result.output}`);
    assert.equal(result.code, 130, result.output);
    assert.match(
      result.output,
      /galactic: interrupted \(Ctrl-C\); what is saved stays saved\. Rerun 'npm start' to continue where it stopped\./,
    );
  });

  it('SIGTERM during prepare off a terminal: exits 130, naming `galactic prepare`', async () => {
    rmSync(path.join(root, 'cache'), { recursive: true, force: true });
    const result = await interruptWhen(
      process.execPath,
      [cliPath, 'prepare', '--config', configFile],
      /memory plan/,
      (child) => child.kill('SIGTERM'),
    );
    assert.equal(result.hung, false, result.output);
    assert.equal(result.code, 130, result.output);
    assert.match(
      result.output,
      /galactic: stopped by SIGTERM; what is saved stays saved\. Rerun 'galactic prepare' to continue/,
    );
  });

  it('Ctrl-C during tuning inside `galactic run` on a terminal (a pseudo-terminal via script): exits, naming `galactic run`', async () => {
    const command = [process.execPath, cliPath, 'run', '--config', configFile].map((a) => `'${a}'`).join(' ');
    const result = await interruptWhen('script', ['-qfec', command, '/dev/null'], /trial 0000/, (child) =>
      child.stdin!.write('\x03'),
    );
    assert.equal(result.hung, false, `still running ${HANG_MS} ms after Ctrl-C:\n${result.output}`);
    assert.equal(result.code, 130, result.output);
    assert.match(result.output, /Rerun 'galactic run' to continue where it stopped\./);
  });

  it('a command whose work never settles ends with an internal-error message, not a silent exit 13', async () => {
    const result = await runCli(['plan', '--config', configFile], { env: { GALACTIC_TEST_NEVER_SETTLE: '1' } });
    assert.equal(result.code, 70);
    assert.match(
      result.stderr,
      /^galactic: internal error: the command stopped before finishing \(it waited for work that could never complete\)\. This is a bug in galactic/,
    );
  });
});
