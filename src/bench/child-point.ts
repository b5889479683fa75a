import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { StageResult } from './results.ts';
import { TreeRssSampler } from './rss.ts';

/**
 * One measurement point (a data set size, a budget) run as `galactic bench prepare feed` in a
 * fresh child process: the peak RSS is then that point's alone (a process never gives memory back
 * to the OS reliably, so in-process points would inherit the previous point's peak). The parent
 * samples the whole child tree while it runs; the child reports its own per-stage figures.
 */
export interface PointOutcome {
  /** The child's per-stage results (empty when it failed or was refused). */
  stages: Record<string, StageResult>;
  /** Peak RSS of the child process tree over its whole life, sampled by the parent, MiB. */
  peakRssMB: number;
  seconds: number;
  /** The planner's refusal (or another error) when the child exited non-zero. */
  error: string | null;
}

const cliPath = fileURLToPath(new URL('../../bin/galactic.js', import.meta.url));

export async function runPointInChild(
  configFile: string,
  stages: string[],
  options: { images: number; epochs?: number; timeoutMs?: number },
): Promise<PointOutcome> {
  const args = [
    cliPath,
    'bench',
    ...stages,
    '--config',
    configFile,
    '--json',
    '--quiet',
    '--repeats',
    '1',
    '--epochs',
    String(options.epochs ?? 1),
    '--images',
    String(options.images),
    '--no-save',
  ];
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  // the parent is idle while the child works, so 100 ms sampling is cheap and not delayed
  const sampler = new TreeRssSampler({ pid: child.pid!, intervalMs: 100 });
  sampler.start();
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : null;
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (c) => resolve(c));
  });
  if (timer) clearTimeout(timer);
  const peak = sampler.stop();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const outcome: PointOutcome = {
    stages: {},
    peakRssMB: peak.peakMB,
    seconds: Math.round(seconds * 10) / 10,
    error: null,
  };
  if (code !== 0) {
    outcome.error = (
      stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('galactic:'))
        .pop() ??
      stderr.trim().split('\n').pop() ??
      `exit code ${code}`
    ).replace(/^galactic: /, '');
    return outcome;
  }
  try {
    const summary = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { stages?: Record<string, StageResult> };
    outcome.stages = summary.stages ?? {};
  } catch {
    outcome.error = `the child printed no JSON summary: ${stdout.slice(0, 200)}`;
  }
  return outcome;
}
