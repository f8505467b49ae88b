// The pruning report panel's data (pure): prune-report.json, sweep.json and an evaluation, normalised.
import { evaluationView, type EvaluationView } from './evaluation';
import { finite, isObject, num, nums } from './json';

export interface SizeRow {
  params?: number;
  mb?: number;
  flops?: number;
  latency_ms?: number;
}

export interface ReportLayer {
  layer: number;
  headsKept: number[];
  headsTotal: number;
  ffnKept: number;
  ffnTotal: number;
  headImportance: number[];
}

export interface SweepRow {
  config: string;
  score: number;
  params: number;
  mb?: number;
  latency_ms?: number;
}

export interface ReportMessage {
  type: 'report';
  title: string;
  file?: string; // the prune-report.json shown
  sweepFile?: string; // the sweep.json shown
  evaluationFile?: string; // the eval-*.json shown
  evaluation?: EvaluationView;
  before?: SizeRow;
  after?: SizeRow;
  layers: ReportLayer[];
  metrics: Record<string, Record<string, number>>; // before / after_prune / after_refinetune -> metric -> value
  sweep: SweepRow[];
  /** Targets the pruned model does not meet, and why (prune-report.json's `why`). */
  why: { unit: string; target: number; kept: number; reasons: string[] }[];
  problems: string[]; // what could not be read, shown in the panel instead of failing
}

function sizeRow(x: unknown): SizeRow | undefined {
  if (!isObject(x)) return undefined;
  return { params: num(x.params), mb: num(x.mb), flops: num(x.flops), latency_ms: num(x.latency_ms) };
}

/**
 * A prune-report.json, sweep.json and/or an evaluation (eval-*.json), normalised; whatever is
 * malformed is skipped and listed.
 */
export function reportMessage(
  title: string,
  report: unknown,
  sweep: unknown,
  files: { file?: string; sweepFile?: string; evaluationFile?: string } = {},
  evaluation?: unknown,
): ReportMessage {
  const problems: string[] = [];
  const msg: ReportMessage = { type: 'report', title, ...files, layers: [], metrics: {}, sweep: [], why: [], problems };
  if (evaluation !== undefined) msg.evaluation = evaluationView(evaluation, problems);
  if (report !== undefined) {
    if (!isObject(report)) problems.push('the pruning report is not a JSON object');
    else {
      msg.before = sizeRow(report.before);
      msg.after = sizeRow(report.after);
      if (Array.isArray(report.layers)) {
        report.layers.forEach((l, i) => {
          if (!isObject(l)) return void problems.push(`layers[${i}] is not an object`);
          const headsTotal = num(l.heads_total);
          const ffnTotal = num(l.ffn_total);
          if (headsTotal === undefined || ffnTotal === undefined)
            return void problems.push(`layers[${i}] lacks heads_total or ffn_total`);
          msg.layers.push({
            layer: num(l.layer) ?? i,
            headsKept: nums(l.heads_kept),
            headsTotal,
            ffnKept: num(l.ffn_kept) ?? ffnTotal,
            ffnTotal,
            headImportance: nums(l.head_importance),
          });
        });
      }
      if (Array.isArray(report.why))
        for (const n of report.why) {
          const target = isObject(n) ? num(n.target) : undefined;
          const kept = isObject(n) ? num(n.kept) : undefined;
          if (!isObject(n) || target === undefined || kept === undefined) continue;
          const reasons = Array.isArray(n.reasons) ? n.reasons.filter((x): x is string => typeof x === 'string') : [];
          msg.why.push({
            unit: String(n.unit).slice(0, 20),
            target,
            kept,
            reasons: reasons.map((x) => x.slice(0, 500)),
          });
        }
      // metrics: {before, after_prune, after_refinetune}, each the task score or a metric -> value map.
      if (isObject(report.metrics)) {
        for (const [when, m] of Object.entries(report.metrics)) {
          if (isObject(m)) msg.metrics[when] = finite(m);
          else if (num(m) !== undefined) msg.metrics[when] = { score: m as number };
        }
      }
    }
  }
  if (sweep !== undefined) {
    const rows = isObject(sweep) && Array.isArray(sweep.rows) ? sweep.rows : undefined;
    if (!rows) problems.push('sweep.json has no rows array');
    else
      rows.forEach((r, i) => {
        const score = isObject(r) ? num(r.score) : undefined;
        const params = isObject(r) ? num(r.params) : undefined;
        if (!isObject(r) || score === undefined || params === undefined)
          return void problems.push(`sweep row ${i} lacks score or params`);
        msg.sweep.push({
          config: typeof r.config === 'string' ? r.config : `#${i}`,
          score,
          params,
          mb: num(r.mb),
          latency_ms: num(r.latency_ms),
        });
      });
  }
  return msg;
}

/** The sweep rows no other row beats on both score (higher) and params (fewer). */
export function paretoFront(rows: SweepRow[]): SweepRow[] {
  return rows
    .filter(
      (r) =>
        !rows.some(
          (o) => o !== r && o.score >= r.score && o.params <= r.params && (o.score > r.score || o.params < r.params),
        ),
    )
    .sort((a, b) => a.params - b.params);
}
