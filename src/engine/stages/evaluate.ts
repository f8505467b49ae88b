// evaluate: the reference metric (1 - mlogloss) plus micro-F1 at 0.5 and macro ROC-AUC of a
// checkpoint on a labeled GAIIC file. predict: one JSON line per row {"id", "probs": [17]}.
import { readGaiicCsv } from '../data/csv';
import { encodeRows } from '../data/encode';
import { UserError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { loadCheckpoint } from '../io/checkpoint';
import { hasClassifier } from '../model/config';
import { CLASSIFIER } from '../model/names';
import { disposeParams } from '../model/params';
import { labelMatrix, predictProbs } from '../model/predict';
import { allMetrics, EvalMetrics } from '../train/metrics';
import type { StageContext } from './context';

function classifierCheckpoint(dir: string) {
  const ck = loadCheckpoint(dir);
  if (!hasClassifier(ck.config) || !ck.params.has(CLASSIFIER.weight)) {
    disposeParams(ck.params);
    throw new UserError(`${dir}: this checkpoint has no classifier (fine-tune it first)`);
  }
  return ck;
}

export async function evaluate(model: string, dataFile: string, _ctx: StageContext): Promise<{ metrics: EvalMetrics & Record<string, number> }> {
  const { rows } = readGaiicCsv(dataFile, { requireLabels: true });
  if (rows.length === 0) throw new UserError(`${dataFile}: no rows to evaluate`);
  const ck = classifierCheckpoint(model);
  try {
    const ex = encodeRows(rows, ck.vocab, Math.min(ck.config.max_len ?? 128, ck.config.max_position_embeddings));
    const metrics = allMetrics(predictProbs(ck.params, ck.config, ex), labelMatrix(ex));
    return { metrics: metrics as EvalMetrics & Record<string, number> };
  } finally {
    disposeParams(ck.params);
  }
}

export async function predict(model: string, dataFile: string, out: string, _ctx: StageContext): Promise<{ metrics: Record<string, number>; out: string }> {
  const { rows } = readGaiicCsv(dataFile);
  const ck = classifierCheckpoint(model);
  try {
    const ex = encodeRows(rows, ck.vocab, Math.min(ck.config.max_len ?? 128, ck.config.max_position_embeddings));
    const probs = predictProbs(ck.params, ck.config, ex);
    const lines = rows.map((r, i) => JSON.stringify({ id: r.id, probs: Array.from(probs.subarray(i * 17, (i + 1) * 17), (p) => +p.toPrecision(7)) }));
    writeFileAtomic(out, lines.join('\n') + '\n');
    return { metrics: { rows: rows.length }, out };
  } finally {
    disposeParams(ck.params);
  }
}
