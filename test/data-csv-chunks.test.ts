// readGaiicCsv reads a file in chunks (security issue, item 7): a valid CSV bigger than the
// longest string V8 can hold (~512 MiB) used to be reported as "invalid UTF-8". A file of that size
// is too slow for these tests, so the chunk size is made tiny instead: lines and multi-byte UTF-8
// characters split across chunk borders must read exactly as the whole text does.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseGaiicCsv, readGaiicCsv } from '../src/engine/data/csv';
import { userError } from './helpers/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'data-csv-chunks-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function file(content: string | Buffer): string {
  const f = path.join(tmp, `f${n++}.csv`);
  fs.writeFileSync(f, content);
  return f;
}

// Ids with 2-, 3- and 4-byte UTF-8 characters, CRLF, a BOM, blank lines, no final newline.
const TEXT = '\ufeffé1|,|1 2 3|,|4\r\n\n报告二|,|10 20 |,|\r\n🙂3|,|7 8 9 10|,|0 16\n\n  \n4|,|5|,|2';

describe('readGaiicCsv in chunks', () => {
  it.each([1, 2, 3, 4, 5, 7, 13, 64, 1 << 20])('reads the rows with %i-byte chunks as the whole text', (chunkBytes) => {
    const f = file(TEXT);
    const whole = parseGaiicCsv(TEXT, f);
    expect(whole.rows.map((r) => r.id)).toEqual(['é1', '报告二', '🙂3', '4']);
    expect(readGaiicCsv(f, { chunkBytes })).toEqual(whole);
  });

  it('gives the same file:line errors across chunk borders', () => {
    const text = '1|,|1 2\n2|,|3 4\n3|,|5 x6\n4|,|7\n';
    const f = file(text);
    for (const chunkBytes of [1, 3, 8, 100]) {
      expect(userError(() => readGaiicCsv(f, { chunkBytes }))).toBe(`${f}:3: token 'x6' is not a non-negative integer`);
      expect(readGaiicCsv(f, { chunkBytes, skipBadRows: true }).skipped).toEqual([
        { line: 3, reason: "token 'x6' is not a non-negative integer" },
      ]);
    }
  });

  it('still refuses invalid UTF-8 and binary data, also when split at a chunk border or cut off at the end', () => {
    const cut = file(Buffer.concat([Buffer.from('1|,|1 2\n'), Buffer.from('报').subarray(0, 2)]));
    const lone = file(Buffer.concat([Buffer.from('1|,|1 2\n2|,|3'), Buffer.from([0x80]), Buffer.from('\n')]));
    const nul = file(Buffer.concat([Buffer.from('1|,|1 2\n2|,|3'), Buffer.from([0]), Buffer.from('\n')]));
    for (const chunkBytes of [1, 2, 5, 1000]) {
      expect(userError(() => readGaiicCsv(cut, { chunkBytes }))).toBe(`${cut}: not a text file (invalid UTF-8)`);
      expect(userError(() => readGaiicCsv(lone, { chunkBytes }))).toBe(`${lone}: not a text file (invalid UTF-8)`);
      expect(userError(() => readGaiicCsv(nul, { chunkBytes }))).toBe(
        `${nul}: not a text file (binary data at byte 13)`,
      );
    }
  });

  it('an over-long line is counted, not kept: reported with its length, or skipped and the next row read', () => {
    const long = '9|,|' + '1 '.repeat(150_000);
    const f = file(`1|,|1 2\n${long}\n3|,|4\n`);
    expect(userError(() => readGaiicCsv(f, { chunkBytes: 4096 }))).toBe(
      `${f}:2: line is ${long.length} characters long (limit 100000); is this a GAIIC csv file?`,
    );
    const r = readGaiicCsv(f, { chunkBytes: 4096, skipBadRows: true });
    expect(r.rows.map((x) => [x.id, x.line])).toEqual([
      ['1', 1],
      ['3', 3],
    ]);
    expect(r.skipped[0].line).toBe(2);
    // The same file read whole gives the same answer.
    expect(userError(() => readGaiicCsv(f))).toBe(userError(() => parseGaiicCsv(fs.readFileSync(f, 'utf8'), f)));
  });

  it('reports progress while reading a file in many chunks', () => {
    const text = Array.from({ length: 200 }, (_, i) => `${i}|,|${i} ${i + 1}|,|${i % 17}`).join('\n');
    const f = file(text);
    const lines: string[] = [];
    const r = readGaiicCsv(f, { chunkBytes: 256, progressBytes: 1024, progress: (m) => lines.push(m) });
    expect(r.rows).toHaveLength(200);
    const bytes = Buffer.byteLength(text);
    expect(lines.length).toBe(Math.floor(bytes / 1024) - (bytes % 1024 === 0 ? 1 : 0));
    expect(lines[0]).toMatch(new RegExp(`^reading .*f\\d+\\.csv: \\d+ of \\d+ MB, \\d+ rows$`));
  });

  it('random rows and random chunk sizes read exactly as the whole text (fast-check)', () => {
    const chars = fc.constantFrom('a', '7', 'é', '报', '🙂');
    const id = fc.array(chars, { minLength: 1, maxLength: 6 }).map((cs) => cs.join(''));
    const tokens = fc.array(fc.nat(99999), { minLength: 1, maxLength: 8 });
    const row = fc.tuple(id, tokens, fc.array(fc.nat(16), { maxLength: 3 }), fc.boolean());
    const rowsArb = fc.uniqueArray(row, { minLength: 1, maxLength: 20, selector: (r) => r[0] });
    fc.assert(
      fc.property(rowsArb, fc.integer({ min: 1, max: 40 }), (rows, chunkBytes) => {
        const line = ([i, t, l, crlf]: [string, number[], number[], boolean]) =>
          `${i}|,|${t.join(' ')}|,|${l.join(' ')}${crlf ? '\r\n' : '\n'}`;
        const text = rows.map(line).join('');
        const f = file(text);
        expect(readGaiicCsv(f, { chunkBytes })).toEqual(parseGaiicCsv(text, f));
        fs.rmSync(f);
      }),
      { numRuns: 150 },
    );
  });
});
