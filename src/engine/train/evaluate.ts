// Scoring and predicting with a fine-tuned checkpoint on a GAIIC file: what the evaluate / predict
// stages report, and what the pipeline and prune-sweep score models with. Evaluation: the reference
// metric (1 - mlogloss) plus micro-F1 and macro ROC-AUC, and per label: support, log-loss, ROC-AUC,
// and F1 at the checkpoint's decision threshold (thresholds.json, chosen on the fine-tuning
// validation split; 0.5 without one). Nothing is tuned on the evaluated file. A single-label
// classifier: accuracy (its score), macro-F1, cross-entropy, and per class precision, recall, F1 of
// the argmax decisions. Prediction: one JSON line per row {"id", "probs": [L], "labels": [names]}:
// the labels with p >= their threshold (multi-label), or the argmax (single-label).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeRows, truncatedCount } from '../data/encode';
import { readRows, tokenizerIn } from '../data/rows';
import { UserError } from '../errors';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic';
import { loadCheckpoint } from '../io/checkpoint';
import { decisionThresholds, readThresholds, THRESHOLDS_FILE, type Thresholds } from '../io/thresholds';
import { hasClassifier, isSingleLabel, labelNamesOf, numLabels, problemOf, type ProblemType } from '../model/config';
import { CLASSIFIER } from '../model/names';
import { disposeParams } from '../model/params';
import { labelMatrix, predictProbs } from '../model/predict';
import {
  allMetrics,
  argmaxRows,
  EvalMetrics,
  microF1AtThresholds,
  perClassMetrics,
  perLabelMetrics,
  type LabelMetrics,
} from './metrics';

/** The data file is named first when it is missing (before the checkpoint is loaded). */
function dataExists(file: string): void {
  if (!fs.existsSync(file)) throw new UserError(`${file}: file not found`);
}

/** Load a checkpoint that has a classifier (a UserError otherwise). */
export function classifierCheckpoint(dir: string) {
  const ck = loadCheckpoint(dir);
  if (
    !hasClassifier(ck.config) ||
    !ck.params.has(CLASSIFIER.weight) ||
    ck.report?.initialised.includes(CLASSIFIER.weight)
  ) {
    disposeParams(ck.params);
    throw new UserError(`${dir}: this checkpoint has no classifier (fine-tune it first)`);
  }
  return ck;
}

/** What `evaluate --json` prints (and `--out` writes). */
export interface Evaluation {
  model: string;
  data: string;
  rows: number;
  /** multi_label_classification or single_label_classification. */
  problem_type: ProblemType;
  /** The label names, by id. */
  labels: string[];
  score: number; // 1 - mlogloss (multi-label), accuracy (single-label)
  mlogloss: number; // single-label: the categorical cross-entropy
  micro_f1: number; // at 0.5 for every label (single-label: of the argmax, = accuracy)
  /** Single-label only. */
  accuracy?: number;
  macro_f1?: number;
  /** At the checkpoint's stored thresholds; null when it has none. */
  micro_f1_at_thresholds: number | null;
  macro_auc: number | null;
  thresholds: {
    /** Where the thresholds come from, e.g. "validation split of finetune"; null: 0.5 for every label. */
    source: string | null;
    val_rows: number | null;
    note: string;
  };
  /** One entry per label, in label order (single-label: precision and recall too; threshold null). */
  per_label: (Omit<LabelMetrics, 'auc' | 'threshold'> & {
    name: string;
    auc: number | null;
    threshold: number | null;
    precision?: number | null;
    recall?: number | null;
  })[];
}

function thresholdNote(t: Thresholds | null, single: boolean): string {
  if (single) return 'single-label: each row is decided by its argmax (no thresholds)';
  if (t) {
    const on = `the ${t.source} (${t.val_rows} rows)`;
    return `decision thresholds from ${THRESHOLDS_FILE}: the F1-best per label on ${on}, not tuned on this file`;
  }
  const why = 'trained with val_fraction 0, or not fine-tuned by bert-pruner';
  return `no ${THRESHOLDS_FILE} with this checkpoint (${why}): 0.5 for every label`;
}

const r7 = (x: number) => (Number.isFinite(x) ? +x.toPrecision(7) : x);
type PR = { precision: number | null; recall: number | null };
const pr = (m: LabelMetrics) => m as LabelMetrics & PR;
const r7n = (x: number | null) => (x === null || Number.isNaN(x) ? null : r7(x));

/** The evaluation of a checkpoint on a labeled file (written atomically to `out` when given). */
export async function evaluateCheckpoint(
  model: string,
  dataFile: string,
  out?: string,
): Promise<{ metrics: EvalMetrics & Record<string, number>; evaluation: Evaluation; report?: string }> {
  dataExists(dataFile);
  const ck = classifierCheckpoint(model);
  try {
    const L = numLabels(ck.config);
    const single = isSingleLabel(ck.config);
    const { rows } = readRows(dataFile, {
      requireLabels: true,
      tokenizer: tokenizerIn(model),
      vocabHint: `${model} has none`,
      labelSet: labelNamesOf(ck.config),
    });
    if (rows.length === 0) throw new UserError(`${dataFile}: no rows to evaluate`);
    const thresholds = single ? null : readThresholds(model, L);
    const maxLen = Math.min(ck.config.max_len ?? 128, ck.config.max_position_embeddings);
    const ex = encodeRows(rows, ck.vocab, maxLen, L);
    const probs = await predictProbs(ck.params, ck.config, ex);
    const labels = labelMatrix(ex, L);
    const metrics = allMetrics(probs, labels, L, single) as EvalMetrics & Record<string, number>;
    const cut = truncatedCount(ex);
    if (cut) metrics.truncated_rows = cut;
    const th = decisionThresholds(thresholds, L);
    const atThresholds = thresholds ? microF1AtThresholds(probs, labels, th) : null;
    if (atThresholds !== null) metrics.micro_f1_at_thresholds = atThresholds;
    const names = labelNamesOf(ck.config);
    const perLabel = single ? perClassMetrics(probs, labels, L) : perLabelMetrics(probs, labels, L, th);
    const evaluation: Evaluation = {
      model,
      data: dataFile,
      rows: metrics.rows,
      problem_type: problemOf(ck.config),
      labels: names,
      score: r7(metrics.score),
      mlogloss: r7(metrics.mlogloss),
      micro_f1: r7(metrics.micro_f1),
      ...(single ? { accuracy: r7(metrics.accuracy!), macro_f1: r7(metrics.macro_f1!) } : {}),
      micro_f1_at_thresholds: r7n(atThresholds),
      macro_auc: r7n(metrics.macro_auc),
      thresholds: {
        source: thresholds?.source ?? null,
        val_rows: thresholds?.val_rows ?? null,
        note: thresholdNote(thresholds, single),
      },
      per_label: perLabel.map((m) => ({
        label: m.label,
        name: names[m.label],
        support: m.support,
        logloss: r7(m.logloss),
        auc: r7n(m.auc),
        f1: r7n(m.f1),
        ...(single ? { precision: r7n(pr(m).precision), recall: r7n(pr(m).recall) } : {}),
        threshold: single ? null : m.threshold,
      })),
    };
    if (out) {
      fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
      writeJsonAtomic(out, evaluation);
    }
    return { metrics, evaluation, report: out ? path.resolve(out) : undefined };
  } finally {
    disposeParams(ck.params);
  }
}

/**
 * One JSON line per row {"id", "probs": [L], "labels": [names]} into `out`: multi-label, the labels
 * with p >= their stored threshold (0.5 where none); single-label, the argmax. Returns the row count.
 */
export async function predictCheckpoint(model: string, dataFile: string, out: string): Promise<number> {
  dataExists(dataFile);
  const ck = classifierCheckpoint(model);
  try {
    const L = numLabels(ck.config);
    const single = isSingleLabel(ck.config);
    const names = labelNamesOf(ck.config);
    const { rows } = readRows(dataFile, {
      tokenizer: tokenizerIn(model),
      vocabHint: `${model} has none`,
      labelSet: names,
    });
    const th = decisionThresholds(single ? null : readThresholds(model, L), L);
    const maxLen = Math.min(ck.config.max_len ?? 128, ck.config.max_position_embeddings);
    const ex = encodeRows(rows, ck.vocab, maxLen, L);
    const probs = await predictProbs(ck.params, ck.config, ex);
    const lines = rows.map((r, i) => {
      // Decided on the probabilities as written, so every line is consistent with itself.
      const p = Array.from(probs.subarray(i * L, (i + 1) * L), (x) => +x.toPrecision(7));
      const chosen = single ? argmaxRows(p, L) : [...p.keys()].filter((j) => p[j] >= th[j]);
      return JSON.stringify({ id: r.id, probs: p, labels: chosen.map((j) => names[j]) });
    });
    writeFileAtomic(out, lines.join('\n') + '\n');
    return rows.length;
  } finally {
    disposeParams(ck.params);
  }
}
