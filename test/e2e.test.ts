// The extension end to end in a real VS Code (code-server + Debian chromium + playwright-core):
// test/e2e/setup.sh installs what it needs (Debian packages, code-server), test/e2e/run-e2e.mjs
// drives it. It runs where CI=true (as .ci/run does) or BERT_PRUNER_E2E=1; on a developer machine
// it is opt-in because the set-up installs system packages.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..');
const enabled = process.env.CI === 'true' || process.env.BERT_PRUNER_E2E === '1';

describe.skipIf(!enabled)('extension end to end in code-server', () => {
  it('runs the pipeline from the palette, shows the tree, the panels and schema errors', () => {
    const setup = spawnSync('bash', [path.join(ROOT, 'test/e2e/setup.sh')], { cwd: ROOT, encoding: 'utf8', timeout: 1_800_000 });
    expect(setup.status, `setup failed:\n${setup.stdout}\n${setup.stderr}`).toBe(0);
    const run = spawnSync(process.execPath, [path.join(ROOT, 'test/e2e/run-e2e.mjs')], { cwd: ROOT, encoding: 'utf8', timeout: 1_200_000 });
    const out = `${run.stdout}\n${run.stderr}`;
    expect(out, out).toMatch(/\d+ passed, 0 failed/);
    expect(run.status, out).toBe(0);
  }, 3_000_000);
});
