import { parentPort } from 'node:worker_threads';
import { runRenderJob, type RenderJob } from './render-job.ts';

/** Worker thread entry: renders the jobs the pool sends, one reply per job. */
export interface JobRequest {
  id: number;
  job: RenderJob;
}
export type JobReply =
  { id: number; ok: true; bytes: number } | { id: number; ok: false; error: string; code?: string };

const port = parentPort;
if (!port) throw new Error('render-worker.ts must run in a worker thread');
port.on('message', (request: JobRequest) => {
  runRenderJob(request.job).then(
    (bytes) => port.postMessage({ id: request.id, ok: true, bytes } satisfies JobReply),
    (error: unknown) =>
      port.postMessage({
        id: request.id,
        ok: false,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        code: (error as NodeJS.ErrnoException | null)?.code,
      } satisfies JobReply),
  );
});
port.postMessage('ready');
