import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { mlmStep } from '../src/engine/train/pretrain';
import { tinyModel } from './helpers/tiny';
import { makeBatches, type Example } from '../src/engine/data/encode';
import { coarseBucket, maskBatch, maskTokens, padMasked, pickTokens } from '../src/engine/data/masking';
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

describe('padMasked (few shapes for recorded MLM steps)', () => {
  it('coarseBucket: a multiple of 8, less than max(8, n / 4) above n, monotone', () => {
    expect([0, 1, 8, 9, 63, 64, 65, 100, 129, 1000].map((n) => coarseBucket(n))).toEqual([
      0, 8, 8, 16, 64, 64, 80, 112, 160, 1024,
    ]);
    let prev = 0;
    for (let n = 1; n <= 5000; n++) {
      const c = coarseBucket(n);
      expect(c % 8).toBe(0);
      expect(c).toBeGreaterThanOrEqual(n);
      expect(c - n).toBeLessThan(Math.max(8, n / 4));
      expect(c).toBeGreaterThanOrEqual(prev);
      prev = c;
    }
  });

  it('pads positions and targets with weight 0, keeping the picked ones and the input', () => {
    for (const b of batches(4, 40)) {
      const m = maskBatch(b, VOCAB, new Rng(8));
      const p = padMasked(m);
      const n = m.positions.length;
      expect(p.positions.length).toBe(coarseBucket(n));
      expect(Array.from(p.positions.subarray(0, n))).toEqual(Array.from(m.positions));
      expect(Array.from(p.targets.subarray(0, n))).toEqual(Array.from(m.targets));
      expect(p.positions.subarray(n).every((x) => x === 0)).toBe(true);
      expect(Array.from(p.weights!)).toEqual([...new Array(n).fill(1), ...new Array(p.positions.length - n).fill(0)]);
      expect(p.input).toBe(m.input);
    }
  });

  it('the MLM loss of a batch padded in length and in masked positions is the unpadded loss', () => {
    const { cfg, params } = tinyModel(3, {}, true); // vocabulary of 30, at most 32 tokens
    const rng = new Rng(12);
    const ex: Example[] = Array.from({ length: 24 }, (_, i) => {
      const len = 4 + rng.int(20);
      return {
        ids: Int32Array.from({ length: len }, (_, t) => (t === 0 ? CLS_ID : t === len - 1 ? SEP_ID : 5 + rng.int(25))),
        labels: null,
        row: i,
      };
    });
    const plain = makeBatches(ex, { batchSize: 6, rng: new Rng(1), bucket: true });
    const padded = makeBatches(ex, { batchSize: 6, rng: new Rng(1), bucket: true, padTo: { multiple: 8, max: 32 } });
    let longer = 0;
    let extra = 0;
    plain.forEach((b, i) => {
      const p = padded[i];
      longer += p.T - b.T;
      const m = maskBatch(b, 30, new Rng(20 + i));
      const pm = padMasked(maskBatch(p, 30, new Rng(20 + i))); // the same tokens picked
      expect(Array.from(pm.targets.subarray(0, m.targets.length))).toEqual(Array.from(m.targets));
      extra += pm.positions.length - m.positions.length;
      const [a, c] = tf.tidy(() => [
        mlmStep(params, cfg, { ...b, masked: m }, null).loss.dataSync()[0],
        mlmStep(params, cfg, { ...p, masked: pm }, null).loss.dataSync()[0],
      ]);
      expect(Math.abs(a - c)).toBeLessThan(1e-5 * Math.abs(a));
    });
    expect(longer).toBeGreaterThan(0); // some batches were padded, in length
    expect(extra).toBeGreaterThan(0); // and in masked positions
    for (const v of params.values()) v.dispose();
  });
});
