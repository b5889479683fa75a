import type { StageResult } from './results.ts';
import { formatSpread } from './stats.ts';

/** A GitHub-flavoured markdown table; numbers are right-aligned. */
export function markdownTable(
  headers: string[],
  rows: (string | number | null)[][],
  rightAligned: boolean[] = [],
): string {
  const cell = (v: string | number | null) => (v === null ? '–' : String(v).replace(/\|/g, '\\|'));
  const lines = [
    `| ${headers.join(' | ')} |`,
    `|${headers.map((_, i) => (rightAligned[i] ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ];
  return lines.join('\n');
}

const pct = (x: number | null) => (x === null ? null : `${(100 * x).toFixed(0)}%`);
const mb = (x: number | null) => (x === null ? null : x.toFixed(0));

/** The stage table `galactic bench` prints: medians with [min–max] over repeats. */
export function stageTable(results: StageResult[]): string {
  return markdownTable(
    [
      'stage',
      'images',
      'images/s median [min–max]',
      'MB/s',
      'peak RSS MB',
      'planned MB',
      'limit MB',
      'efficiency',
      'vs ceiling',
    ],
    results.map((r) => [
      r.stage,
      r.images,
      formatSpread(r.repeats.imagesPerSecond),
      r.repeats.mbPerSecond ? `${formatSpread(r.repeats.mbPerSecond)}${r.mbOf ? ` (${r.mbOf})` : ''}` : null,
      mb(r.peakRssMB),
      mb(r.plannedMB),
      mb(r.limitMB),
      pct(r.efficiency),
      r.ceiling,
    ]),
    [false, true, true, true, true, true, true, true, false],
  );
}
