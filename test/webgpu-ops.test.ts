// The webgpu backend's own kernels (backend/webgpu-ops.ts, webgpu-adamw.ts) against the cpu
// backend's composed ops: values and gradients of every layer, the fused AdamW with clipping, the
// whole classifier, and the dispatch budget of a training step. Runs on any WebGPU adapter, a
// software one (lavapipe) included; skipped with one line where there is none.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { webgpuDevice } from '../src/engine/backend/webgpu';
import { gpuCounters, resetGpuCounters, rowLanes } from '../src/engine/backend/webgpu-kernels';
import { checkMemory } from '../src/engine/model/memory';
import { Rng } from '../src/engine/data/rng';
import { bceWithLogits, classify, toInputs } from '../src/engine/model/bert';
import type { Params } from '../src/engine/model/params';
import { ops } from '../src/engine/ops';
import { countTrainStep } from '../src/engine/stages/bench';
import { Ema } from '../src/engine/train/ema';
import { AdamW } from '../src/engine/train/optim';
import { userError } from './helpers/errors';
import { webgpuMissing } from './helpers/backends';
import { tinyBatch, tinyModel } from './helpers/tiny';
import { projections } from './helpers/webgpu';

const missing = await webgpuMissing('webgpu tests');
// the kernels are compared against the cpu backend, the active one between checks
if (!missing) await initBackend('cpu');

type Vals = { shape: number[]; values: Float32Array }[];

/** Run f on a backend with tensors made there from the same host data; read every output back. */
async function on(backend: 'cpu' | 'webgpu', f: () => tf.Tensor[]): Promise<Vals> {
  await initBackend(backend);
  const outs = f();
  const r: Vals = [];
  for (const t of outs) r.push({ shape: t.shape, values: (await t.data()) as Float32Array });
  tf.dispose(outs);
  return r;
}

/** Same shapes, every value within tol * (1 + |want|). */
function expectClose(got: Vals, want: Vals, tol = 1e-4) {
  expect(got.length).toBe(want.length);
  got.forEach((g, k) => {
    expect(g.shape, `output ${k}`).toEqual(want[k].shape);
    let worst = 0;
    for (let i = 0; i < g.values.length; i++)
      worst = Math.max(worst, Math.abs(g.values[i] - want[k].values[i]) / (1 + Math.abs(want[k].values[i])));
    expect(worst, `output ${k}`).toBeLessThan(tol);
  });
}

const rand = (n: number, seed: number, scale = 1) => {
  const rng = new Rng(seed);
  return new Float32Array(n).map(() => rng.normal() * scale);
};

/** f's value and its gradients w.r.t. every input, on both backends. */
async function sameWithGrads(shapes: number[][], f: (...x: tf.Tensor[]) => tf.Tensor, tol = 1e-4) {
  const data = shapes.map((s, i) =>
    rand(
      s.reduce((a, b) => a * b, 1),
      10 + i,
    ),
  );
  const run = () => {
    const xs = shapes.map((s, i) => tf.tensor(data[i], s));
    // A weighted sum, so that every output element gets its own gradient.
    const wts = (y: tf.Tensor) => tf.tensor(rand(y.size, 99), y.shape);
    const y = f(...xs);
    const g = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), wts(y))))(xs);
    return [y, ...g];
  };
  expectClose(await on('webgpu', run), await on('cpu', run), tol);
}

describe.skipIf(missing !== null)('webgpu kernels against the cpu backend', () => {
  it('dense: values and gradients of x, W and b', async () => {
    await sameWithGrads([[37, 24], [20, 24], [20]], (x, w, b) =>
      ops().linear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D),
    );
  });

  it('dense and dense + GELU on our matmul (the tiled tile and the default one): values and gradients', async () => {
    for (const mode of ['tiled', 'ours']) {
      process.env.BERT_PRUNER_WEBGPU_MATMUL = mode;
      try {
        await sameWithGrads([[37, 24], [70, 24], [70]], (x, w, b) =>
          ops().linear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D),
        );
        await sameWithGrads([[9, 16], [40, 16], [40]], (x, w, b) =>
          ops().linearGelu(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D),
        );
      } finally {
        delete process.env.BERT_PRUNER_WEBGPU_MATMUL;
      }
    }
  });

  it('LayerNorm: values, gradients of x, gamma and beta (8, 2, 1 rows a workgroup, last one part full)', async () => {
    expect([17, 64, 128, 129, 300, 768, 1100].map(rowLanes)).toEqual([32, 32, 32, 64, 128, 256, 256]);
    for (const H of [24, 300, 1100]) {
      await sameWithGrads([[13, H], [H], [H]], (x, g, b) =>
        ops().layerNorm(x as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D, 1e-12),
      );
    }
  });

  it('LayerNorm of x + a residual (fused on webgpu): values and gradients of both, also where they sum', async () => {
    const ln = (x: tf.Tensor, r: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
      ops().layerNorm(x as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D, 1e-12, r as tf.Tensor2D);
    for (const H of [24, 300]) await sameWithGrads([[13, H], [13, H], [H], [H]], ln);
    // the residual used again after (its gradients add up), and one tensor as both inputs
    await sameWithGrads([[7, 40], [7, 40], [40], [40]], (x, r, g, b) => tf.add(ln(x, r, g, b), tf.mul(r, 0.5)));
    await sameWithGrads([[7, 40], [40], [40]], (x, g, b) => ln(x, x, g, b));
    // no program adds them
    await initBackend('webgpu');
    const x = tf.tensor2d(rand(7 * 40, 1), [7, 40]);
    const r = tf.tensor2d(rand(7 * 40, 2), [7, 40]);
    const [g, b] = [tf.ones([40]), tf.zeros([40])];
    resetGpuCounters();
    const y = ln(x, r, g, b);
    await y.data();
    expect(gpuCounters().byProgram).toEqual({ layernorm_res: 1 });
    tf.dispose([x, r, g, b, y]);
  });

  it('dense + GELU: values and gradients', async () => {
    await sameWithGrads([[9, 16], [40, 16], [40]], (x, w, b) =>
      ops().linearGelu(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D),
    );
  });

  it('self-attention with padding: values and gradients of q, k and v', async () => {
    const B = 3;
    const T = 19; // not a multiple of the 16-wide tiles
    const A = 2;
    const D = 8;
    const mask = new Float32Array(B * T).map((_, i) => (i % T < [19, 11, 5][Math.floor(i / T)] ? 1 : 0));
    await sameWithGrads(
      [
        [B * T, A * D],
        [B * T, A * D],
        [B * T, A * D],
      ],
      (q, k, v) =>
        ops().attention(
          q as tf.Tensor2D,
          k as tf.Tensor2D,
          v as tf.Tensor2D,
          tf.tensor2d(mask, [B, T]),
          { B, T, A, D },
          null,
        ),
    );
  });

  it.each([
    [2, 8],
    [1, 5],
  ])(
    'self-attention with projections (%i heads of %i, packed on webgpu): values, gradients of x, weights, biases',
    async (A, D) => {
      // one head of 5: the keys' and values' columns start off a multiple of 4 (scalar loads)
      const [B, T, H] = [3, 19, 24];
      const AD = A * D;
      const mask = new Float32Array(B * T).map((_, i) => (i % T < [19, 11, 5][Math.floor(i / T)] ? 1 : 0));
      await sameWithGrads([[B * T, H], [AD, H], [AD], [AD, H], [AD], [AD, H], [AD]], (x, ...ps) =>
        ops().selfAttention(
          tf.mul(x, 0.3) as tf.Tensor2D, // scores of a few units, not a saturated softmax
          ...projections(ps),
          tf.tensor2d(mask, [B, T]),
          { B, T, A, D },
          null,
        ),
      );
    },
  );

  it('self-attention with dropout: packed on webgpu, values and gradients as composed, in fewer programs', async () => {
    const [B, T, A, D, H] = [2, 9, 2, 4, 12];
    const AD = A * D;
    const shapes = [[B * T, H], [AD, H], [AD], [AD, H], [AD], [AD, H], [AD]];
    const data = shapes.map((s, i) =>
      rand(
        s.reduce((a, b) => a * b, 1),
        30 + i,
      ),
    );
    const wts = rand(B * T * AD, 40);
    const mask = tf.tensor2d(new Float32Array(B * T).fill(1), [B, T]);
    const run =
      (packed: boolean, rate = 0.3) =>
      () => {
        const xs = shapes.map((s, i) => tf.tensor(data[i], s));
        const f = (x: tf.Tensor, ...ps: tf.Tensor[]) => {
          const [q, k, v] = projections(ps);
          const drop = { rate, seed: () => 123 };
          const x2 = x as tf.Tensor2D;
          const y = packed
            ? ops().selfAttention(x2, q, k, v, mask, { B, T, A, D }, drop)
            : ops().attention(
                ops().linear(x2, q.w, q.b),
                ops().linear(x2, k.w, k.b),
                ops().linear(x2, v.w, v.b),
                mask,
                { B, T, A, D },
                drop,
              );
          return tf.sum(tf.mul(y, tf.tensor2d(wts, [B * T, AD])));
        };
        const { value, grads } = tf.valueAndGrads(f)(xs);
        return [value, ...grads];
      };
    await initBackend('webgpu');
    resetGpuCounters();
    const packed = await on('webgpu', run(true));
    const programs = gpuCounters().byProgram;
    resetGpuCounters();
    const composed = await on('webgpu', run(false));
    const composedPrograms = gpuCounters().byProgram;
    expectClose(packed, composed, 1e-5);
    // dropout drew something (the two agree on its mask): the weighted sum differs from no dropout's
    const noDrop = await on('webgpu', run(true, 0));
    expect(Math.abs(noDrop[0].values[0] - packed[0].values[0])).toBeGreaterThan(1e-3);
    const total = (p: Record<string, number>) => Object.values(p).reduce((a, b) => a + b, 0);
    // forward: stack + 1 projection for 3; backward: pack, dx, dW, db, unstack for 9 + 2 adds
    expect(programs).toMatchObject({ qkv_stack: 1, qkv_pack: 1, qkv_unstack: 1 });
    expect(total(composedPrograms) - total(programs)).toBe(7);
    mask.dispose();
  });

  it("attention's dropout drawn in its softmax programs: values and gradients as the dropout kernel's", async () => {
    const [B, T, A, D] = [2, 11, 2, 4];
    const AD = A * D;
    const data = [0, 1, 2].map((i) => rand(B * T * AD, 50 + i));
    const wts = rand(B * T * AD, 53);
    const mask = tf.tensor2d(
      new Float32Array(B * T).map((_, i) => (i % T < [11, 6][Math.floor(i / T)] ? 1 : 0)),
      [B, T],
    );
    // a head mask of ones takes the composed path: softmax, then the dropout kernel on its output
    const run = (fused: boolean, rate: number) => () => {
      const xs = data.map((d) => tf.tensor2d(d, [B * T, AD]));
      const headMask = fused ? null : (tf.ones([A]) as tf.Tensor1D);
      const f = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => {
        const drop = { rate, seed: () => 321 };
        const y = ops().attention(
          q as tf.Tensor2D,
          k as tf.Tensor2D,
          v as tf.Tensor2D,
          mask,
          { B, T, A, D },
          drop,
          headMask,
        );
        return tf.sum(tf.mul(y, tf.tensor2d(wts, [B * T, AD])));
      };
      const { value, grads } = tf.valueAndGrads(f)(xs);
      return [value, ...grads];
    };
    await initBackend('webgpu');
    resetGpuCounters();
    const fused = await on('webgpu', run(true, 0.4));
    const programs = gpuCounters().byProgram;
    expectClose(fused, await on('webgpu', run(false, 0.4)), 1e-5);
    expect(programs).toMatchObject({ masked_softmax_drop: 1, softmax_grad_drop: 1 });
    expect(programs.dropout).toBeUndefined();
    // the mask drops something: not the values without dropout
    const none = await on('webgpu', run(true, 0));
    expect(Math.abs(none[0].values[0] - fused[0].values[0])).toBeGreaterThan(1e-3);
    mask.dispose();
  });

  it('LayerNorm of dropout(x) + residual: fused on webgpu, the same values and gradients as composed', async () => {
    const [N, H] = [9, 40];
    const data = [rand(N * H, 1), rand(N * H, 2), rand(H, 3), rand(H, 4), rand(N * H, 5)];
    const run = (fused: boolean) => () => {
      const [x, r, g, b, w] = [
        tf.tensor2d(data[0], [N, H]),
        tf.tensor2d(data[1], [N, H]),
        tf.tensor1d(data[2]),
        tf.tensor1d(data[3]),
        tf.tensor2d(data[4], [N, H]),
      ];
      const f = (a: tf.Tensor, c: tf.Tensor, gt: tf.Tensor, bt: tf.Tensor) => {
        const [a2, c2, g1, b1] = [a as tf.Tensor2D, c as tf.Tensor2D, gt as tf.Tensor1D, bt as tf.Tensor1D];
        const y = fused
          ? ops().layerNorm(a2, g1, b1, 1e-12, c2, { rate: 0.3, seed: 77 })
          : ops().layerNorm(ops().dropout(a2, 0.3, 77), g1, b1, 1e-12, c2);
        return tf.sum(tf.mul(y, w));
      };
      const { value, grads } = tf.valueAndGrads(f)([x, r, g, b]);
      return [value, ...grads];
    };
    await initBackend('webgpu');
    resetGpuCounters();
    const fused = await on('webgpu', run(true));
    const programs = gpuCounters().byProgram;
    expectClose(fused, await on('webgpu', run(false)), 1e-6);
    // about 30% of x's gradient is zero (its dropped elements), none of the residual's
    const zeros = (v: Float32Array) => v.filter((e) => e === 0).length / v.length;
    expect(zeros(fused[1].values)).toBeGreaterThan(0.2);
    expect(zeros(fused[1].values)).toBeLessThan(0.4);
    expect(zeros(fused[2].values)).toBe(0);
    // no dropout program either way: 1 forward, 2 backward
    expect(programs).toMatchObject({ layernorm_res_drop: 1, layernorm_dx_res_drop: 1, layernorm_dgb_res_drop: 1 });
    expect(programs.dropout).toBeUndefined();
  });

  it('embeddings: values and gradients of the word, position and type tables (types given or not)', async () => {
    const [V, P, Ty, H, B, T] = [30, 12, 2, 20, 3, 7];
    // ids repeat (rows added into at once), some positions past T get no gradient
    const ids = new Int32Array(B * T).map((_, i) => ((i * 7) % 11) + (i % 3 === 0 ? 0 : 19));
    const types = new Int32Array(B * T).map((_, i) => (i % T > 3 ? 1 : 0));
    for (const withTypes of [true, false]) {
      await sameWithGrads(
        [
          [V, H],
          [P, H],
          [Ty, H],
        ],
        (w, p, y) =>
          ops().embeddings(
            w as tf.Tensor2D,
            p as tf.Tensor2D,
            y as tf.Tensor2D,
            tf.tensor1d(ids, 'int32'),
            withTypes ? tf.tensor1d(types, 'int32') : null,
            T,
          ),
      );
    }
    // the word table's gradient is the same from run to run (one id in most rows: one owner adds them in order)
    await initBackend('webgpu');
    const many = new Int32Array(400).map((_, i) => (i % 5 === 0 ? 7 : i % V));
    const wordGrad = async () => {
      const wv = tf.variable(tf.tensor2d(rand(V * H, 1), [V, H]));
      const [pv, yv] = [tf.variable(tf.zeros([P, H])), tf.variable(tf.zeros([Ty, H]))];
      const dy = tf.tensor2d(rand(400 * H, 9), [400, H]);
      const t2 = (v: tf.Variable) => v as tf.Tensor as tf.Tensor2D;
      const ids400 = tf.tensor1d(many, 'int32');
      const { value, grads } = tf.variableGrads(
        () => tf.sum(tf.mul(ops().embeddings(t2(wv), t2(pv), t2(yv), ids400, null, 20), dy)),
        [wv, pv, yv],
      );
      const g = (await grads[wv.name].data()) as Float32Array;
      tf.dispose([wv, pv, yv, dy, ids400, value, ...Object.values(grads)]);
      return g;
    };
    const first = await wordGrad();
    for (let k = 0; k < 3; k++) expect(await wordGrad()).toEqual(first);
    // one program forward, two backward
    const w = tf.variable(tf.tensor2d(rand(V * H, 1), [V, H]));
    const [p, y] = [tf.variable(tf.zeros([P, H])), tf.variable(tf.zeros([Ty, H]))];
    const it = tf.tensor1d(ids, 'int32');
    resetGpuCounters();
    const t2 = (v: tf.Variable) => v as tf.Tensor as tf.Tensor2D;
    const emb = () => ops().embeddings(t2(w), t2(p), t2(y), it, null, T);
    const { value, grads } = tf.variableGrads(() => tf.sum(emb()), [w, p, y]);
    await grads[w.name].data();
    const { embed, embed_grad_tables, embed_grad_words } = gpuCounters().byProgram;
    expect([embed, embed_grad_tables, embed_grad_words]).toEqual([1, 1, 1]);
    tf.dispose([w, p, y, it, value, ...Object.values(grads)]);
  });

  it('losses: BCE with logits, softmax cross-entropy (weighted, a target out of range): values, dlogits', async () => {
    // large logits too (|x| up to 30), where exp(-|x|) is below f32's epsilon next to 1
    const x = rand(13 * 17, 3, 8);
    x[0] = 30;
    x[1] = -30;
    const y = new Float32Array(13 * 17).map((_, i) => (i % 7 === 0 ? 1 : i % 11 === 0 ? 0.3 : 0));
    const z = rand(9 * 300, 4, 3);
    const t = new Int32Array([5, 0, 299, 17, -1, 300, 42, 7, 7]);
    const w = new Float32Array([1, 0.5, 1, 0, 1, 1, 2, 1, 1]);
    const run = () => {
      const lx = tf.tensor2d(x, [13, 17]);
      const ly = tf.tensor2d(y, [13, 17]);
      const lz = tf.tensor2d(z, [9, 300]);
      const tt = tf.tensor1d(t, 'int32');
      const tw = tf.tensor1d(w);
      const losses = [
        (a: tf.Tensor) => ops().bceWithLogits(a, ly),
        (a: tf.Tensor) => ops().softmaxCrossEntropy(a as tf.Tensor2D, tt, tw),
        (a: tf.Tensor) => ops().softmaxCrossEntropy(a as tf.Tensor2D, tt),
      ];
      const ins = [lx, lz, lz];
      const out = losses.flatMap((f, k) => {
        const { value, grads } = tf.valueAndGrads((a: tf.Tensor) => tf.mul(f(a), 1.7) as tf.Scalar)([ins[k]]);
        return [value, grads[0]];
      });
      tf.dispose([lx, ly, lz, tt, tw]);
      return out;
    };
    const got = await on('webgpu', run);
    expectClose(got, await on('cpu', run), 1e-5);
    // one program forward (BCE) or two (cross-entropy), one backward
    await initBackend('webgpu');
    const lz = tf.tensor2d(z, [9, 300]);
    const tt = tf.tensor1d(t, 'int32');
    resetGpuCounters();
    const g = tf.grad((a: tf.Tensor) => ops().softmaxCrossEntropy(a as tf.Tensor2D, tt))(lz);
    await g.data();
    expect(gpuCounters().byProgram).toEqual({ xent_rows: 1, xent_sum: 1, xent_grad: 1 });
    tf.dispose([lz, tt, g]);
  });

  it('dropout: the same seed gives the same mask, forward and backward; rate and scale as asked', async () => {
    await initBackend('webgpu');
    const n = 100_000;
    const x = tf.ones([n]);
    const rate = 0.1;
    const [y1, y2, y3] = [7, 7, 8].map((s) => ops().dropout(x, rate, s));
    const g = tf.grad((a: tf.Tensor) => tf.sum(ops().dropout(a, rate, 7)))(x);
    const [a, b, c, d] = await Promise.all([y1.data(), y2.data(), y3.data(), g.data()]);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(d)).toEqual(Array.from(a)); // the gradient passes exactly where the value did
    expect(Array.from(a)).not.toEqual(Array.from(c));
    const kept = a.filter((v) => v !== 0);
    expect(Math.abs(kept.length / n - (1 - rate))).toBeLessThan(0.01);
    expect(kept.every((v) => Math.abs(v - 1 / (1 - rate)) < 1e-6)).toBe(true);
    tf.dispose([x, y1, y2, y3, g]);
  });

  it('AdamW: the fused update with global-norm clipping, lr multipliers and no-decay names', async () => {
    const shapes: Record<string, number[]> = {
      // over twice SUMSQ_CHUNK (16384): its sum of squares in 3 parts
      'bert.embeddings.word_embeddings.weight': [300, 120],
      'bert.encoder.layer.0.intermediate.dense.weight': [30, 20],
      'bert.encoder.layer.0.intermediate.dense.bias': [30],
      'bert.embeddings.LayerNorm.weight': [20],
      'classifier.weight': [3, 20],
      'classifier.bias': [1],
    };
    for (const clip of [0, 0.5, 1e6]) {
      const run = () => {
        const params: Params = new Map();
        const grads: Record<string, tf.Tensor> = {};
        Object.entries(shapes).forEach(([name, s], i) => {
          const n = s.reduce((p, q) => p * q, 1);
          params.set(name, tf.variable(tf.tensor(rand(n, i), s)));
          grads[name] = tf.tensor(rand(n, 50 + i, 0.3), s);
        });
        const opt = new AdamW({
          lr: 1e-2,
          weightDecay: 0.1,
          lrMultiplier: (name) => (name.startsWith('classifier') ? 10 : 1),
        });
        for (let step = 0; step < 3; step++) opt.apply(params, grads, 1e-2 * (step + 1), clip);
        const out = [...params.values(), ...opt.m.values(), ...opt.v.values()].map((t) => t.clone());
        opt.dispose();
        tf.dispose([...params.values(), ...Object.values(grads)]);
        return out;
      };
      expectClose(await on('webgpu', run), await on('cpu', run), 2e-5);
    }
  });

  it('weight averaging: the fused in-place update equals the composed one', async () => {
    const run = () => {
      const params: Params = new Map([
        ['a', tf.variable(tf.tensor(rand(300, 1), [30, 10]))],
        ['b', tf.variable(tf.tensor(rand(7, 2), [7]))],
      ]);
      const ema = new Ema(0.99, params);
      for (let t = 0; t < 3; t++) {
        for (const [i, w] of [...params.values()].entries()) w.assign(tf.tensor(rand(w.size, 10 * t + i), w.shape));
        ema.update(params, t);
      }
      const out = [...ema.shadow.values()].map((s) => s.clone());
      ema.dispose();
      tf.dispose([...params.values()]);
      return out;
    };
    expectClose(await on('webgpu', run), await on('cpu', run), 1e-6);
  });

  it('the classifier: logits and the gradient of every parameter (tiny BERT, padding, no dropout)', async () => {
    const batch = tinyBatch(3, 7, 30, 4);
    const y = new Float32Array(3 * 17).map((_, i) => (i % 5 === 0 ? 1 : 0));
    const run = () => {
      const { cfg, params } = tinyModel(3);
      const inp = toInputs(batch.ids32, batch.mask32, 3, 7);
      const logits = classify(params, cfg, inp);
      const vars = [...params.values()];
      const { grads } = tf.variableGrads(
        () => bceWithLogits(classify(params, cfg, inp), tf.tensor2d(y, [3, 17])),
        vars,
      );
      const out = [logits, ...vars.map((v) => grads[v.name])];
      tf.dispose([...vars, inp.ids, inp.mask]);
      return out;
    };
    expectClose(await on('webgpu', run), await on('cpu', run), 1e-4);
  });

  it("a batch whose attention maps exceed the GPU's largest buffer is refused before any allocation", async () => {
    await initBackend('webgpu');
    const lim = webgpuDevice()!.limits;
    const maxBuf = Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize);
    const m = {
      vocab_size: 100,
      hidden_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      intermediate_size: 128,
    };
    const shape = { ...m, max_position_embeddings: 512 };
    const batch = Math.ceil(maxBuf / (4 * 512 * 512 * 4)) + 1;
    const where = { shape: 'my.json', prefix: 'model.', batch: 'my.json: finetune.batch_size' };
    const msg = userError(() => checkMemory(shape, { mode: 'train', batch, seqLen: 512 }, 'webgpu (x)', where));
    expect(msg).toMatch(
      /^my\.json: finetune\.batch_size: one tensor of this model needs .* than the largest buffer the GPU/,
    );
    // a small batch fits
    expect(() => checkMemory(shape, { mode: 'train', batch: 1, seqLen: 512 }, 'webgpu (x)', where)).not.toThrow();
  });

  it('a training step as finetune runs it stays within 400 programs and 20 uploads (L4-H256)', async () => {
    await initBackend('webgpu');
    // The count does not depend on the batch size: a small batch keeps this quick on lavapipe.
    const c = await countTrainStep({ layers: 4, hidden: 256, heads: 4, ffn: 1024 }, 2, 16);
    expect(c.programs).toBeLessThanOrEqual(400);
    expect(c.uploads).toBeLessThanOrEqual(20);
    // and it is what the counters saw
    resetGpuCounters();
    expect(gpuCounters().programs).toBe(0);
  });
});
