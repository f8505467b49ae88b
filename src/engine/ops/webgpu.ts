// The WebGPU implementations of the ops (ops/index.ts): the fused programs of backend/webgpu-ops.ts
// and backend/webgpu-adamw.ts. Their host counterparts are ops/host.ts; attention with a head mask
// (importance scoring while pruning) is the host composition on this set's dropout, and
// self-attention with one the composition of this set's dense layers and that.
import * as gpu from '../backend/webgpu-ops';
import { addScaledInPlace, fusedAdamW, fusedEma, swapInPlace } from '../backend/webgpu-adamw';
import { checkWebGpu, webgpuDevice } from '../backend/webgpu';
import { matmulPrecision } from '../backend/webgpu-matmul';
import { composedAttention, composedSelfAttention } from './host';
import type { AttentionDrop, DropSpec, Ops } from './types';

/** An attention's dropout drawn now (its seed taken once), or null where there is none. */
const dropSpec = (drop: AttentionDrop | null): DropSpec | null =>
  drop && drop.rate > 0 ? { rate: drop.rate, seed: drop.seed() } : null;

// with a head mask (importance scoring while pruning): the host composition on this set's dropout
const attention: Ops['attention'] = (q, k, v, mask, dims, drop, headMask) => {
  if (headMask) return composedAttention(q, k, v, mask, dims, drop, headMask, gpu.dropout);
  return gpu.attention(q, k, v, mask, dims, dropSpec(drop));
};
const composed = composedSelfAttention(gpu.dense, attention);

export const webgpuOps: Ops = {
  name: 'webgpu',
  precision: () => matmulPrecision(),
  linear: (x, w, b) => gpu.dense(x, w, b),
  layerNorm: (x, g, b, eps, residual, drop) => gpu.layerNorm(x, g, b, eps, residual, drop),
  linearGelu: (x, w, b) => gpu.biasGelu(gpu.matMulT(x, w), b),
  embeddings: (words, pos, type, ids, types, T) => gpu.embeddings(words, pos, type, ids, types, T),
  bceWithLogits: (logits, targets) => gpu.bceWithLogits(logits, targets),
  softmaxCrossEntropy: (logits, targets, weights) => gpu.softmaxCrossEntropy(logits, targets, weights),
  dropout: (x, rate, seed) => gpu.dropout(x, rate, seed),
  attention,
  selfAttention: (x, q, k, v, mask, dims, drop, headMask) => {
    if (headMask) return composed(x, q, k, v, mask, dims, drop, headMask);
    return gpu.selfAttention(x, q, k, v, mask, dims, dropSpec(drop));
  },
  adamw: (items, grads, h) =>
    fusedAdamW(
      items.map(({ w, m, v, name, lrMult, weightDecay }) => ({ w, m, v, g: grads[name], lrMult, weightDecay })),
      {
        lr: h.lr,
        b1: h.beta1,
        b2: h.beta2,
        eps: h.eps,
        c1: h.c1,
        c2: h.c2,
        maxNorm: h.maxNorm,
        lossScale: h.lossScale,
      },
    ),
  ema: (pairs, d) => fusedEma(pairs, d),
  swap: (pairs) => swapInPlace(pairs),
  addScaled: (v, r, s) => addScaledInPlace(v, r, s),
  check: () => checkWebGpu(),
  maxBufferBytes: () => {
    const lim = webgpuDevice()?.limits;
    if (!lim) return null;
    return Math.min(lim.maxStorageBufferBindingSize ?? Infinity, lim.maxBufferSize ?? Infinity);
  },
};
