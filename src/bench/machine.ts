import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { GALACTIC_VERSION } from '../core/version.ts';

/**
 * The machine a measurement was taken on. Every bench result carries it: a throughput figure
 * without the CPU, the core count and the load at the time says nothing.
 */
export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryMB: number;
  platform: string;
  node: string;
  /** Versions of the libraries whose speed is measured (null when not installed). */
  versions: Record<string, string | null>;
  /** 1-minute load average when the info was taken: other work on the machine skews every figure. */
  loadAverage1m: number;
  /** tfjs backend the train stage ran on (filled in by the stage that selected it). */
  backend: string | null;
}

const require = createRequire(import.meta.url);

/** A package's version from its package.json, or null when it is not installed. */
export function packageVersion(name: string): string | null {
  try {
    const file = require.resolve(`${name}/package.json`);
    return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? null;
  } catch {
    return null;
  }
}

function libvipsVersion(): string | null {
  try {
    return (require('sharp') as { versions: Record<string, string> }).versions.vips ?? null;
  } catch {
    return null;
  }
}

export function machineInfo(backend: string | null = null): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryMB: Math.round(os.totalmem() / (1024 * 1024)),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    versions: {
      galactic: GALACTIC_VERSION,
      sharp: packageVersion('sharp'),
      libvips: libvipsVersion(),
      '@tensorflow/tfjs': packageVersion('@tensorflow/tfjs'),
      '@tensorflow/tfjs-backend-wasm': packageVersion('@tensorflow/tfjs-backend-wasm'),
      '@tensorflow/tfjs-node': packageVersion('@tensorflow/tfjs-node'),
    },
    loadAverage1m: Number(os.loadavg()[0]!.toFixed(2)),
    backend,
  };
}

/** One line for the top of the human output and the README. */
export function describeMachine(m: MachineInfo): string {
  const libs = Object.entries(m.versions)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return (
    `${m.cpuModel}, ${m.cores} cores, ${(m.memoryMB / 1024).toFixed(1)} GB RAM, ${m.platform}, node ${m.node}` +
    `${m.backend ? `, backend ${m.backend}` : ''}; ${libs}; load average ${m.loadAverage1m}`
  );
}
