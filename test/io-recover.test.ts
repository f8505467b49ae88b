// Crash recovery (io/atomic.ts recoverDir / recoverRun): only on folders bearing our marker, only
// from commands that write into the run; a read never renames anything.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { recoverDir, recoverRun } from '../src/engine/io/atomic';
import { readConfig } from '../src/engine/io/checkpoint';
import { markDir } from '../src/engine/io/ownership';
import { userError } from './helpers/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'io-recover-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('crash recovery', () => {
  it('puts back a marked checkpoint a crash left aside, and leaves a folder that is not ours', () => {
    const run = path.join(tmp, 'run');
    fs.mkdirSync(path.join(run, 'finetune.old-0badc0de'), { recursive: true });
    markDir(path.join(run, 'finetune.old-0badc0de'), 'checkpoint');
    fs.mkdirSync(path.join(run, 'photos.old-deadbeef'));
    fs.writeFileSync(path.join(run, 'photos.old-deadbeef', 'cat.jpg'), 'x');
    const warned: string[] = [];
    recoverRun(run, (m) => warned.push(m));
    expect(fs.existsSync(path.join(run, 'finetune', '.bert-pruner'))).toBe(true);
    expect(fs.existsSync(path.join(run, 'photos'))).toBe(false);
    expect(fs.existsSync(path.join(run, 'photos.old-deadbeef', 'cat.jpg'))).toBe(true);
    expect(warned).toEqual([`${path.join(run, 'finetune')}: put back the previous version a crash had left aside`]);
    expect(recoverDir(path.join(run, 'photos'))).toBe(false);
  });

  it('a read of a missing checkpoint moves nothing', () => {
    const dir = path.join(tmp, 'read');
    fs.mkdirSync(path.join(dir, 'ck.old-0badc0de'), { recursive: true });
    markDir(path.join(dir, 'ck.old-0badc0de'), 'checkpoint');
    expect(userError(() => readConfig(path.join(dir, 'ck')))).toMatch(/ck: not a checkpoint directory/);
    expect(fs.readdirSync(dir)).toEqual(['ck.old-0badc0de']);
  });
});
