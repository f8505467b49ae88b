// Scoring and predicting with a fine-tuned checkpoint on a GAIIC file: what the evaluate / predict
// stages report, and what the pipeline and prune-sweep score models with.
import { readGaiicCsv, Row } from '../data/csv';
import { encodeRows, Example } from '../data/encode';
import { UserError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { Checkpoint, loadCheckpoint } from '../io/checkpoint';
import { hasClassifier } from '../model/config';
import { CLASSIFIER } from '../model/names';
import { disposeParams } from '../model/params';
import { labelMatrix, predictProbs } from '../model/predict';
import { allMetrics, EvalMetrics } from './metrics';

/** Load a checkpoint that has a classifier (a UserError otherwise). */
function loadClassifier(dir: string): Checkpoint {
  const ck = loadCheckpoint(dir);
  if (!hasClassifier(ck.config) || !ck.params.has(CLASSIFIER.weight)) {
    disposeParams(ck.params);
    throw new UserError(`${dir}: this checkpoint has no classifier (fine-tune it first)`);
  }
  return ck;
}

/** The rows encoded for the checkpoint (its vocab, its max_len within its position embeddings). */
function checkpointExamples(ck: Checkpoint, rows: Row[]): Example[] {
  return encodeRows(rows, ck.vocab, Math.min(ck.config.max_len ?? 128, ck.config.max_position_embeddings));
}

/** 1 - mlogloss, micro-F1 and macro ROC-AUC of a checkpoint on a labeled file. */
export function evaluateCheckpoint(model: string, dataFile: string): EvalMetrics {
  const { rows } = readGaiicCsv(dataFile, { requireLabels: true });
  if (rows.length === 0) throw new UserError(`${dataFile}: no rows to evaluate`);
  const ck = loadClassifier(model);
  try {
    const ex = checkpointExamples(ck, rows);
    return allMetrics(predictProbs(ck.params, ck.config, ex), labelMatrix(ex));
  } finally {
    disposeParams(ck.params);
  }
}

/** One JSON line per row {"id", "probs": [17]} into `out`; returns the number of rows. */
export function predictCheckpoint(model: string, dataFile: string, out: string): number {
  const { rows } = readGaiicCsv(dataFile);
  const ck = loadClassifier(model);
  try {
    const probs = predictProbs(ck.params, ck.config, checkpointExamples(ck, rows));
    const lines = rows.map((r, i) => {
      const p = Array.from(probs.subarray(i * 17, (i + 1) * 17), (x) => +x.toPrecision(7));
      return JSON.stringify({ id: r.id, probs: p });
    });
    writeFileAtomic(out, lines.join('\n') + '\n');
    return rows.length;
  } finally {
    disposeParams(ck.params);
  }
}
