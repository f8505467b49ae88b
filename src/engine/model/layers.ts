// BERT's building blocks, each once: on the webgpu backend as the fused programs of
// backend/webgpu-ops.ts, elsewhere composed of tfjs ops, LayerNorm with its gradient written out
// (the cpu and wasm path, bit-for-bit deterministic). bert.ts reads top to bottom on these.
import * as tf from '@tensorflow/tfjs';
import { customOp } from '../backend/custom-op';
import { webgpuActive } from '../backend/webgpu-kernels';
import * as gpu from '../backend/webgpu-ops';

/** x [N, in] @ W^T [in, out] + b  (W is [out, in], PyTorch's layout). */
export function dense(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  if (webgpuActive()) return gpu.dense(x, w, b);
  return tf.add(tf.matMul(x, w, false, true), b);
}

/**
 * LayerNorm over the last axis. Off webgpu its gradient is written out (hostLayerNorm) rather than
 * left to tfjs's autodiff of the composition, whose Mean gradients build a ones tensor of x's
 * shape in JavaScript twice per call (4% of an L4-H256 training step on wasm, measured).
 */
export function layerNorm(x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): tf.Tensor2D {
  if (webgpuActive()) return gpu.layerNorm(x, g, b, eps);
  return hostLayerNorm(x, g, b, eps);
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
 */
function hostLayerNorm(x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): tf.Tensor2D {
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

/** Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), as HF's "gelu". */
function gelu<T extends tf.Tensor>(x: T): T {
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))) as T;
}

/** gelu(dense(x)): the FFN's first half (bias and GELU in one program on webgpu). */
export function denseGelu(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  if (webgpuActive()) return gpu.biasGelu(gpu.matMulT(x, w), b);
  return gelu(dense(x, w, b));
}

/** Inverted dropout; seed draws the mask (the same seed, the same mask). */
export function dropout<T extends tf.Tensor>(x: T, rate: number, seed: number): T {
  if (webgpuActive()) return gpu.dropout(x, rate, seed);
  return tf.dropout(x, rate, undefined, seed) as T;
}

export interface AttentionDims {
  B: number;
  T: number;
  /** heads and head size */
  A: number;
  D: number;
}

/**
 * Multi-head self-attention of q, k, v [B*T, A*D] under mask [B, T] (1 = token): per head
 * softmax(q k^T / sqrt(D) + mask) [dropout] @ v, heads scaled by headMask [A] where given, back to
 * [B*T, A*D]. drop.seed: a function giving the dropout seed (called once, only when rate > 0).
 */
export function selfAttention(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  mask: tf.Tensor2D,
  dims: AttentionDims,
  drop: { rate: number; seed: () => number } | null,
  headMask?: tf.Tensor1D | null,
): tf.Tensor2D {
  const { B, T, A, D } = dims;
  if (webgpuActive() && !headMask) {
    const d = drop && drop.rate > 0 ? { rate: drop.rate, seed: drop.seed() } : null;
    return gpu.attention(q, k, v, mask, dims, d);
  }
  // Additive mask [B, 1, 1, T]: 0 for tokens, -1e9 for padding (HF uses dtype min).
  const maskAdd = tf.reshape(tf.mul(tf.sub(1, mask), -1e9), [B, 1, 1, T]);
  // [B*T, A*D] -> [B, A, T, D]
  const heads = (t: tf.Tensor2D) => tf.transpose(tf.reshape(t, [B, T, A, D]), [0, 2, 1, 3]);
  const scores = tf.add(tf.mul(tf.matMul(heads(q), heads(k), false, true), 1 / Math.sqrt(D)), maskAdd); // [B, A, T, T]
  let probs = tf.softmax(scores);
  if (drop && drop.rate > 0) probs = dropout(probs, drop.rate, drop.seed());
  let ctx = tf.matMul(probs, heads(v)); // [B, A, T, D]
  if (headMask) ctx = tf.mul(ctx, tf.reshape(headMask, [1, A, 1, 1]));
  return tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [B * T, A * D]) as tf.Tensor2D;
}
