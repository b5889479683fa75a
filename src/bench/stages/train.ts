import { feedSettings } from '../../data/feed.ts';
import { measureTraining } from '../../train/measure-training.ts';
import { selectBackend } from '../../model/backend.ts';
import { measureRepeats, stageResult } from '../repeat.ts';
import type { TrainStageRunner } from '../suite.ts';

/**
 * The suite's train stage: the training step on the prepared scratch cache through the real
 * feed, on the backend the config selects; the feed measured in the same run is its ceiling
 * (training can never be faster than the batches arrive).
 */
export const trainStage: TrainStageRunner = async ({ config, cacheDir, settings, feed, output, plan }) => {
  const choice = await selectBackend(config.backend, output, { threads: config.threads });
  const batches = settings.quick ? 4 : 10;
  output.info(
    `bench train: ${batches} batches x ${settings.repeats} repeats on ${choice.name} (first batch of each repeat is warm-up)`,
  );
  const measured = await measureRepeats(settings.repeats, async () => {
    const m = await measureTraining(config, cacheDir, { batches, settings: feedSettings(plan) });
    return { images: m.images, seconds: m.seconds, detail: { backend: m.backend, batches: m.batches } };
  });
  const result = stageResult('train', measured, { limitMB: config.memory.limitMB, ceiling: feed });
  return {
    result: { ...result, detail: { ...result.detail, backend: choice.name, backendReason: choice.reason } },
    backend: choice.name,
  };
};
