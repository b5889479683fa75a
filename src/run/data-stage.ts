import type { LoadedConfig } from '../config/load.ts';
import { ensureDemoData, synthesisRoot } from '../images/synth/demo.ts';
import type { Output } from '../core/console.ts';

/**
 * The run's first stage: the demo config's data set is synthesized on first use (synth's
 * `ensureDemoData`, which leaves any config that does not point at the demo folder alone: a
 * missing real data set is prepare's error to report).
 */

export interface DataStageSummary {
  skipped: boolean;
  /** Images written by this stage. */
  images: number;
  reason: string;
}

export async function ensureDemoStage(config: LoadedConfig, output: Output): Promise<DataStageSummary> {
  const { synthesized } = await ensureDemoData(config, output);
  if (synthesized)
    return {
      skipped: false,
      images: config.data.synthesize ?? 0,
      reason: 'synthesized the data set (data.synthesize)',
    };
  return {
    skipped: true,
    images: 0,
    reason: synthesisRoot(config) ? 'the synthetic data is there' : 'data.synthesize is not set',
  };
}
