import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUE_PREFIX } from './names.ts';
import { probeRedis, type QueueSettings } from './redis-connection.ts';
import type { TrialJobProgress } from './trial-jobs.ts';

/**
 * `galactic queue status`: every galactic queue on the Redis, its job counts, its workers and what each active job is
 * doing.
 */

export interface QueueStatus {
  queue: string;
  counts: Record<string, number>;
  workers: { name: string; addr: string; idleSeconds: number }[];
  active: { jobId: string; worker: string | null; progress: unknown }[];
}

export async function queueStatus(settings: QueueSettings): Promise<QueueStatus[]> {
  await probeRedis(settings);
  const client = new Redis(settings.connection);
  client.on('error', () => undefined);
  let names: string[];
  try {
    // BullMQ keeps one meta hash per queue: bull:<name>:meta
    names = (await client.keys(`bull:${QUEUE_PREFIX}-*:meta`))
      .map((k) => k.slice('bull:'.length, -':meta'.length))
      .sort();
  } finally {
    client.disconnect();
  }
  const statuses: QueueStatus[] = [];
  for (const name of names) {
    const queue = new Queue(name, { connection: settings.connection });
    queue.on('error', () => undefined);
    try {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized');
      const workers = (await queue.getWorkers()).map((w) => ({
        name: String(w.rawname ?? w.name ?? '').split(':w:')[1] ?? '(unnamed)',
        addr: String(w.addr ?? ''),
        idleSeconds: Number(w.idle ?? 0),
      }));
      const active = (await queue.getActive()).map((job) => {
        const progress = job.progress as Partial<TrialJobProgress> | number;
        return {
          jobId: String(job.id),
          worker:
            (typeof progress === 'object' && progress?.worker) || (job as { processedBy?: string }).processedBy || null,
          progress,
        };
      });
      statuses.push({ queue: name, counts, workers, active });
    } finally {
      await queue.close();
    }
  }
  return statuses;
}

export function formatQueueStatus(statuses: QueueStatus[], url: string): string {
  if (statuses.length === 0) return `no galactic queues on ${url}`;
  const lines: string[] = [];
  for (const s of statuses) {
    const c = s.counts;
    lines.push(
      `${s.queue}: ${c.waiting + (c.prioritized ?? 0)} waiting, ${c.active} active, ${c.delayed} delayed, ${c.completed} completed, ${c.failed} failed; ${s.workers.length} worker(s)`,
    );
    for (const w of s.workers) lines.push(`  worker ${w.name} (${w.addr}), idle ${w.idleSeconds} s`);
    for (const a of s.active) {
      const p = a.progress as Partial<TrialJobProgress> | number;
      const detail =
        typeof p === 'object' && p && p.epoch !== undefined
          ? `epoch ${p.epoch}/${p.epochs}`
          : typeof p === 'object' && p && 'detail' in p
            ? String((p as { detail: unknown }).detail)
            : 'starting';
      lines.push(`  job ${a.jobId} on ${a.worker ?? 'a worker'}: ${detail}`);
    }
  }
  return lines.join('\n');
}
