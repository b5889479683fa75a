import { readFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../core/errors.ts';
import { replaceFileAtomic } from '../core/atomic-file.ts';
import { ModelFilesError } from './model-files-error.ts';

/**
 * galactic's own tfjs IO handler for a model folder: `model.json` (layers format, weights manifest
 * pointing at `weights.bin`) + `weights.bin`. Plain files, no tfjs-node, so it works on every
 * backend, and the folder loads in any tfjs (`tf.loadLayersModel('file://…/model.json')` in
 * tfjs-node, or over http in a browser).
 */

export const MODEL_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';

export { ModelFilesError } from './model-files-error.ts';

const BYTES_PER_DTYPE: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };

/** Bytes the weights manifest promises (quantized weights count their stored size). */
function expectedWeightBytes(specs: tf.io.WeightsManifestEntry[]): number {
  return specs.reduce((sum, spec) => {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const bytes = spec.quantization
      ? spec.quantization.dtype === 'float16' || spec.quantization.dtype === 'uint16'
        ? 2
        : 1
      : (BYTES_PER_DTYPE[spec.dtype] ?? 4);
    return sum + count * bytes;
  }, 0);
}

export function modelFolderIO(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) throw new Error('modelFolderIO saves layers models only');
      mkdirSync(dir, { recursive: true });
      const weightData =
        artifacts.weightData == null ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology!,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
        convertedBy: 'galactic',
        weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
      };
      if (artifacts.trainingConfig) modelJson.trainingConfig = artifacts.trainingConfig;
      // weights first: a model.json on disk always has its weights.bin beside it
      await replaceFileAtomic(path.join(dir, WEIGHTS_FILE), new Uint8Array(weightData));
      await replaceFileAtomic(path.join(dir, MODEL_FILE), Buffer.from(JSON.stringify(modelJson)));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(modelJson) };
    },

    async load(): Promise<tf.io.ModelArtifacts> {
      const jsonFile = path.join(dir, MODEL_FILE);
      if (!existsSync(jsonFile)) throw new ModelFilesError(dir, `has no ${MODEL_FILE}`);
      let modelJson: tf.io.ModelJSON;
      try {
        modelJson = JSON.parse(readFileSync(jsonFile, 'utf8')) as tf.io.ModelJSON;
      } catch (error) {
        throw new ModelFilesError(dir, `has an unreadable ${MODEL_FILE} (${(error as Error).message})`);
      }
      if (!modelJson.modelTopology || !Array.isArray(modelJson.weightsManifest)) {
        throw new ModelFilesError(
          dir,
          `has a ${MODEL_FILE} that is not a tfjs layers model (no modelTopology or weightsManifest)`,
        );
      }
      const specs: tf.io.WeightsManifestEntry[] = [];
      const parts: ArrayBuffer[] = [];
      for (const group of modelJson.weightsManifest) {
        specs.push(...group.weights);
        for (const name of group.paths) {
          const file = path.join(dir, name);
          if (!existsSync(file))
            throw new ModelFilesError(dir, `is missing ${name}, the weights its ${MODEL_FILE} refers to`);
          const bytes = readFileSync(file);
          parts.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
        }
      }
      const weightData = tf.io.CompositeArrayBuffer.join(parts);
      const expected = expectedWeightBytes(specs);
      if (weightData.byteLength !== expected) {
        throw new ModelFilesError(
          dir,
          `has weights of ${weightData.byteLength} bytes, but its ${MODEL_FILE} describes ${expected} bytes (weights.bin belongs to another model or is truncated)`,
        );
      }
      return {
        modelTopology: modelJson.modelTopology,
        format: modelJson.format,
        generatedBy: modelJson.generatedBy,
        convertedBy: modelJson.convertedBy,
        trainingConfig: modelJson.trainingConfig,
        weightSpecs: specs,
        weightData,
      };
    },
  };
}

export async function saveModel(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(modelFolderIO(dir));
}

export async function loadModel(dir: string): Promise<tf.LayersModel> {
  try {
    return await tf.loadLayersModel(modelFolderIO(dir));
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new ModelFilesError(dir, `could not be loaded as a tfjs model (${(error as Error).message})`);
  }
}
