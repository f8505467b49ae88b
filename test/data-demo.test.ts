import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readGaiicCsv, type Row } from '../src/engine/data/csv';
import {
  DEMO_DEFAULTS,
  demoLanguage,
  generateDemo,
  LABEL_COUNT_DIST,
  LABEL_RATES,
  writeDemo,
} from '../src/engine/data/demo';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'data-demo-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const L = 17;
const { train, test } = generateDemo(DEMO_DEFAULTS);

/** The project's metric: 1 - mean over rows of the mean over labels of binary log loss. */
function oneMinusLogLoss(rows: Row[], predict: (r: Row) => number[]): number {
  let total = 0;
  for (const r of rows) {
    const p = predict(r);
    let ll = 0;
    for (let l = 0; l < L; l++) {
      const q = Math.min(1 - 1e-15, Math.max(1e-15, p[l]));
      ll -= r.labels!.includes(l) ? Math.log(q) : Math.log(1 - q);
    }
    total += ll / L;
  }
  return 1 - total / rows.length;
}

/**
 * Per-label logistic regression on binary features by plain SGD. Features: token presence and,
 * when `bigrams`, hashed adjacent-pair presence (the only order information a linear model gets).
 */
function logisticRegression(bigrams: boolean): (r: Row) => number[] {
  const D = 1 << 16;
  const features = (tokens: number[]): number[] => {
    const f = new Set<number>(tokens);
    if (bigrams)
      for (let i = 1; i < tokens.length; i++) f.add(858 + ((tokens[i - 1] * 7919 + tokens[i] * 104729) % (D - 858)));
    return [...f];
  };
  const X = train.map((r) => features(r.tokens));
  const prior = priorRates();
  const w = new Float64Array(L * D);
  const b = prior.map((p) => Math.log(p / (1 - p)));
  const lr = 0.05;
  for (let epoch = 0; epoch < 5; epoch++) {
    X.forEach((x, i) => {
      for (let l = 0; l < L; l++) {
        let z = b[l];
        for (const f of x) z += w[l * D + f];
        const g = 1 / (1 + Math.exp(-z)) - (train[i].labels!.includes(l) ? 1 : 0);
        b[l] -= lr * g;
        for (const f of x) w[l * D + f] -= lr * g;
      }
    });
  }
  return (r) => {
    const x = features(r.tokens);
    return b.map((bl, l) => 1 / (1 + Math.exp(-x.reduce((z, f) => z + w[l * D + f], bl))));
  };
}

function priorRates(): number[] {
  const p = new Array(L).fill(0);
  for (const r of train) for (const l of r.labels!) p[l] += 1 / train.length;
  return p;
}

describe('generateDemo', () => {
  it('is deterministic by seed, and seeds differ', () => {
    const o = { trainRows: 50, testRows: 10, seed: 3 };
    expect(generateDemo(o)).toEqual(generateDemo(o));
    expect(generateDemo({ ...o, seed: 4 }).train).not.toEqual(generateDemo(o).train);
  });

  it('makes GAIIC-like rows: sizes, unique ids, tokens 0..857, lengths around 40', () => {
    expect(train.length).toBe(3000);
    expect(test.length).toBe(600);
    const all = [...train, ...test];
    expect(new Set(all.map((r) => r.id)).size).toBe(all.length);
    const lengths = all.map((r) => r.tokens.length);
    const mean = lengths.reduce((a, b) => a + b, 0) / lengths.length;
    expect(mean).toBeGreaterThan(36);
    expect(mean).toBeLessThan(46);
    expect(Math.min(...lengths)).toBeGreaterThanOrEqual(8);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(115);
    const badRows = all.filter(
      (r) =>
        !r.tokens.every((t) => Number.isInteger(t) && t >= 0 && t <= 857) ||
        r.labels === null ||
        new Set(r.labels).size !== r.labels.length ||
        !r.labels.every((l) => Number.isInteger(l) && l >= 0 && l < L),
    );
    expect(badRows).toEqual([]);
  });

  it('has label rates and label counts near the real data', () => {
    const rates = priorRates();
    rates.forEach((r, l) => expect(Math.abs(r - LABEL_RATES[l])).toBeLessThan(0.03));
    const counts = new Array(LABEL_COUNT_DIST.length).fill(0);
    for (const r of train) counts[r.labels!.length] += 1 / train.length;
    expect(Math.abs(counts[0] - 0.263)).toBeLessThan(0.03); // 26% of rows have no label
    expect(Math.abs(counts[1] - 0.443)).toBeLessThan(0.03);
    expect(counts[1] + counts[2]).toBeGreaterThan(0.5); // most rows have 1-2 labels
  });

  it('has its hidden structure: phrases mark labels, a negation right before a phrase marks absence', () => {
    const { negations, phrases } = demoLanguage();
    expect(phrases).toHaveLength(L);
    /** Labels whose phrases occur in the row, plainly or right after a negation token. */
    const mentionsOf = (r: Row) => {
      const plain = new Set<number>();
      const negated = new Set<number>();
      phrases.forEach((ps, l) => {
        for (const p of ps) {
          for (let i = 0; i + p.length <= r.tokens.length; i++) {
            if (!p.every((t, k) => r.tokens[i + k] === t)) continue;
            (negations.includes(r.tokens[i - 1]) ? negated : plain).add(l);
          }
        }
      });
      return { plain, negated };
    };
    let present = 0;
    let presentMentioned = 0;
    let plain = 0;
    let plainRight = 0;
    let rowsWithNegation = 0;
    for (const r of train) {
      const m = mentionsOf(r);
      for (const l of m.negated) expect(r.labels).not.toContain(l); // negated mention => label absent, always
      if (m.negated.size > 0) rowsWithNegation++;
      present += r.labels!.length;
      presentMentioned += r.labels!.filter((l) => m.plain.has(l)).length;
      plain += m.plain.size;
      plainRight += [...m.plain].filter((l) => r.labels!.includes(l)).length;
    }
    expect(presentMentioned / present).toBeGreaterThan(0.85); // most present labels are mentioned...
    expect(presentMentioned / present).toBeLessThan(0.97); // ...but not all (noise)
    expect(plainRight / plain).toBeGreaterThan(0.9); // a plain mention mostly means the label...
    expect(plainRight / plain).toBeLessThan(0.995); // ...but not always (noise)
    expect(rowsWithNegation / train.length).toBeGreaterThan(0.3);

    // The phrase-presence rule alone scores far above the label prior.
    const prior = priorRates();
    const rule = oneMinusLogLoss(test, (r) => {
      const m = mentionsOf(r);
      return prior.map((_, l) => (m.plain.has(l) ? 0.9 : 0.01));
    });
    expect(rule).toBeGreaterThan(oneMinusLogLoss(test, () => prior) + 0.1);
  });

  it('has learnable signal, and word order adds to it', () => {
    const prior = priorRates();
    const base = oneMinusLogLoss(test, () => prior);
    const bagOfWords = oneMinusLogLoss(test, logisticRegression(false));
    const withBigrams = oneMinusLogLoss(test, logisticRegression(true));
    // Measured with seed 1: prior 0.718, unigrams 0.872, unigrams+bigrams 0.909.
    expect(base).toBeGreaterThan(0.68);
    expect(base).toBeLessThan(0.78);
    expect(bagOfWords).toBeGreaterThan(base + 0.08);
    expect(withBigrams).toBeGreaterThan(bagOfWords + 0.01);
    expect(withBigrams).toBeLessThan(0.97); // noise keeps it from being trivially perfect
  });
});

describe('writeDemo', () => {
  it('writes train.csv, test.csv and README.md that read back to the generated rows', () => {
    const dir = path.join(tmp, 'demo');
    const o = { trainRows: 40, testRows: 12, seed: 9 };
    const files = writeDemo(dir, o);
    expect(files).toEqual({ train: path.join(dir, 'train.csv'), test: path.join(dir, 'test.csv') });
    expect(fs.readdirSync(dir).sort()).toEqual(['.bert-pruner', 'README.md', 'test.csv', 'train.csv']);
    const gen = generateDemo(o);
    const strip = (rows: Row[]) => rows.map(({ id, tokens, labels }) => ({ id, tokens, labels }));
    expect(strip(readGaiicCsv(files.train, { requireLabels: true }).rows)).toEqual(strip(gen.train));
    expect(strip(readGaiicCsv(files.test, { requireLabels: true }).rows)).toEqual(strip(gen.test));
    expect(fs.readFileSync(path.join(dir, 'README.md'), 'utf8')).toMatch(/seed 9/);
  });
});
