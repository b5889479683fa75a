import { readFileSync } from 'node:fs';

/** galactic's own version, from package.json: recorded in manifests, run metadata, reports and benches. */
export const GALACTIC_VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
