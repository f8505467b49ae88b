// Fixtures of the webgpu kernel and training-step tests (webgpu-matmul, webgpu-record, webgpu-mixed):
// random operands and the float64 reference product, host batches and a classifier step's loss.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../../src/engine/data/encode';
import { Rng } from '../../src/engine/data/rng';
import { classify, classifierLoss, toInputs } from '../../src/engine/model/bert';
import type { BertConfig } from '../../src/engine/model/config';
import type { Params } from '../../src/engine/model/params';
import type { Dense } from '../../src/engine/ops';

/** The q, k, v projections (Ops.selfAttention's) of [W_q, b_q, W_k, b_k, W_v, b_v]. */
export const projections = (t: tf.Tensor[]) =>
  [0, 2, 4].map((i) => ({ w: t[i] as tf.Tensor2D, b: t[i + 1] as tf.Tensor1D })) as [Dense, Dense, Dense];

/** n standard normal float32 values from seed. */
export const rand = (n: number, seed: number) => {
  const rng = new Rng(seed);
  return new Float32Array(n).map(() => rng.normal());
};

/**
 * op(a) @ op(b) (+ bias) in float64 from the given inputs, and per entry the sum of |products|
 * (the scale a float sum's rounding is relative to).
 */
export function reference(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  M: number,
  K: number,
  N: number,
  ta: boolean,
  tb: boolean,
  bias?: ArrayLike<number>,
): { ref: Float64Array; scale: Float64Array } {
  const ref = new Float64Array(M * N);
  const scale = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = bias ? bias[j] : 0;
      let m = Math.abs(s);
      for (let k = 0; k < K; k++) {
        const p = (ta ? a[k * M + i] : a[i * K + k]) * (tb ? b[j * K + k] : b[k * N + j]);
        s += p;
        m += Math.abs(p);
      }
      ref[i * N + j] = s;
      scale[i * N + j] = m;
    }
  return { ref, scale };
}

/**
 * op(a) @ op(b) (+ bias) of random operands (a from seed 1, b from 2, the bias from 3) through mm:
 * the operands, the result's values and shape (a is [K, M] where ta, b is [N, K] where tb).
 */
export async function randomProduct(
  mm: (a: tf.Tensor2D, b: tf.Tensor2D, bias?: tf.Tensor1D) => tf.Tensor,
  [M, K, N]: readonly number[],
  ta: boolean,
  tb: boolean,
  withBias: boolean,
) {
  const a = rand(M * K, 1);
  const b = rand(K * N, 2);
  const bias = withBias ? rand(N, 3) : undefined;
  const at = tf.tensor2d(a, ta ? [K, M] : [M, K]);
  const bt = tf.tensor2d(b, tb ? [N, K] : [K, N]);
  const biasT = bias ? tf.tensor1d(bias) : undefined;
  const y = mm(at, bt, biasT);
  const got = (await y.data()) as Float32Array;
  tf.dispose([at, bt, y, ...(biasT ? [biasT] : [])]);
  return { a, b, bias, got, shape: y.shape };
}

/**
 * An f16-input matmul's two edge cases through mm (x W^T): the sum 2048 + 4095 x 0.25 over K = 4096
 * (3071.75 in f32, 2048 in f16), and a 4 x 8 operand with one 70000 (beyond f16) or all 60000, times ones.
 */
export async function f16EdgeCases(mm: (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor) {
  const K = 4096;
  const a = new Float32Array(K).fill(0.5);
  const b = new Float32Array(K).fill(0.5);
  a[0] = 2048;
  b[0] = 1;
  const over = new Float32Array(4 * 8).fill(1);
  over[5] = 70000;
  const ins = [
    tf.tensor2d(a, [1, K]),
    tf.tensor2d(b, [1, K]),
    tf.tensor2d(over, [4, 8]),
    tf.tensor2d(new Float32Array(4 * 8).fill(60000), [4, 8]),
    tf.ones([3, 8]) as tf.Tensor2D,
  ];
  const [ta, tb, tover, tfits, ones] = ins;
  const outs = [mm(ta, tb), mm(tover, ones), mm(tfits, ones)];
  const [sum, overflow, fits] = await Promise.all(outs.map(async (t) => [...(await t.data())]));
  tf.dispose([...ins, ...outs]);
  return { sum: sum[0], overflow, fits };
}

/** x rounded to the nearest f16 (ties to even; no overflow in these tests). */
export function f16(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const e = Math.max(-14, Math.floor(Math.log2(Math.abs(x))));
  const q = 2 ** (e - 10);
  const y = x / q;
  // a tie goes to the even neighbour
  const r = Math.abs(y - Math.trunc(y)) === 0.5 ? 2 * Math.round(y / 2) : Math.round(y);
  return r * q;
}

/**
 * ||x - y|| over (||y|| + 1e-3): relative, except where y is about 0 (the key bias's gradient is 0
 * in exact arithmetic: softmax ignores a shift of a row's scores).
 */
export function relErr(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < x.length; i++) {
    d += (x[i] - y[i]) ** 2;
    n += y[i] ** 2;
  }
  return Math.sqrt(d) / (Math.sqrt(n) + 1e-3);
}

/** Run fn with BERT_PRUNER_CACHE_DIR set to a new temporary folder (removed after), as it was after. */
export async function withCacheDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-cache-'));
  const old = process.env.BERT_PRUNER_CACHE_DIR;
  process.env.BERT_PRUNER_CACHE_DIR = dir;
  try {
    return await fn(dir);
  } finally {
    if (old === undefined) delete process.env.BERT_PRUNER_CACHE_DIR;
    else process.env.BERT_PRUNER_CACHE_DIR = old;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A batch of host arrays with labels (17, multi-label). */
export type HostBatch = Batch & { labels: Float32Array };

/** B rows of random lengths 3..T (the first T long) over ids 5..V-1 after [CLS], with random labels. */
export function hostBatch(seed: number, B = 3, T = 8, V = 30): HostBatch {
  const rng = new Rng(seed);
  const ids = new Int32Array(B * T);
  const mask = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    const len = b === 0 ? T : 3 + rng.int(T - 3);
    for (let t = 0; t < len; t++) {
      ids[b * T + t] = t === 0 ? 2 : 5 + rng.int(V - 5);
      mask[b * T + t] = 1;
    }
  }
  const labels = new Float32Array(B * 17).map(() => (rng.next() < 0.2 ? 1 : 0));
  return { ids, mask, labels, B, T, rows: [], tokens: mask.reduce((s, x) => s + x, 0) };
}

/** The classifier's multi-label loss of a host batch, with dropout from rng. */
export const classifierStepLoss =
  (params: Params, cfg: BertConfig) =>
  (b: HostBatch, rng: Rng): tf.Scalar =>
    classifierLoss(
      classify(params, cfg, toInputs(b.ids, b.mask, b.B, b.T), { dropout: rng }),
      tf.tensor2d(b.labels, [b.B, 17]),
      false,
    );

/** Every parameter's values, by name. */
export async function snapshot(params: Params): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [n, v] of params) out.set(n, (await v.data()) as Float32Array);
  return out;
}
