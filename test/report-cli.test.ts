import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeFixtureRun, type FixtureRun } from './support/fixture-run.ts';
import { runCli } from './support/run-cli.ts';

/** `galactic report [--run NAME]`: re-renders a run's report.html from its files. */

let fixture: FixtureRun;
let configFile: string;

before(() => {
  fixture = makeFixtureRun();
  configFile = path.join(fixture.root, 'report.config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      data: { csv: 'data/labels.csv', imageDir: 'data/images' },
      cache: { dir: 'cache' },
      tuner: { dir: 'tuning' },
      runs: { dir: 'runs', name: 'fixture' },
    }),
  );
  // a train-only run: trained with values the search never picked, no timeline (galactic train writes none)
  const trainOnly = path.join(fixture.root, 'runs', 'train-only');
  cpSync(fixture.runDir, trainOnly, { recursive: true });
  rmSync(path.join(trainOnly, 'timeline.json'));
  rmSync(path.join(trainOnly, 'report.html'), { force: true });
  const metadata = JSON.parse(readFileSync(path.join(trainOnly, 'metadata.json'), 'utf8'));
  writeFileSync(path.join(trainOnly, 'metadata.json'), JSON.stringify({ ...metadata, hyperparameters: {} }));
});
after(() => rmSync(fixture.root, { recursive: true, force: true }));

describe('galactic report', () => {
  it("re-renders the configured run's report.html with its tuner section and thumbnails from its cache", async () => {
    const result = await runCli(['report', '--config', configFile, '--json']);
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout);
    assert.equal(summary.report, path.join(fixture.runDir, 'report.html'));
    assert.equal(summary.thumbnails, fixture.sampleIds.length);
    assert.deepEqual(summary.missing, []);
    const html = readFileSync(summary.report, 'utf8');
    assert.match(html, /<table class="leaderboard">/);
    assert.ok(existsSync(path.join(fixture.runDir, 'charts', 'leaderboard.svg')));
  });

  it('renders a train-only run: no tuner section (the search did not pick its values), no timeline, the rest drawn', async () => {
    const result = await runCli(['report', '--config', configFile, '--run', 'train-only']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /did not pick this run's values/);
    const html = readFileSync(path.join(fixture.root, 'runs', 'train-only', 'report.html'), 'utf8');
    assert.match(html, /This run was not tuned\./);
    assert.match(html, /No timeline\.json/);
    assert.match(html, /data-chart="confusion"/);
    assert.match(html, /5 of 65 validation images; 11 misclassified overall\./);
  });

  it('names the runs there are when --run names none', async () => {
    const result = await runCli(['report', '--config', configFile, '--run', 'nope']);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /galactic: there is no trained run in .*nope .*Runs in .*runs: fixture, train-only; choose one with --run NAME\./,
    );
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });

  it('refuses a --run that is not a folder name', async () => {
    const result = await runCli(['report', '--config', configFile, '--run', '../x']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /--run must be a run folder name/);
  });
});
