import { z } from 'zod';
import { MAX_WASM_THREADS } from '../core/thread-count.ts';

/**
 * The one definition of the pipeline config: zod validates it at load time and the JSON Schema
 * that editors use (`pipeline.config.schema.json`) is generated from it, so the two never drift.
 * Every object is strict: an unknown key is an error, because a typo must not pass silently.
 */

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);

const classRule = z
  .object({
    name: z
      .string()
      .min(1)
      .regex(/^[A-Za-z0-9_-]+$/, 'must use only letters, digits, - and _'),
    match: z
      .string()
      .min(1)
      .describe('Regular expression tested against the label column; the first matching class wins.'),
  })
  .strict();

export const dataSchema = z
  .object({
    layout: z
      .enum(['joined', 'gz2'])
      .default('joined')
      .describe(
        '"joined": one CSV with id and label columns (galaxy_df_final.csv). "gz2": gz2_hart16.csv labels joined to images through gz2_filename_mapping.csv.',
      ),
    csv: z.string().min(1).describe('Labels CSV: the pre-joined CSV, or gz2_hart16.csv for the gz2 layout.'),
    mappingCsv: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe('gz2 layout: gz2_filename_mapping.csv (objid, sample, asset_id).'),
    imageDir: z.string().min(1).describe('Folder of images named by fileName.'),
    idColumn: z
      .string()
      .min(1)
      .default('asset_id')
      .describe('Column with the image id (joined) or the object id (gz2: dr7objid).'),
    labelColumn: z
      .string()
      .min(1)
      .default('gz2class')
      .describe('Column with the morphology class string (gz2: gz2_class).'),
    mappingObjectColumn: z
      .string()
      .min(1)
      .default('objid')
      .describe('gz2 layout: object-id column of the mapping CSV.'),
    mappingImageColumn: z
      .string()
      .min(1)
      .default('asset_id')
      .describe('gz2 layout: image-id column of the mapping CSV.'),
    fileName: z
      .string()
      .min(1)
      .default('{id}.jpg')
      .refine((s) => s.includes('{id}'), 'must contain {id}')
      .describe('Image file name pattern inside imageDir; {id} is replaced by the record id.'),
    classes: z
      .array(classRule)
      .min(2, 'must list at least 2 classes')
      .default([
        { name: 'elliptical', match: '^E' },
        { name: 'spiral', match: '^S' },
        { name: 'artifact', match: '^A' },
      ]),
    limit: int(1).nullable().default(null).describe('Keep only the first N usable records (the notebook kept 5,000).'),
    synthesize: int(1)
      .nullable()
      .default(null)
      .describe(
        'When data.csv is missing, render this many synthetic Galaxy Zoo 2 images into its folder first (the built-in demo uses 1500). data.csv must then be a name synth writes and data.imageDir lie in the same folder.',
      ),
    maxRowBytes: int(64, 16 * 1024 * 1024)
      .default(65536)
      .describe('Longest CSV line accepted; bounds a hostile row.'),
  })
  .strict();

export const imageSchema = z
  .object({
    width: int(8, 2048).default(128),
    height: int(8, 2048).default(128),
    channels: z.union([z.literal(1), z.literal(3)]).default(3),
    fit: z.enum(['fill', 'cover', 'contain', 'inside']).default('fill'),
    kernel: z
      .enum(['lanczos3', 'linear', 'cubic', 'mitchell', 'nearest'])
      .default('lanczos3')
      .describe(
        "Resize kernel (sharp's). lanczos3 (default) keeps the most detail without aliasing; linear is the interpolation of the notebook's cv2.resize and decodes about 6% faster. Part of the cache key.",
      ),
    maxInputPixels: int(1)
      .default(50_000_000)
      .describe('Images with more pixels are rejected as too-large before decoding.'),
  })
  .strict();

export const cacheSchema = z
  .object({
    dir: z.string().min(1).default('.galactic/cache'),
    shardImages: z.union([z.literal('auto'), int(1)]).default('auto'),
    dtype: z.enum(['uint8', 'float32']).default('uint8'),
  })
  .strict();

export const memorySchema = z
  .object({
    limitMB: int(1).default(8192).describe('Hard memory budget for the whole process, in MiB.'),
    decodeConcurrency: z.union([z.literal('auto'), int(1, 256)]).default('auto'),
  })
  .strict();

export const splitSchema = z
  .object({
    validation: z.number().gt(0, 'must be between 0 and 1').lt(1, 'must be between 0 and 1').default(0.2),
    stratify: z.boolean().default(true),
  })
  .strict();

export const feedSchema = z
  .object({
    normalize: z.enum(['scale', 'standardize']).default('scale'),
    augment: z
      .object({ flip: z.boolean().default(true), rotate90: z.boolean().default(true) })
      .strict()
      .default({ flip: true, rotate90: true }),
    shuffleBuffer: z.union([z.literal('auto'), int(1)]).default('auto'),
    prefetch: z.union([z.literal('auto'), int(0, 8)]).default('auto'),
  })
  .strict();

export const modelSchema = z
  .object({
    filters: z.array(int(1, 4096)).min(1).default([32, 64, 128]),
    kernelSize: int(1, 15).default(3),
    denseUnits: int(1, 65536).default(64),
    dropout: z.number().min(0).max(0.99).default(0),
    learningRate: z.number().gt(0).max(10).default(0.001),
  })
  .strict();

export const earlyStoppingSchema = z
  .object({
    monitor: z.enum(['val_loss', 'val_accuracy', 'loss', 'accuracy']).default('val_loss'),
    patience: int(0).default(5),
    restoreBestWeights: z.boolean().default(true),
  })
  .strict();

export const trainSchema = z
  .object({
    batchSize: int(1, 4096).default(32),
    epochs: int(1, 100000).default(50),
    learningRate: z
      .number()
      .gt(0)
      .max(10)
      .nullable()
      .default(null)
      .describe('Overrides the tuned learning rate for the final training; null keeps the tuned one.'),
    classWeights: z.enum(['none', 'balanced']).default('none'),
    earlyStopping: earlyStoppingSchema
      .nullable()
      .default({ monitor: 'val_loss', patience: 5, restoreBestWeights: true }),
  })
  .strict();

export const hyperparameterSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('int'),
      min: z.number().int(),
      max: z.number().int(),
      step: int(1).default(1),
      sampling: z.enum(['linear', 'log']).default('linear'),
    })
    .strict(),
  z
    .object({
      type: z.literal('float'),
      min: z.number(),
      max: z.number(),
      step: z.number().positive().nullable().default(null),
      sampling: z.enum(['linear', 'log']).default('linear'),
    })
    .strict(),
  z
    .object({ type: z.literal('choice'), values: z.array(z.union([z.number(), z.string(), z.boolean()])).min(1) })
    .strict(),
  z.object({ type: z.literal('boolean') }).strict(),
  z.object({ type: z.literal('fixed'), value: z.union([z.number(), z.string(), z.boolean()]) }).strict(),
]);

/** The notebook's search space (keras-tuner names). */
export const notebookSpace = {
  filters_1: { type: 'int', min: 16, max: 64, step: 16, sampling: 'linear' },
  filters_2: { type: 'int', min: 32, max: 128, step: 32, sampling: 'linear' },
  filters_3: { type: 'int', min: 64, max: 256, step: 64, sampling: 'linear' },
  dense_units: { type: 'int', min: 32, max: 256, step: 32, sampling: 'linear' },
  learning_rate: { type: 'float', min: 1e-4, max: 1e-2, step: null, sampling: 'log' },
} as const;

export const tunerSchema = z
  .object({
    algorithm: z
      .enum(['random', 'hyperband', 'bayesian'])
      .default('random')
      .describe(
        'random: RandomSearch; hyperband: Hyperband on tuner.epochs and tuner.hyperband; bayesian: Gaussian process with UCB after 3 x dimensions random trials.',
      ),
    maxTrials: int(1).default(30),
    epochs: int(1).default(50).describe('Epochs per trial (RandomSearch) or maxEpochs (Hyperband).'),
    objective: z.enum(['val_accuracy', 'val_loss', 'accuracy', 'loss']).default('val_accuracy'),
    direction: z.enum(['max', 'min']).nullable().default(null).describe('null: max for accuracy, min for loss.'),
    patience: int(0).nullable().default(5).describe('Early-stopping patience per trial; null disables it.'),
    dir: z.string().min(1).default('.galactic/tuning'),
    trialRetries: int(0)
      .default(2)
      .describe(
        'Retries of a trial after a transient failure (a busy resource, a lost connection), each from its last saved epoch.',
      ),
    hyperband: z
      .object({ factor: int(2).default(3), iterations: int(1).default(1) })
      .strict()
      .default({ factor: 3, iterations: 1 }),
    space: z
      .record(z.string().regex(/^[a-z][a-z0-9_]*$/), hyperparameterSchema)
      .default(structuredClone(notebookSpace) as unknown as Record<string, z.infer<typeof hyperparameterSchema>>),
  })
  .strict();

export const runsSchema = z
  .object({
    dir: z.string().min(1).default('runs'),
    name: z
      .string()
      .min(1)
      .regex(/^[A-Za-z0-9._-]+$/, 'must use only letters, digits, ., - and _')
      .default('latest'),
  })
  .strict();

export const configSchema = z
  .object({
    $schema: z.string().optional(),
    data: dataSchema,
    image: imageSchema.default(imageSchema.parse({})),
    cache: cacheSchema.default(cacheSchema.parse({})),
    memory: memorySchema.default(memorySchema.parse({})),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(42),
    split: splitSchema.default(splitSchema.parse({})),
    feed: feedSchema.default(feedSchema.parse({})),
    backend: z.enum(['auto', 'node', 'wasm', 'cpu']).default('auto'),
    threads: z
      .union([z.literal('auto'), int(1, MAX_WASM_THREADS)], {
        message: `must be "auto" or a whole number from 1 to ${MAX_WASM_THREADS}`,
      })
      .default('auto')
      .describe(
        'Compute threads of the wasm backend (XNNPACK thread pool over worker_threads): "auto" = every core available, at most 8; 1 = the single-threaded build. tfjs-node manages its own threads.',
      ),
    model: modelSchema.default(modelSchema.parse({})),
    train: trainSchema.default(trainSchema.parse({})),
    tuner: tunerSchema.default(tunerSchema.parse({})),
    runs: runsSchema.default(runsSchema.parse({})),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    if (cfg.data.layout === 'gz2' && !cfg.data.mappingCsv) {
      ctx.addIssue({ code: 'custom', path: ['data', 'mappingCsv'], message: 'is required when data.layout is "gz2"' });
    }
    cfg.data.classes.forEach((rule, i) => {
      try {
        new RegExp(rule.match);
      } catch {
        ctx.addIssue({
          code: 'custom',
          path: ['data', 'classes', i, 'match'],
          message: `is not a valid regular expression: ${rule.match}`,
        });
      }
    });
    const names = cfg.data.classes.map((c) => c.name);
    if (new Set(names).size !== names.length) {
      ctx.addIssue({ code: 'custom', path: ['data', 'classes'], message: 'must not repeat a class name' });
    }
    for (const [name, hp] of Object.entries(cfg.tuner.space)) {
      if ((hp.type === 'int' || hp.type === 'float') && hp.min > hp.max) {
        ctx.addIssue({
          code: 'custom',
          path: ['tuner', 'space', name],
          message: `min (${hp.min}) must not exceed max (${hp.max})`,
        });
      }
      if ((hp.type === 'int' || hp.type === 'float') && hp.sampling === 'log' && hp.min <= 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['tuner', 'space', name, 'min'],
          message: 'must be positive for log sampling',
        });
      }
    }
  });

/** The config as written (defaults filled in), paths still relative to the config file. */
export type PipelineConfig = z.infer<typeof configSchema>;
export type HyperparameterSpec = z.infer<typeof hyperparameterSchema>;
export type ClassRule = z.infer<typeof classRule>;

/** JSON Schema for editors, generated from the zod definition. */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...schema, title: 'galactic pipeline config' };
}
