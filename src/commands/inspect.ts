import { Command } from 'commander';
import { commandContext } from './context.ts';
import type { CacheListing } from '../cache/inventory.ts';
import path from 'node:path';

const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;

function describe(cache: CacheListing): string {
  const mark = cache.matchesConfig ? '*' : ' ';
  return `${mark} ${cache.key}  ${cache.status.padEnd(11)} ${String(cache.shards).padStart(5)} shards ${String(cache.images).padStart(8)} images ${String(cache.rejected).padStart(6)} rejected ${mb(cache.bytes).padStart(10)}  ${cache.image ?? ''}  ${cache.updatedAt ?? ''}`;
}

export function inspectCommand(): Command {
  return new Command('inspect')
    .description('list the prepared caches under cache.dir and which one matches the config; --prune removes the others')
    .option('--prune', 'remove every cache that does not match the current config (says what it frees first)', false)
    .action(async (_opts, command: Command) => {
      const [{ resolveCacheDir }, { listCaches, removeCaches }] = await Promise.all([import('../cache/key.ts'), import('../cache/inventory.ts')]);
      const ctx = commandContext(command);
      const config = ctx.config();
      const { output } = ctx;
      // the config's key needs its data; without data we can still list, but not prune safely
      let currentKey: string | null = null;
      let keyProblem: string | null = null;
      try {
        currentKey = path.basename(resolveCacheDir(config));
      } catch (error) {
        keyProblem = (error as Error).message;
      }
      const caches = listCaches(config.cache.dir, currentKey);
      output.print([
        `caches under ${config.cache.dir} (* = matches ${config.configPath}):`,
        ...(caches.length === 0 ? ['  (none)'] : caches.map(describe)),
      ].join('\n'));
      if (keyProblem) output.warn(`cannot tell which cache matches the config: ${keyProblem}`);
      let pruned: CacheListing[] = [];
      let freedBytes = 0;
      if (ctx.options.prune) {
        if (keyProblem) {
          output.warn('not pruning: without the config\'s cache key every cache would look stale');
        } else {
          pruned = caches.filter((c) => !c.matchesConfig);
          const total = pruned.reduce((s, c) => s + c.bytes, 0);
          output.info(pruned.length === 0 ? 'nothing to prune' : `pruning ${pruned.length} cache(s) not matching the config, freeing ${mb(total)}: ${pruned.map((c) => c.key).join(', ')}`);
          freedBytes = removeCaches(pruned);
        }
      }
      output.result({
        cacheRoot: config.cache.dir, currentKey, caches,
        ...(ctx.options.prune ? { pruned: pruned.map((c) => c.key), freedBytes } : {}),
      });
    });
}
