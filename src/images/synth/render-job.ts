import { writeFile } from 'node:fs/promises';
import { encodeImage, needsPixels, type ImageEncoding } from './encode.ts';
import { renderRecord } from './render.ts';

/** One image to draw and write; everything the file's bytes depend on is in here. */
export interface RenderJob {
  seed: number;
  index: number;
  gz2class: string;
  size: number;
  encoding: ImageEncoding;
  /** absolute path of the file to write */
  file: string;
}

/** Renders, encodes and writes one image; returns the number of bytes written. */
export async function runRenderJob(job: RenderJob): Promise<number> {
  const image = needsPixels(job.encoding) ? renderRecord(job.seed, job.index, job.gz2class, job.size) : null;
  const bytes = await encodeImage(image, job.encoding);
  if (!bytes) return 0;
  await writeFile(job.file, bytes);
  return bytes.length;
}
