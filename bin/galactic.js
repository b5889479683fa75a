#!/usr/bin/env node
// Runs the compiled dist/cli.js (built by `npm install` in a clone, shipped in the package). A
// development checkout whose dist/ is missing or older than src/ runs the TypeScript sources
// through tsx instead (slower to start), so an edit is never silently ignored; tests set
// GALACTIC_FROM_SOURCE=1 to always run the sources.
import { existsSync, readdirSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const compiled = new URL('dist/cli.js', root);
const sources = new URL('src/', root);

/** Why the sources must run instead of dist/, or null when dist/ is current. */
function staleReason() {
  if (!existsSync(compiled)) return 'dist/ is not built';
  const built = statSync(compiled).mtimeMs;
  for (const entry of readdirSync(sources, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && statSync(`${entry.parentPath ?? entry.path}/${entry.name}`).mtimeMs > built)
      return 'src/ changed since dist/ was built';
  }
  return null;
}

if (existsSync(sources)) {
  const reason = process.env.GALACTIC_FROM_SOURCE === '1' ? '' : staleReason();
  if (reason !== null) {
    if (reason)
      process.stderr.write(`galactic: ${reason}; running the sources with tsx (npm run build makes start-up fast)\n`);
    const { register } = await import('tsx/esm/api');
    register();
    await import('../src/cli.ts');
  } else {
    await import('../dist/cli.js');
  }
} else {
  await import('../dist/cli.js');
}
