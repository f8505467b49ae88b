import { describe, expect, it } from 'vitest';
import {
  allMetrics,
  aucOrNull,
  bestF1Threshold,
  f1At,
  labelLogloss,
  macroAuc,
  microF1,
  microF1AtThresholds,
  mlogloss,
  perLabelMetrics,
  priorProbs,
  rocAuc,
  score,
  tuneThresholds,
  worstFirst,
} from '../src/engine/train/metrics';

describe('the reference metric, 1 - mlogloss', () => {
  it('matches a hand computation', () => {
    // Two rows, L = 2: row 0 p=(0.9, 0.2) y=(1,0); row 1 p=(0.5, 0.99) y=(0,1)
    const p = [0.9, 0.2, 0.5, 0.99];
    const y = [1, 0, 0, 1];
    const r0 = (-Math.log(0.9) - Math.log(0.8)) / 2;
    const r1 = (-Math.log(0.5) - Math.log(0.99)) / 2;
    expect(mlogloss(p, y, 2)).toBeCloseTo((r0 + r1) / 2, 12);
    expect(score(p, y, 2)).toBeCloseTo(1 - (r0 + r1) / 2, 12);
  });
  it('clips probabilities to [1e-15, 1 - 1e-15]', () => {
    // p=0 for a positive and p=1 for a negative: both clipped; 1 - (1 - 1e-15) rounds as in numpy.
    expect(mlogloss([0, 1], [1, 0], 2)).toBeCloseTo((-Math.log(1e-15) - Math.log(1 - (1 - 1e-15))) / 2, 9);
    expect(mlogloss([1, 0], [1, 0], 2)).toBeCloseTo(-Math.log(1 - 1e-15), 12);
  });
  it('rejects mismatched sizes', () => {
    expect(() => mlogloss([0.5], [1, 0], 2)).toThrow();
  });
});

describe('micro-F1 and ROC-AUC', () => {
  it('micro-F1 at 0.5', () => {
    // tp=2 (0.9/1, 0.6/1), fp=1 (0.7/0), fn=1 (0.1/1)
    expect(microF1([0.9, 0.6, 0.7, 0.1, 0.2], [1, 1, 0, 1, 0])).toBeCloseTo((2 * 2) / (2 * 2 + 1 + 1), 12);
  });
  it('AUC: perfect, inverted, ties, single class', () => {
    expect(rocAuc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])).toBe(1);
    expect(rocAuc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1])).toBe(0);
    expect(rocAuc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1])).toBe(0.5);
    // 3 positive/negative pairs of 4 ordered correctly: (0.3>0.2), (0.3>0.1), (0.15>0.1) yes; (0.15>0.2) no
    expect(rocAuc([0.1, 0.2, 0.15, 0.3], [0, 0, 1, 1])).toBe(0.75);
    expect(rocAuc([0.1, 0.2], [1, 1])).toBeNaN();
  });
  it('macro AUC skips labels with one class', () => {
    // label 0: perfect; label 1: all negative (skipped)
    expect(macroAuc([0.9, 0.1, 0.1, 0.2], [1, 0, 0, 0], 2)).toBe(1);
  });
  it('the label prior predicts training frequencies', () => {
    const p = priorProbs([1, 0, 1, 1, 0, 0, 1, 0], 2, 2);
    expect(Array.from(p)).toEqual([0.75, 0.25, 0.75, 0.25]);
    const m = allMetrics(p, [1, 0, 0, 0], 2);
    expect(m.rows).toBe(2);
    expect(m.score).toBeLessThan(1);
  });
});

describe('per-label metrics and F1-best thresholds', () => {
  it('per-label log-loss: hand-worked, and their mean is mlogloss', () => {
    const p = [0.9, 0.2, 0.5, 0.99];
    const y = [1, 0, 0, 1];
    const ll = labelLogloss(p, y, 2);
    expect(ll[0]).toBeCloseTo((-Math.log(0.9) - Math.log(0.5)) / 2, 12);
    expect(ll[1]).toBeCloseTo((-Math.log(0.8) - Math.log(0.99)) / 2, 12);
    expect((ll[0] + ll[1]) / 2).toBeCloseTo(mlogloss(p, y, 2), 12);
  });
  it('AUC with ties: constant predictions give 0.5; one class gives null, not NaN', () => {
    expect(aucOrNull([0.3, 0.3, 0.3, 0.3, 0.3], [1, 0, 0, 1, 0])).toBe(0.5);
    // a tie across the classes counts half: pairs (0.4 vs 0.4) = 0.5, (0.4 vs 0.1) = 1 -> 0.75
    expect(aucOrNull([0.4, 0.4, 0.1], [1, 0, 0])).toBe(0.75);
    expect(aucOrNull([0.1, 0.9], [0, 0])).toBeNull();
    expect(aucOrNull([0.1, 0.9], [1, 1])).toBeNull();
  });
  it('a perfectly separable label: F1 1 at a threshold between the classes', () => {
    const t = bestF1Threshold([0.9, 0.1, 0.8, 0.2, 0.15], [1, 0, 1, 0, 0]);
    expect(t.f1).toBe(1);
    // halfway between the lowest positive (0.8) and the highest negative (0.2)
    expect(t.threshold).toBeCloseTo(0.5, 12);
    expect(f1At([0.9, 0.1, 0.8, 0.2, 0.15], [1, 0, 1, 0, 0], t.threshold)).toBe(1);
  });
  it('separable with a threshold far from 0.5 (a rare label the model under-predicts)', () => {
    const t = bestF1Threshold([0.3, 0.05, 0.25, 0.1], [1, 0, 1, 0]);
    expect(t.f1).toBe(1);
    expect(t.threshold).toBeCloseTo(0.175, 12);
    expect(f1At([0.3, 0.05, 0.25, 0.1], [1, 0, 1, 0], 0.5)).toBe(0);
  });
  it('no positives in validation: threshold 0.5, F1 and AUC null', () => {
    expect(bestF1Threshold([0.7, 0.2, 0.1], [0, 0, 0])).toEqual({ threshold: 0.5, f1: null });
    expect(bestF1Threshold([], [])).toEqual({ threshold: 0.5, f1: null });
    const [m] = perLabelMetrics([0.7, 0.2, 0.1], [0, 0, 0], 1);
    expect(m.auc).toBeNull();
    expect(m.f1).toBeNull();
    expect(m.support).toBe(0);
    expect(m.threshold).toBe(0.5);
    expect(JSON.stringify(m)).not.toContain('NaN');
  });
  it('searches only the distinct probabilities; tied rows move together', () => {
    // 0.6 x3 (2 positives, 1 negative), 0.2 x2 (1 positive, 1 negative):
    // t=0.6: tp 2 fp 1 fn 1 -> F1 4/6; t=0.2: tp 3 fp 2 fn 0 -> F1 6/8. Best: all positive, at
    // 0.1 (halfway between the lowest probability and 0).
    const t = bestF1Threshold([0.6, 0.2, 0.6, 0.6, 0.2], [1, 1, 1, 0, 0]);
    expect(t.f1).toBeCloseTo(0.75, 12);
    expect(t.threshold).toBe(0.1);
  });
  it('a tie in F1 goes to the highest threshold (fewest positive decisions), whatever the row order', () => {
    // No tie first: t=0.95: tp1 fp0 fn2 -> 2/4; t=0.9: tp2 fn1 -> 4/5; t=0.5: tp2 fp1 fn1 -> 4/6;
    // t=0.3: tp3 fp1 -> 6/7 (best); t=0.25: tp3 fp2 -> 6/8; t=0.2: tp3 fp3 -> 6/9.
    const s = [0.95, 0.9, 0.5, 0.3, 0.25, 0.2];
    const y = [1, 1, 0, 1, 0, 0];
    expect(bestF1Threshold(s, y)).toEqual({ threshold: (0.3 + 0.25) / 2, f1: 6 / 7 });
    // An exact tie: t=0.8 (tp1 fp0 fn1 -> 2/3) and t=0.4 (tp2 fp2 fn0 -> 4/6): 0.8 wins, in any order.
    const s2 = [0.8, 0.6, 0.5, 0.4, 0.1];
    const y2 = [1, 0, 0, 1, 0];
    const a = bestF1Threshold(s2, y2);
    const b = bestF1Threshold([...s2].reverse(), [...y2].reverse());
    expect(a).toEqual(b);
    expect(a.threshold).toBeCloseTo(0.7, 12);
    expect(a.f1).toBeCloseTo(2 / 3, 12);
  });
  it('every label gets its own threshold; micro-F1 at them is reported beside micro-F1 at 0.5', () => {
    // label 0 separable at 0.5; label 1 separable only below 0.5 (its positives at 0.3 and 0.4)
    const p = [0.9, 0.3, 0.1, 0.4, 0.8, 0.1, 0.2, 0.05];
    const y = [1, 1, 0, 1, 1, 0, 0, 0];
    const t = tuneThresholds(p, y, 2);
    expect(t.map((c) => c.f1)).toEqual([1, 1]);
    expect(t[1].threshold).toBeCloseTo(0.2, 12); // between 0.3 and 0.1
    expect(
      microF1AtThresholds(
        p,
        y,
        t.map((c) => c.threshold),
      ),
    ).toBe(1);
    expect(microF1(p, y)).toBeCloseTo(4 / 6, 12); // at 0.5 label 1's positives are missed
  });
  it('perLabelMetrics uses the thresholds given, and worstFirst orders by log-loss then index', () => {
    const p = [0.9, 0.3, 0.1, 0.4];
    const y = [1, 1, 0, 1];
    const m = perLabelMetrics(p, y, 2, [0.5, 0.35]);
    expect(m.map((x) => x.f1)).toEqual([1, 2 / 3]);
    expect(m.map((x) => x.support)).toEqual([1, 2]);
    expect(m[1].auc).toBeNull();
    expect(worstFirst(m).map((x) => x.label)).toEqual([1, 0]);
    expect(
      worstFirst([
        { label: 1, logloss: 0.2 },
        { label: 0, logloss: 0.2 },
      ]).map((x) => x.label),
    ).toEqual([0, 1]);
  });
});
