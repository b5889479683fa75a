#!/usr/bin/env node
// `npm run native`: builds @tensorflow/tfjs-node's addon from source against the libtensorflow
// inside TensorFlow's CPU wheel on PyPI, for machines where tfjs-node's own install script cannot
// download its prebuilt files (they live on storage.googleapis.com, outside the npm registry).
// Idempotent; the wheel and the extracted libraries are cached outside node_modules, and nothing
// is installed into any Python (the wheel is only a zip we read). Plain Node, no dependencies.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TFJS_NODE = '@tensorflow/tfjs-node';
const TFJS_NODE_VERSION = '4.22.0';
const TF_WHEEL = 'tensorflow-cpu';
const TF_VERSION = '2.21.0';
/** What tfjs-node's binding.gyp links (-ltensorflow -ltensorflow_framework) and the soname its 4.22 build expected. */
const LIB_ALIASES = [
  ['libtensorflow.so', 'libtensorflow_cc.so.2'],
  ['libtensorflow.so.2', 'libtensorflow_cc.so.2'],
  ['libtensorflow.so.2.9.1', 'libtensorflow_cc.so.2'],
  ['libtensorflow_framework.so', 'libtensorflow_framework.so.2'],
];
/**
 * One fixed wheel whatever the local Python: the libraries inside are the same for every Python
 * version, and a fixed name keeps the cache to one file. manylinux_2_27 needs glibc 2.27 or later.
 */
const WHEEL_TAGS = [
  '--platform',
  'manylinux_2_27_x86_64',
  '--python-version',
  '3.11',
  '--implementation',
  'cp',
  '--abi',
  'cp311',
];
const LIBS = ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'];
/** The C API headers the binding includes, as folders under the wheel's tensorflow/include/. */
const HEADER_DIRS = ['tensorflow/c/', 'tensorflow/core/platform/', 'tsl/platform/', 'xla/tsl/c/'];
/** Marks tfjs-node's binding source as patched for list attributes (see patchBinding). */
const PATCH_MARK = 'galactic: list-of-string and list-of-type attributes';
/**
 * The binding's `AssignOpAttr` sets one string or one type per attribute; TensorFlow's fused ops
 * (`_FusedConv2D`: `fused_ops` list(string), `TArgs` list(type)) need lists. An array given for such an
 * attribute now sets the list; single values are handled exactly as before.
 */
const BINDING_PATCHES = [
  {
    before: `    case TF_ATTR_STRING: {
      // NOTE: String attribute values do not have to be utf8 encoded strings
      // (could be arbitrary byte sequences).
      std::string str_value;`,
    after: `    case TF_ATTR_STRING: {
      // ${PATCH_MARK}
      if (IsArray(env, nstatus, &js_value)) {
        uint32_t length;
        nstatus = napi_get_array_length(env, js_value, &length);
        ENSURE_NAPI_OK(env, nstatus);
        std::vector<std::string> strings(length);
        std::vector<const void *> values(length);
        std::vector<size_t> lengths(length);
        for (uint32_t i = 0; i < length; ++i) {
          napi_value element;
          nstatus = napi_get_element(env, js_value, i, &element);
          ENSURE_NAPI_OK(env, nstatus);
          nstatus = GetStringParam(env, element, strings[i]);
          ENSURE_NAPI_OK(env, nstatus);
          values[i] = strings[i].data();
          lengths[i] = strings[i].size();
        }
        TFE_OpSetAttrStringList(tfe_op, attr_name, values.data(), lengths.data(),
                                static_cast<int>(length));
        break;
      }
      // NOTE: String attribute values do not have to be utf8 encoded strings
      // (could be arbitrary byte sequences).
      std::string str_value;`,
  },
  {
    before: `    case TF_ATTR_TYPE: {
      TF_DataType tf_data_type;`,
    after: `    case TF_ATTR_TYPE: {
      // ${PATCH_MARK}
      if (IsArray(env, nstatus, &js_value)) {
        uint32_t length;
        nstatus = napi_get_array_length(env, js_value, &length);
        ENSURE_NAPI_OK(env, nstatus);
        std::vector<TF_DataType> types(length);
        for (uint32_t i = 0; i < length; ++i) {
          napi_value element;
          nstatus = napi_get_element(env, js_value, i, &element);
          ENSURE_NAPI_OK(env, nstatus);
          nstatus = napi_get_value_int32(env, element, reinterpret_cast<int32_t *>(&types[i]));
          ENSURE_NAPI_OK(env, nstatus);
        }
        TFE_OpSetAttrTypeList(tfe_op, attr_name, types.data(), static_cast<int>(length));
        break;
      }
      TF_DataType tf_data_type;`,
  },
];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const packageDir = path.join(root, 'node_modules', ...TFJS_NODE.split('/'));
const cacheDir = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'galactic');
const wheelDir = path.join(cacheDir, 'wheels');
const libDir = path.join(cacheDir, `libtensorflow-${TF_VERSION}`);
// Silences TensorFlow's C++ info lines in our probes; the loader (src/model/backend.ts) does the same.
const quietEnv = { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' };

class Stop extends Error {}
const say = (line) => process.stderr.write(`native: ${line}\n`);
const stop = (message) => {
  throw new Stop(message);
};

function run(command, args, options = {}) {
  return spawnSync(command, args, { encoding: 'utf8', ...options });
}

/**
 * Loads tfjs-node in a child process and runs one op: the libtensorflow version, or why it does not load. Then
 * `_FusedConv2D` (a 1x1 convolution plus a bias, which needs list attributes): `listAttrs` says whether the addon
 * was built with galactic's binding patch.
 */
function probeTfjsNode() {
  const script =
    `try {` +
    ` const tf = require(${JSON.stringify(TFJS_NODE)});` +
    ` const y = tf.add(tf.tensor1d([1, 2]), 1).dataSync();` +
    ` if (y[0] !== 2 || y[1] !== 3) throw new Error('1 + [1, 2] gave ' + Array.from(y));` +
    ` const b = tf.backend(), n = b.binding;` +
    ` let list = false;` +
    ` try {` +
    `  const attrs = [{ name: 'T', type: n.TF_ATTR_TYPE, value: n.TF_FLOAT },` +
    `   { name: 'TArgs', type: n.TF_ATTR_TYPE, value: [n.TF_FLOAT] },` +
    `   { name: 'num_args', type: n.TF_ATTR_INT, value: 1 },` +
    `   { name: 'fused_ops', type: n.TF_ATTR_STRING, value: ['BiasAdd'] },` +
    `   { name: 'strides', type: n.TF_ATTR_INT, value: [1, 1, 1, 1] },` +
    `   { name: 'padding', type: n.TF_ATTR_STRING, value: 'VALID' }];` +
    `  const z = b.executeSingleOutput('_FusedConv2D', attrs,` +
    `   [tf.tensor4d([2], [1, 1, 1, 1]), tf.tensor4d([3], [1, 1, 1, 1]), tf.tensor1d([1])]).dataSync();` +
    `  list = z.length === 1 && z[0] === 7;` +
    ` } catch {}` +
    ` process.stdout.write(String(n.TF_Version) + ' ' + list);` +
    `} catch (e) { process.stderr.write('\\nPROBE: ' + String(e && e.message).split('\\n')[0]); process.exit(1); }`;
  const result = run(process.execPath, ['-e', script], { cwd: root, env: quietEnv });
  if (result.status === 0) {
    const [tfVersion, list] = result.stdout.trim().split(' ');
    return { ok: true, tfVersion, listAttrs: list === 'true' };
  }
  const why = `${result.stderr}`.split('\n').find((l) => l.startsWith('PROBE: '));
  return { ok: false, why: why ? why.slice('PROBE: '.length) : `exit code ${result.status}` };
}

function checkPrerequisites() {
  const missing = [];
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    stop(
      `this script builds for linux x64 only (this is ${process.platform} ${process.arch}); TensorFlow's wheel for other platforms ships other library names. Use the wasm backend (the default fallback) instead.`,
    );
  }
  const pip = run('python3', ['-m', 'pip', '--version']);
  if (pip.error || pip.status !== 0) {
    missing.push(
      "python3 with pip (to download TensorFlow's CPU wheel; nothing is installed into Python): e.g. 'apt-get install python3 python3-pip'",
    );
  }
  const cxx = process.env.CXX || 'g++';
  if (run(cxx, ['--version']).status !== 0)
    missing.push(`a C++ compiler ('${cxx}', or set CXX): e.g. 'apt-get install g++'`);
  if (run('make', ['--version']).status !== 0) missing.push("make: e.g. 'apt-get install make'");
  const prefix = nodePrefix();
  if (!fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) {
    missing.push(
      `Node's headers under ${path.join(prefix, 'include', 'node')} (they ship with Node's official builds and distro 'nodejs' packages; node-gyp must not download them)`,
    );
  }
  if (nodeGyp() === null) missing.push("node-gyp (bundled with npm; run this through 'npm run native')");
  if (missing.length > 0) stop(`missing prerequisites:\n  - ${missing.join('\n  - ')}`);
}

/**
 * Node's install prefix (/usr for /usr/bin/node): node-gyp takes the headers from there instead of downloading them.
 */
function nodePrefix() {
  return path.resolve(path.dirname(process.execPath), '..');
}

/** npm's own node-gyp: npm sets npm_config_node_gyp for scripts; otherwise the copy beside Node. */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(nodePrefix(), 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((c) => c && fs.existsSync(c)) ?? null;
}

function cachedWheel() {
  if (!fs.existsSync(wheelDir)) return null;
  const name = fs
    .readdirSync(wheelDir)
    .find((f) => f.startsWith(`${TF_WHEEL.replace('-', '_')}-${TF_VERSION}-`) && f.endsWith('.whl'));
  return name ? path.join(wheelDir, name) : null;
}

function downloadWheel() {
  const cached = cachedWheel();
  if (cached) {
    say(`wheel cached: ${cached}`);
    return cached;
  }
  fs.mkdirSync(wheelDir, { recursive: true });
  say(
    `downloading ${TF_WHEEL}==${TF_VERSION} from PyPI into ${wheelDir} (about 270 MB; pip download only, nothing is installed)`,
  );
  const result = run(
    'python3',
    [
      '-m',
      'pip',
      'download',
      '--no-deps',
      '--only-binary=:all:',
      ...WHEEL_TAGS,
      '--dest',
      wheelDir,
      `${TF_WHEEL}==${TF_VERSION}`,
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const wheel = cachedWheel();
  if (result.status !== 0 || !wheel)
    stop(
      `'pip download ${TF_WHEEL}==${TF_VERSION}' failed (exit code ${result.status}); check that PyPI (or your pip index) is reachable`,
    );
  return wheel;
}

/** Extracts the two libraries and the C headers into the cache (atomically: a temp folder renamed into place). */
function extractLibraries(wheel) {
  if (
    LIBS.every((lib) => fs.existsSync(path.join(libDir, 'lib', lib))) &&
    fs.existsSync(path.join(libDir, 'include', 'tensorflow', 'c', 'c_api.h'))
  ) {
    say(`libtensorflow ${TF_VERSION} cached: ${libDir}`);
    return;
  }
  const temp = `${libDir}.tmp-${process.pid}`;
  fs.rmSync(temp, { recursive: true, force: true });
  say(`extracting libtensorflow and its C headers from ${path.basename(wheel)}`);
  const python = `
import os, shutil, sys, zipfile
wheel, out, libs, heads = sys.argv[1], sys.argv[2], sys.argv[3].split(','), sys.argv[4].split(',')
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.endswith('/'):
            continue
        if name.startswith('tensorflow/') and name[len('tensorflow/'):] in libs:
            dest = os.path.join(out, 'lib', name[len('tensorflow/'):])
        elif name.startswith('tensorflow/include/') and name[len('tensorflow/include/'):].startswith(tuple(heads)):
            dest = os.path.join(out, 'include', name[len('tensorflow/include/'):])
        else:
            continue
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(name) as src, open(dest, 'wb') as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
`;
  const result = run('python3', ['-c', python, wheel, temp, LIBS.join(','), HEADER_DIRS.join(',')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const missing = [
    ...LIBS.map((l) => path.join(temp, 'lib', l)),
    path.join(temp, 'include', 'tensorflow', 'c', 'c_api.h'),
  ].filter((f) => !fs.existsSync(f));
  if (result.status !== 0 || missing.length > 0) {
    fs.rmSync(temp, { recursive: true, force: true });
    stop(
      `extracting ${path.basename(wheel)} failed${missing.length ? `: it has no ${missing.map((m) => path.basename(m)).join(', ')}` : ''}; delete it from ${wheelDir} and run again`,
    );
  }
  fs.rmSync(libDir, { recursive: true, force: true });
  fs.renameSync(temp, libDir);
}

function fileHash(file) {
  return fs.existsSync(file) ? createHash('sha256').update(fs.readFileSync(file)).digest('hex') : null;
}

/**
 * tfjs-node without its install script (which would try the download), leaving package.json and the lockfile as they
 * are.
 */
function installPackage() {
  const manifest = path.join(packageDir, 'package.json');
  if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, 'utf8')).version === TFJS_NODE_VERSION) {
    say(`${TFJS_NODE}@${TFJS_NODE_VERSION} present in node_modules`);
    return;
  }
  const guarded = ['package.json', 'package-lock.json'].map((f) => path.join(root, f));
  const before = guarded.map((f) => [f, fileHash(f), fs.existsSync(f) ? fs.readFileSync(f) : null]);
  say(`npm install --ignore-scripts --no-save ${TFJS_NODE}@${TFJS_NODE_VERSION}`);
  const npm = process.env.npm_execpath;
  const [command, args] = npm ? [process.execPath, [npm]] : ['npm', []];
  const result = run(
    command,
    [
      ...args,
      'install',
      '--ignore-scripts',
      '--no-save',
      '--no-audit',
      '--no-fund',
      `${TFJS_NODE}@${TFJS_NODE_VERSION}`,
    ],
    { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  for (const [file, hash, bytes] of before) {
    if (bytes && fileHash(file) !== hash) fs.writeFileSync(file, bytes); // --no-save must leave them alone; make sure
  }
  if (result.status !== 0 || !fs.existsSync(manifest))
    stop(
      `'npm install ${TFJS_NODE}@${TFJS_NODE_VERSION}' failed (exit code ${result.status}); check that the npm registry is reachable`,
    );
}

/** Hard links (no copy of the 800 MB library; survives clearing the cache), a copy across file systems. */
function linkOrCopy(from, to) {
  fs.rmSync(to, { force: true });
  try {
    fs.linkSync(from, to);
  } catch {
    fs.copyFileSync(from, to);
  }
}

function placeLibraries() {
  const deps = path.join(packageDir, 'deps');
  fs.rmSync(deps, { recursive: true, force: true });
  fs.mkdirSync(path.join(deps, 'lib'), { recursive: true });
  for (const lib of LIBS) linkOrCopy(path.join(libDir, 'lib', lib), path.join(deps, 'lib', lib));
  for (const [alias, target] of LIB_ALIASES) fs.symlinkSync(target, path.join(deps, 'lib', alias));
  fs.cpSync(path.join(libDir, 'include'), path.join(deps, 'include'), { recursive: true });
}

/**
 * Applies BINDING_PATCHES to the package's binding source (idempotent: a patched file carries PATCH_MARK). Whether
 * the source is patched; a source that differs from the one the patch was written for is built as it is.
 */
function patchBinding() {
  const source = path.join(packageDir, 'binding', 'tfjs_backend.cc');
  let text = fs.readFileSync(source, 'utf8');
  if (text.includes(PATCH_MARK)) return true;
  for (const { before, after } of BINDING_PATCHES) {
    if (text.split(before).length !== 2) {
      say(
        `the binding source ${source} is not the one the list-attribute patch was written for; building it unpatched (galactic's fused convolution stays off, everything else works)`,
      );
      return false;
    }
    text = text.replace(before, after);
  }
  fs.writeFileSync(source, text);
  say('patched the binding to set list-of-string and list-of-type attributes (for TensorFlow fused ops)');
  return true;
}

function buildAddon() {
  const preGyp = createRequire(path.join(packageDir, 'package.json')).resolve('@mapbox/node-pre-gyp/bin/node-pre-gyp');
  say('building the tfjs-node addon from source (node-pre-gyp install --build-from-source; about 30 s)');
  const env = { ...process.env, npm_config_nodedir: nodePrefix(), npm_config_node_gyp: nodeGyp() };
  const result = run(process.execPath, [preGyp, 'install', '--build-from-source'], {
    cwd: packageDir,
    env,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (result.status !== 0) stop(`building the addon failed (exit code ${result.status}); the compiler output is above`);
}

function main() {
  if (fs.existsSync(path.join(packageDir, 'package.json'))) {
    const probe = probeTfjsNode();
    if (probe.ok && probe.listAttrs) {
      say(`${TFJS_NODE} already loads (libtensorflow ${probe.tfVersion}, list attributes); nothing to do`);
      return;
    }
    // tfjs-node's own install (its downloaded libtensorflow, not the wheel's) is left as it is unless asked
    const builtHere = fs.existsSync(path.join(packageDir, 'deps', 'lib', LIBS[0]));
    if (probe.ok && !builtHere && !process.argv.includes('--rebuild')) {
      say(
        `${TFJS_NODE} already loads (libtensorflow ${probe.tfVersion}, from its own install); nothing to do. Its prebuilt addon cannot run TensorFlow's fused ops, so convolutions run unfused; 'npm run native -- --rebuild' builds one from TensorFlow's wheel that can`,
      );
      return;
    }
    say(
      probe.ok
        ? `${TFJS_NODE} loads (libtensorflow ${probe.tfVersion}) but its addon cannot run fused ops (built without the list-attribute patch); rebuilding it`
        : `${TFJS_NODE} is installed but does not load (${probe.why}); building it`,
    );
  }
  checkPrerequisites();
  const wheel = downloadWheel();
  extractLibraries(wheel);
  installPackage();
  placeLibraries();
  const patched = patchBinding();
  buildAddon();
  const probe = probeTfjsNode();
  if (!probe.ok) stop(`the addon was built but ${TFJS_NODE} still does not load: ${probe.why}`);
  if (patched && !probe.listAttrs)
    say('warning: the patched addon loads but does not run _FusedConv2D; fused convolutions stay off');
  say(
    `done: ${TFJS_NODE} loads libtensorflow ${probe.tfVersion}${probe.listAttrs ? ' with fused ops' : ''}; backend "auto" now picks node (or use --backend node)`,
  );
}

try {
  main();
} catch (error) {
  if (!(error instanceof Stop)) throw error;
  say(error.message);
  process.exitCode = 1;
}
