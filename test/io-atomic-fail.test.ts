// Failures the real file system will not produce on demand (disk full, a failing rename), injected
// by wrapping node:fs. Kept in its own file because vi.mock applies to the whole file.
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

const inject = vi.hoisted(() => ({ writeSync: null as string | null, renameNth: 0, renames: 0 }));

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const fail = (code: string) => Object.assign(new Error(`${code}: injected`), { code });
  return {
    ...real,
    writeSync: (...args: Parameters<typeof real.writeSync>) => {
      if (inject.writeSync) throw fail(inject.writeSync);
      return (real.writeSync as (...a: unknown[]) => number)(...args);
    },
    renameSync: (from: string, to: string) => {
      inject.renames++;
      if (inject.renames === inject.renameNth) throw fail('EACCES');
      return real.renameSync(from, to);
    },
  };
});

import * as fs from 'node:fs';
import { UserError } from '../src/engine/errors';
import { replaceDirAtomic, writeFileAtomic } from '../src/engine/io/atomic';
import { userError } from './helpers/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'io-atomic-fail-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => {
  inject.writeSync = null;
  inject.renameNth = 0;
  inject.renames = 0;
});

describe('writeFileAtomic under injected failures', () => {
  const explained: [string, RegExp][] = [
    ['ENOSPC', /disk full/],
    ['EACCES', /not writable/],
    ['EROFS', /read-only/],
    ['EDQUOT', /quota/],
  ];
  for (const [code, words] of explained) {
    it(`${code} while writing -> UserError, old file intact, temp removed`, () => {
      const dir = fs.mkdtempSync(path.join(tmp, 'w-'));
      const f = path.join(dir, 'run.json');
      writeFileAtomic(f, '{"old": true}');
      inject.writeSync = code;
      const msg = userError(() => writeFileAtomic(f, '{"new": true}'));
      expect(msg).toContain(f);
      expect(msg).toMatch(words);
      expect(fs.readFileSync(f, 'utf8')).toBe('{"old": true}');
      expect(fs.readdirSync(dir)).toEqual(['run.json']);
    });
  }

  it('other errors pass through unchanged (and still clean up)', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'w-'));
    const f = path.join(dir, 'x');
    inject.writeSync = 'EIO';
    expect(() => writeFileAtomic(f, 'x')).toThrow(/EIO: injected/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('a failing rename keeps the old file and removes the temp', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'w-'));
    const f = path.join(dir, 'a.bin');
    writeFileAtomic(f, 'old');
    inject.renames = 0;
    inject.renameNth = 1;
    const msg = userError(() => writeFileAtomic(f, 'new'));
    expect(msg).toMatch(/not writable/);
    expect(fs.readFileSync(f, 'utf8')).toBe('old');
    expect(fs.readdirSync(dir)).toEqual(['a.bin']);
  });
});

describe('replaceDirAtomic under injected failures', () => {
  it('puts the old directory back when moving the new one in fails', () => {
    const root = fs.mkdtempSync(path.join(tmp, 'r-'));
    fs.mkdirSync(path.join(root, 'ckpt'));
    fs.writeFileSync(path.join(root, 'ckpt', 'w'), 'old');
    fs.mkdirSync(path.join(root, 'ckpt.tmp'));
    fs.writeFileSync(path.join(root, 'ckpt.tmp', 'w'), 'new');
    inject.renameNth = 2; // 1: old aside (works), 2: new into place (fails)
    const msg = userError(() => replaceDirAtomic(path.join(root, 'ckpt.tmp'), path.join(root, 'ckpt')));
    expect(msg).toContain(path.join(root, 'ckpt'));
    expect(fs.readFileSync(path.join(root, 'ckpt', 'w'), 'utf8')).toBe('old');
    expect(fs.readdirSync(root).sort()).toEqual(['ckpt', 'ckpt.tmp']); // no .old-* left behind
  });

  it('leaves everything as it was when the old directory cannot be moved aside', () => {
    const root = fs.mkdtempSync(path.join(tmp, 'r-'));
    fs.mkdirSync(path.join(root, 'ckpt'));
    fs.mkdirSync(path.join(root, 'ckpt.tmp'));
    inject.renameNth = 1;
    expect(() => replaceDirAtomic(path.join(root, 'ckpt.tmp'), path.join(root, 'ckpt'))).toThrow(UserError);
    expect(fs.readdirSync(root).sort()).toEqual(['ckpt', 'ckpt.tmp']);
  });
});
