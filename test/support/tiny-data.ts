import assert from 'node:assert/strict';
import path from 'node:path';
import { runCli } from './run-cli.ts';

/**
 * Synthesizes the tests' tiny search data, 48 32x32 images (seed 5), in `<root>/data` (where the
 * tune and distributed tests' configs point).
 */
export async function synthesizeTinyData(root: string): Promise<void> {
  const synth = await runCli([
    'synth',
    '--out',
    path.join(root, 'data'),
    '--count',
    '48',
    '--size',
    '32',
    '--seed',
    '5',
  ]);
  assert.equal(synth.code, 0, synth.stderr);
}
