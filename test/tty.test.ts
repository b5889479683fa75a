import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { Output } from '../src/core/console.ts';
import { cliPath, runCli } from './support/run-cli.ts';

// @xterm/headless is CommonJS: loaded through require, it is the terminal that "sees" the bytes
const { Terminal } = createRequire(import.meta.url)('@xterm/headless') as typeof import('@xterm/headless');

const COLS = 120;
const ROWS = 40;

/** The text a terminal shows after receiving `bytes`: scrollback and screen, trailing blanks trimmed. */
function screen(bytes: string): Promise<string[]> {
  const term = new Terminal({ cols: COLS, rows: ROWS, scrollback: 10_000, allowProposedApi: true });
  return new Promise((resolve) =>
    term.write(bytes.replace(/\r?\n/g, '\r\n'), () => {
      const lines: string[] = [];
      const buffer = term.buffer.active;
      for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i)!.translateToString(true));
      while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
      term.dispose();
      resolve(lines);
    }),
  );
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('lines printed above live bars leave no fragments, and a bar shows no ETA before its first step', async () => {
  const stream = Object.assign(new PassThrough(), { isTTY: true, columns: COLS, rows: ROWS });
  let bytes = '';
  stream.on('data', (d: Buffer) => (bytes += d.toString()));
  const output = new Output({ stream, tty: true, color: false });
  const trials = output.progress('tune', 4, 'trials', { everyUpdate: true, depth: 1 });
  const batches = output.progress('trial 0000 epoch 1/2', 38, 'batches', { ttyOnly: true, depth: 2 });
  await pause(250);
  const before = await screen(bytes);
  assert.ok(
    before.some((l) => /^ {2}tune -+ +0% \| 0\/4 trials \| – trials\/s \| ETA – \| RSS/.test(l)),
    before.join('\n'),
  );
  assert.ok(!before.some((l) => /ETA 0s/.test(l)), before.join('\n'));
  for (let b = 1; b <= 38; b++) batches.update(b, { loss: '1.0986' });
  await pause(250);
  output.info('x');
  output.info('a line\nand a second, longer line');
  await pause(250);
  batches.clear();
  output.info('  trial 0000 epoch 1/2: loss 1.0986');
  trials.update(1);
  await pause(250);
  trials.clear();
  output.info('done');
  const lines = await screen(bytes);
  assert.deepEqual(lines, ['x', 'a line', 'and a second, longer line', '  trial 0000 epoch 1/2: loss 1.0986', 'done']);
});

function scriptAvailable(): boolean {
  return spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
}

test(
  'prepare on a terminal (a pseudo-terminal from script(1)): a total, and a final screen of whole lines',
  { skip: !scriptAvailable() && 'script(1) from util-linux is not installed' },
  async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'galactic-tty-'));
    const synth = await runCli([
      'synth',
      '--out',
      path.join(dir, 'data'),
      '--count',
      '300',
      '--size',
      '64',
      '--seed',
      '3',
    ]);
    assert.equal(synth.code, 0, synth.stderr);
    const config = path.join(dir, 'c.json');
    writeFileSync(
      config,
      JSON.stringify({
        data: {
          csv: 'data/galaxy_df_final.csv',
          imageDir: 'data/images',
          idColumn: 'asset_id',
          labelColumn: 'gz2class',
        },
        image: { width: 16, height: 16, channels: 3, fit: 'fill' },
        cache: { dir: 'cache' },
        memory: { limitMB: 1024 },
      }),
    );
    const command = `stty cols ${COLS} rows ${ROWS}; ${JSON.stringify(process.execPath)} ${JSON.stringify(cliPath)} prepare --config ${JSON.stringify(config)}`;
    const bytes = execFileSync('script', ['-qfec', command, '/dev/null'], {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1' },
      encoding: 'utf8',
    });
    const lines = await screen(bytes);
    const text = lines.join('\n');
    // every line is one the command printed whole: no bar and no tail of a bar remains
    assert.match(lines[0]!, /^memory plan \(memory\.limitMB 1024\):$/);
    const after = lines.slice(lines.findIndex((l) => l.startsWith('preparing ')));
    assert.equal(after.length, 3, text);
    assert.match(after[0]!, /^preparing .*cache\/[0-9a-f]{16}$/);
    // the rate is "–" when all 300 rows arrive between two redraws (a quiet machine): no rate was sampled
    assert.match(
      after[1]!,
      /^prepare: 300\/300 rows \((?:[\d.]+|–) rows\/(s|min)\) RSS \d+\/1024 MB images 300 images\/s [\d.]+ shards 1$/,
    );
    assert.match(
      after[2]!,
      /^prepared 300 images from 300 rows into 1 shards \(no rejects\) in [\d.]+ s, peak RSS [\d.]+ MB of 1024 MB$/,
    );
    assert.doesNotMatch(text, /ETA 0s|#-|-{5}/);
  },
);
