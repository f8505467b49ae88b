// The one bounded reader (src/engine/io/read.ts): regular files only, at most limit + 1 bytes read
// whatever stat says, JSON nesting checked before parsing.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCsvRecords } from '../src/engine/data/rows';
import { jsonDepthExceeded, parseJsonText, readBounded, readHead, readTail, READ_LIMITS } from '../src/engine/io/read';
import { userError } from './helpers/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'io-read-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('readBounded', () => {
  it('reads up to the limit, refuses one byte more', () => {
    const f = path.join(tmp, 'ten');
    fs.writeFileSync(f, '0123456789');
    expect(readBounded(f, 'json', 10).toString()).toBe('0123456789');
    expect(userError(() => readBounded(f, 'json', 9))).toBe(`${f}: over the 9-byte limit for a json file; not read`);
  });

  it('reads a file whose stat size is 0 to its end (/proc)', () => {
    expect(readBounded('/proc/self/status', 'json').toString()).toMatch(/^Name:/);
  });

  it('refuses devices, FIFOs and folders, through links too, without blocking', () => {
    const link = path.join(tmp, 'zero.json');
    fs.symlinkSync('/dev/zero', link);
    expect(userError(() => readBounded(link, 'json'))).toMatch(/zero\.json: is a device, expected a regular file/);
    const fifo = path.join(tmp, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    expect(userError(() => readBounded(fifo, 'vocab'))).toMatch(/fifo: is a named pipe \(FIFO\)/);
    expect(userError(() => readHead(fifo))).toMatch(/named pipe/);
    expect(userError(() => readBounded(tmp, 'json'))).toMatch(/is a directory/);
    expect(userError(() => readBounded(path.join(tmp, 'none'), 'json'))).toMatch(/none: file not found/);
  });

  it('every kind has a limit', () => {
    for (const v of Object.values(READ_LIMITS)) expect(v).toBeGreaterThan(0);
  });

  it('readTail: the last bytes, and whether the file was cut', () => {
    const f = path.join(tmp, 'tail');
    fs.writeFileSync(f, 'abcdef');
    expect(readTail(f, 'history', 3)).toEqual({ buf: Buffer.from('def'), cut: true });
    expect(readTail(f, 'history', 10)).toEqual({ buf: Buffer.from('abcdef'), cut: false });
  });
});

describe('JSON nesting', () => {
  it('is checked before parsing, strings aside', () => {
    expect(jsonDepthExceeded('['.repeat(300), 256)).toBe(256);
    expect(jsonDepthExceeded(`["${'['.repeat(300)}"]`, 256)).toBe(-1);
    expect(jsonDepthExceeded('{"a": [[1]]}', 3)).toBe(-1);
    expect(userError(() => parseJsonText('['.repeat(200_000), 'c.json'))).toBe(
      'c.json:1:257: JSON nested deeper than 256 levels; not read',
    );
  });
});

describe('CSV records', () => {
  it('a record over the limit is refused naming its line; fields are slices', () => {
    expect(parseCsvRecords('text\n"a ""b"", c"\n', 'f.csv').records.map((r) => r.fields)).toEqual([
      ['text'],
      ['a "b", c'],
    ]);
    expect(userError(() => parseCsvRecords(`text\nok\n${'x'.repeat(50)}\n`, 'f.csv', 20))).toBe(
      'f.csv:3: a record of more than 20 characters (the limit); not read',
    );
    expect(userError(() => parseCsvRecords(`text\n"${'x'.repeat(50)}"\n`, 'f.csv', 20))).toMatch(/^f\.csv:2: a record/);
  });
});

describe('the editor locator (configFiles.ts) on deep JSON', () => {
  it('points at where the nesting passes the limit, without recursing', async () => {
    const { pointerRange } = await import('../src/extension/configFiles');
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect(pointerRange(deep, '/0/0')).toEqual({ start: 256, end: 257 });
  });
});
