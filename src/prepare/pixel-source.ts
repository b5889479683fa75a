import type { Candidate } from './row-screen.ts';

/**
 * Where a prepare's candidates get their pixels when they are not decoded in this process: a
 * distributed prepare's chief takes them from the part files its workers wrote. Everything else
 * (screening, row order, shards, rejects, manifest) stays the single-process prepare's own code.
 */
export interface PixelSource {
  /** The candidate's pixels; throws ImageRejection when its image was rejected. Called in row order. */
  pixels(candidate: Candidate): Promise<Uint8Array>;
  /** The cache is complete (manifest written, lock still held): clean up. */
  finish(): Promise<void>;
  /** Always called last, after finish() or a failure. */
  close(): Promise<void>;
}

export interface PixelBuild {
  cacheKey: string;
  cacheDir: string;
  /** The first row still to build (rows before it are in committed shards of an interrupted build). */
  fromRow: number;
  /** --force: nothing an earlier build left may be reused. */
  force: boolean;
}

export type OpenPixelSource = (build: PixelBuild) => Promise<PixelSource>;
