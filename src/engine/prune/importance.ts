// First-order Taylor importance of attention heads and FFN neurons (TextPruner's
// `get_importance_score` / `get_importance_score_with_logits`, Michel et al. 2019):
//
//   loss      per batch, dropout off: the training loss on the labels (HF's multi-label BCE, mean
//             over B x L; single-label: softmax cross-entropy), or with use_logits the divergence
//             from the unpruned model (below)
//   head h    | sum over the columns of head h of the attention output weight of grad * weight |
//   neuron i  | sum over row i of the intermediate weight of grad * weight + grad_b * b_i |   (only
//             with even FFN masking, as in TextPruner) + | sum over column i of the output weight |
//
// Both are |dL/dz| of a gate z = 1 multiplying the unit's output: the head's context columns enter
// the attention output as W[:, cols] (z ctx), so dL/dz = sum over those columns of grad * weight;
// likewise the neuron's activation for the FFN output weight's column (and, before the GELU, for
// the intermediate row). The hidden size takes the same derivative of its own gate
// (model/bert.ts ForwardOptions); a whole layer is too large a change for a first-order estimate
// (its gate's derivative badly underrates what skipping it costs), so it is scored by the change
// itself, and so are heads when structured pruning asks (`exactHeads`: on the gaiic-deep model a
// head's derivative was 2-5x below the loss change of removing it, so a budget spent on
// derivatives removed heads first). Asked for with `structures`:
//
//   hidden j  | dL/dm_j | at hiddenMask m = 1 (LayerNorms over the kept dims, outputs times m)
//   layer l   | L(layer l skipped) - L | per batch (layerGate g_l = 0: the layer's output is its
//             input), the exact first difference of the same loss, on the same scale as the others
//   head h    with exactHeads: | L(head h removed) - L | per batch, likewise
//
// The absolute value is taken per batch, the per-batch values are summed, and the sum is divided
// by the number of examples. A unit whose weights are zero (masked earlier) scores exactly 0.
//
// use_logits: no labels; the loss compares the model with the unpruned model's own predictions.
// TextPruner takes the softmax cross-entropy between the unpruned model's softmax and the pruned
// model's log-softmax. Our head is 17 independent sigmoids, so a softmax over labels is the wrong
// distribution: we use the per-label Bernoulli cross-entropy. With soft targets p = s(unpruned
// logits) its gradient w.r.t. the logits, s(q) - p, is exactly zero while the model still equals
// the unpruned one (TextPruner only sees a signal there through float16 rounding noise). We
// therefore take the unpruned model's decisions as targets, y_j = [p_j >= 0.5] (pseudo-labels):
//     -sum_j [y_j log s(q_j) + (1 - y_j) log(1 - s(q_j))], summed over labels, averaged over the batch
// which has a real gradient from the first step and keeps measuring how much each unit matters to
// the decisions the unpruned model makes. A single-label classifier (softmax) takes the softmax
// cross-entropy against the unpruned model's argmax, for the same reason.
import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../data/encode';
import { bceWithLogits, classify, type ForwardOptions, softCrossEntropy, toInputs } from '../model/bert';
import { variableGrads } from '../model/grads';
import { BertConfig, ffnPerLayer, headSize, headsPerLayer, isSingleLabel, numLabels } from '../model/config';
import { layer } from '../model/names';
import type { Params } from '../model/params';
import { queueBatchLogits } from '../model/predict';
import { argmaxRows } from '../train/metrics';
import { passRecorder, queuePass } from '../ops/record';

export interface Importance {
  head: number[][]; // per layer, per present head (original-id order)
  ffn: number[][]; // per layer, per neuron
  layer?: number[]; // per layer (with structures.layers)
  hidden?: number[]; // per hidden dim (with structures.hidden)
}

/** The structures besides heads and FFN whose importance to compute too. */
export interface ImportanceStructures {
  layers?: boolean;
  hidden?: boolean;
  /** Score heads by the loss change when each is removed, as layers (structured pruning). */
  exactHeads?: boolean;
}

/** What the importance loss compares the model's logits with. */
export type ImportanceTarget =
  | { kind: 'labels' } // batches carry labels
  | { kind: 'logits'; reference: Float32Array[] }; // the unpruned model's decisions per batch, [B * L]

/**
 * The unpruned model's decisions for every batch, [B * L]: multi-label 1 where its probability is
 * >= 0.5; single-label one-hot at its argmax.
 */
export async function referenceTargets(params: Params, cfg: BertConfig, batches: Batch[]): Promise<Float32Array[]> {
  const L = numLabels(cfg);
  const targets: Float32Array[] = [];
  for (const b of batches)
    targets.push(decisions(await (await queueBatchLogits(params, cfg, b)).logits, L, isSingleLabel(cfg)));
  return targets;
}

/** Multi-label: 1 where the logit is >= 0; single-label: one-hot at the row's argmax. */
function decisions(z: Float32Array, L: number, single: boolean): Float32Array {
  if (!single) return z.map((v) => (v >= 0 ? 1 : 0));
  const out = new Float32Array(z.length);
  argmaxRows(z, L).forEach((best, row) => (out[row * L + best] = 1));
  return out;
}

/** The scalar loss of one batch whose gradient the importance is built from. */
export function importanceLoss(
  params: Params,
  cfg: BertConfig,
  b: Batch,
  target: ImportanceTarget,
  k: number,
  gates: Pick<ForwardOptions, 'layerGate' | 'hiddenMask' | 'headMask'> = {},
): tf.Scalar {
  const logits = classify(params, cfg, toInputs(b.ids, b.mask, b.B, b.T, b.types), gates);
  const L = numLabels(cfg);
  const single = isSingleLabel(cfg);
  if (target.kind === 'labels') {
    if (!b.labels) throw new Error('importance with labels: a batch has unlabeled examples');
    const y = tf.tensor2d(b.labels, [b.B, L]);
    return single ? softCrossEntropy(logits, y) : bceWithLogits(logits, y);
  }
  const y = tf.tensor2d(target.reference[k], [b.B, L]);
  // single-label: cross-entropy against the unpruned model's argmax (TextPruner's, with hard targets)
  if (single) return softCrossEntropy(logits, y);
  // bceWithLogits averages over B x L; times L = summed over labels, averaged over the batch.
  return tf.mul(bceWithLogits(logits, y), L) as tf.Scalar;
}

export async function computeImportance(
  params: Params,
  cfg: BertConfig,
  batches: Batch[],
  target: ImportanceTarget,
  opts: { ffnEven: boolean; structures?: ImportanceStructures; log?: (line: string) => void },
): Promise<Importance> {
  const L = cfg.num_hidden_layers;
  const D = headSize(cfg);
  const H = cfg.hidden_size;
  const heads = headsPerLayer(cfg);
  const ffn = ffnPerLayer(cfg);
  const head = heads.map((a) => new Float64Array(a));
  const neuron = ffn.map((i) => new Float64Array(i));
  const exactHead = heads.map((a) => new Float64Array(a));

  // The variables whose gradients we need (a layer without heads has no attention output columns).
  const names: string[] = [];
  for (let l = 0; l < L; l++) {
    const p = layer(l);
    if (heads[l] > 0) names.push(p.attnOut.weight);
    names.push(p.inter.weight, p.inter.bias, p.out.weight);
  }
  const vars = names.map((n) => params.get(n)!);
  const byVar = new Map(vars.map((v, i) => [v.name, names[i]]));
  // The hidden gate, at 1 (only when asked: no cost otherwise). Layers are scored by skipping them.
  const scoreLayers = opts.structures?.layers ?? false;
  const exactHeads = opts.structures?.exactHeads ?? false;
  const hiddenGate = opts.structures?.hidden ? tf.variable(tf.ones([H]) as tf.Tensor1D) : null;
  const layerSum = new Float64Array(L);
  const hiddenSum = new Float64Array(H);
  const gates: Pick<ForwardOptions, 'layerGate' | 'hiddenMask'> = {};
  if (hiddenGate) gates.hiddenMask = hiddenGate;
  const gateVars = hiddenGate ? [hiddenGate] : [];
  // The gates of the exact differences, made once (a pass uploads nothing but its batch, so that
  // it can be recorded): layer l skipped, head h of layer l removed.
  const zero = scoreLayers ? tf.scalar(0) : null;
  const skipLayer = [...Array(L).keys()].map((l) => [...Array(L).keys()].map((i) => (i === l ? zero : null)));
  const headOff = exactHeads
    ? heads.map((a) =>
        Array.from({ length: a }, (_, h) => tf.tensor1d(Array.from({ length: a }, (_, j) => +(j !== h)))),
      )
    : [];

  /**
   * One batch's scores, one vector (one read-back): [| L(head removed) - L | per head (exactHeads),
   * | L(layer skipped) - L | per layer (layers), |dL/dm_j| (hidden), then per layer the head sums
   * and the neuron sums (and the intermediate's with ffnEven)]; the host adds them up in this order.
   */
  const scores = (b: Batch & { reference?: Float32Array }, k: number): tf.Tensor =>
    tf.tidy(() => {
      const { value, grads } = variableGrads(
        () => importanceLoss(params, cfg, b, target, k, gates),
        [...vars, ...gateVars],
      );
      const g = new Map<string, tf.Tensor>();
      for (const [vn, t] of Object.entries(grads)) g.set(byVar.get(vn) ?? vn, t);
      const parts: tf.Tensor[] = [];
      // Each exact difference in a tidy of its own: one forward pass's activations at a time.
      const change = (gate: Pick<ForwardOptions, 'layerGate' | 'headMask'>) =>
        tf.tidy(() => tf.reshape(tf.abs(tf.sub(importanceLoss(params, cfg, b, target, k, gate), value)), [1]));
      if (exactHeads)
        for (let l = 0; l < L; l++)
          for (let h = 0; h < heads[l]; h++)
            parts.push(change({ headMask: heads.map((_, i) => (i === l ? headOff[l][h] : null)) }));
      if (scoreLayers) for (let l = 0; l < L; l++) parts.push(change({ layerGate: skipLayer[l] }));
      if (hiddenGate) parts.push(tf.abs(g.get(hiddenGate.name)!));
      const gw = (name: string) => tf.mul(g.get(name)!, params.get(name)!);
      for (let l = 0; l < L; l++) {
        const p = layer(l);
        // [H, A*D] -> [H, A, D], summed over the output rows and the head's columns.
        if (heads[l] > 0) parts.push(tf.abs(tf.sum(tf.reshape(gw(p.attnOut.weight), [H, heads[l], D]), [0, 2])));
        parts.push(tf.abs(tf.sum(gw(p.out.weight), 0))); // [I]
        if (opts.ffnEven) parts.push(tf.abs(tf.add(tf.sum(gw(p.inter.weight), 1), gw(p.inter.bias))));
      }
      return tf.concat(parts.map((t) => tf.reshape(t, [-1])));
    });
  // Where each stretch of that vector is added, in the same order.
  const sinks: Float64Array[] = [
    ...(exactHeads ? exactHead : []),
    ...(scoreLayers ? [layerSum] : []),
    ...(hiddenGate ? [hiddenSum] : []),
    ...heads.flatMap((a, l) => [...(a > 0 ? [head[l]] : []), neuron[l], ...(opts.ffnEven ? [neuron[l]] : [])]),
  ];
  const add = (v: Float32Array) => {
    let o = 0;
    for (const sink of sinks) for (let i = 0; i < sink.length; i++) sink[i] += v[o++];
    if (o !== v.length) throw new Error(`importance: ${v.length} scores for ${o} units`);
  };

  // On webgpu a batch shape seen before is recorded, then replayed (one submit a batch).
  const rec = passRecorder('importance', params, gateVars, opts.log);
  let examples = 0;
  const t0 = performance.now();
  try {
    // Added in batch order (the same sums whichever pass finishes first).
    let done: Promise<void> = Promise.resolve();
    for (const [k, b] of batches.entries()) {
      // The unpruned model's decisions go with the batch: a recording uploads them as its own.
      const sb = target.kind === 'logits' ? { ...b, reference: target.reference[k] } : b;
      const r = await queuePass(rec, sb, () => scores(sb, k));
      done = done.then(() => r.result).then(add);
      examples += b.B;
    }
    await done;
    if (batches.length > 0) {
      // Its time, beside the training runs' (train/loop.ts formatStepTimes), for a slow prune stage.
      const ms = performance.now() - t0;
      opts.log?.(
        `importance: ${batches.length} batches (${examples} rows) in ${(ms / 1000).toFixed(1)} s ` +
          `(${(ms / batches.length).toFixed(1)} ms a batch)`,
      );
      rec?.recorder.logSummary();
    }
  } finally {
    rec?.recorder.dispose();
    for (const v of gateVars) v.dispose();
    zero?.dispose();
    for (const t of headOff.flat()) t.dispose();
  }
  const n = Math.max(1, examples);
  const out: Importance = {
    head: (exactHeads ? exactHead : head).map((r) => Array.from(r, (v) => v / n)),
    ffn: neuron.map((r) => Array.from(r, (v) => v / n)),
  };
  if (scoreLayers) out.layer = Array.from(layerSum, (v) => v / n);
  if (hiddenGate) out.hidden = Array.from(hiddenSum, (v) => v / n);
  return out;
}
