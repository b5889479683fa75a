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
}

export function benchChartSpec(points: ChartPoint[], xTitle: string, title: string): TopLevelSpec {
  const logX = xTitle.startsWith('data set') && new Set(points.map((p) => p.x)).size > 2;
  const x = { field: 'x', type: 'quantitative' as const, title: xTitle, scale: logX ? { type: 'log' as const } : {} };
  const color = { field: 'stage', type: 'nominal' as const, title: 'stage' };
  const limits = [...new Map(points.map((p) => [p.x, { x: p.x, limitMB: p.limitMB }])).values()];
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
            data: { values: limits },
            mark: { type: 'line', strokeDash: [6, 4], color: '#c00' },
            encoding: { x, y: { field: 'limitMB', type: 'quantitative' } },
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
