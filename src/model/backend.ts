import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../core/errors.ts';
import type { Output } from '../core/console.ts';
import { registerWasmTrainingKernels } from './kernels/index.ts';
import { describeThreads, resolveWasmThreads } from '../core/thread-count.ts';
import { registerNativeFusedConv } from './native-fused-conv.ts';
import { registerNativeMaxPool } from './native-max-pool.ts';
import { registerNativeReluGrad, registerReluGradient } from './relu-gradient.ts';
import { withWasmThreads } from './wasm-threads.ts';

/**
 * The one place that picks the tfjs backend (design principle 6). Everything else imports
 * `@tensorflow/tfjs` and runs on whatever this module selected, so exactly one engine exists.
 */

export type BackendName = 'node' | 'wasm' | 'cpu';
export interface BackendChoice {
  name: BackendName;
  reason: string;
  skipped: { name: BackendName; why: string }[];
  /** Compute threads of the wasm backend's XNNPACK pool (wasm only). */
  threads?: number;
}

export interface BackendOptions {
  /**
   * Threads for the wasm backend: 'auto' = every core available (default). Fixed once wasm has initialised in this
   * process.
   */
  threads?: 'auto' | number;
  /** The cores 'auto' counts (default: the cores this process may use, `os.availableParallelism()`). */
  cpus?: number;
}

/** The tfjs registry name of each backend (tfjs-node registers itself as 'tensorflow'). */
const TFJS_NAME: Record<BackendName, string> = { node: 'tensorflow', wasm: 'wasm', cpu: 'cpu' };

/** galactic's name of the active backend ('tensorflow', tfjs-node's registry name, is 'node'). */
export function activeBackendName(): string {
  const active = tf.getBackend();
  return (Object.keys(TFJS_NAME) as BackendName[]).find((name) => TFJS_NAME[name] === active) ?? active;
}

const NODE_PACKAGE = '@tensorflow/tfjs-node';
const WASM_PACKAGE = '@tensorflow/tfjs-backend-wasm';
const NODE_OFFLINE_NOTE =
  'its install script downloads libtensorflow from storage.googleapis.com (outside the npm registry), which fails offline or behind a proxy';

export class BackendUnavailableError extends UserError {
  readonly backend: BackendName;
  constructor(backend: BackendName, why: string) {
    const advice =
      backend === 'node'
        ? `Build it from TensorFlow's wheel on PyPI with 'npm run native' (Linux x64; python3 with pip, g++, make), or install it with 'npm install ${NODE_PACKAGE}@${tf.version.tfjs}' on a machine that can reach storage.googleapis.com (${NODE_OFFLINE_NOTE}), or use --backend wasm (or backend "auto" in the config).`
        : backend === 'wasm'
          ? `Reinstall it with 'npm install ${WASM_PACKAGE}@${tf.version.tfjs}', or use --backend cpu (slow).`
          : `The cpu backend ships with @tensorflow/tfjs; reinstall it with 'npm install @tensorflow/tfjs@${tf.version.tfjs}'.`;
    super(`backend '${backend}' is not available: ${why}. ${advice}`);
    this.backend = backend;
  }
}

/** A model needs an op that the selected backend has no kernel for. */
export class MissingKernelError extends UserError {
  readonly op: string;
  readonly backend: string;
  constructor(op: string, backend: string) {
    super(
      `the model needs the op '${op}', which the '${backend}' backend does not implement. ` +
        `Choose another backend with --backend (or "backend" in the config), e.g. --backend cpu, or change the model so it does not use '${op}'.`,
    );
    this.op = op;
    this.backend = backend;
  }
}

const KERNEL_NOT_REGISTERED = /Kernel '([^']+)' not registered for backend '([^']+)'/;

/** Turns tfjs's "Kernel 'X' not registered for backend 'Y'" into a MissingKernelError; other errors pass through. */
export function asMissingKernelError(error: unknown): unknown {
  const match = error instanceof Error ? KERNEL_NOT_REGISTERED.exec(error.message) : null;
  return match ? new MissingKernelError(match[1]!, match[2]!) : error;
}

/** Runs training or prediction so that a missing kernel surfaces as a MissingKernelError. */
export async function withKernelCheck<T>(run: () => Promise<T> | T): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw asMissingKernelError(error);
  }
}

/**
 * tfjs's cpu backend prints a "Hi, looks like you are running TensorFlow.js in Node.js" banner on
 * its first tensor, whichever code creates it; galactic says itself which backend runs and why.
 * Its factory is wrapped once, before anything can have created the backend.
 */
function quietCpuBackend(): void {
  const factory = tf.findBackendFactory('cpu');
  if (!factory || tf.engine().registry.cpu) return;
  tf.removeBackend('cpu');
  tf.registerBackend(
    'cpu',
    () => {
      const backend = factory() as tf.KernelBackend & { firstUse?: boolean };
      backend.firstUse = false;
      return backend;
    },
    1,
  );
}
quietCpuBackend();

type Attempt = { ok: true } | { ok: false; why: string };

/** Loads tfjs-node (registering its backend) without activating it. */
async function loadNode(): Promise<Attempt> {
  // A variable specifier: the package is optional, so the type checker must not require it.
  const specifier: string = NODE_PACKAGE;
  // libtensorflow's C++ info and warning lines go to stderr, past --quiet and --json; errors still show.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  try {
    await import(specifier);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      return { ok: false, why: `${NODE_PACKAGE} is not installed (${NODE_OFFLINE_NOTE})` };
    }
    return { ok: false, why: `${NODE_PACKAGE} is installed but failed to load: ${(error as Error).message}` };
  }
  // tfjs-node registers into the @tensorflow/tfjs-core it resolves; if that is another copy,
  // our engine never sees it and two engines would exist.
  if (tf.findBackendFactory(TFJS_NAME.node) == null) {
    return {
      ok: false,
      why: `${NODE_PACKAGE} loaded but registered into a different @tensorflow/tfjs-core copy; pin @tensorflow/tfjs to the version ${NODE_PACKAGE} depends on`,
    };
  }
  return { ok: true };
}

async function tryNode(): Promise<Attempt> {
  const loaded = await loadNode();
  if (!loaded.ok) return loaded;
  const attempt = await activate('node');
  if (attempt.ok) {
    registerNativeReluGrad();
    registerNativeMaxPool();
    registerNativeFusedConv();
  }
  return attempt;
}

let wasmPathsSet = false;
/** XNNPACK's pool size once the wasm backend initialised in this process. */
let wasmThreads: number | null = null;

async function tryWasm(options: BackendOptions, output?: Output): Promise<Attempt> {
  let wasm: typeof import('@tensorflow/tfjs-backend-wasm');
  try {
    wasm = await import(WASM_PACKAGE);
    if (!wasmPathsSet) {
      // In Node the .wasm binaries are read from the package folder.
      const require = createRequire(import.meta.url);
      const dir = path.dirname(require.resolve(`${WASM_PACKAGE}/dist/tfjs-backend-wasm-simd.wasm`));
      wasm.setWasmPaths(dir + path.sep);
      wasmPathsSet = true;
    }
  } catch (error) {
    return { ok: false, why: `${WASM_PACKAGE} could not be loaded: ${(error as Error).message}` };
  }
  // Once initialised the backend keeps its pool: later selections report what it has.
  const threads = wasmThreads ?? resolveWasmThreads(options.threads ?? 'auto', options.cpus);
  let attempt = await activateWasm(wasm, threads);
  if (!attempt.ok && threads > 1) {
    // The threaded build needs worker_threads and shared memory; the single-threaded one does not.
    output?.info(`backend wasm: the ${threads}-thread build did not start (${attempt.why}); using one thread`);
    attempt = await activateWasm(wasm, 1);
  }
  // After initialisation, so the backend's own kernels (which ours call) have run their setup.
  if (attempt.ok) {
    registerWasmTrainingKernels();
    // A pool that could not be created reports -1; XNNPACK then runs on the calling thread.
    wasmThreads = Math.max(1, wasm.getThreadsCount());
  }
  return attempt;
}

/**
 * A threaded start that neither resolves nor fails in this long (a pthread worker that never loads) falls back to one
 * thread.
 */
const THREADED_START_TIMEOUT_MS = 60_000;

async function activateWasm(wasm: typeof import('@tensorflow/tfjs-backend-wasm'), threads: number): Promise<Attempt> {
  if (threads === 1) return withWasmThreads(wasm, 1, () => activate('wasm'));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<Attempt>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, why: `its worker threads did not load within ${THREADED_START_TIMEOUT_MS / 1000} s` }),
      THREADED_START_TIMEOUT_MS,
    );
  });
  try {
    return await withWasmThreads(wasm, threads, () => Promise.race([activate('wasm'), timedOut]));
  } finally {
    clearTimeout(timer);
  }
}

async function activate(name: BackendName): Promise<Attempt> {
  try {
    const ok = await tf.setBackend(TFJS_NAME[name]);
    if (!ok) return { ok: false, why: `tfjs could not initialise the '${TFJS_NAME[name]}' backend` };
    await tf.ready();
    return { ok: true };
  } catch (error) {
    return { ok: false, why: `initialising it failed: ${(error as Error).message}` };
  }
}

const ATTEMPTS: Record<BackendName, (options: BackendOptions, output?: Output) => Promise<Attempt>> = {
  node: tryNode,
  wasm: tryWasm,
  cpu: () => activate('cpu'),
};

const AUTO_ORDER: BackendName[] = ['node', 'wasm', 'cpu'];

/** The backends whose packages load here, in `auto`'s order; the active backend stays as it is. */
export async function availableBackends(): Promise<BackendName[]> {
  const available: BackendName[] = [];
  const active = tf.engine().backendName as string | undefined;
  if ((await loadNode()).ok) available.push('node');
  // tfjs-node's first import makes itself the active backend
  if (active && tf.engine().backendName !== active) await tf.setBackend(active);
  try {
    await import(WASM_PACKAGE);
    available.push('wasm');
  } catch {
    // not installed: selectBackend('wasm') explains why
  }
  available.push('cpu');
  return available;
}

const CHOSEN_BECAUSE: Record<BackendName, string> = {
  node: 'native TensorFlow (libtensorflow), the fastest backend',
  wasm: "WebAssembly (XNNPACK) with galactic's training kernels",
  cpu: 'plain JavaScript; slow (about 0.04 images/s for the notebook CNN), the last resort',
};

/**
 * Picks and activates a backend. `auto` tries tfjs-node, then wasm (with the project's kernels),
 * then cpu; a forced backend that cannot load is a BackendUnavailableError.
 */
export async function selectBackend(
  preference: 'auto' | BackendName,
  output?: Output,
  options: BackendOptions = {},
): Promise<BackendChoice> {
  const order = preference === 'auto' ? AUTO_ORDER : [preference];
  const skipped: BackendChoice['skipped'] = [];
  for (const name of order) {
    const attempt = await ATTEMPTS[name](options, output);
    if (attempt.ok) {
      registerReluGradient();
      const threads = name === 'wasm' ? (wasmThreads ?? 1) : undefined;
      const because =
        threads === undefined ? CHOSEN_BECAUSE[name] : `${CHOSEN_BECAUSE[name]}, ${describeThreads(threads)}`;
      const reason =
        preference === 'auto' ? `auto: ${because}` : `requested (--backend or "backend" in the config): ${because}`;
      for (const s of skipped) output?.info(`backend ${s.name} skipped: ${s.why}`);
      output?.info(`backend: ${name} (${reason})`);
      return threads === undefined ? { name, reason, skipped } : { name, reason, skipped, threads };
    }
    if (preference !== 'auto') throw new BackendUnavailableError(name, attempt.why);
    skipped.push({ name, why: attempt.why });
  }
  throw new BackendUnavailableError('cpu', skipped.map((s) => `${s.name}: ${s.why}`).join('; '));
}
