// The data the webview panels draw and the messages between panels and the extension, as plain
// types and pure functions (no 'vscode'): the extension normalises engine files into these shapes,
// and every message that comes back from a webview goes through parseWebviewMessage first; a
// webview is a web page, so nothing it sends is trusted.
import type { EngineEvent } from '../engine/protocol';
import type { ParamNode } from './paramTree';

// ---- messages from webviews ------------------------------------------------------------------

export type WebviewMessage =
  | { type: 'ready' } // the page loaded (or reloaded) and wants its data
  | { type: 'open'; path: string } // open a file the panel was given (a report, a checkpoint config)
  | { type: 'compare' }; // parameters panel: pick a checkpoint to compare with

export function parseWebviewMessage(x: unknown, allowedPaths: ReadonlySet<string>): WebviewMessage | undefined {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return undefined;
  const m = x as Record<string, unknown>;
  const keys = Object.keys(m);
  if (m.type === 'ready' && keys.length === 1) return { type: 'ready' };
  if (m.type === 'compare' && keys.length === 1) return { type: 'compare' };
  // Only paths the extension itself put into the panel: a page cannot make us open anything else.
  if (m.type === 'open' && keys.length === 2 && typeof m.path === 'string' && allowedPaths.has(m.path)) return { type: 'open', path: m.path };
  return undefined;
}

// ---- training curves ---------------------------------------------------------------------------

/** One stage's curves: per-step loss and lr, per-epoch metrics. */
export interface TrainingSeries {
  stage: string;
  steps: [number, number, number][]; // [global step, loss, lr]
  epochs: { epoch: number; metrics: Record<string, number> }[];
}

export type TrainingMessage =
  | { type: 'training-init'; title: string; series: TrainingSeries[] }
  | { type: 'training-steps'; stage: string; points: [number, number, number][] }
  | { type: 'training-epoch'; stage: string; epoch: number; metrics: Record<string, number> };

/** Most points a series keeps; past that every other point is dropped (curves stay readable). */
export const MAX_POINTS = 4000;

/**
 * The training history of the current run, fed with engine events. `apply` returns the message
 * to post to an open training panel (steps are batched by the caller), `snapshot` a full init.
 */
export class TrainingLog {
  title = 'no run yet';
  private series = new Map<string, TrainingSeries>();
  private offsets = new Map<string, number>(); // stage -> steps of earlier epochs-runs, so x only grows

  reset(title: string): void {
    this.title = title;
    this.series.clear();
    this.offsets.clear();
  }

  apply(e: EngineEvent): TrainingMessage | undefined {
    if (e.type === 'step') {
      if (!Number.isFinite(e.loss)) return undefined;
      const s = this.get(e.stage);
      const x = e.step + (this.offsets.get(e.stage) ?? 0);
      const last = s.steps[s.steps.length - 1];
      if (last && x <= last[0]) {
        // The stage restarted (a resume, or the pipeline ran it again): continue the x axis.
        this.offsets.set(e.stage, last[0]);
        return this.apply(e);
      }
      const p: [number, number, number] = [x, e.loss, e.lr];
      s.steps.push(p);
      if (s.steps.length > MAX_POINTS) s.steps = s.steps.filter((_, i) => i % 2 === 0 || i === s.steps.length - 1);
      return { type: 'training-steps', stage: e.stage, points: [p] };
    }
    if (e.type === 'epoch') {
      const metrics = finite(e.metrics);
      this.get(e.stage).epochs.push({ epoch: e.epoch, metrics });
      return { type: 'training-epoch', stage: e.stage, epoch: e.epoch, metrics };
    }
    return undefined;
  }

  snapshot(): TrainingMessage {
    return { type: 'training-init', title: this.title, series: [...this.series.values()] };
  }

  private get(stage: string): TrainingSeries {
    let s = this.series.get(stage);
    if (!s) this.series.set(stage, (s = { stage, steps: [], epochs: [] }));
    return s;
  }
}

/** Consecutive step messages of one stage become one message with all their points. */
export function mergeSteps(ms: TrainingMessage[]): TrainingMessage[] {
  const out: TrainingMessage[] = [];
  for (const m of ms) {
    const last = out[out.length - 1];
    if (m.type === 'training-steps' && last?.type === 'training-steps' && last.stage === m.stage) last.points = [...last.points, ...m.points];
    else out.push(m.type === 'training-steps' ? { ...m, points: [...m.points] } : m);
  }
  return out;
}

function finite(x: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (typeof x === 'object' && x !== null) for (const [k, v] of Object.entries(x)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return out;
}

// ---- parameters ----------------------------------------------------------------------------------

export interface ParamsColumn {
  label: string; // e.g. "runs/a/finetune"
  dir: string;
  configFile?: string; // its config.json, which the page may ask to open
  total: number;
  bytes: number;
  groups: { label: string; params: number }[]; // embeddings, attention, FFN, pooler, ...
  layers: { index: number; headsKept: number; headsTotal: number; ffn: number; attention: number; ffnParams: number }[];
}

export interface ParamsMessage {
  type: 'params';
  columns: ParamsColumn[]; // one checkpoint, or two when comparing (before, after)
  problems: string[];
}

/** Module totals a bar chart can compare across checkpoints: attention and FFN summed over layers. */
export function paramsColumn(label: string, dir: string, tree: ParamNode): ParamsColumn {
  const groups: { label: string; params: number }[] = [];
  const layers: ParamsColumn['layers'] = [];
  let attention = 0;
  let ffn = 0;
  let layerOther = 0;
  for (const top of tree.children) {
    if (top.id !== 'encoder') {
      groups.push({ label: top.label, params: top.params });
      continue;
    }
    for (const layer of top.children) {
      const a = layer.children.find((c) => c.label === 'attention')?.params ?? 0;
      const f = layer.children.find((c) => c.label === 'FFN')?.params ?? 0;
      attention += a;
      ffn += f;
      layerOther += layer.params - a - f;
      if (layer.layer) layers.push({ ...layer.layer, attention: a, ffnParams: f });
    }
  }
  const encoderGroups = [
    { label: 'attention', params: attention },
    { label: 'FFN', params: ffn },
    ...(layerOther ? [{ label: 'encoder (other)', params: layerOther }] : []),
  ];
  // Keep the model's order: embeddings, then the encoder's parts, then the heads.
  const at = groups.findIndex((g) => g.label === 'embeddings') + 1;
  groups.splice(at, 0, ...encoderGroups);
  return { label, dir, total: tree.params, bytes: tree.bytes, groups, layers };
}

// ---- pruning report ------------------------------------------------------------------------------

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
  problems: string[]; // what could not be read, shown in the panel instead of failing
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);
const nums = (x: unknown) => (Array.isArray(x) ? x.filter((v): v is number => typeof v === 'number' && Number.isFinite(v)) : []);

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
  const msg: ReportMessage = { type: 'report', title, ...files, layers: [], metrics: {}, sweep: [], problems };
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
          if (headsTotal === undefined || ffnTotal === undefined) return void problems.push(`layers[${i}] lacks heads_total or ffn_total`);
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
        if (!isObject(r) || score === undefined || params === undefined) return void problems.push(`sweep row ${i} lacks score or params`);
        msg.sweep.push({ config: typeof r.config === 'string' ? r.config : `#${i}`, score, params, mb: num(r.mb), latency_ms: num(r.latency_ms) });
      });
  }
  return msg;
}

/** The sweep rows no other row beats on both score (higher) and params (fewer). */
export function paretoFront(rows: SweepRow[]): SweepRow[] {
  return rows
    .filter((r) => !rows.some((o) => o !== r && o.score >= r.score && o.params <= r.params && (o.score > r.score || o.params < r.params)))
    .sort((a, b) => a.params - b.params);
}

// ---- evaluation (evaluate --out / the extension's Evaluate) -------------------------------------

/** One label's row of an evaluation; undefined where the engine reported null (e.g. AUC of one class). */
export interface EvalLabelRow {
  label: number;
  name: string; // from the checkpoint's files: shown as text only
  support?: number;
  logloss: number;
  auc?: number;
  f1?: number;
  threshold?: number;
}

export interface EvaluationView {
  model: string;
  data: string;
  rows?: number;
  metrics: [string, number | undefined][]; // label -> value, in display order
  thresholdsNote: string;
  labels: EvalLabelRow[]; // worst first: highest log-loss, then label index
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
      labels.push({ label, name, support, logloss, auc: num(l.auc), f1: num(l.f1), threshold: num(l.threshold) });
    });
  labels.sort((a, b) => b.logloss - a.logloss || a.label - b.label);
  const th: Record<string, unknown> = isObject(x.thresholds) ? x.thresholds : {};
  return {
    model: text(x.model, '?'),
    data: text(x.data, '?'),
    rows: num(x.rows),
    metrics: [
      ['score (1 - mlogloss)', num(x.score)],
      ['mlogloss', num(x.mlogloss)],
      ['micro-F1 at 0.5', num(x.micro_f1)],
      ['micro-F1 at the stored thresholds', num(x.micro_f1_at_thresholds)],
      ['macro ROC-AUC', num(x.macro_auc)],
    ],
    thresholdsNote: text(th.note, 'no note on the thresholds'),
    labels,
  };
}
