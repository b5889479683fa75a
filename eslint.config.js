import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

/**
 * The layering of docs/architecture.md, lowest first: a module may import its own folder and the
 * folders of lower layers, never a higher one. Folders in one layer do not import each other
 * except where noted in the architecture doc (cache reads ingest's id and CSV digests).
 */
export const LAYERS = [
  ['core'],
  ['config'],
  ['architecture'],
  ['memory'],
  ['ingest', 'images', 'cache'],
  ['prepare'],
  ['data'],
  ['model'],
  ['train'],
  ['tune'],
  ['predict'],
  ['report'],
  ['run', 'bench', 'distributed'],
  ['commands', 'cli', 'index'],
];
/** Layers that never load tfjs: preprocessing runs without a training engine. */
const WITHOUT_TFJS = ['core', 'config', 'architecture', 'memory', 'ingest', 'images', 'cache', 'prepare'];

const escape = (name) => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A relative specifier that climbs into one of `folders` (as a folder, or as src/<name>.ts). */
const climbsInto = (folders) => `^(\\.\\./)+(${folders.map(escape).join('|')})(/|\\.ts$)`;

function layerRules(folder, layerIndex) {
  const higher = LAYERS.slice(layerIndex + 1).flat();
  const patterns = [];
  if (higher.length > 0) {
    patterns.push({
      regex: climbsInto(higher),
      message: `src/${folder} is below ${higher.join(', ')} in docs/architecture.md's layering: a lower layer never imports a higher one.`,
    });
  }
  if (WITHOUT_TFJS.includes(folder)) {
    patterns.push({
      group: ['@tensorflow/*'],
      message: `src/${folder} runs without tfjs (preprocessing never loads a training engine).`,
    });
  }
  if (folder !== 'cache') {
    patterns.push({ group: ['msgpackr'], message: 'msgpack encoding and decoding live in src/cache/ alone.' });
  }
  const files = folder === 'cli' || folder === 'index' ? [`src/${folder}.ts`] : [`src/${folder}/**/*.ts`];
  const dynamic = patterns
    .filter((p) => p.regex)
    .map((p) => ({
      selector: `ImportExpression[source.value=/${p.regex.replace(/\//g, '\\/')}/]`,
      message: p.message,
    }));
  return {
    files,
    rules: {
      'no-restricted-imports': ['error', { patterns }],
      ...(dynamic.length > 0 ? { 'no-restricted-syntax': ['error', ...dynamic] } : {}),
    },
  };
}

export default tseslint.config(
  {
    ignores: [
      '.*/**',
      '.*',
      'dist/**',
      'node_modules/**',
      'data/**',
      '.galactic/**',
      'runs/**',
      'bench/results/**',
      'coverage/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        URL: 'readonly',
        structuredClone: 'readonly',
        performance: 'readonly',
        setImmediate: 'readonly',
        queueMicrotask: 'readonly',
        AbortController: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        WebAssembly: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'warn',
    },
  },
  // prettier formats code to 120 columns (npm run lint checks it); this holds comments to the same width.
  // Strings, template literals and regular expressions are left whole: a message reads better unbroken.
  prettier,
  {
    rules: {
      'max-len': [
        'error',
        {
          code: 120,
          ignoreStrings: true,
          ignoreTemplateLiterals: true,
          ignoreRegExpLiterals: true,
          ignoreUrls: true,
          ignoreTrailingComments: true,
        },
      ],
    },
  },
  ...LAYERS.flatMap((layer, index) => layer.map((folder) => layerRules(folder, index))),
);
