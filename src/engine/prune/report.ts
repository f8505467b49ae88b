// prune-report.json: what was kept, why (importance), and what it bought (size, FLOPs, latency,
// metric). The CLI prints its tables; the extension draws it.
import * as fs from 'node:fs';
import { encoderParams, flopsPerSequence, paramTree } from '../analyze/summary';
import { BUDGET_COUNTS, budgetOf, type BudgetKey } from '../config/budgets';
import type { PruneConfig, TransformerPruneConfig } from '../config/settings';
import { UserError } from '../errors';
import { readJson, writeJsonAtomic } from '../io/atomic';
import { BertConfig, ffnPerLayer, headSize, keptHeads } from '../model/config';
import type { Params } from '../model/params';
import type { EngineEvent } from '../protocol';
import type { Importance } from './importance';
import { budgetCount, budgetedParams } from './budget';
import type { StructuredResult } from './structured';
import type { PruneIteration, TransformerPruneResult } from './transformer';

export const REPORT_FILE = 'prune-report.json';

export interface ModelStats {
  params: number;
  encoder_params: number;
  mb: number; // float32 weights file
  flops: number; // per sequence of `seq_len` tokens, classification forward pass
  latency_ms: number | null; // batch of 32 x seq_len on the active backend; null without classifier
}

export interface LayerReport {
  layer: number;
  heads_total: number; // the model's original num_attention_heads
  heads_before: number[]; // original ids of the heads present before this pruning
  heads_kept: number[]; // original ids of the heads kept
  ffn_total: number; // FFN size before this pruning
  ffn_kept: number;
  head_importance: number[]; // by original head id (0 for heads removed by an earlier pruning)
  ffn_importance: number[]; // per neuron of the layer before this pruning, in its order
  /** Structured pruning: the whole layer was removed. */
  removed?: boolean;
  /** Structured pruning with layers: the layer's importance (first scoring). */
  layer_importance?: number;
}

/** What structured pruning (layers, hidden size, one budget) did to the whole model. */
export interface StructureReport {
  layers_before: number;
  /** Original ids of the layers kept, in order: layer i of the pruned model was layer layers_kept[i]. */
  layers_kept: number[];
  /** Per original layer, first scoring (empty when layers were not scored). */
  layer_importance: number[];
  hidden_before: number;
  hidden_after: number;
  /** Per original hidden dimension, first scoring (empty when not scored). */
  hidden_importance: number[];
  head_size: number;
  /**
   * The budget asked (under its own key: target_encoder_params or target_model_params), what was
   * reached and the unpruned count, in what the budget counts (encoder or whole-model parameters).
   */
  budget?: Partial<Record<BudgetKey, number>> & { reached: number; before: number };
}

export interface PruneReport {
  model: string;
  backend: string;
  seq_len: number;
  before: ModelStats;
  after: ModelStats;
  layers: LayerReport[];
  iterations: PruneIteration[];
  vocabulary?: { before: number; after: number; removed: number };
  metrics: { before?: number; after_prune?: number; after_refinetune?: number };
  config: PruneConfig;
  /** Whether HF transformers can load the pruned checkpoint (not when FFN sizes differ per layer). */
  transformers?: { loadable: boolean; note: string };
  /** Each iterative target the pruned model does not meet exactly, and why (targetNotes). */
  why?: TargetNote[];
  /** Structured pruning (layers, hidden size, budget). */
  structure?: StructureReport;
}

/**
 * transformers' BertIntermediate has one intermediate_size for every layer: a checkpoint whose
 * layers kept different FFN sizes (ffn_even_masking false) loads only in bert-pruner; removed heads
 * (pruned_heads) it re-applies itself. The note says so, and what gives a loadable shape.
 */
export function transformersLoadable(cfg: BertConfig): { loadable: boolean; note: string } {
  const sizes = ffnPerLayer(cfg);
  if (new Set(sizes).size <= 1)
    return { loadable: true, note: 'every layer keeps the same FFN size: HF transformers loads it (from_pretrained)' };
  return {
    loadable: false,
    note:
      `the layers keep different FFN sizes (${sizes.join(', ')}): HF transformers cannot load this checkpoint ` +
      '(its BertIntermediate has one intermediate_size); transformer.ffn_even_masking true keeps a loadable shape, ' +
      'and `export --format onnx` serves it as it is',
  };
}

/** A target not met: heads or FFN neurons over all layers, wanted and kept, and the constraints that decided. */
export interface TargetNote {
  unit: 'heads' | 'ffn';
  target: number;
  kept: number;
  reasons: string[];
}

/**
 * Why the kept totals differ from an iterative config's targets (target per layer x layers), from
 * the constraints the masks obey (masks.ts): a layer never left empty (uneven masking), whole
 * groups of `multiple_of` FFN neurons (uneven FFN masking), even masking's equal share per layer
 * (a layer with fewer units keeps all it has). Empty when every target is met.
 */
export function targetNotes(tc: TransformerPruneConfig | undefined, layers: LayerReport[]): TargetNote[] {
  if (!tc || tc.pruning_method !== 'iterative' || layers.length === 0 || budgetOf(tc)) return [];
  const L = layers.length;
  const out: TargetNote[] = [];
  const units = [
    {
      unit: 'heads' as const,
      per: tc.target_num_of_heads ?? 0,
      even: tc.head_even_masking,
      m: 1,
      kept: layers.map((l) => l.heads_kept.length),
      had: layers.map((l) => l.heads_before.length),
      key: 'target_num_of_heads',
      evenKey: 'head_even_masking',
    },
    {
      unit: 'ffn' as const,
      per: tc.target_ffn_size ?? 0,
      even: tc.ffn_even_masking,
      m: tc.multiple_of ?? 1,
      kept: layers.map((l) => l.ffn_kept),
      had: layers.map((l) => l.ffn_total),
      key: 'target_ffn_size',
      evenKey: 'ffn_even_masking',
    },
  ];
  for (const u of units) {
    const target = u.per * L;
    const kept = u.kept.reduce((a, b) => a + b, 0);
    if (kept === target) continue;
    const name = u.unit === 'heads' ? 'head' : 'FFN neuron';
    const reasons: string[] = [];
    const small = u.had.map((h, l) => (h < u.per ? l : -1)).filter((l) => l >= 0);
    if (u.even) {
      reasons.push(`${u.evenKey}: every layer keeps the same number, ${u.per}`);
      if (small.length)
        reasons.push(`layer ${small.join(', ')} had fewer than ${u.per} ${name}s before pruning and kept all it had`);
    } else {
      if (u.m > 1)
        reasons.push(
          `multiple_of ${u.m}: FFN neurons are kept in whole groups of ${u.m} ` +
            `(${Math.floor(target / u.m)} groups for ${target}; a layer whose size is not a multiple of ${u.m} ` +
            'has one smaller group)',
        );
      const one = u.kept.map((k, l) => (k === 1 && u.had[l] > 1 ? l : -1)).filter((l) => l >= 0);
      if (kept > target && one.length)
        reasons.push(
          `minimum per layer: a layer is never left without a ${name}; layer ${one.join(', ')} ` +
            `got its most important ${name} back`,
        );
    }
    if (reasons.length === 0)
      reasons.push(`${u.key} ${u.per} per layer x ${L} layers = ${target}; see the iterations table`);
    out.push({ unit: u.unit, target, kept, reasons });
  }
  return out;
}

type Table = Extract<EngineEvent, { type: 'table' }>;

const round = (x: number, d = 4) => +x.toFixed(d);
const pct = (a: number, b: number) => (b ? `${round((100 * a) / b, 1)}%` : '');

export function reportTables(r: PruneReport): Table[] {
  const layers: Table = {
    type: 'table',
    title: 'Pruning: kept per layer',
    columns: ['layer', 'heads', 'kept head ids', 'head importance', 'FFN'],
    rows: r.layers.map((l) => [
      l.removed ? `${l.layer} (removed)` : l.layer,
      `${l.heads_kept.length}/${l.heads_before.length}`,
      l.heads_kept.join(' '),
      l.head_importance.map((v) => v.toExponential(2)).join(' '),
      `${l.ffn_kept}/${l.ffn_total}`,
    ]),
  };
  const row = (
    name: string,
    b: number | null | undefined,
    a: number | null | undefined,
    d = 4,
  ): (string | number)[] => [
    name,
    b == null ? '' : round(b, d),
    a == null ? '' : round(a, d),
    b != null && a != null ? pct(a, b) : '',
  ];
  // A budget's row: the unpruned count and what the budget asked for, in what it counts.
  const budgetRows = (b: StructureReport['budget']) => {
    const given = budgetOf(b);
    return b && given
      ? [row(`${BUDGET_COUNTS[given.key]} budget (params)`, b.before, budgetCount(given.target, b.before), 0)]
      : [];
  };
  const summary: Table = {
    type: 'table',
    title: 'Pruning: before / after',
    columns: ['', 'before', 'after', 'after / before'],
    rows: [
      row('params', r.before.params, r.after.params, 0),
      row('encoder params', r.before.encoder_params, r.after.encoder_params, 0),
      row('MB', r.before.mb, r.after.mb, 3),
      row(`FLOPs / sequence (T=${r.seq_len})`, r.before.flops, r.after.flops, 0),
      row(`latency ms (${r.backend})`, r.before.latency_ms, r.after.latency_ms, 2),
      ...(r.vocabulary ? [row('vocabulary', r.vocabulary.before, r.vocabulary.after, 0)] : []),
      ...(r.structure
        ? [
            row('layers', r.structure.layers_before, r.structure.layers_kept.length, 0),
            row('hidden size', r.structure.hidden_before, r.structure.hidden_after, 0),
          ]
        : []),
      ...budgetRows(r.structure?.budget),
      row('score', r.metrics.before, r.metrics.after_prune),
      ...(r.metrics.after_refinetune !== undefined
        ? [row('score after re-fine-tuning', r.metrics.before, r.metrics.after_refinetune)]
        : []),
    ],
  };
  const tables = [summary, layers];
  if (r.why?.length)
    tables.push({
      type: 'table',
      title: 'Pruning: targets not met',
      columns: ['', 'target', 'kept', 'why'],
      rows: r.why.map((n) => [n.unit, n.target, n.kept, n.reasons.join('; ')]),
    });
  const structured = r.iterations.some((it) => it.encoder_params !== undefined);
  const model = r.iterations.some((it) => it.model_params !== undefined);
  if (structured || r.iterations.some((it) => it.recovered_val_score !== undefined)) {
    // The size after each iteration and, in gradual pruning, the validation score its recovery reached.
    tables.push({
      type: 'table',
      title: structured ? 'Pruning: iterations' : 'Pruning: iterations (gradual)',
      columns: [
        'iteration',
        ...(structured ? ['layers kept', 'hidden', 'encoder params'] : []),
        ...(model ? ['model params'] : []),
        'heads per layer',
        'FFN per layer',
        'val score after recovery',
      ],
      rows: r.iterations.map((it) => [
        it.iter,
        ...(structured ? [(it.layers ?? []).join(' '), it.hidden_size ?? '', it.encoder_params ?? ''] : []),
        ...(model ? [it.model_params ?? ''] : []),
        it.heads_per_layer.join(' '),
        it.ffn_per_layer.join(' '),
        it.recovered_val_score === undefined ? '' : round(it.recovered_val_score),
      ]),
    });
  }
  return tables;
}

export function writeReport(file: string, r: PruneReport): void {
  writeJsonAtomic(file, r);
}

export function readReport(file: string): PruneReport {
  if (!fs.existsSync(file)) throw new UserError(`${file}: no prune report (run prune first)`);
  return readJson<PruneReport>(file);
}

/** Merge metric values into a saved report (the pipeline adds after_refinetune this way). */
export function updateReportMetrics(reportFile: string, patch: Partial<PruneReport['metrics']>): PruneReport {
  const r = readReport(reportFile);
  r.metrics = { ...r.metrics, ...patch };
  writeReport(reportFile, r);
  return r;
}

/** Sequence length and batch size of the FLOPs and latency figures (analyze's defaults). */
const STATS_T = 64;
export const STATS_B = 32;

export const statsSeqLen = (cfg: BertConfig) => Math.min(STATS_T, cfg.max_position_embeddings);

/** Size and FLOPs; latency is filled in afterwards, timing both models alternately. */
export function modelStats(params: Params, cfg: BertConfig, mb: number): ModelStats {
  const tree = paramTree([...params].map(([n, v]) => [n, v.shape]));
  return {
    params: tree.params,
    encoder_params: encoderParams(tree),
    mb,
    flops: flopsPerSequence(cfg, statsSeqLen(cfg)),
    latency_ms: null,
  };
}

/** Per layer: heads and FFN neurons before and kept. Physically pruned models say what they kept in
 *  their config (pruned_heads, intermediate_sizes), which also covers gradual pruning's slicing
 *  between steps; keep_shape models in the masks. */
export function layerReports(cfg: BertConfig, r: TransformerPruneResult | null, keepShape: boolean): LayerReport[] {
  return [...Array(cfg.num_hidden_layers).keys()].map((l) => {
    const present = keptHeads(cfg, l);
    const ffnTotal = ffnPerLayer(cfg)[l];
    const headImportance = Array(cfg.num_attention_heads).fill(0);
    const imp: Importance | null = r?.importance ?? null;
    if (imp) present.forEach((h, i) => (headImportance[h] = imp.head[l][i]));
    let headsKept = present;
    let ffnKept = ffnTotal;
    if (r && keepShape) {
      headsKept = present.filter((_, i) => r.headMask[l][i] !== 0);
      ffnKept = r.ffnMask[l].reduce((a, b) => a + b, 0);
    } else if (r) {
      headsKept = keptHeads(r.cfg, l);
      ffnKept = ffnPerLayer(r.cfg)[l];
    }
    return {
      layer: l,
      heads_total: cfg.num_attention_heads,
      heads_before: present,
      heads_kept: headsKept,
      ffn_total: ffnTotal,
      ffn_kept: ffnKept,
      head_importance: imp ? headImportance : [],
      ffn_importance: imp ? imp.ffn[l] : [],
    };
  });
}

/** What an iterative config prunes to, in words, for the log. */
export function pruneGoal(tc: TransformerPruneConfig, cfg: BertConfig): string {
  const parts: string[] = [];
  const budget = budgetOf(tc);
  if (budget) {
    const b = budget.target;
    parts.push(`the ${BUDGET_COUNTS[budget.key]} to ${b < 1 ? `${round(100 * b, 2)}%` : `${b} parameters`}`);
  } else parts.push(`heads to ${tc.target_num_of_heads}/layer and FFN to ${tc.target_ffn_size}/layer`);
  if (tc.target_num_layers !== undefined) parts.push(`layers to ${tc.target_num_layers} of ${cfg.num_hidden_layers}`);
  else if (tc.prune_layers) parts.push('whole layers by the budget');
  if (tc.target_hidden_size !== undefined) parts.push(`hidden size to ${tc.target_hidden_size} of ${cfg.hidden_size}`);
  else if (tc.prune_hidden) parts.push('the hidden size by the budget');
  return parts.join(', ');
}

/** Per original layer of a structured pruning: removed, or what it kept (heads by original id). */
export function structuredLayerReports(cfg: BertConfig, r: StructuredResult): LayerReport[] {
  const imp = r.importance;
  return [...Array(cfg.num_hidden_layers).keys()].map((l) => {
    const present = keptHeads(cfg, l);
    const now = r.provenance.layers.indexOf(l);
    const headImportance = Array(cfg.num_attention_heads).fill(0);
    if (imp) present.forEach((h, i) => (headImportance[h] = imp.head[l][i]));
    return {
      layer: l,
      heads_total: cfg.num_attention_heads,
      heads_before: present,
      heads_kept: now < 0 ? [] : r.provenance.heads[now],
      ffn_total: ffnPerLayer(cfg)[l],
      ffn_kept: now < 0 ? 0 : ffnPerLayer(r.cfg)[now],
      head_importance: imp ? headImportance : [],
      ffn_importance: imp ? imp.ffn[l] : [],
      removed: now < 0,
      ...(imp?.layer ? { layer_importance: imp.layer[l] } : {}),
    };
  });
}

export function structureReport(cfg: BertConfig, r: StructuredResult): StructureReport {
  const reached = r.budget ? budgetedParams(r.budget.key, r.cfg, r.budget.mlm) : undefined;
  return {
    layers_before: cfg.num_hidden_layers,
    layers_kept: r.provenance.layers.slice(),
    layer_importance: r.importance?.layer ?? [],
    hidden_before: cfg.hidden_size,
    hidden_after: r.cfg.hidden_size,
    hidden_importance: r.importance?.hidden ?? [],
    head_size: headSize(r.cfg),
    ...(r.budget && reached !== undefined
      ? {
          budget: { [r.budget.key]: r.budget.target, reached, before: r.budget.before },
        }
      : {}),
  };
}
