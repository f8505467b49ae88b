// --resume continues a stage with the settings its interrupted attempt recorded in run.json, so a
// stage started with a --config override (from the CLI or the editor's settings-file picker) and
// resumed from the tree's Resume action (which passes no --config) keeps its epochs, lr, ...
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bp, demoRun, TINY } from './robust-helpers';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-resume-settings-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('resume', () => {
  it('keeps the settings section the stage recorded, unless --config is given again', async () => {
    const run = path.join(root, 'run');
    await demoRun(root, run, 120, 30);
    expect((await bp(['pretrain', '--run', run, ...TINY])).code).toBe(0);
    const conf = path.join(root, 'three.bert-pruner.json');
    fs.writeFileSync(conf, JSON.stringify({ finetune: { epochs: 3, val_fraction: 0.2 } }));
    // The first attempt: 3 epochs from the settings file.
    const first = await bp(['finetune', '--run', run, ...TINY, '--config', conf]);
    expect(first.code, first.stderr).toBe(0);
    const record = () => JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')).stages.finetune;
    expect(record().settings.epochs).toBe(3);
    const resumed = await bp(['finetune', '--run', run, '--resume', ...TINY]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(record().settings.epochs).toBe(3); // not the preset's
    const again = await bp(['finetune', '--run', run, '--resume', ...TINY, '--config', conf.replace('three', 'one')]);
    expect(again.code).toBe(2); // a --config that does not exist is a user error: the override is read
  });
});
