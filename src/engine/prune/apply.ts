// Applying pruning masks to the weights. Four structures:
//
//   head h of layer l   rows h*D..h*D+D-1 of Q, K, V (weights and biases) and the same columns of
//                       the attention output weight (its bias is shared by all heads and stays)
//   FFN neuron i        row i of the intermediate weight and bias, column i of the output weight
//   layer l             all of layer l's tensors; the kept layers are renumbered 0..L'-1
//   hidden dim j        column j of the three embedding tables and of every weight that reads the
//                       hidden states (Q, K, V, intermediate, pooler, classifier, MLM transform),
//                       row j (and the bias entry) of every weight that writes them (attention
//                       output, FFN output, pooler, MLM transform), entry j of every LayerNorm
//
// Heads and FFN as TextPruner's `prune_with_masks` does them: physically (slice the kept rows/
// columns out; the shapes shrink) or, with keepShape, by zeroing the pruned rows/columns. A zeroed
// head has Q = K = 0 (uniform attention) and V = 0 (zero context), and GELU(0) = 0 for a zeroed
// neuron, so both forms compute the same function. Layers and hidden dims are only ever sliced:
// the masked forward of model/bert.ts (layerGate, hiddenMask) is what computes their keep-shape form.
//
// The config follows HF: `pruned_heads` accumulates the ORIGINAL indices of removed heads (HF
// re-applies them after construction), and per-layer FFN sizes go to `intermediate_sizes` when the
// layers differ (HF has no such key; our loader reads it). Heads keep their size D when the hidden
// size shrinks: the config stays a plain BertConfig (HF derives D = hidden / heads) when D divides
// the new hidden size H' and no layer keeps more than H'/D heads; num_attention_heads is H'/D then
// and each layer's kept heads are renumbered 0..k-1. Otherwise heads and pruned_heads stay as they
// are and `attention_head_size` (ours) records D.
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import { BertConfig, ffnPerLayer, headSize, headsPerLayer, keptHeads } from '../model/config';
import { layer, layerOf, parseName } from '../model/names';
import type { Params } from '../model/params';
import type { Mask } from './masks';

const get = (params: Params, name: string): tf.Variable => {
  const v = params.get(name);
  if (!v) throw new Error(`missing parameter ${name}`);
  return v;
};

/** Replace a parameter by f(old) (computed outside any tape), disposing the old variable. */
function replace(params: Params, name: string, f: (x: tf.Tensor) => tf.Tensor): void {
  const old = get(params, name);
  const next = tf.tidy(() => f(old));
  params.set(name, tf.variable(next, true));
  next.dispose();
  old.dispose();
}

/** Expand a per-unit mask to per-row indices / multipliers: unit u covers rows u*size..u*size+size-1. */
function rowsOf(mask: number[], size: number): { keep: number[]; mult: Float32Array } {
  const keep: number[] = [];
  const mult = new Float32Array(mask.length * size);
  mask.forEach((m, u) => {
    if (m !== 0) {
      for (let r = 0; r < size; r++) keep.push(u * size + r);
      mult.fill(1, u * size, (u + 1) * size);
    }
  });
  return { keep, mult };
}

/** Keep (or zero) the masked rows (axis 0) or columns (axis 1) of a parameter. */
function select(
  params: Params,
  name: string,
  axis: 0 | 1,
  rows: { keep: number[]; mult: Float32Array },
  keepShape: boolean,
): void {
  replace(params, name, (x) => {
    if (keepShape) {
      const m = tf.tensor1d(rows.mult);
      if (x.rank === 1) return tf.mul(x, m);
      return tf.mul(x, axis === 0 ? tf.reshape(m, [-1, 1]) : tf.reshape(m, [1, -1]));
    }
    return tf.gather(x, tf.tensor1d(rows.keep, 'int32'), axis);
  });
}

function checkMask(mask: Mask | null | undefined, sizes: number[], what: string): void {
  if (!mask) return;
  if (mask.length !== sizes.length)
    throw new UserError(`${what}: has ${mask.length} layers, the model has ${sizes.length}`);
  mask.forEach((row, l) => {
    if (row.length !== sizes[l])
      throw new UserError(`${what}: layer ${l} has ${row.length} entries, the model's layer has ${sizes[l]}`);
  });
}

/** Masks of the four structures, each over the input model (absent or null: nothing of that kind pruned). */
export interface StructureMasks {
  /** Per layer, per present head (original-id order), 1 = keep. */
  head?: Mask | null;
  /** Per layer, per neuron. */
  ffn?: Mask | null;
  /** Per layer, 1 = keep the layer. */
  layer?: number[] | null;
  /** Per hidden dim, 1 = keep the dim. */
  hidden?: number[] | null;
}

/** What of the input model remains, in the INPUT model's numbering (ascending). */
export interface KeptIndices {
  layers: number[];
  hidden: number[];
}

/**
 * The kept indices of two prunings in a row in the first one's input numbering: `later` is
 * relative to the model `earlier` produced.
 */
export function composeKept(earlier: KeptIndices, later: KeptIndices): KeptIndices {
  return { layers: later.layers.map((i) => earlier.layers[i]), hidden: later.hidden.map((j) => earlier.hidden[j]) };
}

const KEEP_SHAPE_ONLY = 'keep_shape works with heads and FFN only';

/**
 * Apply the masks in place (params' variables are replaced, renamed or removed) and return the
 * config of the result and the layers and hidden dims kept. Order: layers (the head and FFN rows of
 * dropped layers are ignored), then heads and FFN, then the hidden size. With keepShape (heads and
 * FFN only: a layer or hidden mask that removes anything is a UserError) the config is unchanged and
 * the pruned units are only zeroed.
 */
export function applyStructures(
  params: Params,
  cfg: BertConfig,
  m: StructureMasks,
  keepShape: boolean,
): { cfg: BertConfig; kept: KeptIndices } {
  const L = cfg.num_hidden_layers;
  const H = cfg.hidden_size;
  checkMask(m.head, headsPerLayer(cfg), 'head mask');
  checkMask(m.ffn, ffnPerLayer(cfg), 'FFN mask');
  const layers = keptOf(m.layer, L, 'layer mask', 'layer');
  const hidden = keptOf(m.hidden, H, 'hidden mask', 'hidden dim');
  const kept: KeptIndices = { layers, hidden };
  if (keepShape) {
    if (layers.length < L || hidden.length < H) throw new UserError(KEEP_SHAPE_ONLY);
    return { cfg: applyHeadsFfn(params, cfg, m.head ?? null, m.ffn ?? null, true), kept };
  }
  // Every check before the first change: a refused call leaves params as they were.
  for (const l of layers) {
    const fm = m.ffn?.[l];
    if (fm && fm.length > 0 && fm.every((x) => x === 0))
      throw new UserError(`FFN mask: layer ${l} would keep no neuron (keep at least one)`);
  }
  let next = layers.length < L ? dropLayers(params, cfg, layers) : structuredClone(cfg);
  const rowsOfKept = (mask: Mask | null | undefined) => (mask ? layers.map((l) => mask[l]) : null);
  next = applyHeadsFfn(params, next, rowsOfKept(m.head), rowsOfKept(m.ffn), false);
  if (hidden.length < H) next = sliceHidden(params, next, hidden);
  if (next.attention_head_size !== undefined) next = headsConfig(next);
  return { cfg: next, kept };
}

/**
 * Apply head and FFN masks in place and return the config of the result (applyStructures with
 * those two only). Masks are over each layer's current units (heads in original-id order, as HF
 * keeps them). With keepShape the config is unchanged: the pruned units are only zeroed.
 */
export function applyMasks(
  params: Params,
  cfg: BertConfig,
  headMask: Mask | null,
  ffnMask: Mask | null,
  keepShape: boolean,
): BertConfig {
  return applyStructures(params, cfg, { head: headMask, ffn: ffnMask }, keepShape).cfg;
}

/** The indices a 0/1 mask over n units keeps (all of them without a mask); never none. */
function keptOf(mask: number[] | null | undefined, n: number, what: string, unit: string): number[] {
  if (!mask) return [...Array(n).keys()];
  if (mask.length !== n) throw new UserError(`${what}: has ${mask.length} entries, the model has ${n} ${unit}s`);
  if (!mask.every((x) => typeof x === 'number' && Number.isFinite(x)))
    throw new UserError(`${what}: every entry must be a number (1 = keep, 0 = prune)`);
  const keep = mask.flatMap((x, i) => (x !== 0 ? [i] : []));
  if (keep.length === 0) throw new UserError(`${what}: would keep no ${unit} (keep at least one)`);
  return keep;
}

function applyHeadsFfn(
  params: Params,
  cfg: BertConfig,
  headMask: Mask | null,
  ffnMask: Mask | null,
  keepShape: boolean,
): BertConfig {
  const D = headSize(cfg);
  const next: BertConfig = structuredClone(cfg);
  const ffnSizes = ffnPerLayer(cfg).slice();
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = layer(l);
    const hm = headMask?.[l];
    if (hm && !hm.every((x) => x !== 0)) {
      const rows = rowsOf(hm, D);
      for (const m of [p.query, p.key, p.value]) {
        select(params, m.weight, 0, rows, keepShape);
        select(params, m.bias, 0, rows, keepShape);
      }
      select(params, p.attnOut.weight, 1, rows, keepShape);
      if (!keepShape) {
        const present = keptHeads(cfg, l);
        const removed = new Set(cfg.pruned_heads[String(l)] ?? []);
        hm.forEach((m, i) => m === 0 && removed.add(present[i]));
        next.pruned_heads[String(l)] = [...removed].sort((a, b) => a - b);
      }
    }
    const fm = ffnMask?.[l];
    if (fm && !fm.every((x) => x !== 0)) {
      if (!keepShape && fm.every((x) => x === 0))
        throw new UserError(`FFN mask: layer ${l} would keep no neuron (keep at least one)`);
      const rows = rowsOf(fm, 1);
      select(params, p.inter.weight, 0, rows, keepShape);
      select(params, p.inter.bias, 0, rows, keepShape);
      select(params, p.out.weight, 1, rows, keepShape);
      if (!keepShape) ffnSizes[l] = rows.keep.length;
    }
  }
  if (!keepShape) setFfnSizes(next, ffnSizes);
  return next;
}

/**
 * Keep only the given layers (ascending input indices), renumbered 0..L'-1: their tensors are
 * renamed, the others disposed; pruned_heads and the FFN sizes follow.
 */
function dropLayers(params: Params, cfg: BertConfig, keep: number[]): BertConfig {
  const newIndex = new Map(keep.map((l, i) => [l, i]));
  const entries = [...params];
  params.clear();
  for (const [name, v] of entries) {
    const l = layerOf(name);
    if (l === null) {
      params.set(name, v);
      continue;
    }
    const to = newIndex.get(l);
    if (to === undefined) {
      v.dispose();
      continue;
    }
    params.set(layer(to).prefix + name.slice(layer(l).prefix.length), v);
  }
  const next: BertConfig = structuredClone(cfg);
  next.num_hidden_layers = keep.length;
  next.pruned_heads = {};
  keep.forEach((l, i) => {
    const removed = cfg.pruned_heads[String(l)];
    if (removed && removed.length > 0) next.pruned_heads[String(i)] = removed.slice();
  });
  const sizes = ffnPerLayer(cfg);
  setFfnSizes(
    next,
    keep.map((l) => sizes[l]),
  );
  return next;
}

/** Which axes of each tensor are hidden-sized, by parseName's part and tensor (see the header). */
function hiddenAxes(name: string): number[] {
  const n = parseName(name);
  if (!n) throw new Error(`hidden-size pruning: unknown parameter ${name}`);
  const bias = n.tensor === 'bias';
  switch (n.part) {
    case 'wordEmb':
    case 'posEmb':
    case 'typeEmb':
      return [1];
    case 'embLn':
    case 'attnLn':
    case 'outLn':
    case 'mlmLn':
      return [0];
    case 'query':
    case 'key':
    case 'value':
    case 'inter':
    case 'classifier':
      return bias ? [] : [1];
    case 'attnOut':
    case 'out':
      return [0];
    case 'pooler':
    case 'mlmDense':
      return bias ? [0] : [0, 1];
    case 'mlmBias':
    case 'mlmDecoder':
      return [];
  }
}

/** Keep only the given hidden dims (ascending) of every tensor; heads keep their size. */
function sliceHidden(params: Params, cfg: BertConfig, keep: number[]): BertConfig {
  const idx = keep.slice();
  for (const name of [...params.keys()]) {
    const axes = hiddenAxes(name);
    if (axes.length === 0) continue;
    replace(params, name, (x) => {
      const i = tf.tensor1d(idx, 'int32');
      return axes.reduce((t, a) => tf.gather(t, i, a), x);
    });
  }
  return headsConfig({ ...structuredClone(cfg), hidden_size: keep.length, attention_head_size: headSize(cfg) });
}

/**
 * The heads' record of a config whose head size D is attention_head_size: a plain BertConfig (HF's
 * D = hidden / heads) when D divides the hidden size H and no layer has more than H/D heads, each
 * layer's heads renumbered 0..k-1 (pruned_heads lists the rest); else the config as it is.
 */
function headsConfig(cfg: BertConfig): BertConfig {
  const D = headSize(cfg);
  const H = cfg.hidden_size;
  const heads = headsPerLayer(cfg);
  if (H % D !== 0 || heads.some((k) => k > H / D)) return cfg;
  const A = H / D;
  const next: BertConfig = { ...structuredClone(cfg), num_attention_heads: A, pruned_heads: {} };
  heads.forEach((k, l) => {
    if (k < A) next.pruned_heads[String(l)] = [...Array(A).keys()].slice(k);
  });
  delete next.attention_head_size;
  return next;
}

/** intermediate_size when every layer agrees, else intermediate_sizes (one per layer). */
function setFfnSizes(cfg: BertConfig, sizes: number[]): void {
  if (sizes.every((s) => s === sizes[0])) {
    cfg.intermediate_size = sizes[0];
    delete cfg.intermediate_sizes;
  } else {
    // HF builds every layer with intermediate_size; keep the largest there so that a loader which
    // ignores intermediate_sizes at least fails loudly on the shapes instead of truncating.
    cfg.intermediate_size = Math.max(...sizes);
    cfg.intermediate_sizes = sizes.slice();
  }
}
