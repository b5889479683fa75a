import assert from 'node:assert/strict';
import test from 'node:test';
import { ESLint } from 'eslint';

// The layering in docs/architecture.md is enforced by eslint.config.js; these are the rules it
// must keep catching, fed as source text at the path they would have.
const eslint = new ESLint();

async function messagesFor(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result.messages
    .filter((m) => m.ruleId === 'no-restricted-imports' || m.ruleId === 'no-restricted-syntax')
    .map((m) => m.message);
}

test('preprocessing folders never import tfjs or model code', async () => {
  assert.match(
    (await messagesFor('src/cache/x.ts', "import * as tf from '@tensorflow/tfjs';\nexport const t = tf;\n"))[0],
    /runs without tfjs/,
  );
  assert.match(
    (
      await messagesFor(
        'src/prepare/x.ts',
        "import { buildModel } from '../model/architecture.ts';\nexport const b = buildModel;\n",
      )
    )[0],
    /lower layer never imports a higher one/,
  );
  assert.match(
    (await messagesFor('src/images/synth/x.ts', "export const m = () => import('../../train/trainer.ts');\n"))[0],
    /lower layer never imports a higher one/,
  );
});

test('nothing imports commands/ or the cli, and lower layers never import higher ones', async () => {
  assert.equal(
    (
      await messagesFor(
        'src/tune/x.ts',
        "import { commandContext } from '../commands/context.ts';\nexport const c = commandContext;\n",
      )
    ).length,
    1,
  );
  assert.equal((await messagesFor('src/run/x.ts', "import '../cli.ts';\n")).length, 1);
  assert.equal(
    (
      await messagesFor(
        'src/core/x.ts',
        "import { planMemory } from '../memory/plan.ts';\nexport const p = planMemory;\n",
      )
    ).length,
    1,
  );
  // the same imports in the right direction pass
  assert.deepEqual(
    await messagesFor(
      'src/commands/x.ts',
      "import { planMemory } from '../memory/plan.ts';\nexport const p = planMemory;\n",
    ),
    [],
  );
  assert.deepEqual(
    await messagesFor(
      'src/train/x.ts',
      "import * as tf from '@tensorflow/tfjs';\nimport { UserError } from '../core/errors.ts';\nexport const t = [tf, UserError];\n",
    ),
    [],
  );
});

test('msgpack lives in cache/ alone', async () => {
  assert.match(
    (await messagesFor('src/data/x.ts', "import { unpack } from 'msgpackr';\nexport const u = unpack;\n"))[0],
    /src\/cache\/ alone/,
  );
  assert.deepEqual(
    await messagesFor('src/cache/x.ts', "import { unpack } from 'msgpackr';\nexport const u = unpack;\n"),
    [],
  );
});
