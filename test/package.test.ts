import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './support/run-cli.ts';

const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';

/** True when dist/ was built after the last change under src/ (then packing need not rebuild it). */
function distIsCurrent(): boolean {
  const cli = path.join(repoRoot, 'dist', 'cli.js');
  if (!existsSync(cli)) return false;
  const built = statSync(cli).mtimeMs;
  return readdirSync(path.join(repoRoot, 'src'), { recursive: true, withFileTypes: true }).every(
    (entry) => !entry.isFile() || statSync(path.join(entry.parentPath, entry.name)).mtimeMs <= built,
  );
}

test(
  'the packed tarball installs into an empty folder: `npx galactic --help` and the library example run there',
  { timeout: 900_000 },
  async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'galactic-package-'));
    // the tests run GALACTIC_FROM_SOURCE=1; the installed package has no sources and must not be told to use them
    const env = { ...process.env, GALACTIC_FROM_SOURCE: '', NO_COLOR: '1' };
    try {
      // npm pack runs the prepare script (the dist/ build) unless dist/ is already current
      const pack = await run(
        npm,
        ['pack', '--pack-destination', root, '--json', ...(distIsCurrent() ? ['--ignore-scripts'] : [])],
        { cwd: repoRoot, env, maxBuffer: 64 * 1024 * 1024 },
      );
      const [{ filename, files }] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as {
        filename: string;
        files: { path: string }[];
      }[];
      const shipped = files.map((f) => f.path);
      for (const file of ['bin/galactic.js', 'dist/cli.js', 'dist/index.js', 'dist/index.d.ts', 'examples/library.ts'])
        assert.ok(shipped.includes(file), `${file} is in the tarball`);
      assert.ok(
        !shipped.some((f) => f.startsWith('src/') || f.startsWith('test/')),
        'no sources or tests in the tarball',
      );

      const project = path.join(root, 'project');
      mkdirSync(project);
      writeFileSync(
        path.join(project, 'package.json'),
        JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
      );
      await run(npm, ['install', path.join(root, filename), '--prefer-offline', '--no-audit', '--no-fund'], {
        cwd: project,
        env,
        maxBuffer: 64 * 1024 * 1024,
      });

      const help = await run(npx, ['--no-install', 'galactic', '--help'], { cwd: project, env });
      assert.match(help.stdout, /^Usage: galactic \[options\] \[command\]/);
      assert.equal(help.stderr, '', 'the compiled CLI runs without a note about sources');

      // the example imports 'galactic' by name from the project's node_modules; the repo's tsx only strips the types
      copyFileSync(
        path.join(project, 'node_modules', 'galactic', 'examples', 'library.ts'),
        path.join(project, 'library.ts'),
      );
      const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
      await run(
        process.execPath,
        [
          tsc,
          '--noEmit',
          '--strict',
          '--target',
          'es2022',
          '--module',
          'nodenext',
          '--moduleResolution',
          'nodenext',
          '--types',
          'node',
          '--typeRoots',
          path.join(repoRoot, 'node_modules', '@types'),
          '--skipLibCheck',
          'library.ts',
        ],
        { cwd: project, env },
      );
      const tsx = path.join(repoRoot, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs');
      const example = await run(process.execPath, ['--import', tsx, 'library.ts', path.join(project, 'work')], {
        cwd: project,
        env,
        maxBuffer: 16 * 1024 * 1024,
      });
      const lines = example.stdout.split('\n');
      for (const stage of ['synth', 'plan', 'prepare', 'openCache', 'createFeed', 'train', 'tune', 'predict']) {
        assert.ok(
          lines.some((l) => l.startsWith(`${stage}: `)),
          `the example ran ${stage}:\n${example.stdout}`,
        );
      }
      assert.match(example.stdout, /^prepare: 120 images in \d+ shards, 0 rejected, cache hit false$/m);
      assert.match(
        example.stdout,
        /^createFeed: 6 training batches per epoch; the first is xs \[16, 24, 24, 3\], ys \[16\]$/m,
      );
      assert.match(example.stdout, /^tune: 2 of 2 trials completed/m);
      assert.equal(lines.filter((l) => l.startsWith('predict: ')).length, 3);
      assert.doesNotMatch(example.stdout + example.stderr, /looks like you are running TensorFlow\.js/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
);
