import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { RenderJob } from './render-job.ts';
import type { JobReply, JobRequest } from './render-worker.ts';

const workerModule = new URL(
  import.meta.url.endsWith('.ts') ? './render-worker.ts' : './render-worker.js',
  import.meta.url,
);

/**
 * A worker thread does not inherit the TypeScript loader that runs this file under tsx (via
 * `bin/galactic.js` or `node --import tsx`), so a .ts worker first registers tsx itself. The
 * loader is resolved here, from this package, so it works from any working directory.
 */
function bootstrapSource(): string {
  const target = JSON.stringify(workerModule.href);
  if (!workerModule.pathname.endsWith('.ts')) return `import(${target});`;
  const tsxApi = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  return `import(${tsxApi}).then((tsx) => { tsx.register(); return import(${target}); });`;
}

interface Pending {
  resolve: (bytes: number) => void;
  reject: (error: Error) => void;
}

class RenderWorker {
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: Error | null = null;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: JobReply | 'ready') => {
      if (reply === 'ready') return;
      const pending = this.pending.get(reply.id);
      if (!pending) return;
      this.pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply.bytes);
      else pending.reject(Object.assign(new Error(`synth worker failed: ${reply.error}`), { code: reply.code }));
    });
    const fail = (error: Error): void => {
      this.failure = error;
      for (const pending of this.pending.values()) pending.reject(error);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`synth worker exited with code ${code}`)));
  }

  static start(): Promise<RenderWorker> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(bootstrapSource(), { eval: true });
      const onReady = (message: unknown): void => {
        if (message !== 'ready') return;
        worker.off('message', onReady);
        worker.off('error', reject);
        resolve(new RenderWorker(worker));
      };
      worker.on('message', onReady);
      worker.once('error', reject);
    });
  }

  submit(job: RenderJob): Promise<number> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, job } satisfies JobRequest);
    });
  }

  async stop(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

/**
 * One render worker per core. Jobs are pulled from the caller's iterator only when a worker
 * has a free slot (two per worker: one rendering while the other's JPEG encodes), so at most
 * 2 x threads images are ever in memory, whatever the count.
 */
export class RenderPool {
  private constructor(private readonly workers: RenderWorker[]) {}

  static async start(threads = availableParallelism()): Promise<RenderPool> {
    const started = await Promise.allSettled(Array.from({ length: Math.max(1, threads) }, () => RenderWorker.start()));
    const workers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await Promise.all(workers.map((w) => w.stop()));
      throw failed.reason;
    }
    return new RenderPool(workers);
  }

  get threads(): number {
    return this.workers.length;
  }

  async run(
    jobs: Iterable<RenderJob>,
    onDone: (job: RenderJob, bytes: number) => void,
    slotsPerWorker = 2,
  ): Promise<void> {
    const iterator = jobs[Symbol.iterator]();
    let failed = false;
    const lane = async (worker: RenderWorker): Promise<void> => {
      while (!failed) {
        const next = iterator.next();
        if (next.done) return;
        try {
          onDone(next.value, await worker.submit(next.value));
        } catch (error) {
          failed = true;
          throw error;
        }
      }
    };
    await Promise.all(this.workers.flatMap((worker) => Array.from({ length: slotsPerWorker }, () => lane(worker))));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop()));
  }
}
