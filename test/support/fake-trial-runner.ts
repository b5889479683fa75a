import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hashString } from '../../src/core/rng.ts';
import { canonicalJson } from '../../src/core/canonical-json.ts';
import type { HyperparameterValues } from '../../src/tune/hyperparameters.ts';
import type { EpochRecord, TrialRunner, TrialRunRequest, TrialRunResult } from '../../src/tune/trial-runner.ts';

/**
 * A TrialRunner without tfjs: metrics are a pure function of (values, absolute epoch), and a
 * "checkpoint" is a small JSON file recording which epoch it was taken after. Lets the tests
 * drive the tuner's persistence, resume and failure handling in milliseconds.
 */

export type FakeFault = 'throw' | 'transient' | 'oom' | 'nan' | 'hang' | 'kill' | null;

export interface FakeRunnerOptions {
  /** Decides per (trial, absolute epoch being trained, 0-based) whether something goes wrong. */
  fault?: (trialId: string, epoch: number, values: HyperparameterValues) => FakeFault;
  /** Called when a 'hang' fault fires (the simulated process is dead from then on). */
  onHang?: () => void;
}

export interface FakeStart {
  trialId: string;
  initialEpoch: number;
  /** The epoch count the checkpoint it started from was taken after (null = fresh weights). */
  checkpointEpoch: number | null;
  checkpointTrial: string | null;
}

function unit(key: string): number {
  return hashString(key) / 4294967296;
}

/**
 * Deterministic metrics for 0-based `epoch` (the record counts epochs from 1, like the trainer): quality from the
 * values, val_loss falls then rises (so early stopping fires for some).
 */
export function fakeEpochRecord(values: HyperparameterValues, epoch: number): EpochRecord {
  const key = canonicalJson(values);
  const quality = 0.5 + 0.4 * unit(key);
  const turn = 2 + Math.floor(unit(`${key}:turn`) * 6);
  const noise = (unit(`${key}:${epoch}`) - 0.5) * 0.02;
  const valAccuracy = quality * (1 - Math.exp(-(epoch + 1) / 2)) + noise;
  const valLoss = 1.2 - quality + 0.05 * Math.abs(epoch - turn) + noise;
  return {
    epoch: epoch + 1,
    loss: valLoss * 0.9,
    accuracy: valAccuracy + 0.02,
    val_loss: valLoss,
    val_accuracy: valAccuracy,
    seconds: 0.01,
    imagesPerSecond: 1000,
    peakRssMB: 100,
  };
}

interface FakeCheckpoint {
  trialId: string;
  epochs: number;
}

export class FakeTrialRunner implements TrialRunner {
  readonly starts: FakeStart[] = [];
  /** Every epoch trained, in order: `${trialId}@${epoch}`. */
  readonly epochsRun: string[] = [];

  constructor(private readonly options: FakeRunnerOptions = {}) {}

  async run(request: TrialRunRequest): Promise<TrialRunResult> {
    let checkpoint: FakeCheckpoint | null = null;
    if (request.checkpoint) {
      checkpoint = JSON.parse(readFileSync(path.join(request.checkpoint, 'fake.json'), 'utf8')) as FakeCheckpoint;
      if (checkpoint.epochs !== request.initialEpoch && !request.checkpoint.includes('best-')) {
        throw new Error(`checkpoint after epoch ${checkpoint.epochs} but asked to start at ${request.initialEpoch}`);
      }
    }
    this.starts.push({
      trialId: request.trialId,
      initialEpoch: request.initialEpoch,
      checkpointEpoch: checkpoint?.epochs ?? null,
      checkpointTrial: checkpoint?.trialId ?? null,
    });
    for (let epoch = request.initialEpoch; epoch < request.epochs; epoch++) {
      const fault = this.options.fault?.(request.trialId, epoch, request.values) ?? null;
      if (fault === 'throw') throw new TypeError(`simulated failure in trial ${request.trialId} at epoch ${epoch}`);
      if (fault === 'transient')
        throw Object.assign(new Error(`simulated EMFILE in trial ${request.trialId} at epoch ${epoch}`), {
          code: 'EMFILE',
        });
      if (fault === 'oom') throw new RangeError('WebAssembly.Memory.grow(): Out of memory');
      if (fault === 'kill') process.kill(process.pid, 'SIGKILL');
      if (fault === 'hang') {
        this.options.onHang?.();
        return new Promise<TrialRunResult>(() => {});
      }
      this.epochsRun.push(`${request.trialId}@${epoch}`);
      const record = fakeEpochRecord(request.values, epoch);
      if (fault === 'nan') {
        record.loss = Number.NaN;
        await request.onEpochEnd({ record, saveCheckpoint: async () => {} });
        return { stopReason: 'nan-loss' };
      }
      const verdict = await request.onEpochEnd({
        record,
        saveCheckpoint: async (dir: string) => {
          mkdirSync(dir, { recursive: true });
          writeFileSync(path.join(dir, 'fake.json'), JSON.stringify({ trialId: request.trialId, epochs: epoch + 1 }));
        },
      });
      if (verdict === 'stop') return { stopReason: 'stopped' };
    }
    return { stopReason: 'completed' };
  }
}
