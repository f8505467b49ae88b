import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { buildVocab, idsOf, readVocab, SPECIAL_TOKENS, UNK_ID, writeVocab } from '../src/engine/data/vocab';
import { userError } from './helpers/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'data-vocab-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('buildVocab', () => {
  it('puts specials first, then tokens by count desc, ties by numeric value asc', () => {
    const v = buildVocab([
      [10, 9, 100],
      [9, 10, 2],
      [9, 7],
    ]);
    expect(v.tokens).toEqual([...SPECIAL_TOKENS, '9', '10', '2', '7', '100']);
    expect(v.counts).toEqual([0, 0, 0, 0, 0, 3, 2, 1, 1, 1]);
    expect(v.index.get('10')).toBe(6);
    expect(v.index.get('[MASK]')).toBe(4);
  });

  it('drops tokens below minCount', () => {
    expect(buildVocab([[1, 1, 2]], { minCount: 2 }).tokens).toEqual([...SPECIAL_TOKENS, '1']);
  });

  it('orders and counts correctly on random corpora (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.nat({ max: 60 }), { maxLength: 30 }), { maxLength: 20 }), (texts) => {
        const v = buildVocab(texts);
        const real = new Map<number, number>();
        for (const t of texts.flat()) real.set(t, (real.get(t) ?? 0) + 1);
        expect(v.tokens.length).toBe(SPECIAL_TOKENS.length + real.size);
        for (let i = SPECIAL_TOKENS.length; i < v.tokens.length; i++) {
          expect(v.counts[i]).toBe(real.get(Number(v.tokens[i])));
          if (i > SPECIAL_TOKENS.length) {
            const [pc, c] = [v.counts[i - 1], v.counts[i]];
            expect(pc > c || (pc === c && Number(v.tokens[i - 1]) < Number(v.tokens[i]))).toBe(true);
          }
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('writeVocab / readVocab', () => {
  it('round-trips tokens, counts and index, atomically', () => {
    const dir = path.join(tmp, 'rt');
    const v = buildVocab([[5, 5, 3, 8]]);
    writeVocab(dir, v);
    expect(fs.readFileSync(path.join(dir, 'vocab.txt'), 'utf8')).toBe('[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n5\n3\n8\n');
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'token_counts.json'), 'utf8'))).toEqual({
      counts: [0, 0, 0, 0, 0, 2, 1, 1],
    });
    expect(fs.readdirSync(dir).sort()).toEqual(['token_counts.json', 'vocab.txt']);
    expect(readVocab(dir)).toEqual(v);
  });

  it('reads a vocab without counts as zeros, tolerating CRLF', () => {
    const dir = path.join(tmp, 'nocounts');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'vocab.txt'), [...SPECIAL_TOKENS, '42'].join('\r\n') + '\r\n');
    const v = readVocab(dir);
    expect(v.tokens).toEqual([...SPECIAL_TOKENS, '42']);
    expect(v.counts).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('reports a missing file, duplicates, empty lines and missing specials with file:line', () => {
    const dir = path.join(tmp, 'bad');
    const vf = path.join(dir, 'vocab.txt');
    expect(userError(() => readVocab(dir))).toBe(`${vf}: vocab file not found`);
    fs.mkdirSync(dir);
    fs.writeFileSync(vf, [...SPECIAL_TOKENS, '7', '8', '7'].join('\n') + '\n');
    expect(userError(() => readVocab(dir))).toBe(`${vf}:8: duplicate token '7' (first on line 6)`);
    fs.writeFileSync(vf, [...SPECIAL_TOKENS, '7', '', '8'].join('\n') + '\n');
    expect(userError(() => readVocab(dir))).toBe(`${vf}:7: empty token`);
    // Specials are found by name, wherever they are; a missing one is an error.
    fs.writeFileSync(vf, ['[PAD]', '[UNK]', '[SEP]', '[CLS]', '[MASK]'].join('\n') + '\n');
    expect(readVocab(dir).special).toEqual({ pad: 0, unk: 1, cls: 3, sep: 2, mask: 4 });
    fs.writeFileSync(vf, ['[PAD]', '[UNK]', '[SEP]', '[CLS]'].join('\n') + '\n');
    expect(userError(() => readVocab(dir))).toBe(`${vf}: the mask token '[MASK]' is not in the vocabulary`);
  });

  it('reports bad token_counts.json', () => {
    const dir = path.join(tmp, 'badcounts');
    writeVocab(dir, buildVocab([[1]]));
    const cf = path.join(dir, 'token_counts.json');
    fs.writeFileSync(cf, '{"counts": [0, 0]}');
    expect(userError(() => readVocab(dir))).toBe(`${cf}: has 2 counts but ${path.join(dir, 'vocab.txt')} has 6 tokens`);
    fs.writeFileSync(cf, '{"counts": [0, 0, 0, 0, 0, -1]}');
    expect(userError(() => readVocab(dir))).toMatch(/token_counts\.json: \/counts\/5: expected a non-negative integer/);
    fs.writeFileSync(cf, '{oops');
    expect(userError(() => readVocab(dir))).toMatch(/token_counts\.json:1:2: invalid JSON/);
  });
});

describe('idsOf', () => {
  it('maps known tokens to ids and unknown ones to UNK', () => {
    const v = buildVocab([[5, 5, 3]]);
    expect(idsOf([3, 5, 99, 5], v)).toEqual([6, 5, UNK_ID, 5]);
  });
});
