// Plain-text rendering of results for a terminal: tables, metrics, the parameter tree.
import type { Analysis } from './analyze/model';
import type { Evaluation } from './train/evaluate';
import { worstFirst } from './train/metrics';
import { summaryRows } from './analyze/summary';

export function table(columns: string[], rows: (string | number)[][]): string {
  const cells = [columns, ...rows.map((r) => r.map(String))];
  const widths = columns.map((_, j) => Math.max(...cells.map((r) => (r[j] ?? '').length)));
  const line = (r: string[]) =>
    '| ' + r.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join(' | ') + ' |';
  return [line(columns), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...cells.slice(1).map(line)].join(
    '\n',
  );
}

export function formatMetrics(title: string, m: Record<string, number> | undefined): string {
  if (!m) return `${title}: done`;
  return (
    `${title}: ` +
    Object.entries(m)
      .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(4)}`)
      .join('  ')
  );
}

export function formatAnalysis(a: Analysis, depth = 4): string {
  const rows = summaryRows(a.tree, depth).map((r) => [
    '  '.repeat(r.depth - 1) + r.name.split('.').slice(-1)[0] + (r.depth === 1 ? '' : ''),
    r.params,
    (r.ratio * 100).toFixed(2) + '%',
    r.mb.toFixed(3),
  ]);
  const lines = [
    `model: ${a.model}`,
    table(['module', '#params', 'ratio', 'MB'], rows),
    `total: ${a.total_params} params (${a.encoder_params} in the encoder), ${a.total_mb.toFixed(2)} MB on disk`,
    `layers: ${a.num_layers}   hidden size: ${a.hidden_size}   head size: ${a.head_size}`,
    `heads per layer: [${a.heads_per_layer.join(', ')}]   FFN size per layer: [${a.ffn_per_layer.join(', ')}]`,
    `FLOPs per sequence of ${a.seq_len} tokens: ${(a.flops_per_sequence / 1e6).toFixed(1)} M`,
  ];
  if (a.latency_ms_per_batch !== undefined) {
    lines.push(
      `latency on ${a.backend}: ${a.latency_ms_per_batch.toFixed(1)} ms per batch of ${a.batch_size} x ${a.seq_len}  ` +
        `(${a.sequences_per_s!.toFixed(0)} sequences/s)`,
    );
  }
  if (a.baseline) {
    lines.push(
      `baseline ${a.baseline.model}: ${a.baseline.latency_ms_per_batch.toFixed(1)} ms per batch, ` +
        `so this model is ${a.baseline.speedup.toFixed(2)}x faster (the two timed alternately)`,
    );
  }
  return lines.join('\n');
}

/** evaluate's text output: the overall metrics, where the thresholds come from, the labels worst first. */
export function formatEvaluation(e: Evaluation): string {
  const f = (v: number | null | undefined) => (v === null || v === undefined ? '-' : v.toFixed(4));
  if (e.problem_type === 'single_label_classification') {
    const lines = [
      `evaluate: ${e.model} on ${e.data} (${e.rows} rows, single-label, ${e.labels.length} classes)`,
      `score (accuracy) ${f(e.score)}   macro-F1 ${f(e.macro_f1)}   cross-entropy ${f(e.mlogloss)}   ` +
        `macro AUC ${f(e.macro_auc)}`,
      e.thresholds.note,
      'per class, in label order (precision, recall and F1 of the argmax):',
      table(
        ['class', '#', 'support', 'precision', 'recall', 'F1'],
        e.per_label.map((l) => [l.name, l.label, l.support, f(l.precision), f(l.recall), f(l.f1)]),
      ),
    ];
    return lines.join('\n');
  }
  const lines = [
    `evaluate: ${e.model} on ${e.data} (${e.rows} rows)`,
    `score (1 - mlogloss) ${f(e.score)}   mlogloss ${f(e.mlogloss)}   macro AUC ${f(e.macro_auc)}`,
    `micro-F1 at 0.5 ${f(e.micro_f1)}` +
      (e.micro_f1_at_thresholds === null ? '' : `   micro-F1 at the stored thresholds ${f(e.micro_f1_at_thresholds)}`),
    e.thresholds.note,
    'per label, worst log-loss first (F1 at the threshold; AUC - where the file has one class only):',
    table(
      ['label', '#', 'support', 'log-loss', 'AUC', 'F1', 'threshold'],
      worstFirst(e.per_label).map((l) => {
        return [l.name, l.label, l.support, f(l.logloss), f(l.auc), f(l.f1), +(l.threshold ?? 0.5).toFixed(4)];
      }),
    ),
  ];
  return lines.join('\n');
}
