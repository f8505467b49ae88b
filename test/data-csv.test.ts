import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { formatGaiicCsv, parseGaiicCsv, readGaiicCsv, writeGaiicCsv, type Row } from '../src/engine/data/csv';
import { userError } from './helpers/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'data-csv-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('parseGaiicCsv', () => {
  it('reads real-file-like lines with trailing spaces, empty label fields and several labels', () => {
    // The shape of ../shared/datasets/gaiic2021/train.csv: a space before each |,| and after the labels.
    const text =
      ['0|,|623 328 538 382 399 |,|2 ', '1|,|48 328 538 382 809 |,|', '5|,|48 322 795 856 |,|4 11 15 '].join('\n') +
      '\n';
    const { rows, skipped } = parseGaiicCsv(text, 'train.csv');
    expect(skipped).toEqual([]);
    expect(rows).toEqual([
      { id: '0', tokens: [623, 328, 538, 382, 399], labels: [2], line: 1 },
      { id: '1', tokens: [48, 328, 538, 382, 809], labels: [], line: 2 },
      { id: '5', tokens: [48, 322, 795, 856], labels: [4, 11, 15], line: 3 },
    ]);
  });

  it('reads test files without a label field as labels: null', () => {
    const { rows } = parseGaiicCsv('7|,|1 2 3\n8|,|4 5 \n', 't.csv');
    expect(rows.map((r) => r.labels)).toEqual([null, null]);
  });

  it('handles BOM, CRLF, blank lines (keeping true line numbers) and deduplicates labels', () => {
    const text = '\ufeff1|,|5 6|,|3 3 1\r\n\r\n   \r\n2|,|7|,|0\r\n';
    const { rows } = parseGaiicCsv(text, 'x.csv');
    expect(rows).toEqual([
      { id: '1', tokens: [5, 6], labels: [3, 1], line: 1 },
      { id: '2', tokens: [7], labels: [0], line: 4 },
    ]);
  });

  // The shared data is a development aid next to the project, not part of it: skip when absent.
  const real = path.join(__dirname, '../../shared/datasets/gaiic2021/train.csv');
  it.skipIf(!fs.existsSync(real))('reads the real data file', () => {
    const { rows, skipped } = readGaiicCsv(real, { requireLabels: true });
    expect(skipped).toEqual([]);
    expect(rows.length).toBe(8000);
    expect(rows.filter((r) => r.labels!.length === 0).length / rows.length).toBeCloseTo(0.263, 2);
    expect(rows.reduce((m, r) => Math.max(m, ...r.tokens), 0)).toBe(857);
  });

  const bad: [string, string, RegExp][] = [
    ['wrong separator', '1,5 6,2', /^f\.csv:2: expected 2 or 3 fields separated by '\|,\|'.*found 1$/],
    ['too many fields', '1|,|5 6|,|2|,|3', /^f\.csv:2: expected 2 or 3 fields.*found 4$/],
    ['empty id', ' |,|5 6|,|2', /^f\.csv:2: empty id$/],
    ['non-integer token', '1|,|5 x6|,|2', /^f\.csv:2: token 'x6' is not a non-negative integer$/],
    ['decimal token', '1|,|5 6.5|,|2', /^f\.csv:2: token '6\.5' is not a non-negative integer$/],
    ['negative token', '1|,|5 -6|,|2', /^f\.csv:2: token '-6' is negative$/],
    ['huge token', '1|,|5 99999999999999999999|,|2', /^f\.csv:2: token '99999999999999999999' is too large$/],
    ['empty text', '1|,|   |,|2', /^f\.csv:2: empty text \(no tokens\)$/],
    ['label too large', '1|,|5 6|,|3 17', /^f\.csv:2: label '17' is outside 0\.\.16$/],
    ['negative label', '1|,|5 6|,|-1', /^f\.csv:2: label '-1' is outside 0\.\.16$/],
    ['non-integer label', '1|,|5 6|,|a', /^f\.csv:2: label 'a' is not an integer$/],
    ['duplicate id', '0|,|5 6|,|2', /^f\.csv:2: duplicate id '0' \(first on line 1\)$/],
    ['very long row', '1|,|' + '5 '.repeat(60_000), /^f\.csv:2: line is \d+ characters long \(limit 100000\)/],
  ];
  for (const [what, line, message] of bad) {
    it(`rejects ${what} with FILE:LINE`, () => {
      const text = `0|,|1 2|,|\n${line}\n3|,|4|,|5\n`;
      expect(userError(() => parseGaiicCsv(text, 'f.csv'))).toMatch(message);
      // With skipBadRows the row goes to `skipped` with the same reason and the rest is kept.
      const r = parseGaiicCsv(text, 'f.csv', { skipBadRows: true });
      expect(r.rows.map((x) => x.id)).toEqual(['0', '3']);
      expect(r.skipped).toHaveLength(1);
      expect(r.skipped[0].line).toBe(2);
      expect(`f.csv:2: ${r.skipped[0].reason}`).toMatch(message);
    });
  }

  it('requireLabels rejects rows without a label field', () => {
    expect(userError(() => parseGaiicCsv('1|,|2|,|\n2|,|3 4\n', 'g.csv', { requireLabels: true }))).toBe(
      'g.csv:2: no label field (expected id|,|tokens|,|labels)',
    );
  });

  it('honours numLabels', () => {
    expect(userError(() => parseGaiicCsv('1|,|2|,|3\n', 'h.csv', { numLabels: 3 }))).toBe(
      "h.csv:1: label '3' is outside 0..2",
    );
    expect(parseGaiicCsv('1|,|2|,|3\n', 'h.csv', { numLabels: 4 }).rows[0].labels).toEqual([3]);
  });

  it('rejects empty input and input with no valid rows', () => {
    expect(userError(() => parseGaiicCsv('\n \r\n', 'e.csv'))).toBe('e.csv: no rows (the file is empty)');
    expect(userError(() => parseGaiicCsv('a,b\n', 'e.csv', { skipBadRows: true }))).toMatch(
      /^e\.csv: no valid rows \(1 skipped; line 1: /,
    );
  });
});

describe('readGaiicCsv', () => {
  it('reads a file', () => {
    const f = path.join(tmp, 'ok.csv');
    fs.writeFileSync(f, '1|,|2 3|,|4\n');
    expect(readGaiicCsv(f).rows).toEqual([{ id: '1', tokens: [2, 3], labels: [4], line: 1 }]);
  });

  it('names the file when it is missing, a directory, empty or binary', () => {
    const missing = path.join(tmp, 'nope.csv');
    expect(userError(() => readGaiicCsv(missing))).toBe(`${missing}: file not found`);
    expect(userError(() => readGaiicCsv(tmp))).toBe(`${tmp}: is a directory, expected a GAIIC csv file`);
    const empty = path.join(tmp, 'empty.csv');
    fs.writeFileSync(empty, '');
    expect(userError(() => readGaiicCsv(empty))).toBe(`${empty}: no rows (the file is empty)`);
    const bin = path.join(tmp, 'model.bin');
    fs.writeFileSync(bin, Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0x01]));
    expect(userError(() => readGaiicCsv(bin))).toBe(`${bin}: not a text file (binary data at byte 4)`);
    const latin = path.join(tmp, 'latin1.csv');
    fs.writeFileSync(latin, Buffer.from([0x31, 0xe9, 0xff, 0x0a]));
    expect(userError(() => readGaiicCsv(latin))).toBe(`${latin}: not a text file (invalid UTF-8)`);
  });
});

describe('formatGaiicCsv / writeGaiicCsv', () => {
  const rowArb = fc.record({
    tokens: fc.array(fc.nat({ max: 100_000 }), { minLength: 1, maxLength: 50 }),
    labels: fc.option(fc.uniqueArray(fc.integer({ min: 0, max: 16 }), { maxLength: 17 }), { nil: null }),
  });

  it('round-trips through parse (property)', () => {
    fc.assert(
      fc.property(fc.array(rowArb, { minLength: 1, maxLength: 30 }), (parts) => {
        const rows: Row[] = parts.map((p, i) => ({ id: `r${i}`, ...p, line: i + 1 }));
        expect(parseGaiicCsv(formatGaiicCsv(rows), 'p.csv').rows).toEqual(rows);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses rows that could not be read back', () => {
    expect(() => formatGaiicCsv([{ id: 'a|,|b', tokens: [1], labels: null, line: 0 }])).toThrow(/cannot be written/);
    expect(() => formatGaiicCsv([{ id: 'a', tokens: [], labels: null, line: 0 }])).toThrow(/no tokens/);
    expect(() => formatGaiicCsv([{ id: 'a', tokens: [-1], labels: null, line: 0 }])).toThrow(/bad token/);
  });

  it('writes atomically (no temp file left) and replaces an existing file', () => {
    const dir = path.join(tmp, 'out', 'sub');
    const f = path.join(dir, 'w.csv');
    writeGaiicCsv(f, [{ id: '1', tokens: [1, 2], labels: [3], line: 0 }]);
    writeGaiicCsv(f, [{ id: '2', tokens: [4], labels: null, line: 0 }]);
    expect(fs.readFileSync(f, 'utf8')).toBe('2|,|4\n');
    expect(fs.readdirSync(dir)).toEqual(['w.csv']);
  });
});
