import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Row } from '../src/engine/data/csv';
import { encodeRows, makeBatches, type Example } from '../src/engine/data/encode';
import { Rng } from '../src/engine/data/rng';
import { splitRows } from '../src/engine/data/split';
import { buildVocab, CLS_ID, PAD_ID, SEP_ID, UNK_ID } from '../src/engine/data/vocab';
import { UserError } from '../src/engine/errors';

const row = (id: string, tokens: number[], labels: number[] | null = []): Row => ({ id, tokens, labels, line: 0 });

describe('Rng', () => {
  it('is deterministic by seed and different across seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(xs);
  });

  it('resumes exactly from a saved state', () => {
    const a = new Rng(7);
    for (let i = 0; i < 100; i++) a.next();
    const b = Rng.fromState(JSON.parse(JSON.stringify(a.state())));
    expect(Array.from({ length: 20 }, () => b.normal())).toEqual(Array.from({ length: 20 }, () => a.normal()));
    expect(() => Rng.fromState([1, 2, 3])).toThrow(/4 uint32/);
    // Every state along the way is 4 uint32s that fromState accepts.
    for (let i = 0; i < 1000; i++) {
      a.next();
      expect(Rng.fromState(a.state()).next()).toBe(Rng.fromState(a.state()).next());
    }
  });

  it('has sane uniform, int, normal and shuffle statistics', () => {
    const r = new Rng(1);
    const n = 50_000;
    let sum = 0;
    let sq = 0;
    const hist = new Array(10).fill(0);
    for (let i = 0; i < n; i++) {
      const u = r.next();
      expect(u >= 0 && u < 1).toBe(true);
      hist[r.int(10)]++;
      const z = r.normal();
      sum += z;
      sq += z * z;
    }
    for (const h of hist) expect(Math.abs(h / n - 0.1)).toBeLessThan(0.01);
    expect(Math.abs(sum / n)).toBeLessThan(0.02);
    expect(Math.abs(sq / n - 1)).toBeLessThan(0.03);
    const a = [...Array(100).keys()];
    const s = r.shuffle([...a]);
    expect(s).not.toEqual(a);
    expect([...s].sort((x, y) => x - y)).toEqual(a);
  });
});

describe('splitRows', () => {
  it('is deterministic, disjoint, complete, order-keeping and sized by fraction', () => {
    const rows = [...Array(101).keys()];
    const s1 = splitRows(rows, 0.2, 5);
    expect(splitRows(rows, 0.2, 5)).toEqual(s1);
    expect(splitRows(rows, 0.2, 6)).not.toEqual(s1);
    expect(s1.test.length).toBe(20);
    expect([...s1.train, ...s1.test].sort((a, b) => a - b)).toEqual(rows);
    expect(s1.train).toEqual([...s1.train].sort((a, b) => a - b));
    expect(splitRows([1, 2], 0.01, 1).test.length).toBe(1); // never an empty side
  });

  it('rejects fractions outside (0,1) and too few rows', () => {
    for (const f of [0, 1, -0.5, 2, NaN]) expect(() => splitRows([1, 2, 3], f, 1)).toThrow(UserError);
    expect(() => splitRows([1], 0.5, 1)).toThrow(/at least 2 rows/);
  });
});

describe('encodeRows', () => {
  const vocab = buildVocab([[10, 11, 12, 13, 14]]);

  it('wraps tokens in CLS/SEP, maps unknown tokens to UNK and builds multi-hot labels', () => {
    const [e, f] = encodeRows([row('a', [10, 99, 12], [0, 16]), row('b', [11], null)], vocab, 16);
    expect(Array.from(e.ids)).toEqual([CLS_ID, vocab.index.get('10'), UNK_ID, vocab.index.get('12'), SEP_ID]);
    expect(Array.from(e.labels!)).toEqual([1, ...new Array(15).fill(0), 1]);
    expect(e.row).toBe(0);
    expect(f.labels).toBeNull();
    expect(f.row).toBe(1);
  });

  it('truncates to maxLen keeping CLS first and SEP last (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 10, max: 14 }), { minLength: 1, maxLength: 80 }),
        fc.integer({ min: 3, max: 64 }),
        (toks, maxLen) => {
          const [e] = encodeRows([row('x', toks)], vocab, maxLen);
          expect(e.ids.length).toBe(Math.min(maxLen, toks.length + 2));
          expect(e.ids[0]).toBe(CLS_ID);
          expect(e.ids[e.ids.length - 1]).toBe(SEP_ID);
          expect(Array.from(e.ids.slice(1, -1))).toEqual(
            toks.slice(0, e.ids.length - 2).map((t) => vocab.index.get(String(t))),
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects a maxLen with no room for text, and labels beyond numLabels', () => {
    expect(() => encodeRows([row('x', [10])], vocab, 2)).toThrow(UserError);
    expect(() => encodeRows([row('x', [10], [5])], vocab, 8, 5)).toThrow(/label 5 is outside 0\.\.4/);
  });
});

describe('makeBatches', () => {
  const rng = new Rng(3);
  const examples: Example[] = Array.from({ length: 537 }, (_, i) => {
    const len = 3 + rng.int(60);
    const ids = Int32Array.from({ length: len }, (_, t) =>
      t === 0 ? CLS_ID : t === len - 1 ? SEP_ID : 5 + rng.int(50),
    );
    const labels = Float32Array.from({ length: 17 }, () => (rng.next() < 0.1 ? 1 : 0));
    return { ids, labels, row: i };
  });

  /** padded(longest row): the batch's length (its longest row's, unless padded further). */
  function checkBatches(batches: ReturnType<typeof makeBatches>, batchSize: number, padded = (n: number) => n) {
    const seen = batches.flatMap((b) => b.rows);
    expect([...seen].sort((a, b) => a - b)).toEqual(examples.map((_, i) => i)); // every example exactly once
    for (const b of batches) {
      expect(b.B).toBe(b.rows.length);
      expect(b.B).toBeLessThanOrEqual(batchSize);
      expect(b.T).toBe(padded(Math.max(...b.rows.map((r) => examples[r].ids.length)))); // to its own max
      expect(b.ids.length).toBe(b.B * b.T);
      let tokens = 0;
      b.rows.forEach((r, i) => {
        const e = examples[r];
        const rowIds = b.ids.slice(i * b.T, (i + 1) * b.T);
        const rowMask = b.mask.slice(i * b.T, (i + 1) * b.T);
        expect(Array.from(rowIds.slice(0, e.ids.length))).toEqual(Array.from(e.ids));
        expect(rowIds.slice(e.ids.length).every((x) => x === PAD_ID)).toBe(true);
        expect(Array.from(rowMask)).toEqual([
          ...new Array(e.ids.length).fill(1),
          ...new Array(b.T - e.ids.length).fill(0),
        ]);
        expect(Array.from(b.labels!.slice(i * 17, (i + 1) * 17))).toEqual(Array.from(e.labels!));
        tokens += e.ids.length;
      });
      expect(b.tokens).toBe(tokens);
    }
  }

  it('keeps order without rng', () => {
    const batches = makeBatches(examples, { batchSize: 32 });
    expect(batches.flatMap((b) => b.rows)).toEqual(examples.map((_, i) => i));
    expect(batches.map((b) => b.B)).toEqual([...new Array(16).fill(32), 25]);
    checkBatches(batches, 32);
  });

  it('shuffles with rng, deterministically by seed', () => {
    const a = makeBatches(examples, { batchSize: 32, rng: new Rng(9) });
    checkBatches(a, 32);
    expect(a.flatMap((b) => b.rows)).not.toEqual(examples.map((_, i) => i));
    expect(makeBatches(examples, { batchSize: 32, rng: new Rng(9) }).map((b) => b.rows)).toEqual(a.map((b) => b.rows));
  });

  it('buckets by length: much less padding, still random order', () => {
    const padding = (bs: ReturnType<typeof makeBatches>) => bs.reduce((s, b) => s + b.B * b.T - b.tokens, 0);
    const plain = makeBatches(examples, { batchSize: 8, rng: new Rng(1) });
    const bucketed = makeBatches(examples, { batchSize: 8, rng: new Rng(1), bucket: true });
    checkBatches(bucketed, 8);
    expect(padding(bucketed)).toBeLessThan(padding(plain) / 3);
    const lengths = bucketed.map((b) => b.T);
    expect(lengths).not.toEqual([...lengths].sort((x, y) => x - y)); // batch order is shuffled
    const other = makeBatches(examples, { batchSize: 8, rng: new Rng(2), bucket: true });
    expect(other.map((b) => b.rows)).not.toEqual(bucketed.map((b) => b.rows));
  });

  it('padTo rounds each length up to a multiple, never past max; the padding is masked', () => {
    // lengths 3..62; max 60: a batch whose longest row is 57..60 stops at 60, 61 and 62 stay as they are
    const padded = (n: number) => Math.max(n, Math.min(Math.ceil(n / 8) * 8, 60));
    const bs = makeBatches(examples, { batchSize: 8, rng: new Rng(1), bucket: true, padTo: { multiple: 8, max: 60 } });
    checkBatches(bs, 8, padded);
    const lengths = new Set(bs.map((b) => b.T));
    expect([...lengths].every((T) => T % 8 === 0 || T >= 60)).toBe(true);
    expect(lengths.size).toBeLessThanOrEqual(10);
    const plain = makeBatches(examples, { batchSize: 8, rng: new Rng(1), bucket: true });
    expect(bs.map((b) => b.rows)).toEqual(plain.map((b) => b.rows)); // the same batches, only longer
    expect(new Set(plain.map((b) => b.T)).size).toBeGreaterThan(2 * lengths.size);
    // multiple 1: nothing changes
    expect(makeBatches(examples, { batchSize: 8, padTo: { multiple: 1, max: 60 } }).map((b) => b.T)).toEqual(
      makeBatches(examples, { batchSize: 8 }).map((b) => b.T),
    );
  });

  it('gives labels null when any example is unlabeled', () => {
    const ex: Example[] = [examples[0], { ...examples[1], labels: null }];
    expect(makeBatches(ex, { batchSize: 2 })[0].labels).toBeNull();
    expect(makeBatches(ex, { batchSize: 1 })[0].labels).not.toBeNull();
  });

  it('rejects a bad batch size', () => {
    expect(() => makeBatches(examples, { batchSize: 0 })).toThrow(UserError);
  });
});
