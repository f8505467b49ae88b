// One budget (transformer.target_encoder_params, or target_model_params for the whole model):
// which heads, FFN neurons, whole layers and hidden dimensions to remove so that the encoder (or
// the whole classification model) keeps at most a given number of parameters, chosen greedily by
// importance per parameter.
//
// Every unit's importance is the same kind of number: how much the importance loss grows when the
// unit goes (prune/importance.ts, per batch, averaged): the exact change for a whole layer and a
// head (each removed in turn), the first-order estimate |dL/dz| of its gate for the many small
// units, FFN neurons and hidden dimensions. Dividing by what the unit costs in encoder parameters
// gives "loss per parameter", comparable across the four structures. With a whole-model budget, a
// hidden dimension also costs its row of every embedding table, of the pooler and the classifier
// (BudgetOptions.outside): at small sizes that is most of what it saves. The greedy loop removes the unit with the
// least loss per parameter, updates what the others cost (a removed hidden dimension makes every
// head and neuron cheaper, a removed head makes a hidden dimension cheaper), and goes on until
// the encoder fits the budget. Within one kind the costs are equal (heads, FFN neurons, hidden
// dimensions), so each kind's candidates keep their importance order and the loop is a merge.
//
// Why greedy rather than CoFi's learned L0 masks: it needs no extra training, no Lagrangian
// schedule to tune, and it is deterministic; gradual pruning (recovery epochs between steps,
// importance re-scored on the recovered model) corrects what a one-shot greedy choice gets wrong.
//
// Encoder parameters of a layer with A heads of size D, FFN size I, hidden size H:
//   Q, K, V: 3 (A D H + A D)   attention output: A D H + H   two LayerNorms: 4 H
//   FFN: I H + I + I H + H                                    => 4 A D H + 3 A D + 2 I H + I + 6 H
// Outside the encoder (model/shapes.ts): embeddings (V + P + T + 2) H, pooler H H + H, classifier C H + C.
import { BUDGET_COUNTS, type Budget, type BudgetKey } from '../config/budgets';
import { UserError } from '../errors';
import { BertConfig, ffnPerLayer, headSize, headsPerLayer } from '../model/config';
import { ENCODER } from '../model/names';
import { paramShapes } from '../model/shapes';
import type { Importance } from './importance';
import type { Mask } from './masks';

/** The shape the budget arithmetic works on: per layer heads and FFN size, hidden and head size. */
export interface EncoderShape {
  heads: number[];
  ffn: number[];
  hidden: number;
  headSize: number;
}

export const shapeOf = (cfg: BertConfig): EncoderShape => ({
  heads: headsPerLayer(cfg),
  ffn: ffnPerLayer(cfg),
  hidden: cfg.hidden_size,
  headSize: headSize(cfg),
});

/** Encoder parameters of one layer. */
export function layerParams(A: number, I: number, H: number, D: number): number {
  return 4 * A * D * H + 3 * A * D + 2 * I * H + I + 6 * H;
}

/** Encoder parameters (the bert.encoder module) of a shape. */
export function encoderParamsOf(s: EncoderShape): number {
  return s.heads.reduce((sum, A, l) => sum + layerParams(A, s.ffn[l], s.hidden, s.headSize), 0);
}

/**
 * The parameters of the classification model (BertForSequenceClassification: embeddings, pooler,
 * classifier; and the MLM head where the checkpoint carries one, `mlm`) outside the encoder, as a
 * function of the hidden size; the rest of `cfg` fixed.
 */
export function outsideParams(cfg: BertConfig, mlm = false): (H: number) => number {
  const memo = new Map<number, number>();
  const D = headSize(cfg);
  return (H) => {
    let n = memo.get(H);
    if (n === undefined) {
      const noLayers: BertConfig = {
        ...cfg,
        hidden_size: H,
        attention_head_size: D,
        num_hidden_layers: 0,
        intermediate_sizes: [],
        pruned_heads: {},
      };
      n = paramShapes(noLayers, { mlm, classifier: true })
        .filter(([name]) => !name.startsWith(`${ENCODER}.`))
        .reduce((s, [, shape]) => s + shape.reduce((a, b) => a * b, 1), 0);
      memo.set(H, n);
    }
    return n;
  };
}

/** The classification model's parameters (with its MLM head: `mlm`): what analyze counts in its checkpoint. */
export const modelParamsOf = (cfg: BertConfig, mlm = false): number =>
  encoderParamsOf(shapeOf(cfg)) + outsideParams(cfg, mlm)(cfg.hidden_size);

/** What a budget counts of a model: its encoder, or the whole classification model (`mlm`: with its MLM head). */
export const budgetedParams = (key: BudgetKey, cfg: BertConfig, mlm = false): number =>
  BUDGET_COUNTS[key] === 'model' ? modelParamsOf(cfg, mlm) : encoderParamsOf(shapeOf(cfg));

/** What a budget means for a model: a fraction (< 1) of what it counts (`unpruned`), or a count (>= 1). */
export function budgetCount(target: number, unpruned: number): number {
  return target < 1 ? Math.floor(target * unpruned) : target;
}

/**
 * The encoder sizes of n gradual steps from `from` down to `to`: geometric, so that every step
 * removes the same share of what is left (a linear schedule's last step would remove most of a
 * model pruned to 15%).
 */
export function budgetSchedule(from: number, to: number, n: number): number[] {
  if (to >= from) return Array(n).fill(from);
  return [...Array(n).keys()].map((i) => (i === n - 1 ? to : Math.round(from * Math.pow(to / from, (i + 1) / n))));
}

export interface BudgetOptions {
  /** Whole layers may go (prune_layers). */
  layers: boolean;
  /** Hidden dimensions may go (prune_hidden). */
  hidden: boolean;
  /** Layers that must go first, least important first, whatever the budget (target_num_layers' step). */
  keepLayers?: number;
  /** Hidden size to reach first (target_hidden_size's step). */
  keepHidden?: number;
  /** The hidden size never goes below this (default: the head size, and at least 8). */
  minHidden?: number;
  /**
   * A whole-model budget: the parameters outside the encoder at hidden size H (outsideParams),
   * counted in the total and in what a hidden dimension saves. Without it the budget is the encoder's.
   */
  outside?: (H: number) => number;
}

export interface BudgetResult {
  head: Mask;
  ffn: Mask;
  /** 1 keep / 0 remove, per layer. */
  layer: number[];
  /** 1 keep / 0 remove, per hidden dimension. */
  hidden: number[];
  /** Parameters of the shape the masks leave: the encoder's, or the whole model's with `outside`. */
  params: number;
}

/** A candidate removal: its kind, its loss (importance), its cost in parameters, loss per parameter. */
interface Option {
  kind: 'head' | 'ffn' | 'layer' | 'hidden';
  loss: number;
  cost: number;
  score: number;
}
const option = (kind: Option['kind'], loss: number, cost: number): Option => ({ kind, loss, cost, score: loss / cost });

/** Indices of xs ascending by value (stable). */
const ascending = (xs: number[]) => xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b] || a - b);

/**
 * Choose what to remove so that the encoder keeps at most `target` parameters (see the header).
 * Fixed targets (keepLayers, keepHidden) are met first by importance alone; then the greedy loop
 * spends the rest. Every kept layer keeps at least one head and one FFN neuron. If the budget cannot be met with what
 * may be removed, the smallest reachable shape is returned (`params` says what it is).
 */
export function allocateBudget(shape: EncoderShape, imp: Importance, target: number, o: BudgetOptions): BudgetResult {
  const L = shape.heads.length;
  const D = shape.headSize;
  const head: Mask = shape.heads.map((a) => Array(a).fill(1));
  const ffn: Mask = shape.ffn.map((i) => Array(i).fill(1));
  const layer = Array(L).fill(1);
  const hidden = Array(shape.hidden).fill(1);
  const A = shape.heads.slice();
  const I = shape.ffn.slice();
  let H = shape.hidden;
  const minHidden = Math.max(1, Math.min(shape.hidden, o.minHidden ?? Math.max(8, D)));
  if ((o.layers || o.keepLayers !== undefined) && !imp.layer) throw new Error('budget: layer importance missing');
  if ((o.hidden || o.keepHidden !== undefined) && !imp.hidden) throw new Error('budget: hidden importance missing');

  const outside = o.outside ?? (() => 0);
  const params = () => A.reduce((s, a, l) => s + (layer[l] ? layerParams(a, I[l], H, D) : 0), 0) + outside(H);

  // Fixed targets first: the least important layers / hidden dimensions.
  if (o.keepLayers !== undefined && o.keepLayers < L) {
    for (const l of ascending(imp.layer!).slice(0, L - Math.max(1, o.keepLayers))) layer[l] = 0;
  }
  const hiddenOrder = o.hidden || o.keepHidden !== undefined ? ascending(imp.hidden!) : [];
  let hiddenNext = 0;
  if (o.keepHidden !== undefined && o.keepHidden < H) {
    const keep = Math.max(minHidden, o.keepHidden);
    while (H > keep) {
      hidden[hiddenOrder[hiddenNext++]] = 0;
      H--;
    }
  }

  // The candidates of each kind, least important first.
  const headOrder: [number, number][] = [];
  shape.heads.forEach((a, l) => imp.head[l].slice(0, a).forEach((v, h) => headOrder.push([l, h])));
  headOrder.sort((x, y) => imp.head[x[0]][x[1]] - imp.head[y[0]][y[1]]);
  const ffnOrder: [number, number][] = [];
  shape.ffn.forEach((n, l) => imp.ffn[l].slice(0, n).forEach((v, i) => ffnOrder.push([l, i])));
  ffnOrder.sort((x, y) => imp.ffn[x[0]][x[1]] - imp.ffn[y[0]][y[1]]);
  const layerOrder = o.layers && o.keepLayers === undefined ? ascending(imp.layer!) : [];
  let hi = 0;
  let fi = 0;
  let li = 0;
  const canHidden = o.hidden && o.keepHidden === undefined;

  // The least loss at which the next FFN neurons (in their order, `cost` parameters each) remove at
  // least `need` parameters.
  const ffnCoverLoss = (need: number, cost: number): number => {
    const left = I.slice();
    let loss = 0;
    let got = 0;
    for (let k = fi; k < ffnOrder.length && got < need; k++) {
      const [l, i] = ffnOrder[k];
      if (!layer[l] || left[l] <= 1) continue;
      left[l]--;
      loss += imp.ffn[l][i];
      got += cost;
    }
    return got >= need ? loss : Infinity;
  };

  let current = params();
  while (current > target) {
    // Skip candidates that are gone or may not go.
    while (hi < headOrder.length && (!layer[headOrder[hi][0]] || A[headOrder[hi][0]] <= 1)) hi++;
    while (fi < ffnOrder.length && (!layer[ffnOrder[fi][0]] || I[ffnOrder[fi][0]] <= 1)) fi++;
    while (li < layerOrder.length && (!layer[layerOrder[li]] || layer.reduce((a, b) => a + b, 0) <= 1)) li++;
    const options: Option[] = [];
    if (hi < headOrder.length) {
      const [l, h] = headOrder[hi];
      options.push(option('head', imp.head[l][h], 4 * D * H + 3 * D));
    }
    if (fi < ffnOrder.length) {
      const [l, i] = ffnOrder[fi];
      options.push(option('ffn', imp.ffn[l][i], 2 * H + 1));
    }
    if (li < layerOrder.length) {
      const l = layerOrder[li];
      options.push(option('layer', imp.layer![l], layerParams(A[l], I[l], H, D)));
    }
    if (canHidden && H > minHidden && hiddenNext < hiddenOrder.length) {
      const perDim =
        A.reduce((s, a, l) => s + (layer[l] ? 4 * a * D + 2 * I[l] + 6 : 0), 0) + outside(H) - outside(H - 1);
      options.push(option('hidden', imp.hidden![hiddenOrder[hiddenNext]], perDim));
    }
    if (options.length === 0) break; // nothing more may go: the smallest reachable shape
    let best = options.reduce((a, b) => (b.score < a.score ? b : a));
    // The last removal: a big unit (a layer, a head) that would take the encoder far below the
    // budget costs its whole loss, while the budget needs only the difference. When FFN neurons
    // cover that difference for less loss, they go instead (scored per parameter, a layer looks
    // cheap, and removing it would leave the budget unspent).
    const ffnOption = options.find((o) => o.kind === 'ffn');
    if (ffnOption && best.kind !== 'ffn' && best.cost > current - target) {
      if (ffnCoverLoss(current - target, ffnOption.cost) < best.loss) best = ffnOption;
    }
    if (best.kind === 'head') {
      const [l, h] = headOrder[hi++];
      head[l][h] = 0;
      A[l]--;
    } else if (best.kind === 'ffn') {
      const [l, i] = ffnOrder[fi++];
      ffn[l][i] = 0;
      I[l]--;
    } else if (best.kind === 'layer') {
      layer[layerOrder[li++]] = 0;
    } else {
      hidden[hiddenOrder[hiddenNext++]] = 0;
      H--;
    }
    current = params();
  }
  return { head, ffn, layer, hidden, params: current };
}

/**
 * Where a budget keeps all that the model has (`total`, what the budget counts): "keeps 700000
 * encoder parameters; the model has 659712 (nothing to prune)". Undefined where it prunes.
 */
export function budgetMet(b: Budget, total: number): string | undefined {
  const count = budgetCount(b.target, total);
  return count >= total
    ? `keeps ${count} ${BUDGET_COUNTS[b.key]} parameters; the model has ${total} (nothing to prune)`
    : undefined;
}

/** A budget the model already meets is refused before any work; `total` is what the budget counts. */
export function checkBudget(b: Budget, total: number, source: string): number {
  const met = budgetMet(b, total);
  if (met) throw new UserError(`${source}: transformer.${b.key} ${b.target} ${met}`);
  return budgetCount(b.target, total);
}
