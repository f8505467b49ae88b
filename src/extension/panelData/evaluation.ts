// The evaluation's data (pure): an eval-*.json (evaluate --out / the extension's Evaluate) as the
// report panel shows it.
import { isObject, num } from './json';

/** One label's row of an evaluation; undefined where the engine reported null (e.g. AUC of one class). */
export interface EvalLabelRow {
  label: number;
  name: string; // from the checkpoint's files: shown as text only
  support?: number;
  logloss: number;
  auc?: number;
  f1?: number;
  threshold?: number;
  /** Single-label: of the argmax decisions. */
  precision?: number;
  recall?: number;
}

export interface EvaluationView {
  model: string;
  data: string;
  rows?: number;
  metrics: [string, number | undefined][]; // label -> value, in display order
  thresholdsNote: string;
  labels: EvalLabelRow[]; // worst first: highest log-loss, then label index (single-label: label order)
  /** A single-label classifier: a per-class precision / recall / F1 table instead of thresholds. */
  singleLabel: boolean;
}

/** The evaluation files the report panel shows: eval-<something>.json. */
export function isEvaluationFile(file: string): boolean {
  return /^eval-[^\\/]*\.json$/.test(file.split(/[\\/]/).pop() ?? '');
}

const MAX_NAME = 200;
const text = (x: unknown, fallback: string) => (typeof x === 'string' ? x.slice(0, MAX_NAME * 5) : fallback);

/** `evaluate --json` output, normalised: labels sorted worst first; malformed labels skipped and listed. */
export function evaluationView(x: unknown, problems: string[]): EvaluationView | undefined {
  if (!isObject(x)) {
    problems.push('the evaluation is not a JSON object');
    return undefined;
  }
  const labels: EvalLabelRow[] = [];
  const single = x.problem_type === 'single_label_classification';
  if (!Array.isArray(x.per_label)) problems.push('the evaluation has no per_label list');
  else
    x.per_label.forEach((l, i) => {
      const logloss = isObject(l) ? num(l.logloss) : undefined;
      const label = isObject(l) ? num(l.label) : undefined;
      if (!isObject(l) || logloss === undefined || label === undefined) {
        return void problems.push(`per_label[${i}] lacks label or logloss`);
      }
      const name = typeof l.name === 'string' ? l.name.slice(0, MAX_NAME) : String(label);
      const support = num(l.support);
      const row: EvalLabelRow = { label, name, support, logloss, auc: num(l.auc), f1: num(l.f1) };
      row.threshold = num(l.threshold);
      if (single) Object.assign(row, { precision: num(l.precision), recall: num(l.recall) });
      labels.push(row);
    });
  if (single) labels.sort((a, b) => a.label - b.label);
  else labels.sort((a, b) => b.logloss - a.logloss || a.label - b.label);
  const th: Record<string, unknown> = isObject(x.thresholds) ? x.thresholds : {};
  return {
    model: text(x.model, '?'),
    data: text(x.data, '?'),
    rows: num(x.rows),
    // single-label: accuracy and macro-F1 of the argmax (no thresholds)
    metrics: single
      ? [
          ['score (accuracy)', num(x.score)],
          ['macro-F1', num(x.macro_f1)],
          ['cross-entropy', num(x.mlogloss)],
          ['macro ROC-AUC', num(x.macro_auc)],
        ]
      : [
          ['score (1 - mlogloss)', num(x.score)],
          ['mlogloss', num(x.mlogloss)],
          ['micro-F1 at 0.5', num(x.micro_f1)],
          ['micro-F1 at the stored thresholds', num(x.micro_f1_at_thresholds)],
          ['macro ROC-AUC', num(x.macro_auc)],
        ],
    thresholdsNote: text(th.note, 'no note on the thresholds'),
    labels,
    singleLabel: single,
  };
}
