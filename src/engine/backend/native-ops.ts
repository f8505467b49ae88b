// The ops set (ops/index.ts) on the wasm backend when the native addon is loaded: the host set
// (ops/host.ts) with five layers fused into native passes, each one that a training step's
// profile showed as a chain of memory-bound tfjs passes (4 layers, hidden 128, batch 32 x 48):
//   linear      the matmul and its bias in one native call (the bias written first, beta 1), where
//               tfjs runs a matmul and an Add (inference of a small pruned model: a third of its time)
//   linearGelu  the FFN's bias and GELU in one pass (pre-activation saved), its gradient in one;
//               tfjs composes 5 passes forward and about 8 backward
//   dropout     mask and product in one pass from a counter-based generator (native/elementwise.c),
//               where tfjs draws the uniforms in JavaScript (8% of a pretraining step) and then
//               adds, floors, divides and multiplies
//   layerNorm   the residual add, statistics, normalization, scale and shift in one pass a row, the
//               gradient in one; tfjs runs about 9 passes forward and 12 backward
//   adamw       clip scale from the gradients' sums of squares, then one in-place pass a parameter
//               over w, m and v, where the host runs about 13 tfjs ops a parameter (the same
//               arithmetic in the same order: the same bits where the clip scale is 1)
// speed-kernels.test.ts checks each against the host ops on the cpu backend (values and gradients).
// The dropout masks differ from tfjs's (another generator); a seed still gives one mask.
import * as tf from '@tensorflow/tfjs';
import { clipScale, composedAttention, composedSelfAttention, droppedFirst, hostOps } from '../ops/host';
import type { Ops } from '../ops/types';
import { customOp } from './custom-op';
import type { NativeAddon } from './native';
import type { WasmBackend } from './native-kernels';

type Info = tf.TensorInfo;

const wasm = () => tf.backend() as unknown as WasmBackend;
const heap = (t: Info) => wasm().typedArrayFromHeap(t) as Float32Array;
/** A new float32 tensor on the wasm heap, its values written by fill. */
function made(shape: number[], fill: (out: Float32Array) => void): tf.Tensor {
  const info = wasm().makeOutput(shape, 'float32');
  fill(heap(info));
  return tf.engine().makeTensorFromTensorInfo(info);
}

/** The gradients of x W^T + b from the pre-activation's gradient d: dx, dW, db. */
const linearGrads = (d: tf.Tensor, x: tf.Tensor, w: tf.Tensor) => [
  tf.matMul(d, w),
  tf.matMul(d, x, true, false),
  tf.sum(d, 0),
];

/** x W^T + b in one native call (the bias written first, the product accumulated onto it). */
export function nativeLinear(addon: NativeAddon): Ops['linear'] {
  const f = customOp(3, ([x, w, b], save) => {
    const [M, K] = x.shape;
    const N = w.shape[0];
    const y = made([M, N], (out) => addon.linear(heap(x), heap(w), heap(b), out, M, N, K));
    save([x, w]);
    return {
      value: y,
      gradFunc: (dy, [sx, sw]) => linearGrads(dy, sx, sw),
    };
  });
  return (x, w, b) => {
    if (x.dtype !== 'float32' || w.dtype !== 'float32' || b.dtype !== 'float32') return hostOps.linear(x, w, b);
    return f(x, w, b) as tf.Tensor2D;
  };
}

/** gelu(x W^T + b), backward written out: dpre = dy gelu'(pre), then the matmuls and the bias sum. */
export function nativeLinearGelu(addon: NativeAddon): Ops['linearGelu'] {
  const f = customOp(3, ([x, w, b], save) => {
    const y = tf.matMul(x, w, false, true);
    const [rows, cols] = y.shape;
    const pre = made(y.shape, () => {});
    const act = made(y.shape, (out) => addon.biasGelu(heap(y), heap(b), heap(pre), out, rows, cols));
    y.dispose();
    save([x, w, pre]);
    return {
      value: act,
      gradFunc: (dy, [sx, sw, spre]) => {
        const dpre = made(spre.shape, (out) => addon.geluGrad(heap(spre), heap(dy), out));
        return linearGrads(dpre, sx, sw);
      },
    };
  });
  return (x, w, b) => {
    if (x.dtype !== 'float32' || w.dtype !== 'float32' || b.dtype !== 'float32') return hostOps.linearGelu(x, w, b);
    return f(x, w, b) as tf.Tensor2D;
  };
}

/** Inverted dropout; the seed (any integer) picks the mask. */
export function nativeDropout(addon: NativeAddon): Ops['dropout'] {
  const f = (rate: number, seed: number) =>
    customOp(1, ([x], save) => {
      const mask = made(x.shape, () => {});
      const y = made(x.shape, (out) => addon.dropout(heap(x), out, heap(mask), rate, seed >>> 0));
      save([mask]);
      return { value: y, gradFunc: (dy, [m]) => tf.mul(dy, m) };
    });
  return <T extends tf.Tensor>(x: T, rate: number, seed: number): T => {
    if (rate <= 0) return x;
    if (x.dtype !== 'float32' || !(rate < 1)) return hostOps.dropout(x, rate, seed);
    return f(rate, seed)(x) as T;
  };
}

const NONE = new Float32Array(0);

/**
 * LayerNorm over the last dimension, the host's formula, of x or of x + residual in the same pass;
 * xhat and rstd kept for the gradient (x's and the residual's are the same).
 */
export function nativeLayerNorm(addon: NativeAddon): Ops['layerNorm'] {
  const f = (eps: number, withResidual: boolean) =>
    customOp(withResidual ? 4 : 3, (inputs, save) => {
      const [x, g, b, r] = inputs;
      const [rows, cols] = x.shape;
      const xhat = made(x.shape, () => {});
      const rstd = made([rows], () => {});
      const y = made(x.shape, (out) =>
        addon.layerNorm(heap(x), r ? heap(r) : NONE, heap(g), heap(b), out, heap(xhat), heap(rstd), rows, cols, eps),
      );
      save([xhat, rstd, g]);
      return {
        value: y,
        gradFunc: (dy, [sxhat, srstd, sg]) => {
          const dg = made([cols], () => {});
          const db = made([cols], () => {});
          const dx = made(dy.shape, (out) =>
            addon.layerNormGrad(heap(dy), heap(sxhat), heap(srstd), heap(sg), out, heap(dg), heap(db), rows, cols),
          );
          return withResidual ? [dx, dg, db, tf.clone(dx)] : [dx, dg, db];
        },
      };
    });
  return (x, g, b, eps, residual) => {
    const f32 = [x, g, b, residual].every((t) => !t || t.dtype === 'float32');
    if (!f32 || (residual && !tf.util.arraysEqual(residual.shape, x.shape)))
      return hostOps.layerNorm(x, g, b, eps, residual);
    return (residual ? f(eps, true)(x, g, b, residual) : f(eps, false)(x, g, b)) as tf.Tensor2D;
  };
}

/**
 * AdamW: the global norm from the gradients' sums of squares, then per parameter one in-place pass
 * over w, m and v, the host's formula and order of operations (torch's AdamW, the clip a gradient
 * scale). A weight or moment whose data another tensor shares (a reference count above 1: loaded
 * from a checkpoint, kept by a caller) first gets its own copy, so that nothing else sees the change.
 */
export function nativeAdamW(addon: NativeAddon): Ops['adamw'] {
  return (items, grads, h) => {
    if (h.lossScale) throw new Error('adamw: loss scaling (mixed precision) runs on the webgpu ops only');
    const all = Object.values(grads);
    if (all.some((g) => g.dtype !== 'float32') || items.some((it) => it.w.dtype !== 'float32')) {
      return hostOps.adamw(items, grads, h);
    }
    let gscale = 1;
    if (h.maxNorm > 0) {
      let ss = 0;
      for (const g of all) ss += addon.sumSquares(heap(g));
      gscale = clipScale(Math.sqrt(ss), h.maxNorm);
    }
    const hyper = new Float64Array(10);
    for (const it of items) {
      for (const t of [it.w, it.m, it.v]) {
        if (wasm().refCount(t.dataId) !== 1) tf.tidy(() => t.assign(tf.mul(t, 1)));
      }
      const lr = h.lr * it.lrMult;
      hyper.set([gscale, h.beta1, 1 - h.beta1, h.beta2, 1 - h.beta2, h.c1, h.c2, h.eps, lr, 1 - lr * it.weightDecay]);
      addon.adamw(heap(it.w), heap(grads[it.name]), heap(it.m), heap(it.v), hyper);
    }
  };
}

/** The host set with the native layers. */
export function nativeOps(addon: NativeAddon): Ops {
  const dropout = nativeDropout(addon);
  const linear = nativeLinear(addon);
  const attention: Ops['attention'] = (q, k, v, mask, dims, drop, headMask) =>
    composedAttention(q, k, v, mask, dims, drop, headMask, dropout);
  return {
    ...hostOps,
    linear,
    linearGelu: nativeLinearGelu(addon),
    layerNorm: droppedFirst(nativeLayerNorm(addon), dropout),
    dropout,
    attention,
    selfAttention: composedSelfAttention(linear, attention),
    adamw: nativeAdamW(addon),
  };
}
