// Scoring and predicting with a fine-tuned checkpoint on a GAIIC file: what the evaluate / predict
// stages report, and what the pipeline and prune-sweep score models with. Evaluation: the reference
// metric (1 - mlogloss) plus micro-F1 and macro ROC-AUC, and per label: support, log-loss, ROC-AUC,
// and F1 at the checkpoint's decision threshold (thresholds.json, chosen on the fine-tuning
// validation split; 0.5 without one). Nothing is tuned on the evaluated file. Prediction: one JSON
// line per row {"id", "probs": [17], "labels": [indices with p >= threshold]}.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeRows, truncatedCount } from '../data/encode';
import { readRows, tokenizerIn } from '../data/rows';
import { UserError } from '../errors';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic';
import { loadCheckpoint } from '../io/checkpoint';
import { decisionThresholds, labelNames, readThresholds, THRESHOLDS_FILE, type Thresholds } from '../io/thresholds';
import { hasClassifier, NUM_LABELS } from '../model/config';
import { CLASSIFIER } from '../model/names';
import { disposeParams } from '../model/params';
import { labelMatrix, predictProbs } from '../model/predict';
import { allMetrics, EvalMetrics, microF1AtThresholds, perLabelMetrics, type LabelMetrics } from './metrics';

/** Load a checkpoint that has a classifier (a UserError otherwise). */
function classifierCheckpoint(dir: string) {
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
  score: number; // 1 - mlogloss
  mlogloss: number;
  micro_f1: number; // at 0.5 for every label
  /** At the checkpoint's stored thresholds; null when it has none. */
  micro_f1_at_thresholds: number | null;
  macro_auc: number | null;
  thresholds: {
    /** Where the thresholds come from, e.g. "validation split of finetune"; null: 0.5 for every label. */
    source: string | null;
    val_rows: number | null;
    note: string;
  };
  /** One entry per label, in label order (0..16). */
  per_label: (Omit<LabelMetrics, 'auc'> & { name: string; auc: number | null })[];
}

function thresholdNote(t: Thresholds | null): string {
  if (t) {
    const on = `the ${t.source} (${t.val_rows} rows)`;
    return `decision thresholds from ${THRESHOLDS_FILE}: the F1-best per label on ${on}, not tuned on this file`;
  }
  const why = 'trained with val_fraction 0, or not fine-tuned by bert-pruner';
  return `no ${THRESHOLDS_FILE} with this checkpoint (${why}): 0.5 for every label`;
}

const r7 = (x: number) => (Number.isFinite(x) ? +x.toPrecision(7) : x);
const r7n = (x: number | null) => (x === null || Number.isNaN(x) ? null : r7(x));

/** The evaluation of a checkpoint on a labeled file (written atomically to `out` when given). */
export function evaluateCheckpoint(
  model: string,
  dataFile: string,
  out?: string,
): { metrics: EvalMetrics & Record<string, number>; evaluation: Evaluation; report?: string } {
  const { rows } = readRows(dataFile, {
    requireLabels: true,
    tokenizer: tokenizerIn(model),
    vocabHint: `${model} has none`,
  });
  if (rows.length === 0) throw new UserError(`${dataFile}: no rows to evaluate`);
  const ck = classifierCheckpoint(model);
  try {
    const thresholds = readThresholds(model);
    const ex = encodeRows(rows, ck.vocab, Math.min(ck.config.max_len ?? 128, ck.config.max_position_embeddings));
    const probs = predictProbs(ck.params, ck.config, ex);
    const labels = labelMatrix(ex);
    const metrics = allMetrics(probs, labels) as EvalMetrics & Record<string, number>;
    const cut = truncatedCount(ex);
    if (cut) metrics.truncated_rows = cut;
    const th = decisionThresholds(thresholds);
    const atThresholds = thresholds ? microF1AtThresholds(probs, labels, th) : null;
    if (atThresholds !== null) metrics.micro_f1_at_thresholds = atThresholds;
    const names = thresholds?.labels ?? labelNames(ck.config);
    const evaluation: Evaluation = {
      model,
      data: dataFile,
      rows: metrics.rows,
      score: r7(metrics.score),
      mlogloss: r7(metrics.mlogloss),
      micro_f1: r7(metrics.micro_f1),
      micro_f1_at_thresholds: r7n(atThresholds),
      macro_auc: r7n(metrics.macro_auc),
      thresholds: {
        source: thresholds?.source ?? null,
        val_rows: thresholds?.val_rows ?? null,
        note: thresholdNote(thresholds),
      },
      per_label: perLabelMetrics(probs, labels, NUM_LABELS, th).map((m) => ({
        label: m.label,
        name: names[m.label],
        support: m.support,
        logloss: r7(m.logloss),
        auc: r7n(m.auc),
        f1: r7n(m.f1),
        threshold: m.threshold,
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

/** One JSON line per row {"id", "probs": [17], "labels": [...]} into `out`; returns the number of rows. */
export function predictCheckpoint(model: string, dataFile: string, out: string): number {
  const { rows } = readRows(dataFile, { tokenizer: tokenizerIn(model), vocabHint: `${model} has none` });
  const ck = classifierCheckpoint(model);
  try {
    const th = decisionThresholds(readThresholds(model));
    const ex = encodeRows(rows, ck.vocab, Math.min(ck.config.max_len ?? 128, ck.config.max_position_embeddings));
    const probs = predictProbs(ck.params, ck.config, ex);
    const lines = rows.map((r, i) => {
      // Decided on the probabilities as written, so every line is consistent with itself.
      const p = Array.from(probs.subarray(i * NUM_LABELS, (i + 1) * NUM_LABELS), (x) => +x.toPrecision(7));
      return JSON.stringify({ id: r.id, probs: p, labels: [...p.keys()].filter((j) => p[j] >= th[j]) });
    });
    writeFileAtomic(out, lines.join('\n') + '\n');
    return rows.length;
  } finally {
    disposeParams(ck.params);
  }
}
