import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeReport, type ReportSummary } from '../src/report/report.ts';
import { renderChart } from '../src/report/charts.ts';
import { makeFixtureRun, type FixtureRun } from './support/fixture-run.ts';

// HTML void elements never close; every other tag must nest properly.
const VOID = new Set([
  'area',
  'base',
  'br',
  'col',
  'embed',
  'hr',
  'img',
  'input',
  'link',
  'meta',
  'source',
  'track',
  'wbr',
]);

/**
 * A small well-formedness check: tags balance and nest, attributes are quoted. With `xml` every
 * element must close (SVG); otherwise HTML void elements are allowed open. Returns the tag names seen.
 */
function checkMarkup(text: string, options: { xml: boolean }): string[] {
  const stack: string[] = [];
  const seen: string[] = [];
  const body = text
    .replace(/<!DOCTYPE[^>]*>/i, '')
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<\?xml[^>]*\?>/, '');
  // style contents are CSS, not markup
  const withoutStyle = body.replace(/(<style[^>]*>)[\s\S]*?(<\/style>)/g, '$1$2');
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+(?:="[^"]*")?)*)\s*(\/?)>/g;
  let last = 0;
  for (let m = tag.exec(withoutStyle); m; m = tag.exec(withoutStyle)) {
    const between = withoutStyle.slice(last, m.index);
    assert.ok(
      !between.includes('<'),
      `stray '<' or malformed tag near: ${withoutStyle.slice(m.index - 60, m.index + 20)}`,
    );
    last = tag.lastIndex;
    const [, closing, rawName, , selfClosing] = m;
    const name = options.xml ? rawName : rawName.toLowerCase();
    if (closing) {
      assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
    } else {
      seen.push(name);
      if (!selfClosing && !(!options.xml && VOID.has(name))) stack.push(name);
    }
  }
  assert.ok(!withoutStyle.slice(last).includes('<'), 'malformed markup at the end');
  assert.deepEqual(stack, [], `unclosed elements: ${stack.join(', ')}`);
  return seen;
}

/** Items of one vega mark type, e.g. marks(svg, 'rect'): the graphics symbols inside `mark-rect role-mark` groups. */
function marks(svg: string, type: string): number {
  let count = 0;
  for (const m of svg.matchAll(new RegExp(`<g class="mark-${type} role-mark[^"]*"[^>]*>(.*?)</g>`, 'g'))) {
    count += (m[1].match(/role="graphics-symbol"/g) ?? []).length;
  }
  return count;
}

function axisTitles(svg: string): string[] {
  return [...svg.matchAll(/role-axis-title"[^>]*><text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
}

function axisLabels(svg: string): string[] {
  return [...svg.matchAll(/role-axis-label"[^>]*>(.*?)<\/g>/g)].flatMap((m) =>
    [...m[1].matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((t) => t[1]),
  );
}

function section(html: string, id: string): string {
  const start = html.indexOf(`<section id="${id}">`);
  assert.ok(start >= 0, `section #${id} is missing`);
  return html.slice(start, html.indexOf('</section>', start));
}

describe('report on a fixture run', () => {
  let fixture: FixtureRun;
  let summary: ReportSummary;
  let html: string;
  const svg = (name: string) => readFileSync(path.join(fixture.runDir, 'charts', `${name}.svg`), 'utf8');

  before(async () => {
    fixture = makeFixtureRun();
    summary = await writeReport({ runDir: fixture.runDir, tuningDir: fixture.tuningDir, cacheDir: fixture.cacheDir });
    html = readFileSync(summary.report, 'utf8');
  });
  after(() => rmSync(fixture.root, { recursive: true, force: true }));

  it('parses as one well-formed HTML document with a section per part', () => {
    assert.match(html, /^<!DOCTYPE html>/);
    const tags = checkMarkup(html, { xml: false });
    for (const t of ['html', 'head', 'title', 'style', 'body', 'main', 'table', 'svg', 'img'])
      assert.ok(tags.includes(t), `no <${t}>`);
    for (const id of [
      'learning-curves',
      'tuner',
      'confusion',
      'per-class',
      'samples',
      'memory',
      'throughput',
      'config',
    ])
      section(html, id);
    assert.deepEqual(summary.missing, []);
  });

  it('is self-contained: no scripts, no external resources', () => {
    assert.doesNotMatch(html, /<script|<link|<iframe/i);
    // the only URLs are SVG namespace declarations
    const urls = [...html.matchAll(/(?:src|href)="([^"]*)"/g)].map((m) => m[1]);
    for (const url of urls) assert.match(url, /^(#|data:image\/png;base64,|charts\/)/, `external reference ${url}`);
  });

  it('writes every chart as valid SVG and PNG beside the report, and inlines it', () => {
    const expected = [
      'loss',
      'accuracy',
      'leaderboard',
      ...fixture.hyperparameters.map((h) => `hp-${h}`),
      'confusion',
      'per-class',
      'memory',
      'throughput',
    ];
    assert.deepEqual([...summary.charts].sort(), [...expected].sort());
    for (const name of expected) {
      const text = svg(name);
      assert.match(text, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      checkMarkup(text, { xml: true });
      const png = readFileSync(path.join(fixture.runDir, 'charts', `${name}.png`));
      assert.deepEqual(
        [...png.subarray(0, 8)],
        [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
        `${name}.png is not a PNG`,
      );
      assert.ok(html.includes(`data-chart="${name}"`), `${name} is not inlined in the report`);
    }
  });

  it('draws the expected marks', () => {
    // learning curves: a line for training and one for validation, a point per epoch each
    for (const metric of ['loss', 'accuracy']) {
      assert.equal(marks(svg(metric), 'line'), 2);
      assert.equal(marks(svg(metric), 'symbol'), 2 * fixture.epochs);
      assert.deepEqual(axisTitles(svg(metric)), ['Epoch', metric === 'loss' ? 'Loss' : 'Accuracy']);
    }
    // leaderboard: one bar per scored trial (the failed one has no score)
    assert.equal(marks(svg('leaderboard'), 'rect'), fixture.trials - 1);
    assert.equal(marks(svg('leaderboard'), 'text'), fixture.trials - 1);
    for (const hp of fixture.hyperparameters) {
      assert.equal(marks(svg(`hp-${hp}`), 'symbol'), fixture.trials - 1);
      assert.deepEqual(axisTitles(svg(`hp-${hp}`)), [hp, 'val_accuracy']);
    }
    // confusion: a cell and a count per (true, predicted) pair
    const k = fixture.classes.length;
    assert.equal(marks(svg('confusion'), 'rect'), k * k);
    assert.equal(marks(svg('confusion'), 'text'), k * k);
    assert.deepEqual(axisTitles(svg('confusion')), ['Predicted class', 'True class']);
    // per class: precision, recall and F1 bars for each class
    assert.equal(marks(svg('per-class'), 'rect'), 3 * k);
    // memory: one line per stage plus the budget rule and its label
    assert.equal(marks(svg('memory'), 'line'), 4);
    assert.equal(marks(svg('memory'), 'rule'), 1);
    assert.match(svg('memory'), /budget 1024 MiB/);
    // throughput: a bar per stage that ran
    assert.equal(marks(svg('throughput'), 'rect'), 4);
  });

  it('embeds a thumbnail for every validation sample, split into right and wrong', () => {
    assert.equal(summary.thumbnails, fixture.sampleIds.length);
    const samples = section(html, 'samples');
    const images = [...samples.matchAll(/<img src="(data:image\/png;base64,[A-Za-z0-9+/=]+)"/g)];
    assert.equal(images.length, fixture.sampleIds.length);
    const wrong = [...samples.matchAll(/class="sample wrong" data-id="([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(wrong.sort(), fixture.wrongIds);
    // each decoded thumbnail is a real PNG
    const bytes = Buffer.from(images[0][1].split(',')[1], 'base64');
    assert.equal(bytes.subarray(1, 4).toString(), 'PNG');
  });

  it('shows the leaderboard, per-class table, stages and versions', () => {
    assert.match(section(html, 'tuner'), /<table class="leaderboard">/);
    assert.equal((section(html, 'tuner').match(/<tr/g) ?? []).length >= fixture.trials + 1, true);
    assert.match(section(html, 'per-class'), /elliptical/);
    assert.match(section(html, 'throughput'), /<table class="stages">/);
    assert.match(section(html, 'config'), /<table class="versions">/);
    assert.match(section(html, 'config'), /"backend":"cpu"|cpu/);
  });

  it('says what the samples section shows, misclassified first', () => {
    const samples = section(html, 'samples');
    // 65 validation images in the confusion matrix, 11 off its diagonal
    assert.match(samples, /<b>5 of 65 validation images; 11 misclassified overall\.<\/b>/);
    assert.match(samples, /up to 2 images of each true class/);
    assert.ok(samples.indexOf('class="sample wrong"') < samples.indexOf('class="sample right"'), 'misclassified first');
    assert.match(samples, /<h3>Misclassified \(2 of the 5 shown\)<\/h3>/);
  });

  it('fits the leaderboard axis to the scores (0.5 to 0.7), not 0 to 1', () => {
    // the score axis (the other axis names the trials: 00, 01, ...)
    const labels = axisLabels(svg('leaderboard'))
      .filter((l) => l.includes('.'))
      .map(Number);
    assert.ok(labels.length >= 3, `axis labels ${labels.join(', ')}`);
    assert.ok(Math.min(...labels) >= 0.4 && Math.min(...labels) <= 0.5, `lowest tick ${Math.min(...labels)}`);
    assert.ok(Math.max(...labels) <= 0.85 && Math.max(...labels) >= 0.7, `highest tick ${Math.max(...labels)}`);
  });

  it('gives integer hyperparameters integer ticks', () => {
    for (const hp of ['filters_1', 'dense_units']) {
      const labels = axisLabels(svg(`hp-${hp}`));
      const xTicks = labels.filter((l) => !/^0\.\d+$/.test(l)); // the y axis carries the scores
      assert.ok(xTicks.length >= 2, `${hp}: ${labels.join(', ')}`);
      for (const tick of xTicks) assert.match(tick, /^\d+$/, `${hp} tick '${tick}'`);
    }
  });

  it('uses one memory unit, MiB, everywhere', () => {
    const text = html.replace(/<[^>]+>/g, ' ');
    assert.doesNotMatch(text, /\d\s*(MB|GB|KB|kB)\b/);
    assert.match(text, /\d MiB/);
  });

  it('shows the metadata as a table of fields, not raw JSON', () => {
    const config = section(html, 'config');
    const metadata = config.slice(
      config.indexOf('<table class="metadata">'),
      config.indexOf('</table>', config.indexOf('<table class="metadata">')),
    );
    assert.match(metadata, /<td>split\.trainImages<\/td><td>260<\/td>/);
    assert.match(metadata, /<td>backend\.name<\/td><td>cpu<\/td>/);
    assert.match(metadata, /<td>classes<\/td><td>elliptical, spiral, artifact<\/td>/);
    assert.doesNotMatch(metadata, /[{}]|&quot;/);
  });
});

describe('report with missing inputs', () => {
  it('still writes a page that says what is missing, and thumbnails fall back to placeholders', async () => {
    const fixture = makeFixtureRun({ withCache: false });
    try {
      rmSync(path.join(fixture.runDir, 'timeline.json'));
      const summary = await writeReport({
        runDir: fixture.runDir,
        tuningDir: path.join(fixture.root, 'no-such-dir'),
        pixelSources: [],
      });
      const html = readFileSync(summary.report, 'utf8');
      checkMarkup(html, { xml: false });
      assert.deepEqual(summary.missing.sort(), ['timeline.json', 'tuning trials']);
      assert.equal(summary.thumbnails, 0);
      assert.match(section(html, 'tuner'), /No tuning trials/);
      assert.match(section(html, 'memory'), /No timeline.json/);
      assert.equal((section(html, 'samples').match(/no pixels/g) ?? []).length, fixture.sampleIds.length);
      assert.ok(!existsSync(path.join(fixture.runDir, 'charts', 'memory.svg')));
    } finally {
      rmSync(fixture.root, { recursive: true, force: true });
    }
  });
});

describe('renderChart', () => {
  it('renders any vega-lite spec to SVG and PNG with readable text', async () => {
    const { svg, png } = await renderChart({
      data: {
        values: [
          { stage: 'decode', rate: 120 },
          { stage: 'feed', rate: 900 },
        ],
      },
      mark: 'bar',
      encoding: {
        x: { field: 'stage', type: 'nominal', title: 'Stage' },
        y: { field: 'rate', type: 'quantitative', title: 'Images/s' },
      },
    });
    checkMarkup(svg, { xml: true });
    assert.equal(marks(svg, 'rect'), 2);
    assert.deepEqual(axisTitles(svg), ['Stage', 'Images/s']);
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
  });
});
