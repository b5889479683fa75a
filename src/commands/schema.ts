import { replaceFileAtomicSync } from '../core/atomic-file.ts';
import { Command } from 'commander';

/** Writes the JSON Schema generated from the zod config definition (for editors). */
export function schemaCommand(): Command {
  return new Command('schema')
    .description('print (or write with --out) the JSON Schema of the pipeline config')
    .option('--out <file>', 'write the schema to this file instead of stdout')
    .action(async (opts: { out?: string }) => {
      const { configJsonSchema } = await import('../config/schema.ts');
      const text = `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
      if (opts.out) replaceFileAtomicSync(opts.out, text);
      else process.stdout.write(text);
    });
}
