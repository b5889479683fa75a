/**
 * The fixed vocabulary of reasons a record is rejected (rejects.jsonl, the manifest's counts,
 * `predict`'s per-file errors). Ingest, images and cache all speak it, so it lives below them.
 */
export type RejectReason =
  | 'missing-image'
  | 'not-a-file'
  | 'outside-image-dir'
  | 'empty-file'
  | 'corrupt-image'
  | 'not-an-image'
  | 'too-large'
  | 'unlabelled'
  | 'unknown-label'
  | 'duplicate-id'
  | 'invalid-id'
  | 'malformed-row'
  | 'unmapped-id';

export const REJECT_REASONS: readonly RejectReason[] = [
  'missing-image',
  'not-a-file',
  'outside-image-dir',
  'empty-file',
  'corrupt-image',
  'not-an-image',
  'too-large',
  'unlabelled',
  'unknown-label',
  'duplicate-id',
  'invalid-id',
  'malformed-row',
  'unmapped-id',
];

export class ImageRejection extends Error {
  readonly reason: RejectReason;
  readonly detail: string;
  constructor(reason: RejectReason, detail: string) {
    super(`${reason}: ${detail}`);
    this.name = 'ImageRejection';
    this.reason = reason;
    this.detail = detail;
  }
}
