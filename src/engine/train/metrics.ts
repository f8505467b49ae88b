// Evaluation metrics, pure JavaScript over flat [N * L] arrays (row-major, L = 17 labels).

const CLIP = 1e-15;

/**
 * The reference metric: 1 - mlogloss, where mlogloss is the mean over rows of the mean over the
 * L labels of the binary log-loss, probabilities clipped to [1e-15, 1 - 1e-15].
 */
export function score(probs: ArrayLike<number>, labels: ArrayLike<number>, L = 17): number {
  return 1 - mlogloss(probs, labels, L);
}

export function mlogloss(probs: ArrayLike<number>, labels: ArrayLike<number>, L = 17): number {
  if (probs.length !== labels.length || probs.length % L !== 0) throw new Error('metric: probs and labels differ in size');
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
  for (const y of ys) (y >= 0.5 ? pos++ : neg++);
  if (pos === 0 || neg === 0) return NaN;
  // Rank-sum (Mann-Whitney U) with average ranks for ties.
  let rankSum = 0;
  for (let i = 0; i < idx.length; ) {
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
  score: number; // 1 - mlogloss (the reference metric)
  mlogloss: number;
  micro_f1: number;
  macro_auc: number;
  rows: number;
}

export function allMetrics(probs: ArrayLike<number>, labels: ArrayLike<number>, L = 17): EvalMetrics {
  const ml = mlogloss(probs, labels, L);
  return { score: 1 - ml, mlogloss: ml, micro_f1: microF1(probs, labels), macro_auc: macroAuc(probs, labels, L), rows: probs.length / L };
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
