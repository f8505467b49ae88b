// The extension end to end in a real VS Code (code-server + Debian chromium + playwright-core):
// test/e2e/setup.sh installs what it needs (Debian packages, code-server), test/e2e/run-e2e.mjs
// drives it. It runs where CI=true (as .ci/run does) or BERT_PRUNER_E2E=1; on a developer machine
// it is opt-in because the set-up installs system packages.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bp, ROOT } from './helpers/cli';

const enabled = process.env.CI === 'true' || process.env.BERT_PRUNER_E2E === '1';

describe.skipIf(!enabled)('extension end to end in code-server', () => {
  it('runs the pipeline from the palette, shows the tree, the panels and schema errors', async () => {
    const setup = await bp([path.join(ROOT, 'test/e2e/setup.sh')], ROOT, 'bash');
    expect(setup.code, `setup failed:\n${setup.stdout}\n${setup.stderr}`).toBe(0);
    const run = await bp([path.join(ROOT, 'test/e2e/run-e2e.mjs')], ROOT, 'node');
    const out = `${run.stdout}\n${run.stderr}`;
    expect(out, out).toMatch(/\d+ passed, 0 failed/);
    expect(run.code, out).toBe(0);
  }, 3_000_000);
});
