import type { RedisOptions as BullRedisOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { UsageError, UserError } from '../core/errors.ts';
import type { Output } from '../core/console.ts';

/**
 * The `--queue redis://HOST:PORT[/DB]` setting: parsed once into the connection options BullMQ
 * and the watchers use, probed before any work (a chief or worker that cannot reach Redis says so
 * and stops, nothing written), and watched afterwards so a lost connection is announced instead
 * of looking like a hang. ioredis keeps reconnecting on its own; BullMQ's commands wait for it.
 */

export interface QueueSettings {
  /** The URL as given, without a password (for messages). */
  url: string;
  /** Plain ioredis options (BullMQ makes its own connections from them). */
  connection: RedisOptions & BullRedisOptions;
}

export function parseQueueUrl(text: string): QueueSettings {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--queue must be a Redis URL such as redis://127.0.0.1:6379 (got '${text}')`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new UsageError(
      `--queue must be a Redis URL such as redis://127.0.0.1:6379 (got '${text}': the scheme must be redis:// or rediss://)`,
    );
  }
  const port = url.port === '' ? 6379 : Number(url.port);
  const dbText = url.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0)
    throw new UsageError(
      `--queue: the database number after the port must be a whole number (got '${dbText}' in '${text}')`,
    );
  const connection: QueueSettings['connection'] = {
    host: url.hostname,
    port,
    db,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
    // BullMQ's blocking commands must wait out a reconnection rather than fail
    maxRetriesPerRequest: null,
  };
  const shown = new URL(text);
  shown.password = '';
  return { url: shown.toString().replace(/\/$/, ''), connection };
}

export class QueueUnreachableError extends UserError {
  constructor(settings: QueueSettings, detail: string, rerun = 'rerunning resumes from tuner.dir') {
    super(
      `cannot reach Redis at ${settings.url} (${detail}). Start it (e.g. 'redis-server --port ${settings.connection.port ?? 6379}', see docs/distributed.md) ` +
        `or point --queue at a running one; nothing was changed, and ${rerun}.`,
    );
  }
}

/**
 * Connects once without retrying; a UserError naming the URL when Redis does not answer (`rerun`: what
 * rerunning the command does).
 */
export async function probeRedis(settings: QueueSettings, rerun?: string): Promise<void> {
  const client = new Redis({
    ...settings.connection,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: 3000,
    retryStrategy: () => null,
  });
  let cause: Error | null = null;
  client.on('error', (error: Error) => (cause ??= error)); // the socket's error says more than the rejected connect
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new QueueUnreachableError(settings, (cause ?? (error as Error)).message || String(error), rerun);
  } finally {
    client.disconnect();
  }
}

export interface ConnectionWatch {
  close(): void;
}

/**
 * Says once when the connection to Redis is lost and once when it is back. What keeps working
 * meanwhile is the caller's to say (`whileLost`), e.g. "trials in flight keep training".
 */
export function watchConnection(settings: QueueSettings, output: Output, whileLost: string): ConnectionWatch {
  const client = new Redis({ ...settings.connection, retryStrategy: (attempt) => Math.min(200 * attempt, 2000) });
  let lost = false;
  client.on('error', (error: Error) => {
    if (lost) return;
    lost = true;
    output.warn(
      `lost the connection to Redis at ${settings.url} (${error.message || String(error)}); ${whileLost}. Waiting for it to come back (Ctrl-C stops; rerunning resumes).`,
    );
  });
  client.on('ready', () => {
    if (!lost) return;
    lost = false;
    output.info(`Redis at ${settings.url} is back; continuing`);
  });
  return { close: () => client.disconnect() };
}
