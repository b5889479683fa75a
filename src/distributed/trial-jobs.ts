import type { OracleTrial } from '../tune/oracle.ts';
import type { TrialStatus } from '../tune/oracle.ts';

/** What a trial job carries on the queue, and what a worker answers when it is done with it. */

export interface TrialJobData {
  kind: 'trial';
  /** The search's digest (names the queue; a worker checks the tuning folder it sees holds this search). */
  searchKey: string;
  trialId: string;
  plan: OracleTrial;
  /** The chief's tuner.dir, for messages when a worker cannot see it. */
  chiefTuningDir: string;
  chiefHost: string;
}

export interface TrialJobResult {
  trialId: string;
  status: TrialStatus;
  worker: string;
  /** Wall-clock ms (Date.now()) around the trial's execution on the worker. */
  startedAt: number;
  finishedAt: number;
}

/** What a worker reports as job progress (shown by `galactic queue status`). */
export interface TrialJobProgress {
  worker: string;
  trialId: string;
  epoch: number;
  epochs: number;
}
