// Applying head and FFN masks to the weights, as TextPruner's `prune_with_masks` does:
//
//   head h of layer l   rows h*D..h*D+D-1 of Q, K, V (weights and biases) and the same columns of
//                       the attention output weight (its bias is shared by all heads and stays)
//   FFN neuron i        row i of the intermediate weight and bias, column i of the output weight
//
// Physically (slice the kept rows/columns out; the shapes shrink) or, with keepShape, by zeroing
// the pruned rows/columns. A zeroed head has Q = K = 0 (uniform attention) and V = 0 (zero
// context), and GELU(0) = 0 for a zeroed neuron, so both forms compute the same function.
//
// The config follows HF: `pruned_heads` accumulates the ORIGINAL indices of removed heads (HF
// re-applies them after construction), and per-layer FFN sizes go to `intermediate_sizes` when the
// layers differ (HF has no such key; our loader reads it).
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import { BertConfig, ffnPerLayer, headSize, headsPerLayer, keptHeads } from '../model/config';
import { layer } from '../model/names';
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

/**
 * Apply masks in place (params' variables are replaced) and return the config of the result.
 * Masks are over each layer's current units (heads in original-id order, as HF keeps them).
 * With keepShape the config is unchanged: the pruned units are only zeroed.
 */
export function applyMasks(
  params: Params,
  cfg: BertConfig,
  headMask: Mask | null,
  ffnMask: Mask | null,
  keepShape: boolean,
): BertConfig {
  const D = headSize(cfg);
  checkMask(headMask, headsPerLayer(cfg), 'head mask');
  checkMask(ffnMask, ffnPerLayer(cfg), 'FFN mask');
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
