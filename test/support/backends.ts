import { test } from 'node:test';
import { availableBackends, type BackendName } from '../../src/model/backend.ts';

/**
 * The backend matrix: backend-dependent tests are written once and registered per backend that
 * loads here, so with tfjs-node built (`npm run native`) they run on node and wasm, without it on
 * wasm alone. GALACTIC_TEST_BACKENDS (e.g. "node,wasm", set by .ci/run) names backends that must be
 * present: a missing one fails the run instead of silently shrinking the matrix.
 */

/** Every backend that loads in this process, in `auto`'s order (node, wasm, cpu). */
export const AVAILABLE_BACKENDS: BackendName[] = await availableBackends();

/** The training engines: cpu is the slow reference, not an engine anyone trains on. */
export const TRAINING_BACKENDS: BackendName[] = AVAILABLE_BACKENDS.filter((name) => name !== 'cpu');

/** Backends the environment says must be present (GALACTIC_TEST_BACKENDS), and which of them are not. */
export function missingExpectedBackends(): BackendName[] {
  const expected = (process.env.GALACTIC_TEST_BACKENDS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean) as BackendName[];
  return expected.filter((name) => !AVAILABLE_BACKENDS.includes(name));
}

/** Registers `body` once per backend as "<title> [<backend>]". */
export function testEachBackend(
  title: string,
  body: (backend: BackendName) => Promise<void> | void,
  backends: BackendName[] = TRAINING_BACKENDS,
): void {
  for (const backend of backends) test(`${title} [${backend}]`, () => body(backend));
}

export const HAS_NODE = AVAILABLE_BACKENDS.includes('node');
