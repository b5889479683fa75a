import type { LoadedConfig } from '../config/load.ts';
import {
  ID_BYTES_PER_ROW,
  MEMORY_PHASES,
  MemoryPlanError,
  planMemory,
  type MemoryPhase,
  type MemoryPlan,
} from './plan.ts';
import type { TrialMemoryEstimate } from './trial-estimate.ts';

/**
 * Every memory refusal, each a function of the plan (issue 15): a phase that cannot fit, a trial
 * or a final training whose estimate exceeds the limit, a resume whose old shards the limit can
 * no longer hold. A refusal that names a minimum `memory.limitMB` names the true fixed point: the
 * smallest limit at which the plan, recomputed there (the auto knobs move with the limit), fits.
 */

const MiB = 1024 * 1024;

/** Why `phase` does not fit the plan, with the knob to turn, or null. */
function phaseProblem(plan: MemoryPlan, phase: MemoryPhase): { knob: string; what: string; largest?: number } | null {
  const fixed =
    phase === 'prepare'
      ? plan.prepare.totalBytes -
        plan.prepare.decode.bytes -
        plan.prepare.shardBuffer.bytes -
        plan.prepare.inFlight.bytes -
        plan.prepare.awaitingOrder.bytes
      : plan.train.totalBytes - plan.train.prefetch.bytes - plan.train.shuffle.bytes;
  if (fixed + plan.smallestBytes[phase] > plan.limitBytes) {
    const what = phase === 'prepare' ? 'the runtime and the id tables' : 'the runtime, tfjs and the model';
    return {
      knob: 'memory.limitMB',
      what: `${what} alone need ${Math.ceil(fixed / MiB)} MB and its smallest pipeline ${Math.ceil(plan.smallestBytes[phase] / MiB)} MB more`,
    };
  }
  if (
    phase === 'prepare' &&
    !plan.auto.shardImages &&
    plan.prepare.shardBuffer.bytes > 0.5 * (plan.limitBytes - fixed)
  ) {
    const largest = Math.max(1, Math.floor((0.5 * (plan.limitBytes - fixed)) / (2 * plan.recordBytes)));
    return {
      knob: 'cache.shardImages',
      largest,
      what: `a shard of ${plan.shardImages} x ${plan.recordBytes} B images needs ${Math.ceil(plan.prepare.shardBuffer.bytes / MiB)} MB (two buffers), more than half of the ${Math.floor((plan.limitBytes - fixed) / MiB)} MB left`,
    };
  }
  if (plan[phase].totalBytes > plan.limitBytes) {
    const knob =
      phase === 'prepare'
        ? !plan.auto.decodeConcurrency
          ? 'memory.decodeConcurrency'
          : !plan.auto.shardImages
            ? 'cache.shardImages'
            : 'memory.limitMB'
        : !plan.auto.shuffleBuffer
          ? 'feed.shuffleBuffer'
          : !plan.auto.prefetch
            ? 'feed.prefetch'
            : 'memory.limitMB';
    return { knob, what: `the phase needs ${Math.ceil(plan[phase].totalBytes / MiB)} MB` };
  }
  return null;
}

function planAt(config: LoadedConfig, plan: MemoryPlan, limitMB: number): MemoryPlan {
  return planMemory({ ...config, memory: { ...config.memory, limitMB } }, plan.facts, { cpus: plan.cpus });
}

/**
 * The smallest memory.limitMB at which `ok` holds for the plan recomputed there (ok is monotone in the limit), or null
 * past 16 TiB.
 */
export function minimumLimitMB(
  config: LoadedConfig,
  plan: MemoryPlan,
  ok: (plan: MemoryPlan) => boolean,
): number | null {
  let high = Math.max(1, plan.limitMB);
  while (!ok(planAt(config, plan, high))) {
    high *= 2;
    if (high > 16 * 1024 * 1024) return null;
  }
  let low = 0; // ok(low) is false or low is 0
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (ok(planAt(config, plan, mid))) high = mid;
    else low = mid;
  }
  return high;
}

/** Refuses `phases` the plan cannot hold (prepare: before any file is touched). */
export function refusePhases(
  config: LoadedConfig,
  plan: MemoryPlan,
  phases: readonly MemoryPhase[] = MEMORY_PHASES,
): void {
  for (const phase of phases) {
    if (phase === 'train' && plan.train.model.error)
      throw new MemoryPlanError('model', `config.model cannot be built: ${plan.train.model.error}`);
    const problem = phaseProblem(plan, phase);
    if (!problem) continue;
    const minimum = minimumLimitMB(config, plan, (p) => phaseProblem(p, phase) === null);
    const smaller = phase === 'prepare' ? 'a smaller image size' : 'a smaller train.batchSize, image size or model';
    const raise = minimum === null ? null : `raise memory.limitMB to at least ${minimum}`;
    let advice: string;
    if (problem.largest !== undefined)
      advice = `Set ${problem.knob} to at most ${problem.largest} or "auto"${raise ? `, or ${raise}` : ''}.`;
    else if (problem.knob !== 'memory.limitMB')
      advice = `Lower ${problem.knob} (or set it to "auto")${raise ? `, or ${raise}` : ''}.`;
    else advice = raise ? `Raise memory.limitMB to at least ${minimum} (or choose ${smaller}).` : `Choose ${smaller}.`;
    throw new MemoryPlanError(
      problem.knob,
      `memory.limitMB is ${plan.limitMB} but in the ${phase} phase ${problem.what}. ${advice}`,
    );
  }
}

/** Why a tuner trial with this estimate cannot run under the plan (it is recorded INFEASIBLE), or null. */
export function trialRefusal(
  plan: Pick<MemoryPlan, 'limitBytes' | 'limitMB'>,
  estimate: Pick<TrialMemoryEstimate, 'totalBytes' | 'totalMB'>,
): string | null {
  return estimate.totalBytes > plan.limitBytes
    ? `estimated peak ${estimate.totalMB} MB exceeds memory.limitMB ${plan.limitMB}`
    : null;
}

/** Refuses, before any work, a final training whose estimate exceeds the plan's limit. */
export function refuseTraining(plan: MemoryPlan, estimate: TrialMemoryEstimate): void {
  if (estimate.totalBytes <= plan.limitBytes) return;
  const parts = estimate.components.map((c) => `${c.name} ${Math.ceil(c.bytes / MiB)} MB`).join(', ');
  throw new MemoryPlanError(
    'memory.limitMB',
    `training this model needs an estimated ${estimate.totalMB} MB (${parts}), more than memory.limitMB ${plan.limitMB}. ` +
      `Raise memory.limitMB to at least ${estimate.totalMB}, or lower train.batchSize (now ${plan.batchSize}), the image size or the model's filters and dense units.`,
  );
}

/**
 * Refuses resuming an interrupted cache whose shards hold more images than the plan allows: its
 * records would need more permits than the plan has (the old code widened the permits past the
 * plan instead, so lowering memory.limitMB after an out-of-memory kill did not lower the peak).
 */
export function refuseResume(config: LoadedConfig, plan: MemoryPlan, cacheDir: string, shardImages: number): void {
  if (shardImages <= plan.shardImages) return;
  const minimum = minimumLimitMB(
    config,
    plan,
    (p) => p.shardImages >= shardImages && phaseProblem(p, 'prepare') === null,
  );
  throw new MemoryPlanError(
    'memory.limitMB',
    `the interrupted cache ${cacheDir} was written with ${shardImages}-image shards, but memory.limitMB ${plan.limitMB} holds ${plan.shardImages}-image shards at most. ` +
      `${minimum === null ? 'R' : `Raise memory.limitMB to at least ${minimum} to resume it, or r`}un prepare with --force to start it over.`,
  );
}

/**
 * The error a per-row table gives when one more row would cross the ceiling the plan reserved for
 * it: the file has more rows than were counted (it grew while prepare read it) or its ids average
 * more than the planned bytes per row.
 */
export function tableFullError(
  plan: MemoryPlan,
  file: string,
  what: string,
  reserve: { entries: number; bytes: number },
): MemoryPlanError {
  return new MemoryPlanError(
    'memory.limitMB',
    `the ${what} of ${file} need more than the ${Math.ceil(reserve.bytes / MiB)} MB the memory plan reserved for them (${reserve.entries} rows counted, ` +
      `ids of up to ${ID_BYTES_PER_ROW} bytes on average; memory.limitMB ${plan.limitMB}). The file grew while prepare read it, or its ids are unusually long: ` +
      'rerun prepare once the file is complete, or shorten the ids.',
  );
}
