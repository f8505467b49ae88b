import { describe, expect, it } from 'vitest';
import { allMetrics, macroAuc, microF1, mlogloss, priorProbs, rocAuc, score } from '../src/engine/train/metrics';

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
