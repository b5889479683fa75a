/**
 * The project's published bench figures (bench/README.md), reproduced with one command:
 *
 * npx tsx bench/scale.ts [--sizes 2000,10000,50000] [--limit-mb 1024] [--limits 512,768,1024,2048,4096,8192]
 * [--skip-stages]
 *
 * Runs, in this order, and keeps each command's stdout (the markdown tables) in bench/figures/:
 *   1. galactic bench scale --sizes ... --limit-mb ...                  → figures/scale.md + scale.svg
 *   2. galactic bench sweep --limits ... --size 2000                    → figures/sweep.md + sweep.svg
 *   3. galactic bench all --quick --config bench/bench.config.json      → figures/stages.md
 *      (the 2000-image set that step 1 synthesized, at the notebook's 128x128)
 * JSON lines go to bench/results/<date>.jsonl as usual. Synthetic data sets are cached in
 * bench/.scale/ (git-ignored), so a second run only measures.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const figures = path.join(root, 'bench', 'figures');
const cli = path.join(root, 'bin', 'galactic.js');

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

function run(args: string[], figure: string): void {
  process.stderr.write(`\n$ galactic ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, [cli, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  writeFileSync(path.join(figures, figure), `<!-- galactic ${args.join(' ')} (exit ${r.status}) -->\n${r.stdout}`);
  process.stdout.write(r.stdout);
  if (r.status !== 0) process.stderr.write(`galactic ${args[1] ?? args[0]} exited with ${r.status}\n`);
}

mkdirSync(figures, { recursive: true });
run(
  [
    'bench',
    'scale',
    '--config',
    'bench/bench.config.json',
    '--sizes',
    flag('--sizes', '2000,10000,50000'),
    '--limit-mb',
    flag('--limit-mb', '1024'),
    '--chart',
    'bench/figures/scale.svg',
  ],
  'scale.md',
);
run(
  [
    'bench',
    'sweep',
    '--config',
    'bench/bench.config.json',
    '--limits',
    flag('--limits', '512,768,1024,2048,4096,8192'),
    '--size',
    '2000',
    '--passes',
    '3',
    '--chart',
    'bench/figures/sweep.svg',
  ],
  'sweep.md',
);
if (!process.argv.includes('--skip-stages')) {
  run(['bench', 'all', '--quick', '--config', 'bench/bench.config.json'], 'stages.md');
}
