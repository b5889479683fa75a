import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { formatDuration, formatSeconds, Output } from '../src/core/console.ts';

function capture(tty: boolean): { stream: NodeJS.WritableStream; text: () => string } {
  const stream = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number };
  if (tty) {
    stream.isTTY = true;
    stream.columns = 160;
  }
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

/** A stage with nested epoch and batch displays, as training drives them. */
async function drive(output: Output, pauseMs = 0): Promise<void> {
  const stage = output.progress('train', 2, 'epochs');
  for (let epoch = 1; epoch <= 2; epoch++) {
    const batches = output.progress(`epoch ${epoch}`, 4, 'batches', { depth: 1 });
    for (let b = 1; b <= 4; b++) batches.update(b, { loss: '0.512', acc: '0.700' });
    // a TTY display redraws on a timer: give it time to draw the nested bar
    if (pauseMs) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    batches.clear();
    stage.update(epoch, { val_loss: '0.600', val_acc: '0.650' });
    output.info(`epoch ${epoch} done`);
  }
  stage.stop();
  output.warn('a warning');
}

describe('Output off a TTY', () => {
  it('prints plain single lines: no carriage returns, no escape codes', async () => {
    const { stream, text } = capture(false);
    const output = new Output({ stream, lineIntervalMs: 0, limitMB: 2048 });
    await drive(output);
    // eslint-disable-next-line no-control-regex -- the point is to find control characters
    assert.doesNotMatch(text(), /\x1b|\r/);
    const lines = text().trim().split('\n');
    assert.ok(
      lines.some((l) =>
        /^ {2}epoch 1: 2\/4 batches \(.* batches\/(s|min)\)( ETA \d+s)? RSS \d+\/2048 MB loss 0.512 acc 0.700$/.test(l),
      ),
      text(),
    );
    assert.ok(lines.includes('epoch 2 done'));
    assert.match(lines.at(-2)!, /^train: 2\/2 epochs .* RSS \d+\/2048 MB val_loss 0.600 val_acc 0.650$/);
    assert.equal(lines.at(-1), 'warning: a warning');
  });

  it('prints periodic lines at most once per interval', () => {
    const { stream, text } = capture(false);
    const output = new Output({ stream, lineIntervalMs: 60_000 });
    const p = output.progress('prepare', 1000, 'images');
    for (let i = 0; i < 1000; i++) p.increment();
    assert.equal(text().trim().split('\n').length, 1);
    p.stop();
    assert.equal(text().trim().split('\n').length, 2);
  });

  it('prints every update of a display asked to (epochs), whatever the interval', () => {
    const { stream, text } = capture(false);
    const output = new Output({ stream, lineIntervalMs: 60_000 });
    const p = output.progress('tune', 3, 'trials', { everyUpdate: true });
    for (let i = 1; i <= 3; i++) p.update(i, { best: 0.5 });
    assert.equal(text().trim().split('\n').length, 3);
  });
});

describe('Output with --quiet', () => {
  it('prints nothing for info and progress', () => {
    const { stream, text } = capture(false);
    const output = new Output({ stream, quiet: true, lineIntervalMs: 0 });
    const p = output.progress('prepare', 10, 'images');
    p.update(5);
    p.stop('done');
    output.info('hello');
    assert.equal(text(), '');
  });
});

describe('Output on a TTY', () => {
  it('shows nested bars with ETA and RSS against the budget, and info lines between them', async () => {
    const { stream, text } = capture(true);
    const output = new Output({ stream, limitMB: 1024, color: false });
    await drive(output, 300);
    assert.match(text(), /train .*\| 1\/2 epochs \|.*ETA.*\| RSS \d+\/1024 MB val_loss 0.600/);
    assert.match(text(), / {2}epoch 1 .*\/4 batches/);
    assert.match(text(), /epoch 1 done\n/);
    assert.match(text(), /train: 2\/2 epochs/);
  });

  it('respects NO_COLOR', () => {
    const saved = process.env.NO_COLOR;
    process.env.NO_COLOR = '1';
    try {
      const { stream, text } = capture(true);
      const output = new Output({ stream });
      assert.equal(output.color, false);
      output.warn('careful');
      assert.equal(text(), 'warning: careful\n');
    } finally {
      if (saved === undefined) delete process.env.NO_COLOR;
      else process.env.NO_COLOR = saved;
    }
  });

  it('colours on a TTY without NO_COLOR', () => {
    const saved = process.env.NO_COLOR;
    delete process.env.NO_COLOR;
    try {
      const { stream, text } = capture(true);
      new Output({ stream }).warn('careful');
      assert.ok(text().startsWith('\x1b[33mwarning'), text());
    } finally {
      if (saved !== undefined) process.env.NO_COLOR = saved;
    }
  });
});

describe('formatDuration', () => {
  it('reads like a clock', () => {
    assert.equal(formatDuration(5), '5s');
    assert.equal(formatDuration(75), '1m15s');
    assert.equal(formatDuration(3700), '1h01m');
  });
});

describe('formatSeconds', () => {
  it('keeps two significant figures below ten seconds, whole seconds below a minute, a clock above', () => {
    assert.deepEqual([0.042, 0.5, 3.21, 9.96, 42.4, 59.4, 75, 3700].map(formatSeconds), [
      '0.04 s',
      '0.50 s',
      '3.2 s',
      '10 s',
      '42 s',
      '59 s',
      '1m15s',
      '1h01m',
    ]);
  });
});
