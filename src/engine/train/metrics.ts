// Evaluation metrics, pure JavaScript over flat [N * L] arrays (row-major, L labels; 17 for GAIIC).
// Multi-label: per-label binary metrics; single-label (one class a row): accuracy and macro-F1.

const CLIP = 1e-15;

/**
 * The reference metric: 1 - mlogloss, where mlogloss is the mean over rows of the mean over the
 * L labels of the binary log-loss, probabilities clipped to [1e-15, 1 - 1e-15].
 */
export function score(probs: ArrayLike<number>, labels: ArrayLike<number>, L = 17): number {
  return 1 - mlogloss(probs, labels, L);
}

export function mlogloss(probs: ArrayLike<number>, labels: ArrayLike<number>, L = 17): number {
  if (probs.length !== labels.length || probs.length % L !== 0)
    throw new Error('metric: probs and labels differ in size');
  const N = probs.length / L;
  if (N === 0) return NaN;
  let total = 0;
  for (let i = 0; i < N; i++) {
    let row = 0;
    for (let j = 0; j < L; j++) {
      const p = Math.min(1 - CLIP, Math.max(CLIP, probs[i * L + j]));
      const y = labels[i * L + j];
      row += -(y * Math.log(p) + (1 - y) * Math.log(1 - p));
    }
    total += row / L;
  }
  return total / N;
}

/** Micro-averaged F1 with the threshold 0.5. */
export function microF1(probs: ArrayLike<number>, labels: ArrayLike<number>, threshold = 0.5): number {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < probs.length; i++) {
    const pred = probs[i] >= threshold;
    const y = labels[i] >= 0.5;
    if (pred && y) tp++;
    else if (pred) fp++;
    else if (y) fn++;
  }
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

/** ROC-AUC of one label (ties get half credit); NaN when only one class is present. */
export function rocAuc(scores: number[], ys: number[]): number {
  const idx = scores.map((_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let pos = 0;
  let neg = 0;
  for (const y of ys) {
    if (y >= 0.5) pos++;
    else neg++;
  }
  if (pos === 0 || neg === 0) return NaN;
  // Rank-sum (Mann-Whitney U) with average ranks for ties.
  let rankSum = 0;
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (ys[idx[k]] >= 0.5) rankSum += avg;
    i = j + 1;
  }
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Macro ROC-AUC over the labels that have both classes present. */
export function macroAuc(probs: ArrayLike<number>, labels: ArrayLike<number>, L = 17): number {
  const N = probs.length / L;
  const aucs: number[] = [];
  for (let j = 0; j < L; j++) {
    const s: number[] = [];
    const y: number[] = [];
    for (let i = 0; i < N; i++) {
      s.push(probs[i * L + j]);
      y.push(labels[i * L + j]);
    }
    const a = rocAuc(s, y);
    if (!Number.isNaN(a)) aucs.push(a);
  }
  return aucs.length ? aucs.reduce((a, b) => a + b, 0) / aucs.length : NaN;
}

export interface EvalMetrics {
  /** The problem's score: 1 - mlogloss (multi-label, the reference metric), accuracy (single-label). */
  score: number;
  /** Multi-label: mean binary log-loss; single-label: categorical cross-entropy. */
  mlogloss: number;
  micro_f1: number;
  macro_auc: number;
  rows: number;
  /** Single-label: the share of rows whose argmax is their label. */
  accuracy?: number;
  /** Single-label: the mean over classes of the F1 of the argmax decisions. */
  macro_f1?: number;
}

/** The argmax of every row of a flat [N * L] array. */
export function argmaxRows(probs: ArrayLike<number>, L: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < probs.length; i += L) {
    let best = 0;
    for (let j = 1; j < L; j++) if (probs[i + j] > probs[i + best]) best = j;
    out.push(best);
  }
  return out;
}

/** Single-label per-class counts of the argmax decisions: true positives, predicted, actual. */
function classCounts(probs: ArrayLike<number>, labels: ArrayLike<number>, L: number) {
  const tp = new Array<number>(L).fill(0);
  const pred = new Array<number>(L).fill(0);
  const actual = new Array<number>(L).fill(0);
  argmaxRows(probs, L).forEach((k, i) => {
    pred[k]++;
    for (let j = 0; j < L; j++) if (labels[i * L + j] >= 0.5) actual[j]++;
    if (labels[i * L + k] >= 0.5) tp[k]++;
  });
  return { tp, pred, actual };
}

/**
 * Single-label metrics: accuracy of the argmax, macro-F1 over the classes present in the labels or
 * the predictions (as scikit-learn averages), and the categorical cross-entropy (probabilities
 * clipped to [1e-15, 1]; a row's target is its labels, normalised).
 */
export function singleLabelMetrics(probs: ArrayLike<number>, labels: ArrayLike<number>, L: number) {
  const N = probs.length / L;
  const { tp, pred, actual } = classCounts(probs, labels, L);
  const hits = tp.reduce((a, b) => a + b, 0);
  const f1s = [...Array(L).keys()]
    .filter((j) => pred[j] + actual[j] > 0)
    .map((j) => (2 * tp[j]) / (pred[j] + actual[j]));
  let ce = 0;
  for (let i = 0; i < N; i++) {
    let n = 0;
    for (let j = 0; j < L; j++) n += labels[i * L + j] >= 0.5 ? 1 : 0;
    for (let j = 0; j < L; j++) if (labels[i * L + j] >= 0.5) ce -= Math.log(Math.max(CLIP, probs[i * L + j])) / n;
  }
  return {
    accuracy: N === 0 ? NaN : hits / N,
    macro_f1: f1s.length ? f1s.reduce((a, b) => a + b, 0) / f1s.length : 0,
    cross_entropy: N === 0 ? NaN : ce / N,
  };
}

export function allMetrics(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  L = 17,
  singleLabel = false,
): EvalMetrics {
  if (singleLabel) {
    const m = singleLabelMetrics(probs, labels, L);
    return {
      score: m.accuracy,
      mlogloss: m.cross_entropy,
      micro_f1: m.accuracy,
      macro_auc: macroAuc(probs, labels, L),
      rows: probs.length / L,
      accuracy: m.accuracy,
      macro_f1: m.macro_f1,
    };
  }
  const ml = mlogloss(probs, labels, L);
  return {
    score: 1 - ml,
    mlogloss: ml,
    micro_f1: microF1(probs, labels),
    macro_auc: macroAuc(probs, labels, L),
    rows: probs.length / L,
  };
}

/** The label-prior baseline: every row predicts the training label frequencies. */
export function priorProbs(trainLabels: ArrayLike<number>, nRows: number, L = 17): Float32Array {
  const N = trainLabels.length / L;
  const freq = new Float64Array(L);
  for (let i = 0; i < N; i++) for (let j = 0; j < L; j++) freq[j] += trainLabels[i * L + j];
  const out = new Float32Array(nRows * L);
  for (let i = 0; i < nRows; i++) for (let j = 0; j < L; j++) out[i * L + j] = freq[j] / Math.max(1, N);
  return out;
}

// ---- per-label metrics and decision thresholds -------------------------------------------------

/** Column j of a flat [N * L] array. */
export function column(x: ArrayLike<number>, j: number, L = 17): number[] {
  const out: number[] = [];
  for (let i = j; i < x.length; i += L) out.push(x[i]);
  return out;
}

/** Mean binary log-loss of each label (clipped like mlogloss); their mean is mlogloss. */
export function labelLogloss(probs: ArrayLike<number>, labels: ArrayLike<number>, L = 17): number[] {
  if (probs.length !== labels.length || probs.length % L !== 0) {
    throw new Error('metric: probs and labels differ in size');
  }
  const N = probs.length / L;
  const out = new Array<number>(L).fill(0);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < L; j++) {
      const p = Math.min(1 - CLIP, Math.max(CLIP, probs[i * L + j]));
      const y = labels[i * L + j];
      out[j] += -(y * Math.log(p) + (1 - y) * Math.log(1 - p));
    }
  }
  return out.map((s) => (N === 0 ? NaN : s / N));
}

/** ROC-AUC of one label, null (not NaN) when only one class is present. */
export function aucOrNull(scores: number[], ys: number[]): number | null {
  const a = rocAuc(scores, ys);
  return Number.isNaN(a) ? null : a;
}

interface Counts {
  tp: number;
  fp: number;
  fn: number;
}

function counts(scores: number[], ys: number[], threshold: number): Counts {
  const c = { tp: 0, fp: 0, fn: 0 };
  for (let i = 0; i < scores.length; i++) {
    const pred = scores[i] >= threshold;
    const y = ys[i] >= 0.5;
    if (pred && y) c.tp++;
    else if (pred) c.fp++;
    else if (y) c.fn++;
  }
  return c;
}

/** F1 of one label at `threshold` (p >= threshold is positive); null when the label has no positives. */
export function f1At(scores: number[], ys: number[], threshold: number): number | null {
  const c = counts(scores, ys, threshold);
  if (c.tp + c.fn === 0) return null;
  return c.tp === 0 ? 0 : (2 * c.tp) / (2 * c.tp + c.fp + c.fn);
}

export interface ThresholdChoice {
  threshold: number;
  /** F1 at the threshold on the rows it was chosen on; null without positives. */
  f1: number | null;
}

/** The threshold where no tuning is possible (no positives, no rows). */
export const DEFAULT_THRESHOLD = 0.5;

/**
 * The F1-best decision threshold of one label (p >= t is positive). Candidates: every distinct
 * probability v, each meaning "rows with p >= v are positive"; F1 is compared exactly (integer
 * cross-multiplication). Ties: the highest candidate wins (the fewest positive decisions). The
 * threshold returned lies halfway between the chosen v and the next lower distinct probability
 * (0 below the lowest), so it separates the same rows with a margin on each side.
 * Without positives (or rows): DEFAULT_THRESHOLD, f1 null.
 */
export function bestF1Threshold(scores: number[], ys: number[]): ThresholdChoice {
  const order = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a]); // descending
  let pos = 0;
  for (const y of ys) if (y >= 0.5) pos++;
  if (pos === 0) return { threshold: DEFAULT_THRESHOLD, f1: null };
  let tp = 0;
  let fp = 0;
  let best: { num: number; den: number; at: number } | null = null; // F1 = num / den
  for (let i = 0; i < order.length;) {
    const v = scores[order[i]];
    // Take every row with this probability: the threshold v makes them all positive.
    while (i < order.length && scores[order[i]] === v) {
      if (ys[order[i]] >= 0.5) tp++;
      else fp++;
      i++;
    }
    const num = 2 * tp;
    const den = 2 * tp + fp + (pos - tp);
    // Strictly better only: the first (highest) candidate keeps a tie.
    if (!best || num * best.den > best.num * den) best = { num, den, at: i };
  }
  const chosen = scores[order[best!.at - 1]];
  const below = best!.at < order.length ? scores[order[best!.at]] : undefined;
  return { threshold: (chosen + (below ?? 0)) / 2, f1: best!.num / best!.den };
}

/** Micro-averaged F1 with one threshold per label (flat [N * L] arrays). */
export function microF1AtThresholds(probs: ArrayLike<number>, labels: ArrayLike<number>, thresholds: number[]): number {
  const L = thresholds.length;
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < probs.length; i++) {
    const pred = probs[i] >= thresholds[i % L];
    const y = labels[i] >= 0.5;
    if (pred && y) tp++;
    else if (pred) fp++;
    else if (y) fn++;
  }
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

export interface LabelMetrics {
  label: number; // index 0..L-1
  support: number; // positives among the evaluated rows
  logloss: number;
  auc: number | null; // null with one class only
  f1: number | null; // at `threshold`; null without positives
  threshold: number;
}

/** Per-label log-loss, ROC-AUC, support and F1 at the given thresholds (default 0.5 each). */
export function perLabelMetrics(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  L = 17,
  thresholds?: number[],
): LabelMetrics[] {
  const ll = labelLogloss(probs, labels, L);
  return ll.map((logloss, j) => {
    const s = column(probs, j, L);
    const y = column(labels, j, L);
    const threshold = thresholds?.[j] ?? DEFAULT_THRESHOLD;
    const support = y.filter((v) => v >= 0.5).length;
    return { label: j, support, logloss, auc: aucOrNull(s, y), f1: f1At(s, y, threshold), threshold };
  });
}

/**
 * Single-label per-class metrics: support, one-vs-rest log-loss and ROC-AUC, and precision,
 * recall and F1 of the argmax decisions (threshold NaN: there is none).
 */
export function perClassMetrics(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  L: number,
): (LabelMetrics & { precision: number | null; recall: number | null })[] {
  const { tp, pred, actual } = classCounts(probs, labels, L);
  const ll = labelLogloss(probs, labels, L);
  return ll.map((logloss, j) => ({
    label: j,
    support: actual[j],
    logloss,
    auc: aucOrNull(column(probs, j, L), column(labels, j, L)),
    precision: pred[j] ? tp[j] / pred[j] : null,
    recall: actual[j] ? tp[j] / actual[j] : null,
    f1: actual[j] ? (2 * tp[j]) / (pred[j] + actual[j]) : null,
    threshold: NaN,
  }));
}

/** The F1-best threshold of every label on the rows given (a validation split). */
export function tuneThresholds(probs: ArrayLike<number>, labels: ArrayLike<number>, L = 17): ThresholdChoice[] {
  return [...Array(L).keys()].map((j) => bestF1Threshold(column(probs, j, L), column(labels, j, L)));
}

/** Labels worst first: highest log-loss first, then by index. */
export function worstFirst<T extends { label: number; logloss: number }>(rows: T[]): T[] {
  return [...rows].sort((a, b) => b.logloss - a.logloss || a.label - b.label);
}
