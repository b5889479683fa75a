import type { TopLevelSpec } from 'vega-lite';
import { renderChart } from '../report/charts.ts';

/**
 * The bench chart: throughput (left) and peak RSS (right) against one x variable, the data set
 * size for `bench scale` or the memory budget for `bench sweep`. A flat RSS line under the
 * limit line and flat throughput lines are what a streaming pipeline should show.
 */
export interface ChartPoint {
  /** data set size (images) or memory.limitMB */
  x: number;
  /** prepare, feed, ... */
  stage: string;
  imagesPerSecond: number | null;
  peakRssMB: number | null;
  limitMB: number;
  /** planMemory's total for the point's config, drawn beside the limit. */
  plannedMB?: number | null;
}

export function benchChartSpec(points: ChartPoint[], xTitle: string, title: string): TopLevelSpec {
  const logX = xTitle.startsWith('data set') && new Set(points.map((p) => p.x)).size > 2;
  const x = { field: 'x', type: 'quantitative' as const, title: xTitle, scale: logX ? { type: 'log' as const } : {} };
  const color = { field: 'stage', type: 'nominal' as const, title: 'stage' };
  // one budget line (memory.limitMB) and one plan line (what planMemory reserved) per x
  const budget = [...new Map(points.map((p) => [p.x, p])).values()].flatMap((p) => [
    { x: p.x, MB: p.limitMB, line: 'memory.limitMB' },
    ...(p.plannedMB ? [{ x: p.x, MB: p.plannedMB, line: 'planned' }] : []),
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    hconcat: [
      {
        title: 'throughput',
        width: 300,
        height: 220,
        data: { values: points.filter((p) => p.imagesPerSecond !== null) },
        mark: { type: 'line', point: true },
        encoding: { x, y: { field: 'imagesPerSecond', type: 'quantitative', title: 'images/s' }, color },
      },
      {
        title: 'peak RSS (process tree) and the budget',
        width: 300,
        height: 220,
        layer: [
          {
            data: { values: points.filter((p) => p.peakRssMB !== null) },
            mark: { type: 'line', point: true },
            encoding: { x, y: { field: 'peakRssMB', type: 'quantitative', title: 'MB' }, color },
          },
          {
            data: { values: budget },
            mark: { type: 'line', strokeDash: [6, 4] },
            encoding: {
              x,
              y: { field: 'MB', type: 'quantitative' },
              strokeDash: { field: 'line', type: 'nominal', title: 'budget' },
              color: { value: '#333' },
              opacity: {
                field: 'line',
                type: 'nominal',
                scale: { domain: ['memory.limitMB', 'planned'], range: [1, 0.45] },
                legend: null,
              },
            },
          },
        ],
      },
    ],
  } as TopLevelSpec;
}

/** Renders the chart to SVG text (PNG is not needed for the bench). */
export async function renderBenchChart(points: ChartPoint[], xTitle: string, title: string): Promise<string> {
  return (await renderChart(benchChartSpec(points, xTitle, title))).svg;
}
