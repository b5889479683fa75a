import { readdirSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../core/errors.ts';
import { ImageWriter } from '../data/image-writer.ts';
import { IDENTITY } from '../data/orientation.ts';
import { decodeImage } from '../images/decode.ts';
import { ImageRejection } from '../core/reject-reasons.ts';
import { withKernelCheck } from '../model/backend.ts';
import { loadModel, ModelFilesError } from '../model/io.ts';
import { checkModelFolder } from './model-folder.ts';
import { argMax } from '../train/metrics.ts';
import { readRunMetadata, type RunMetadata } from '../train/run-directory.ts';

/**
 * Classifies image files with a trained run folder. Images go through the very same path as
 * training data: `decodeImage` (prepare's decoder, with the run's image settings) into uint8
 * bytes, then `ImageWriter` (the feed's normalization, with the run's statistics) into a float32
 * batch. A file that cannot be read or decoded becomes `{file, error}`; the rest are predicted.
 */

export interface TrainedModel {
  model: tf.LayersModel;
  metadata: RunMetadata;
}

export type Prediction =
  { file: string; class: string; probabilities: Record<string, number> } | { file: string; error: string };

export class NoImagesGivenError extends UserError {
  constructor() {
    super('predict needs at least one image file or folder, e.g. galactic predict --model runs/latest images/123.jpg');
  }
}

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif']);

export async function loadTrainedModel(dir: string): Promise<TrainedModel> {
  checkModelFolder(dir);
  const metadata = readRunMetadata(dir);
  if (!metadata)
    throw new ModelFilesError(dir, 'has no metadata.json (classes and normalization are needed to predict)');
  const model = await loadModel(dir);
  return { model, metadata };
}

/**
 * An image to classify, and the real folder it must stay inside: a file found in a folder that
 * was given may not link out of it (outside-image-dir, like prepare's data.imageDir); a file
 * named on the command line may be a link to anywhere (but never to a FIFO or device).
 */
export interface PredictInput {
  file: string;
  within: string | null;
}

/** Files as given, folders expanded (sorted, image extensions, not recursive); a missing path stays, to be reported. */
export function expandInputs(inputs: string[]): PredictInput[] {
  const files: PredictInput[] = [];
  for (const input of inputs) {
    let realDir: string | null = null;
    try {
      // stat, never open: the argument may be a FIFO
      if (statSync(input).isDirectory()) realDir = realpathSync.native(input);
    } catch {
      // reported per file by predictFiles
    }
    if (realDir === null) {
      files.push({ file: input, within: null });
      continue;
    }
    for (const name of readdirSync(input).sort()) {
      if (IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase()))
        files.push({ file: path.join(input, name), within: realDir });
    }
  }
  return files;
}

function describeFailure(error: unknown): string {
  if (error instanceof ImageRejection) return error.message;
  return `unreadable: ${(error as Error).message}`;
}

export async function predictFiles(
  trained: TrainedModel,
  inputs: string[],
  options: { batchSize?: number } = {},
): Promise<Prediction[]> {
  if (inputs.length === 0) throw new NoImagesGivenError();
  const { metadata, model } = trained;
  const { width, height, channels } = metadata.image;
  const writer = new ImageWriter({ height, width, channels }, 'uint8', metadata.normalization);
  const batchSize = options.batchSize ?? 32;
  const inputsFound = expandInputs(inputs);
  const files = inputsFound.map((input) => input.file);
  const results: Prediction[] = new Array(files.length);
  const xs = new Float32Array(batchSize * writer.imageSize);
  const pending: number[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const input = tf.tensor4d(xs.slice(0, pending.length * writer.imageSize), [
      pending.length,
      height,
      width,
      channels,
    ]);
    const output = await withKernelCheck(() => model.predict(input) as tf.Tensor);
    const probabilities = await output.data();
    tf.dispose([input, output]);
    const k = metadata.classes.length;
    pending.forEach((fileIndex, i) => {
      const row = probabilities.subarray(i * k, (i + 1) * k);
      results[fileIndex] = {
        file: files[fileIndex],
        class: metadata.classes[argMax(row)],
        probabilities: Object.fromEntries(metadata.classes.map((name, c) => [name, row[c]])),
      };
    });
    pending.length = 0;
  };
  for (let f = 0; f < files.length; f++) {
    let pixels: Uint8Array;
    try {
      pixels = await decodeImage(files[f], metadata.image, { within: inputsFound[f].within });
    } catch (error) {
      results[f] = { file: files[f], error: describeFailure(error) };
      continue;
    }
    writer.write(xs, pending.length * writer.imageSize, pixels, 0, IDENTITY);
    pending.push(f);
    if (pending.length === batchSize) await flush();
  }
  await flush();
  return results;
}
