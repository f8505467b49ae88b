import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  jsonErrorOffset,
  lineCol,
  readJson,
  replaceDirAtomic,
  writeFileAtomic,
  writeJsonAtomic,
} from '../src/engine/io/atomic';
import { userError } from './helpers/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'io-atomic-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Names in `dir` other than the expected ones (i.e. leftover temp files). */
function leftovers(dir: string, expected: string[]): string[] {
  return fs.readdirSync(dir).filter((n) => !expected.includes(n));
}

describe('writeFileAtomic', () => {
  it('writes strings and bytes, replaces old content and leaves no temp files', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'w-'));
    const f = path.join(dir, 'a.txt');
    writeFileAtomic(f, 'first');
    expect(fs.readFileSync(f, 'utf8')).toBe('first');
    writeFileAtomic(f, new Uint8Array([0, 255, 10]));
    expect([...fs.readFileSync(f)]).toEqual([0, 255, 10]);
    writeFileAtomic(f, 'ü€'); // multi-byte UTF-8
    expect(fs.readFileSync(f, 'utf8')).toBe('ü€');
    writeFileAtomic(f, '');
    expect(fs.readFileSync(f, 'utf8')).toBe('');
    expect(leftovers(dir, ['a.txt'])).toEqual([]);
  });

  it('writes a subarray view exactly (offset into a bigger buffer)', () => {
    const f = path.join(tmp, 'view.bin');
    const big = new Uint8Array([1, 2, 3, 4, 5, 6]);
    writeFileAtomic(f, big.subarray(2, 5));
    expect([...fs.readFileSync(f)]).toEqual([3, 4, 5]);
  });

  it('refuses a path whose parent is a file, naming it, and leaves the directory clean', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'p-'));
    const parent = path.join(dir, 'plain-file');
    fs.writeFileSync(parent, 'keep me');
    const target = path.join(parent, 'x.json');
    const msg = userError(() => writeFileAtomic(target, 'data'));
    expect(msg).toContain(target);
    expect(msg).toMatch(/not a directory/);
    expect(fs.readFileSync(parent, 'utf8')).toBe('keep me');
    expect(leftovers(dir, ['plain-file'])).toEqual([]);
  });

  it('says when the directory does not exist', () => {
    const target = path.join(tmp, 'no-such-dir', 'x.json');
    const msg = userError(() => writeFileAtomic(target, 'data'));
    expect(msg).toContain(target);
    expect(msg).toMatch(/does not exist/);
  });

  it('keeps the previous file when the new data cannot be produced', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'k-'));
    const f = path.join(dir, 'run.json');
    writeFileAtomic(f, 'old content');
    // Data that fails once the temp file is open (its length cannot be read): the temp must go.
    const bad = {
      get byteLength(): number {
        throw new Error('boom');
      },
    } as unknown as Uint8Array;
    expect(() => writeFileAtomic(f, bad)).toThrow('boom');
    expect(fs.readFileSync(f, 'utf8')).toBe('old content');
    expect(leftovers(dir, ['run.json'])).toEqual([]);
  });

  it('refuses to replace a directory and keeps it', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'd-'));
    const target = path.join(dir, 'sub');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'inner'), 'x');
    const msg = userError(() => writeFileAtomic(target, 'data'));
    expect(msg).toContain(target);
    expect(fs.readFileSync(path.join(target, 'inner'), 'utf8')).toBe('x');
    expect(leftovers(dir, ['sub'])).toEqual([]);
  });
});

describe('writeJsonAtomic / readJson', () => {
  it('writes pretty JSON with a trailing newline and reads it back', () => {
    const f = path.join(tmp, 'v.json');
    writeJsonAtomic(f, { a: 1, b: [true, null], c: { d: 'x' } });
    expect(fs.readFileSync(f, 'utf8')).toBe(
      '{\n  "a": 1,\n  "b": [\n    true,\n    null\n  ],\n  "c": {\n    "d": "x"\n  }\n}\n',
    );
    expect(readJson(f)).toEqual({ a: 1, b: [true, null], c: { d: 'x' } });
  });

  it('reads a file with a BOM', () => {
    const f = path.join(tmp, 'bom.json');
    fs.writeFileSync(f, '\ufeff{"x": 2}');
    expect(readJson(f)).toEqual({ x: 2 });
  });

  it('missing file -> UserError naming it', () => {
    const f = path.join(tmp, 'nope.json');
    expect(userError(() => readJson(f))).toBe(`${f}: file not found`);
  });

  const cases: [string, string, string][] = [
    // [content, expected FILE:LINE:COL prefix (without the file), a word of the reason]
    ['{\n  "a": 1,\n  "b": }\n', ':3:8:', 'Unexpected token'], // V8 gives no position for this one
    ['{\n  "a": 1,\n}\n', ':3:1:', 'property name'], // trailing comma
    ['', ':1:1:', 'end of JSON'],
    ['{"a": [1, 2\n', ':2:1:', 'JSON'],
    ['{"a": 1}\n  x', ':2:3:', 'non-whitespace'],
  ];
  for (const [content, where, reason] of cases) {
    it(`invalid JSON ${JSON.stringify(content)} -> FILE${where}`, () => {
      const f = path.join(tmp, 'bad.json');
      fs.writeFileSync(f, content);
      const msg = userError(() => readJson(f));
      expect(msg.startsWith(`${f}${where} invalid JSON: `)).toBe(true);
      expect(msg).toContain(reason);
      expect(msg).not.toMatch(/position \d+/); // the position is in LINE:COL already
    });
  }

  it('lineCol counts from 1', () => {
    expect(lineCol('ab\ncd', 0)).toEqual({ line: 1, col: 1 });
    expect(lineCol('ab\ncd', 4)).toEqual({ line: 2, col: 2 });
    expect(lineCol('ab\n', 3)).toEqual({ line: 2, col: 1 });
  });
});

describe('jsonErrorOffset (used when V8 gives no position)', () => {
  it('returns the end for valid JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer({ min: 0, max: 2 }), (v, indent) => {
        const text = JSON.stringify(v, null, indent);
        expect(jsonErrorOffset(text)).toBe(text.length);
      }),
      { numRuns: 200 },
    );
  });

  it('agrees with V8 wherever V8 reports a position', () => {
    // Damage valid JSON by cutting it or inserting a character; wherever V8 names a position,
    // the scanner must name the same one.
    const damaged = fc
      .tuple(fc.jsonValue(), fc.nat(), fc.constantFrom(',', '}', ']', ':', '"', 'x', ' ', '1', '\\'), fc.boolean())
      .map(([v, at, ch, cut]) => {
        const t = JSON.stringify(v, null, 1);
        const i = at % (t.length + 1);
        return cut ? t.slice(0, i) : t.slice(0, i) + ch + t.slice(i);
      });
    fc.assert(
      fc.property(damaged, (text) => {
        let v8: number | undefined;
        try {
          JSON.parse(text);
          return; // still valid
        } catch (e) {
          const m = /at position (\d+)/.exec((e as Error).message);
          if (!m) return;
          v8 = Number(m[1]);
        }
        expect(jsonErrorOffset(text)).toBe(v8);
      }),
      { numRuns: 300 },
    );
  });
});

describe('replaceDirAtomic', () => {
  function makeDir(dir: string, files: Record<string, string>): void {
    fs.mkdirSync(dir, { recursive: true });
    for (const [n, c] of Object.entries(files)) fs.writeFileSync(path.join(dir, n), c);
  }
  function readDir(dir: string): Record<string, string> {
    return Object.fromEntries(
      fs
        .readdirSync(dir)
        .sort()
        .map((n) => [n, fs.readFileSync(path.join(dir, n), 'utf8')]),
    );
  }

  it('moves a new directory into place when there is none', () => {
    const root = fs.mkdtempSync(path.join(tmp, 'r-'));
    makeDir(path.join(root, 'ckpt.tmp'), { 'a.txt': 'new' });
    replaceDirAtomic(path.join(root, 'ckpt.tmp'), path.join(root, 'ckpt'));
    expect(readDir(path.join(root, 'ckpt'))).toEqual({ 'a.txt': 'new' });
    expect(fs.readdirSync(root)).toEqual(['ckpt']);
  });

  it('replaces an existing directory completely and removes the old copy', () => {
    const root = fs.mkdtempSync(path.join(tmp, 'r-'));
    makeDir(path.join(root, 'ckpt'), { 'a.txt': 'old', 'gone.txt': 'old' });
    makeDir(path.join(root, 'ckpt.tmp'), { 'a.txt': 'new', 'b.txt': 'new' });
    replaceDirAtomic(path.join(root, 'ckpt.tmp'), path.join(root, 'ckpt'));
    expect(readDir(path.join(root, 'ckpt'))).toEqual({ 'a.txt': 'new', 'b.txt': 'new' });
    expect(fs.readdirSync(root)).toEqual(['ckpt']);
  });

  it('leaves the old directory alone when the new one does not exist', () => {
    const root = fs.mkdtempSync(path.join(tmp, 'r-'));
    makeDir(path.join(root, 'ckpt'), { 'a.txt': 'old' });
    expect(() => replaceDirAtomic(path.join(root, 'missing.tmp'), path.join(root, 'ckpt'))).toThrow(/not a directory/);
    expect(readDir(path.join(root, 'ckpt'))).toEqual({ 'a.txt': 'old' });
    expect(fs.readdirSync(root)).toEqual(['ckpt']);
  });
});
