import { Command } from 'commander';
import { commandContext } from './context.ts';
import type { CacheListing, CacheVerification } from '../cache/inventory.ts';
import { UserError } from '../core/errors.ts';
import path from 'node:path';

class CacheVerifyError extends UserError {
  constructor(keys: string[]) {
    super(
      `cache verification failed for ${keys.join(', ')} (the problems are listed above). Run 'galactic prepare --force' with the config that made a damaged cache to rebuild it, or remove it with 'galactic inspect --prune'.`,
    );
  }
}

const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;

function describe(cache: CacheListing): string {
  const mark = cache.matchesConfig ? '*' : ' ';
  const lines = [
    `${mark} ${cache.key}  ${cache.status.padEnd(11)} ${String(cache.shards).padStart(5)} shards ${String(cache.images).padStart(8)} images ${String(cache.rejected).padStart(6)} rejected ${mb(cache.bytes).padStart(10)}  ${cache.image ?? ''}  ${cache.updatedAt ?? ''}`,
  ];
  if (cache.problem) lines.push(`      ${cache.problem}`);
  const reasons = Object.entries(cache.rejects).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (reasons.length > 0) lines.push(`      rejects: ${reasons.map(([reason, n]) => `${n} ${reason}`).join(', ')}`);
  if (cache.rejectsFile) lines.push(`      rejected rows: ${cache.rejectsFile}`);
  return lines.join('\n');
}

export function inspectCommand(): Command {
  return new Command('inspect')
    .description(
      'list the prepared caches under cache.dir and which one matches the config; --prune removes the others',
    )
    .option('--prune', 'remove every cache that does not match the current config (says what it frees first)', false)
    .option(
      '--verify',
      'read every shard of every cache and check its size and checksums (exit 1 when one fails)',
      false,
    )
    .action(async (_opts, command: Command) => {
      const [{ resolveCacheDir }, { listCaches, removeCaches, verifyCache }] = await Promise.all([
        import('../cache/key.ts'),
        import('../cache/inventory.ts'),
      ]);
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
      output.print(
        [
          `caches under ${config.cache.dir} (* = matches ${config.configPath}):`,
          ...(caches.length === 0 ? ['  (none)'] : caches.map(describe)),
        ].join('\n'),
      );
      if (keyProblem) output.warn(`cannot tell which cache matches the config: ${keyProblem}`);
      const verified: Record<string, CacheVerification> = {};
      if (ctx.options.verify) {
        for (const cache of caches) {
          const result = await verifyCache(cache);
          verified[cache.key] = result;
          output.print(
            result.problems.length === 0
              ? `verified ${cache.key}: ${result.shards} shard(s), every size and checksum matches`
              : `verified ${cache.key}: ${result.problems.length} problem(s) in ${result.shards} shard(s):\n${result.problems.map((p) => `  - ${p}`).join('\n')}`,
          );
        }
      }
      let pruned: CacheListing[] = [];
      let freedBytes = 0;
      if (ctx.options.prune) {
        if (keyProblem) {
          output.warn("not pruning: without the config's cache key every cache would look stale");
        } else {
          pruned = caches.filter((c) => !c.matchesConfig);
          const total = pruned.reduce((s, c) => s + c.bytes, 0);
          output.info(
            pruned.length === 0
              ? 'nothing to prune'
              : `pruning ${pruned.length} cache(s) not matching the config, freeing ${mb(total)}: ${pruned.map((c) => c.key).join(', ')}`,
          );
          freedBytes = removeCaches(pruned);
        }
      }
      output.result({
        cacheRoot: config.cache.dir,
        currentKey,
        caches,
        ...(ctx.options.prune ? { pruned: pruned.map((c) => c.key), freedBytes } : {}),
        ...(ctx.options.verify ? { verified } : {}),
      });
      const failed = Object.entries(verified)
        .filter(([, v]) => v.problems.length > 0)
        .map(([key]) => key);
      if (failed.length > 0) throw new CacheVerifyError(failed);
    });
}
