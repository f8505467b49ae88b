// bin/bert-pruner.js before the build: `npm ci` alone leaves dist/ empty, and `npx bert-pruner`
// must then say so in one line (exit 2) instead of failing with a "Cannot find module" stack trace.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-bin-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('bin/bert-pruner.js', () => {
  it('prints one line and exits 2 when dist/cli.js is missing', () => {
    // A copy of the bin in a package folder without dist/.
    fs.mkdirSync(path.join(tmp, 'bin'));
    fs.copyFileSync(path.join(__dirname, '..', 'bin', 'bert-pruner.js'), path.join(tmp, 'bin', 'bert-pruner.js'));
    const r = spawnSync(process.execPath, [path.join(tmp, 'bin', 'bert-pruner.js'), 'pipeline'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('bert-pruner: not built yet: run `npm run build` first (dist/cli.js is missing)\n');
  });
});
