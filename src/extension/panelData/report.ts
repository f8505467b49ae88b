// The pruning report panel's data (pure): prune-report.json, sweep.json and an evaluation, normalised.
import { BUDGET_COUNTS, budgetOf } from '../../engine/config/budgets';
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
  /** The whole layer was pruned (its original id is `layer`). */
  removed?: boolean;
  layerImportance?: number;
}

/** What a deeper pruning changed beyond heads and FFN (prune-report.json's `structure`). */
export interface ReportStructure {
  layersBefore: number;
  layersKept: number[]; // original ids, in order
  layerImportance: number[]; // per original layer; empty when not scored
  hiddenBefore: number;
  hiddenAfter: number;
  headSize?: number;
  /** A budget's target, reached and unpruned counts, in what it counts: encoder or whole-model parameters. */
  budget?: { target: number; reached: number; before: number; counts: 'encoder' | 'model' };
}

export interface SweepRow {
  config: string;
  /** What the config prunes ('heads+FFN', 'heads+FFN+layers+hidden', 'none' unpruned); absent in old sweeps. */
  structures?: string;
  score: number;
  params: number;
  encoder_params?: number;
  encoder_kept?: number; // fraction of the unpruned encoder
  mb?: number;
  latency_ms?: number;
  /** The heads+FFN row it is compared with and the score difference (prune/structures.ts). */
  vs?: { config: string; scoreDelta: number; ratio: number };
  /** The same, counted in the whole model's parameters (absent in older sweeps). */
  vsModel?: { config: string; scoreDelta: number; ratio: number };
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
  structure?: ReportStructure;
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
          // A removed layer may leave out what it had.
          const gone = l.removed === true;
          const headsTotal = num(l.heads_total) ?? (gone ? 0 : undefined);
          const ffnTotal = num(l.ffn_total) ?? (gone ? 0 : undefined);
          if (headsTotal === undefined || ffnTotal === undefined)
            return void problems.push(`layers[${i}] lacks heads_total or ffn_total`);
          msg.layers.push({
            layer: num(l.layer) ?? i,
            headsKept: gone ? [] : nums(l.heads_kept),
            headsTotal,
            ffnKept: gone ? 0 : (num(l.ffn_kept) ?? ffnTotal),
            ffnTotal,
            headImportance: nums(l.head_importance),
            ...(gone ? { removed: true } : {}),
            ...(num(l.layer_importance) !== undefined ? { layerImportance: num(l.layer_importance) } : {}),
          });
        });
      }
      msg.structure = structureOf(report.structure, problems);
      if (msg.structure) addRemovedLayers(msg.layers, msg.structure);
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
        const row: SweepRow = {
          config: typeof r.config === 'string' ? r.config : `#${i}`,
          score,
          params,
          mb: num(r.mb),
          latency_ms: num(r.latency_ms),
        };
        if (typeof r.structures === 'string' && r.structures) row.structures = r.structures.slice(0, 60);
        if (num(r.encoder_params) !== undefined) row.encoder_params = num(r.encoder_params);
        if (num(r.encoder_kept) !== undefined) row.encoder_kept = num(r.encoder_kept);
        const vs = comparisonOf(r.vs_heads_ffn, 'encoder_params_ratio');
        if (vs) row.vs = vs;
        const vsModel = comparisonOf(r.vs_heads_ffn_model, 'params_ratio');
        if (vsModel) row.vsModel = vsModel;
        msg.sweep.push(row);
      });
  }
  return msg;
}

/** A sweep row's comparison with heads+FFN (`vs_heads_ffn`, `vs_heads_ffn_model`), its ratio under `ratioKey`. */
function comparisonOf(x: unknown, ratioKey: string): SweepRow['vs'] {
  const delta = isObject(x) ? num(x.score_delta) : undefined;
  if (!isObject(x) || typeof x.config !== 'string' || delta === undefined) return undefined;
  return { config: x.config, scoreDelta: delta, ratio: num(x[ratioKey]) ?? 1 };
}

function structureOf(x: unknown, problems: string[]): ReportStructure | undefined {
  if (x === undefined) return undefined;
  const layersBefore = isObject(x) ? num(x.layers_before) : undefined;
  const hiddenBefore = isObject(x) ? num(x.hidden_before) : undefined;
  const hiddenAfter = isObject(x) ? num(x.hidden_after) : undefined;
  if (!isObject(x) || layersBefore === undefined || hiddenBefore === undefined || hiddenAfter === undefined) {
    problems.push('structure lacks layers_before, hidden_before or hidden_after');
    return undefined;
  }
  const out: ReportStructure = {
    layersBefore,
    layersKept: nums(x.layers_kept).filter((l) => Number.isInteger(l) && l >= 0 && l < layersBefore),
    layerImportance: nums(x.layer_importance),
    hiddenBefore,
    hiddenAfter,
  };
  if (num(x.head_size) !== undefined) out.headSize = num(x.head_size);
  const b = x.budget;
  if (isObject(b)) {
    const given = budgetOf(b);
    const [target, reached, before] = [num(given?.target), num(b.reached), num(b.before)];
    if (given && target !== undefined && reached !== undefined && before !== undefined)
      out.budget = { target, reached, before, counts: BUDGET_COUNTS[given.key] };
  }
  return out;
}

/**
 * The layers a report lists as kept, plus a removed row for each original layer that
 * `structure.layers_kept` leaves out and the report does not list (a report that marks removed
 * layers itself is left as it is); rows in original-layer order.
 */
function addRemovedLayers(layers: ReportLayer[], s: ReportStructure): void {
  if (s.layersKept.length === 0) return;
  const listed = new Set(layers.map((l) => l.layer));
  const kept = new Set(s.layersKept);
  const selfMarked = layers.some((l) => l.removed);
  if (!selfMarked && layers.every((l) => kept.has(l.layer))) {
    const headsTotal = Math.max(0, ...layers.map((l) => l.headsTotal));
    const ffnTotal = Math.max(0, ...layers.map((l) => l.ffnTotal));
    for (let l = 0; l < s.layersBefore; l++)
      if (!kept.has(l) && !listed.has(l))
        layers.push({ layer: l, headsKept: [], headsTotal, ffnKept: 0, ffnTotal, headImportance: [], removed: true });
  }
  for (const l of layers) {
    const imp = s.layerImportance[l.layer];
    if (l.layerImportance === undefined && imp !== undefined) l.layerImportance = imp;
  }
  layers.sort((a, b) => a.layer - b.layer);
}

/** What a sweep's x axis shows: encoder parameters when every row has them (new sweeps), else all parameters. */
export function sweepAxis(rows: SweepRow[]): { key: 'encoder_params' | 'params'; title: string } {
  return rows.length && rows.every((r) => r.encoder_params !== undefined)
    ? { key: 'encoder_params', title: 'encoder parameters' }
    : { key: 'params', title: 'parameters' };
}

/** The x value of a row on the sweep's axis. */
export const sweepX = (r: SweepRow, key: 'encoder_params' | 'params'): number => r[key] ?? r.params;

/**
 * The sweep's series: one per `structures` value (the unpruned row its own, 'unpruned'), in the
 * order first seen; rows of an old sweep without the field form one series, 'configs'.
 */
export function sweepSeries(rows: SweepRow[]): { label: string; rows: SweepRow[] }[] {
  const out = new Map<string, SweepRow[]>();
  for (const r of rows) {
    const label = r.structures === undefined ? 'configs' : r.structures === 'none' ? 'unpruned' : r.structures;
    out.set(label, [...(out.get(label) ?? []), r]);
  }
  return [...out].map(([label, rs]) => ({ label, rows: rs }));
}

/** The sweep rows no other row beats on both score (higher) and size on the axis `key` (fewer). */
export function paretoFront(rows: SweepRow[], key: 'encoder_params' | 'params' = 'params'): SweepRow[] {
  const x = (r: SweepRow) => sweepX(r, key);
  return rows
    .filter(
      (r) => !rows.some((o) => o !== r && o.score >= r.score && x(o) <= x(r) && (o.score > r.score || x(o) < x(r))),
    )
    .sort((a, b) => x(a) - x(b));
}
