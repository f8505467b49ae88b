import { describe, expect, it } from 'vitest';
import { makeBatches, type Example } from '../src/engine/data/encode';
import { maskBatch, maskTokens, pickTokens } from '../src/engine/data/masking';
import { Rng } from '../src/engine/data/rng';
import { CLS_ID, MASK_ID, SEP_ID } from '../src/engine/data/vocab';

const VOCAB = 300;

/** Batches of random lengths; every example also contains [UNK] tokens, which are never candidates. */
function batches(seed: number, n: number) {
  const rng = new Rng(seed);
  const ex: Example[] = Array.from({ length: n }, (_, i) => {
    const len = 4 + rng.int(60);
    const ids = Int32Array.from({ length: len }, (_, t) =>
      t === 0 ? CLS_ID : t === len - 1 ? SEP_ID : rng.next() < 0.05 ? 1 : 5 + rng.int(VOCAB - 5),
    );
    return { ids, labels: null, row: i };
  });
  return makeBatches(ex, { batchSize: 16, rng });
}

describe('maskBatch', () => {
  it('picks ~15% of the real non-special tokens and corrupts them 80/10/10', () => {
    const rng = new Rng(11);
    let candidates = 0;
    let picked = 0;
    let masked = 0;
    let random = 0;
    let kept = 0;
    for (const b of batches(1, 640)) {
      const m = maskBatch(b, VOCAB, rng);
      const pos = new Set(m.positions);
      expect(m.targets.length).toBe(m.positions.length);
      for (let i = 0; i < b.ids.length; i++) {
        const isCandidate = b.mask[i] === 1 && b.ids[i] >= 5;
        if (isCandidate) candidates++;
        if (!pos.has(i)) {
          expect(m.input[i]).toBe(b.ids[i]); // unpicked positions (specials, pads included) are untouched
          continue;
        }
        expect(isCandidate).toBe(true); // never a special or a pad
      }
      m.positions.forEach((p, k) => {
        if (k > 0) expect(p).toBeGreaterThan(m.positions[k - 1]);
        expect(m.targets[k]).toBe(b.ids[p]);
        picked++;
        if (m.input[p] === MASK_ID) masked++;
        else if (m.input[p] === b.ids[p]) kept++;
        else {
          random++;
          expect(m.input[p] >= 5 && m.input[p] < VOCAB).toBe(true);
        }
      });
    }
    expect(candidates).toBeGreaterThan(15_000);
    expect(Math.abs(picked / candidates - 0.15)).toBeLessThan(0.01);
    expect(Math.abs(masked / picked - 0.8)).toBeLessThan(0.02);
    // A "random" replacement can draw the original id (1/295); it then counts as kept.
    expect(Math.abs(random / picked - 0.1)).toBeLessThan(0.015);
    expect(Math.abs(kept / picked - 0.1)).toBeLessThan(0.015);
  });

  it('honours prob, predicts at least one token, and is deterministic by rng state', () => {
    const [b] = batches(2, 16);
    const cand = Array.from(b.ids).filter((id, i) => b.mask[i] === 1 && id >= 5).length;
    expect(maskBatch(b, VOCAB, new Rng(1), 1).positions.length).toBe(cand);
    expect(maskBatch(b, VOCAB, new Rng(1), 1e-9).positions.length).toBe(1);
    expect(maskBatch(b, VOCAB, new Rng(5))).toEqual(maskBatch(b, VOCAB, new Rng(5)));
    expect(b.ids).toEqual(batches(2, 16)[0].ids); // the batch itself is not modified
  });

  it('n-gram masking: ~15% picked in runs of 1..3 tokens within a row, each run corrupted as a whole', () => {
    const rng = new Rng(13);
    let candidates = 0;
    let picked = 0;
    const runLengths = [0, 0, 0, 0];
    let adjacent = 0;
    let mixed = 0;
    for (const b of batches(3, 640)) {
      const m = maskBatch(b, VOCAB, rng, 0.15, 3);
      for (let i = 0; i < b.ids.length; i++) if (b.mask[i] === 1 && b.ids[i] >= 5) candidates++;
      picked += m.positions.length;
      // Split the picked positions into maximal runs of consecutive positions in one row.
      let k = 0;
      while (k < m.positions.length) {
        let n = 1;
        while (
          k + n < m.positions.length &&
          m.positions[k + n] === m.positions[k] + n &&
          Math.floor(m.positions[k + n] / b.T) === Math.floor(m.positions[k] / b.T)
        )
          n++;
        runLengths[Math.min(n, 3)]++;
        for (let j = k; j < k + n; j++) expect(b.mask[m.positions[j]] === 1 && b.ids[m.positions[j]] >= 5).toBe(true);
        k += n;
      }
      // The corruption is drawn per run: neighbours inside a run are corrupted the same way. Two
      // neighbouring picked tokens differ in kind only where two runs happen to touch (rare);
      // with a draw per token they would differ 34% of the time.
      const kind = (p: number) => (m.input[p] === MASK_ID ? 0 : m.input[p] === b.ids[p] ? 1 : 2);
      m.positions.forEach((p, j) => {
        expect(m.targets[j]).toBe(b.ids[p]);
        if (j > 0 && m.positions[j - 1] === p - 1 && Math.floor(p / b.T) === Math.floor((p - 1) / b.T)) {
          adjacent++;
          if (kind(p) !== kind(p - 1)) mixed++;
        }
      });
    }
    expect(Math.abs(picked / candidates - 0.15)).toBeLessThan(0.02);
    // Runs of 2 and 3 appear (1/n weights: 6/11 single, 3/11 pairs, 2/11 triples before merging).
    expect(runLengths[2]).toBeGreaterThan(runLengths[1] * 0.25);
    expect(runLengths[3]).toBeGreaterThan(runLengths[1] * 0.15);
    expect(adjacent).toBeGreaterThan(1000);
    expect(mixed / adjacent).toBeLessThan(0.08);
  });

  it('n-gram masking: a bad maxNgram is refused', () => {
    const [b] = batches(4, 16);
    expect(() => maskBatch(b, VOCAB, new Rng(1), 0.15, 0)).toThrow(/maxNgram/);
    expect(maskBatch(b, VOCAB, new Rng(5), 0.15, 3)).toEqual(maskBatch(b, VOCAB, new Rng(5), 0.15, 3));
  });

  it('returns no positions when there is no candidate', () => {
    const ex: Example[] = [{ ids: Int32Array.from([CLS_ID, 1, SEP_ID]), labels: null, row: 0 }];
    const m = maskBatch(makeBatches(ex, { batchSize: 1 })[0], VOCAB, new Rng(1));
    expect(m.positions.length).toBe(0);
    expect(Array.from(m.input)).toEqual([CLS_ID, 1, SEP_ID]);
  });
});

describe('maskTokens (token masking as augmentation)', () => {
  const specials = new Set([0, 1, 2, 3, 4]);
  it('masks about prob of the real, non-special tokens and nothing else, leaving the input as it was', () => {
    let real = 0;
    let picked = 0;
    const rng = new Rng(5);
    for (const b of batches(2, 320)) {
      const before = b.ids.slice();
      const out = maskTokens(b.ids, b.mask, specials, MASK_ID, 0.2, rng);
      expect(Array.from(b.ids)).toEqual(Array.from(before));
      for (let i = 0; i < out.length; i++) {
        const isReal = b.mask[i] > 0 && !specials.has(b.ids[i]);
        real += isReal ? 1 : 0;
        if (out[i] !== b.ids[i]) {
          expect(isReal).toBe(true);
          expect(out[i]).toBe(MASK_ID);
          picked++;
        }
      }
    }
    expect(picked / real).toBeGreaterThan(0.18);
    expect(picked / real).toBeLessThan(0.22);
  });

  it('picks nothing at 0 and every real token at 1; the same seed picks the same tokens', () => {
    const [b] = batches(3, 16);
    const real = Array.from(b.ids.keys()).filter((i) => b.mask[i] > 0 && !specials.has(b.ids[i]));
    expect(pickTokens(b.ids, b.mask, specials, 0, new Rng(1))).toEqual([]);
    expect(pickTokens(b.ids, b.mask, specials, 1, new Rng(1))).toEqual(real);
    const a = pickTokens(b.ids, b.mask, specials, 0.3, new Rng(9));
    expect(pickTokens(b.ids, b.mask, specials, 0.3, new Rng(9))).toEqual(a);
    expect(a.length).toBeGreaterThan(0);
  });
});
