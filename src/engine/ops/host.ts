// The host implementations of the ops (ops/index.ts): tfjs ops, for every backend but webgpu
// (cpu, wasm with its native matmul, tensorflow). LayerNorm's gradient is written out, so the
// cpu and wasm paths are bit-for-bit deterministic. Their GPU counterparts are ops/webgpu.ts.
import * as tf from '@tensorflow/tfjs';
import { customOp } from '../backend/custom-op';
import type { AdamWHyper, AdamWItem, AttentionDims, AttentionDrop, Ops } from './types';

export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  return tf.add(tf.matMul(x, w, false, true), b);
}

/** Per row: (x - mean) / sqrt(var + eps) and 1 / sqrt(var + eps), var the biased variance. */
function normalize(x: tf.Tensor2D, eps: number): { xhat: tf.Tensor2D; rstd: tf.Tensor2D } {
  const xc = tf.sub(x, tf.mean(x, -1, true));
  const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), eps)) as tf.Tensor2D;
  return { xhat: tf.mul(xc, rstd), rstd };
}

/**
 * y = xhat g + b; backward with gx = dy g:
 *   dx = rstd (gx - mean(gx) - xhat mean(gx xhat)),  dg = sum_rows(dy xhat),  db = sum_rows(dy).
 * Written out rather than left to tfjs's autodiff of the composition, whose Mean gradients build
 * a ones tensor of x's shape in JavaScript twice per call (4% of an L4-H256 training step on wasm,
 * measured).
 */
export function layerNorm(
  x: tf.Tensor2D,
  g: tf.Tensor1D,
  b: tf.Tensor1D,
  eps: number,
  residual?: tf.Tensor2D,
): tf.Tensor2D {
  if (residual) x = tf.add(x, residual);
  const f = customOp(3, ([xt, gt, bt], save) => {
    const { xhat, rstd } = normalize(xt as tf.Tensor2D, eps);
    save([xhat, rstd, gt]);
    return {
      value: tf.add(tf.mul(xhat, gt), bt),
      gradFunc: (dy, [sxhat, srstd, sg]) => {
        const gx = tf.mul(dy, sg);
        const inner = tf.sub(tf.sub(gx, tf.mean(gx, -1, true)), tf.mul(sxhat, tf.mean(tf.mul(gx, sxhat), -1, true)));
        return [tf.mul(inner, srstd), tf.sum(tf.mul(dy, sxhat), 0), tf.sum(dy, 0)];
      },
    };
  });
  return f(x, g, b) as tf.Tensor2D;
}

/** BERT's embedding sum (Ops.embeddings): gathers, a slice of the position table, adds. */
const embeddings: Ops['embeddings'] = (words, pos, type, ids, types, T) => {
  const N = ids.shape[0];
  const [B, H] = [N / T, words.shape[1]];
  const w = tf.reshape(tf.gather(words, ids), [B, T, H]);
  const p = tf.slice(pos, [0, 0], [T, H]); // [T, H]
  if (types) return tf.add(tf.reshape(tf.add(w, p), [N, H]), tf.gather(type, types));
  return tf.reshape(tf.add(w, tf.add(p, tf.slice(type, [0, 0], [1, H]))), [N, H]);
};

/** Mean binary cross-entropy with logits over all entries (numerically stable form). */
function bceWithLogits(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  // max(x,0) - x*y + log(1 + exp(-|x|))
  const l = tf.add(tf.sub(tf.relu(logits), tf.mul(logits, targets)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
  return tf.mean(l);
}

/** Mean softmax cross-entropy of [n, V] logits against int targets [n] (weighted by weights [n] if given). */
function softmaxCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights?: tf.Tensor1D): tf.Scalar {
  const logp = tf.logSoftmax(logits);
  const picked = tf.sum(tf.mul(logp, tf.oneHot(targets, logits.shape[1])), -1);
  if (!weights) return tf.neg(tf.mean(picked)) as tf.Scalar;
  // The weighted mean: rows of weight 0 (padding) count for nothing.
  return tf.neg(tf.div(tf.sum(tf.mul(picked, weights)), tf.sum(weights))) as tf.Scalar;
}

/** Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), as HF's "gelu". */
function gelu<T extends tf.Tensor>(x: T): T {
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))) as T;
}

export function dropout<T extends tf.Tensor>(x: T, rate: number, seed: number): T {
  return tf.dropout(x, rate, undefined, seed) as T;
}

/** Ops.layerNorm of a set without a fused dropout: its `dropout` on x, then its LayerNorm `ln`. */
export function droppedFirst(
  ln: (x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D, eps: number, residual?: tf.Tensor2D) => tf.Tensor2D,
  drop: Ops['dropout'],
): Ops['layerNorm'] {
  return (x, g, b, eps, residual, d) => ln(d ? drop(x, d.rate, d.seed) : x, g, b, eps, residual);
}

/** Attention composed of tfjs ops; `drop` is the dropout of the set it serves (webgpu's too). */
export function composedAttention(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  mask: tf.Tensor2D,
  dims: AttentionDims,
  drop: AttentionDrop | null,
  headMask: tf.Tensor1D | null | undefined,
  dropoutOp: <T extends tf.Tensor>(x: T, rate: number, seed: number) => T,
): tf.Tensor2D {
  const { B, T, A, D } = dims;
  // Additive mask [B, 1, 1, T]: 0 for tokens, -1e9 for padding (HF uses dtype min).
  const maskAdd = tf.reshape(tf.mul(tf.sub(1, mask), -1e9), [B, 1, 1, T]);
  // [B*T, A*D] -> [B, A, T, D]; with one head (a pruned layer's usual case) moving the unit axis is a
  // reshape, not a copy.
  const heads = (t: tf.Tensor2D) =>
    A === 1 ? tf.reshape(t, [B, 1, T, D]) : tf.transpose(tf.reshape(t, [B, T, A, D]), [0, 2, 1, 3]);
  const scores = tf.add(tf.mul(tf.matMul(heads(q), heads(k), false, true), 1 / Math.sqrt(D)), maskAdd); // [B, A, T, T]
  let probs = tf.softmax(scores);
  if (drop && drop.rate > 0) probs = dropoutOp(probs, drop.rate, drop.seed());
  let ctx = tf.matMul(probs, heads(v)); // [B, A, T, D]
  if (headMask) ctx = tf.mul(ctx, tf.reshape(headMask, [1, A, 1, 1]));
  return tf.reshape(A === 1 ? ctx : tf.transpose(ctx, [0, 2, 1, 3]), [B * T, A * D]) as tf.Tensor2D;
}

/** Self-attention of a set's own linear and attention, composed (Ops['selfAttention'] where nothing is fused). */
export function composedSelfAttention(linear: Ops['linear'], attention: Ops['attention']): Ops['selfAttention'] {
  return (x, q, k, v, mask, dims, drop, headMask) =>
    attention(linear(x, q.w, q.b), linear(x, k.w, k.b), linear(x, v.w, v.b), mask, dims, drop, headMask);
}

/** The factor that brings gradients of global norm `norm` down to maxNorm (1 where they are within it). */
export function clipScale(norm: number, maxNorm: number): number {
  return maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
}

/** Scale grads in place so that their global L2 norm is at most maxNorm; returns the norm before. */
export function clipByGlobalNorm(grads: Record<string, tf.Tensor>, maxNorm: number): number {
  const norm = tf.tidy(() => tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))).dataSync()[0]);
  const s = clipScale(norm, maxNorm);
  if (s !== 1) {
    for (const k of Object.keys(grads)) {
      const old = grads[k];
      grads[k] = tf.mul(old, s);
      old.dispose();
    }
  }
  return norm;
}

function adamw(items: AdamWItem[], grads: Record<string, tf.Tensor>, h: AdamWHyper): void {
  // the host ops run fp32 only (ops().precision()), so no step of theirs is loss-scaled
  if (h.lossScale) throw new Error('adamw: loss scaling (mixed precision) runs on the webgpu ops only');
  if (h.maxNorm > 0) clipByGlobalNorm(grads, h.maxNorm);
  const { beta1, beta2, eps, c1, c2 } = h;
  tf.tidy(() => {
    for (const { name, w, m, v, lrMult, weightDecay } of items) {
      const lr = h.lr * lrMult;
      const g = grads[name];
      m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
      v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
      const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), eps));
      // torch AdamW: w <- w * (1 - lr*wd) - lr * mhat / (sqrt(vhat) + eps)
      const decayed = weightDecay > 0 ? tf.mul(w, 1 - lr * weightDecay) : w;
      w.assign(tf.sub(decayed, tf.mul(update, lr)));
    }
  });
}

function ema(pairs: { shadow: tf.Variable; w: tf.Tensor }[], d: number): void {
  tf.tidy(() => {
    for (const { shadow, w } of pairs) shadow.assign(tf.add(tf.mul(shadow, d), tf.mul(w, 1 - d)));
  });
}

function swap(pairs: { a: tf.Variable; b: tf.Variable }[]): void {
  for (const { a, b } of pairs) {
    const tmp = tf.clone(a);
    a.assign(b);
    b.assign(tmp);
    tmp.dispose();
  }
}

function addScaled(v: tf.Variable, r: tf.Tensor, s: number): void {
  tf.tidy(() => v.assign(tf.add(v, tf.mul(r, s))));
}

const attention: Ops['attention'] = (q, k, v, mask, dims, drop, headMask) =>
  composedAttention(q, k, v, mask, dims, drop, headMask, dropout);

export const hostOps: Ops = {
  name: 'host',
  linear,
  layerNorm: droppedFirst(layerNorm, dropout),
  linearGelu: (x, w, b) => gelu(linear(x, w, b)),
  embeddings,
  bceWithLogits,
  softmaxCrossEntropy,
  dropout,
  attention,
  selfAttention: composedSelfAttention(linear, attention),
  precision: () => 'fp32',
  adamw,
  ema,
  swap,
  addScaled,
  check: () => {},
  maxBufferBytes: () => null,
};
