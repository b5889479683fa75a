import { existsSync } from 'node:fs';
import type { LoadedConfig } from '../config/load.ts';
import type { Output } from '../report/output.ts';

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

interface DemoModule {
  ensureDemoData: (config: LoadedConfig, output: Output) => Promise<{ synthesized: boolean }>;
  demoImageCount: number;
}

export async function ensureDemoStage(config: LoadedConfig, output: Output): Promise<DataStageSummary> {
  const demo = await loadDemoModule();
  if (!demo) return { skipped: true, images: 0, reason: 'this build has no demo data generator' };
  const { synthesized } = await demo.ensureDemoData(config, output);
  if (synthesized) return { skipped: false, images: demo.demoImageCount, reason: 'synthesized the demo data set' };
  return { skipped: true, images: 0, reason: existsSync(config.data.csv) ? 'the data is there' : 'not the demo data set' };
}

// Loaded by URL so that `run` works in builds where the synth module's demo entry is absent.
async function loadDemoModule(): Promise<DemoModule | null> {
  const url = new URL('../images/synth/demo.ts', import.meta.url);
  if (!existsSync(url)) return null;
  return (await import(url.href)) as DemoModule;
}
