// Pruning all four structures: heads, FFN neurons, whole layers and the hidden size, in n_iters
// gradual steps. It runs when a prune config gives one budget (target_encoder_params, or
// target_model_params for the whole model) or asks for
// layers or the hidden size; heads and FFN neurons alone with per-layer targets stay
// TextPruner's iterative method (transformer.ts).
//
//   each step   score importance of every structure on the current model (prune/importance.ts),
//               choose what goes (budget: allocateBudget, least loss per parameter first; targets:
//               each structure's linear share of what is left to remove), and slice it off
//               (applyStructures): layers and hidden dimensions cannot be zeroed in place, so every
//               step makes the model physically smaller and the next step scores the smaller model
//   recovery    with recovery_epochs, the model is trained (distilled from the unpruned one)
//               between steps, as in heads+FFN gradual pruning
//   budget      the steps' sizes (encoder or whole model, what the budget counts) are geometric
//               from the unpruned size to the budget, so every step removes the same share of what
//               is left
//
// What was kept is tracked in the numbering of the input model (layers, hidden dimensions, heads),
// for the report and for layer-wise distillation (pruned-from.json).
import { BUDGET_COUNTS, budgetOf, type BudgetKey } from '../config/budgets';
import type { TransformerPruneConfig } from '../config/settings';
import type { Batch } from '../data/encode';
import { CancelledError, UserError } from '../errors';
import { BertConfig, ffnPerLayer, headsPerLayer, keptHeads } from '../model/config';
import { MLM_BIAS } from '../model/names';
import type { Params } from '../model/params';
import type { PrunedFrom } from '../io/checkpoint';
import { applyStructures, type KeptIndices, type StructureMasks } from './apply';
import {
  allocateBudget,
  budgetCount,
  budgetedParams,
  budgetSchedule,
  checkBudget,
  encoderParamsOf,
  outsideParams,
  shapeOf,
} from './budget';
import { computeImportance, type Importance, type ImportanceTarget } from './importance';
import { generateMask } from './masks';
import { prunedStructures } from './structures';
import { checkTargets, type IterativeOptions, type PruneIteration, type TransformerPruneResult } from './transformer';

/** Whether a transformer config prunes more than heads and FFN by per-layer targets. */
export function isStructured(tc: TransformerPruneConfig): boolean {
  const { layers, hidden } = beyondHeadsFfn(tc);
  return budgetOf(tc) !== undefined || layers || hidden;
}

/** Whether a config prunes whole layers and the hidden size (prune/structures.ts says which it prunes). */
function beyondHeadsFfn(tc: TransformerPruneConfig): { layers: boolean; hidden: boolean } {
  const s = prunedStructures({ transformer: tc });
  return { layers: s.includes('layers'), hidden: s.includes('hidden') };
}

/** Where each unit of the pruned model came from, in the input model's numbering. */
export interface Provenance {
  /** Layer i of the current model was layer layers[i]. */
  layers: number[];
  /** Hidden dimension j of the current model was hidden[j]. */
  hidden: number[];
  /** Per current layer, the original ids (in the input model's config) of the heads present. */
  heads: number[][];
}

export function identityProvenance(cfg: BertConfig): Provenance {
  return {
    layers: [...Array(cfg.num_hidden_layers).keys()],
    hidden: [...Array(cfg.hidden_size).keys()],
    heads: [...Array(cfg.num_hidden_layers).keys()].map((l) => keptHeads(cfg, l)),
  };
}

/** The provenance after applying `m` (masks over the current model) with the kept indices `kept`. */
export function nextProvenance(p: Provenance, m: StructureMasks, kept: KeptIndices): Provenance {
  return {
    layers: kept.layers.map((l) => p.layers[l]),
    hidden: kept.hidden.map((j) => p.hidden[j]),
    heads: kept.layers.map((l) => p.heads[l].filter((_, h) => !m.head || m.head[l][h] !== 0)),
  };
}

/** What pruned-from.json records of a provenance (relative to `input`, the model pruning started from). */
export function prunedFrom(p: Provenance, input: BertConfig): PrunedFrom {
  return {
    layers: p.layers.slice(),
    hidden: p.hidden.slice(),
    teacher_layers: input.num_hidden_layers,
    teacher_hidden: input.hidden_size,
  };
}

/**
 * Refuse targets the model cannot reach, before any work: either method's. `mlm`: the checkpoint
 * carries an MLM head (a whole-model budget counts it).
 */
export function checkPruneTargets(cfg: BertConfig, tc: TransformerPruneConfig, source: string, mlm = false): void {
  if (isStructured(tc)) checkStructuredTargets(cfg, tc, source, mlm);
  if (tc.pruning_method === 'iterative') checkTargets(cfg, tc, source);
}

/** The structured method's checks (layers, hidden size, budget, keep_shape). */
function checkStructuredTargets(cfg: BertConfig, tc: TransformerPruneConfig, source: string, mlm: boolean): void {
  const { layers, hidden } = beyondHeadsFfn(tc);
  const budget = budgetOf(tc);
  if (tc.keep_shape && (layers || hidden || budget))
    throw new UserError(
      `${source}: transformer.keep_shape works with heads and FFN only ` +
        '(layers, the hidden size and a budget remove tensors)',
    );
  if (tc.pruning_method !== 'iterative')
    throw new UserError(
      `${source}: a budget (target_encoder_params, target_model_params), prune_layers and prune_hidden ` +
        "need pruning_method 'iterative'",
    );
  const L = cfg.num_hidden_layers;
  if (tc.target_num_layers !== undefined && tc.target_num_layers > L)
    throw new UserError(
      `${source}: transformer.target_num_layers ${tc.target_num_layers} is more than the model has (${L})`,
    );
  if (tc.target_hidden_size !== undefined && tc.target_hidden_size > cfg.hidden_size)
    throw new UserError(
      `${source}: transformer.target_hidden_size ${tc.target_hidden_size} ` +
        `is more than the model has (${cfg.hidden_size})`,
    );
  if (budget) checkBudget(budget, budgetedParams(budget.key, cfg, mlm), source);
}

/** One step's share of what is left: from `cur` towards `final` with `left` steps to go. */
const stepTarget = (cur: number, final: number, left: number) => Math.round(cur - (cur - final) / left);

/** The masks of one step with per-structure targets (no budget). */
function targetMasks(
  cfg: BertConfig,
  imp: Importance,
  tc: TransformerPruneConfig,
  left: number,
  finalLayers: number,
): StructureMasks {
  const L = cfg.num_hidden_layers;
  const m: StructureMasks = {};
  let keptL = L;
  if (imp.layer && finalLayers < L) {
    keptL = stepTarget(L, finalLayers, left);
    const order = imp.layer.map((_, l) => l).sort((a, b) => imp.layer![a] - imp.layer![b] || a - b);
    m.layer = Array(L).fill(1);
    for (const l of order.slice(0, L - keptL)) m.layer[l] = 0;
  }
  // Heads and FFN: per-layer targets times the layers kept at the end of the run, reached linearly.
  const heads = headsPerLayer(cfg).reduce((a, b) => a + b, 0);
  const ffn = ffnPerLayer(cfg).reduce((a, b) => a + b, 0);
  if (tc.target_num_of_heads !== undefined)
    m.head = generateMask(imp.head, stepTarget(heads, tc.target_num_of_heads * keptL, left), {
      even: tc.head_even_masking,
    });
  if (tc.target_ffn_size !== undefined)
    m.ffn = generateMask(imp.ffn, stepTarget(ffn, tc.target_ffn_size * keptL, left), {
      even: tc.ffn_even_masking,
      multipleOf: tc.multiple_of,
    });
  if (imp.hidden && tc.target_hidden_size !== undefined && tc.target_hidden_size < cfg.hidden_size) {
    const keep = stepTarget(cfg.hidden_size, tc.target_hidden_size, left);
    const order = imp.hidden.map((_, j) => j).sort((a, b) => imp.hidden![a] - imp.hidden![b] || a - b);
    m.hidden = Array(cfg.hidden_size).fill(1);
    for (const j of order.slice(0, cfg.hidden_size - keep)) m.hidden[j] = 0;
  }
  return m;
}

export interface StructuredResult extends TransformerPruneResult {
  provenance: Provenance;
  /**
   * The budget as given (budgetCount turns it into parameters), what it counts, and that count of
   * the unpruned model, when one was given.
   */
  budget?: { key: BudgetKey; target: number; before: number; mlm: boolean };
}

/**
 * Prune heads, FFN, layers and hidden size in tc.n_iters sliced steps (see the header). `params`
 * ends sliced; the returned config is the pruned model's.
 */
export async function structuredPrune(
  params: Params,
  cfg: BertConfig,
  batches: Batch[],
  target: ImportanceTarget,
  tc: TransformerPruneConfig,
  o: IterativeOptions = {},
): Promise<StructuredResult> {
  const { layers, hidden } = beyondHeadsFfn(tc);
  const cfg0 = cfg;
  const budget = budgetOf(tc);
  // What the budget counts: the encoder, or the whole model (a hidden dimension also costs its
  // embedding, pooler and classifier rows). checkPruneTargets refused a budget the model meets;
  // vocabulary pruning, which runs first, may have met a model budget since.
  const mlm = params.has(MLM_BIAS); // a checkpoint that carries its MLM head ships it too
  const wholeModel = budget !== undefined && BUDGET_COUNTS[budget.key] === 'model';
  const size = (c: BertConfig) => (budget ? budgetedParams(budget.key, c, mlm) : encoderParamsOf(shapeOf(c)));
  const before = size(cfg);
  const count = budget ? budgetCount(budget.target, before) : null;
  const sizes = count !== null ? budgetSchedule(before, count, tc.n_iters) : [];
  const finalLayers = tc.target_num_layers ?? cfg.num_hidden_layers;
  let prov = identityProvenance(cfg);
  let first: Importance | null = null;
  const iterations: PruneIteration[] = [];
  let last: StructureMasks = {};

  // With a budget, a step may remove its share in several rounds, each scored on the smaller model.
  const rounds = count !== null ? (tc.scoring_rounds ?? 1) : 1;
  for (let i = 0; i < tc.n_iters; i++) {
    const left = tc.n_iters - i;
    // Fixed targets of this step, in counts (met in its first round; later rounds find them met).
    const keepLayers =
      tc.target_num_layers !== undefined ? stepTarget(cfg.num_hidden_layers, finalLayers, left) : undefined;
    const keepHidden =
      tc.target_hidden_size !== undefined ? stepTarget(cfg.hidden_size, tc.target_hidden_size, left) : undefined;
    const start = size(cfg);
    const roundParams: number[] = [];
    for (let r = 0; r < rounds; r++) {
      if (o.signal?.aborted) throw new CancelledError(`prune cancelled in iteration ${i + 1}`);
      const imp = await computeImportance(params, cfg, batches, target, {
        ffnEven: tc.ffn_even_masking,
        // Heads too are scored by removing them: a budget compares them with neurons per parameter.
        structures: { layers, hidden, exactHeads: true },
        log: o.log,
      });
      first ??= imp;
      let m: StructureMasks;
      if (count !== null) {
        // this round's size: geometric from the step's start to the step's size
        const goal = r === rounds - 1 ? sizes[i] : Math.round(start * Math.pow(sizes[i] / start, (r + 1) / rounds));
        const outside = wholeModel ? outsideParams(cfg, mlm) : undefined;
        const b = allocateBudget(shapeOf(cfg), imp, goal, { layers, hidden, keepLayers, keepHidden, outside });
        m = { head: b.head, ffn: b.ffn, layer: b.layer, hidden: b.hidden };
      } else {
        m = targetMasks(cfg, imp, tc, left, finalLayers);
      }
      const applied = applyStructures(params, cfg, m, false);
      cfg = applied.cfg;
      prov = nextProvenance(prov, m, applied.kept);
      last = m;
      roundParams.push(size(cfg));
    }
    const it: PruneIteration = {
      iter: i + 1,
      heads_per_layer: headsPerLayer(cfg),
      ffn_per_layer: ffnPerLayer(cfg),
      layers: prov.layers.slice(),
      hidden_size: cfg.hidden_size,
      encoder_params: encoderParamsOf(shapeOf(cfg)),
      ...(wholeModel ? { model_params: size(cfg) } : {}),
      ...(rounds > 1 ? { round_params: roundParams } : {}),
    };
    iterations.push(it);
    o.onIteration?.(it, tc.n_iters);
    if (o.recover && i < tc.n_iters - 1) cfg = await o.recover(params, cfg, it, prunedFrom(prov, cfg0));
  }
  return {
    cfg,
    headMask: last.head ?? headsPerLayer(cfg).map((a) => Array(a).fill(1)),
    ffnMask: last.ffn ?? ffnPerLayer(cfg).map((n) => Array(n).fill(1)),
    importance: first,
    iterations,
    provenance: prov,
    ...(budget ? { budget: { key: budget.key, target: budget.target, before, mlm } } : {}),
  };
}
