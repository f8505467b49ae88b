// The native addon's other wasm kernels (Sum, GatherV2, UnsortedSegmentSum, Exp, Erf, Add, Sub,
// Multiply, RealDiv) and its fused ops (native-ops.ts: linear, linearGelu, layerNorm, dropout, AdamW) must give the cpu
// backend's results, forward and through gradients. Skipped where the addon is not built.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { loadNative } from '../src/engine/backend/native';
import { binaryPlan, sumBlock } from '../src/engine/backend/native-kernels';
import { nativeOps } from '../src/engine/backend/native-ops';
import { hostOps } from '../src/engine/ops/host';
import type { AdamWItem } from '../src/engine/ops/types';
import { Rng } from '../src/engine/data/rng';
import { on } from './helpers/backends';

const built = loadNative() !== null;

beforeAll(async () => {
  await initBackend('wasm');
});

function rand(n: number, rng: Rng, scale = 1): Float32Array {
  return new Float32Array(n).map(() => rng.normal() * scale);
}

/** Same shape, every value within tol * (1 + |want|). */
function expectClose(
  got: { shape: number[]; values: Float32Array },
  want: { shape: number[]; values: Float32Array },
  tol = 1e-5,
) {
  expect(got.shape).toEqual(want.shape);
  let worst = 0;
  for (let i = 0; i < want.values.length; i++) {
    const w = want.values[i];
    const g = got.values[i];
    if (Number.isNaN(w) || !Number.isFinite(w)) {
      expect(g).toBe(w);
      continue;
    }
    worst = Math.max(worst, Math.abs(g - w) / (1 + Math.abs(w)));
  }
  expect(worst).toBeLessThan(tol);
}

const same = (f: () => tf.Tensor, tol?: number) => expectClose(on('wasm', f), on('cpu', f), tol);

describe('sumBlock', () => {
  it('splits x into kept-outer, reduced and kept-inner sizes', () => {
    expect(sumBlock([4, 5, 6], 0)).toMatchObject({ P: 1, R: 4, C: 30, outShape: [5, 6], keptShape: [1, 5, 6] });
    expect(sumBlock([4, 5, 6], [-1])).toMatchObject({ P: 20, R: 6, C: 1, outShape: [4, 5] });
    expect(sumBlock([2, 3, 4, 5], [2, 1])).toMatchObject({ P: 2, R: 12, C: 5, outShape: [2, 5] });
    expect(sumBlock([2, 3, 4], [0, 2])).toBeNull();
    expect(sumBlock([2, 3], [])).toBeNull();
  });
});

describe('binaryPlan', () => {
  it('names each operand full, a row vector or a column, and refuses other broadcasts', () => {
    expect(binaryPlan([4, 5], [4, 5], [4, 5])).toEqual({ rows: 1, cols: 20, a: 0, b: 0 });
    expect(binaryPlan([4, 5], [5], [4, 5])).toEqual({ rows: 4, cols: 5, a: 0, b: 1 });
    expect(binaryPlan([1, 5], [4, 5], [4, 5])).toEqual({ rows: 4, cols: 5, a: 1, b: 0 });
    expect(binaryPlan([4, 5], [4, 1], [4, 5])).toEqual({ rows: 4, cols: 5, a: 0, b: 2 });
    expect(binaryPlan([], [4, 5], [4, 5])).toEqual({ rows: 1, cols: 20, a: 2, b: 0 });
    expect(binaryPlan([2, 3, 4], [3, 4], [2, 3, 4])).toEqual({ rows: 2, cols: 12, a: 0, b: 1 });
    expect(binaryPlan([2, 3, 4], [2, 3, 1], [2, 3, 4])).toEqual({ rows: 6, cols: 4, a: 0, b: 2 });
    expect(binaryPlan([2, 1, 1, 4], [2, 3, 5, 4], [2, 3, 5, 4])).toBeNull(); // a middle axis repeats
    expect(binaryPlan([4, 1], [1, 5], [4, 5])).toBeNull(); // an outer product
    expect(binaryPlan([0, 5], [5], [0, 5])).toBeNull();
  });
});

describe.skipIf(!built)('native wasm kernels', () => {
  const rng = new Rng(3);
  const x = rand(2 * 3 * 4 * 5, rng);
  const shape = [2, 3, 4, 5];

  it('Sum matches cpu over every block of axes, with and without keepDims', () => {
    const cases: (number | number[])[] = [
      0,
      1,
      2,
      3,
      -1,
      [0, 1],
      [1, 2],
      [2, 3],
      [0, 1, 2],
      [0, 1, 2, 3],
      [0, 2],
      [1, 3],
    ];
    for (const axis of cases) {
      for (const keep of [false, true]) same(() => tf.sum(tf.tensor(x, shape), axis, keep));
    }
    // Big reductions (the bias gradients of a batch of 32 x 128 tokens).
    const big = rand(4096 * 96, rng);
    same(() => tf.sum(tf.tensor(big, [4096, 96]), 0), 1e-4);
    same(() => tf.sum(tf.tensor(big, [4096, 96]), 1), 1e-4);
    // int32 goes to wasm's own kernel.
    expect(on('wasm', () => tf.sum(tf.tensor([1, 2, 3, 4], [2, 2], 'int32'), 0)).values).toEqual(
      new Int32Array([4, 6]),
    );
  });

  it('GatherV2 matches cpu on rows, and keeps the other axes working', () => {
    const ids = [3, 0, 0, 2, 1, 3];
    same(() => tf.gather(tf.tensor(x, [4, 30]), tf.tensor1d(ids, 'int32')));
    same(() => tf.gather(tf.tensor(x, [4, 30]), tf.tensor2d(ids, [2, 3], 'int32')));
    same(() => tf.gather(tf.tensor(x, shape), tf.tensor1d([1, 0, 1], 'int32'), 0));
    same(() => tf.gather(tf.tensor(x, shape), tf.tensor1d([2, 0], 'int32'), 1)); // wasm's own path
    expect(() => on('wasm', () => tf.gather(tf.tensor(x, [4, 30]), tf.tensor1d([4], 'int32')))).toThrow(/outside/);
  });

  it('UnsortedSegmentSum and the gradient of gather match cpu', () => {
    const ids = [3, 0, 0, 2, 1, 3, -1, 7];
    same(() => tf.unsortedSegmentSum(tf.tensor(x.subarray(0, 8 * 15), [8, 15]), tf.tensor1d(ids, 'int32'), 5));
    const table = rand(6 * 4, rng);
    const g = () =>
      tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.gather(t, tf.tensor1d([5, 1, 1, 0, 5, 5], 'int32')))))(
        tf.tensor(table, [6, 4]),
      );
    same(g);
  });

  it('Exp and Erf match cpu, including 0, large, NaN and infinite inputs', () => {
    const special = [
      0,
      -0,
      1,
      -1,
      1e-8,
      -1e-8,
      10,
      -10,
      80,
      -80,
      88.5,
      -87.5,
      89,
      -104,
      1000,
      -1000,
      NaN,
      Infinity,
      -Infinity,
    ];
    const v = new Float32Array([...special, ...rand(5000, rng, 4)]);
    // cpu's exp is Math.exp (rounded to float); ours is within an ulp or two.
    same(() => tf.exp(tf.tensor(v)), 1e-6);
    // cpu's erf is Abramowitz-Stegun 7.1.26 (|error| 1.5e-7), ours TensorFlow's (5e-7).
    same(() => tf.erf(tf.tensor(v)), 1e-6);
  });

  it('GELU and its gradient (what the model uses Erf and Exp for) match cpu', () => {
    const v = rand(3000, rng, 3);
    const gelu = (t: tf.Tensor) => tf.mul(tf.mul(t, 0.5), tf.add(1, tf.erf(tf.mul(t, Math.SQRT1_2))));
    same(() => gelu(tf.tensor(v)), 1e-6);
    same(() => tf.grad((t: tf.Tensor) => tf.sum(gelu(t)))(tf.tensor(v)), 1e-5);
  });

  it('Add, Sub, Multiply and RealDiv match cpu on every broadcast, and leave the others to wasm', () => {
    const pairs: [number[], number[]][] = [
      [
        [6, 7],
        [6, 7],
      ],
      [[6, 7], [7]],
      [[7], [6, 7]],
      [
        [6, 7],
        [6, 1],
      ],
      [
        [6, 1],
        [6, 7],
      ],
      [[6, 7], []],
      [[], [6, 7]],
      [
        [2, 3, 4],
        [3, 4],
      ],
      [
        [2, 3, 4],
        [2, 3, 1],
      ],
      [
        [6, 1],
        [1, 7],
      ], // wasm's own
      [
        [2, 1, 4],
        [2, 3, 4],
      ], // wasm's own
    ];
    const n = (s: number[]) => s.reduce((p, d) => p * d, 1);
    for (const [sa, sb] of pairs) {
      const a = rand(n(sa), rng);
      const b = rand(n(sb), rng).map((v) => v + Math.sign(v) * 0.5); // no division by ~0
      for (const f of [tf.add, tf.sub, tf.mul, tf.div]) same(() => f(tf.tensor(a, sa), tf.tensor(b, sb)));
    }
    // Gradients through a broadcast (bias add, LayerNorm's statistics).
    const x = rand(6 * 7, rng);
    const r = rand(7, rng);
    const c = rand(6, rng).map((v) => v + Math.sign(v));
    const loss = (t: tf.Tensor, u: tf.Tensor, w: tf.Tensor) =>
      tf.sum(tf.square(tf.div(tf.sub(tf.mul(t, u), u), tf.reshape(w, [6, 1]))));
    for (const i of [0, 1, 2]) {
      same(() => tf.grads(loss)([tf.tensor(x, [6, 7]), tf.tensor(r), tf.tensor(c)])[i], 1e-5);
    }
  });

  const native = nativeOps(loadNative()!);

  for (const op of ['linear', 'linearGelu'] as const) {
    it(`the fused ${op} matches the host ops, value and gradients`, () => {
      const x = rand(40 * 16, rng);
      const w = rand(24 * 16, rng, 0.5);
      const b = rand(24, rng);
      const run = (set: typeof hostOps, i: number) => () => {
        const f = (xt: tf.Tensor, wt: tf.Tensor, bt: tf.Tensor) =>
          tf.sum(tf.mul(set[op](xt as tf.Tensor2D, wt as tf.Tensor2D, bt as tf.Tensor1D), tf.linspace(-1, 1, 24)));
        const args = [tf.tensor2d(x, [40, 16]), tf.tensor2d(w, [24, 16]), tf.tensor1d(b)];
        return i < 0
          ? set[op](args[0] as tf.Tensor2D, args[1] as tf.Tensor2D, args[2] as tf.Tensor1D)
          : tf.grads(f)(args)[i];
      };
      for (const i of [-1, 0, 1, 2]) expectClose(on('wasm', run(native, i)), on('cpu', run(hostOps, i)), 1e-5);
    });
  }

  it('fused layerNorm, with a residual too, matches the host: value, gradients, a wide row with a large mean', () => {
    for (const [rows, cols, shift, withResidual] of [
      [40, 16, 0, 0],
      [7, 1000, 100, 0],
      [40, 19, 0, 1],
      [7, 1000, 100, 1],
    ]) {
      const x = rand(rows * cols, rng).map((v) => v + shift);
      const res = rand(rows * cols, rng);
      const g = rand(cols, rng);
      const b = rand(cols, rng);
      const weights = tf.linspace(-1, 1, cols);
      const run = (set: typeof hostOps, i: number) => () => {
        const ln = (t: tf.Tensor[]) =>
          set.layerNorm(
            t[0] as tf.Tensor2D,
            t[1] as tf.Tensor1D,
            t[2] as tf.Tensor1D,
            1e-12,
            t[3] as tf.Tensor2D | undefined,
          );
        const f = (...t: tf.Tensor[]) => tf.sum(tf.mul(ln(t), weights));
        const args = [tf.tensor2d(x, [rows, cols]), tf.tensor1d(g), tf.tensor1d(b)];
        if (withResidual) args.push(tf.tensor2d(res, [rows, cols]));
        return i < 0 ? ln(args) : tf.grads(f)(args)[i];
      };
      for (const i of withResidual ? [-1, 0, 1, 2, 3] : [-1, 0, 1, 2])
        expectClose(on('wasm', run(native, i)), on('cpu', run(hostOps, i)), 2e-4);
    }
  });

  it('dropout: one seed one mask, the rate kept, 1/(1-rate) scaling, the gradient through the mask', () => {
    const x = new Float32Array(20000).fill(2);
    const drop =
      (seed: number, rate = 0.25) =>
      () =>
        native.dropout(tf.tensor(x), rate, seed);
    const a = on('wasm', drop(7)).values;
    expect(on('wasm', drop(7)).values).toEqual(a);
    expect(on('wasm', drop(8)).values).not.toEqual(a);
    const zeros = a.filter((v) => v === 0).length;
    expect(zeros / a.length).toBeGreaterThan(0.23);
    expect(zeros / a.length).toBeLessThan(0.27);
    expect(a.every((v) => v === 0 || Math.abs(v - 2 / 0.75) < 1e-6)).toBe(true);
    const g = on('wasm', () =>
      tf.grad((t: tf.Tensor) => tf.sum(tf.mul(native.dropout(t, 0.25, 7), 3)))(tf.tensor(x)),
    ).values;
    for (let i = 0; i < a.length; i++) expect(g[i]).toBeCloseTo(a[i] === 0 ? 0 : 3 / 0.75, 5);
    expect(on('wasm', drop(7, 0)).values).toEqual(x); // rate 0: x itself
  });

  it('the fused AdamW matches the host update, with and without clipping, shared weights included', () => {
    const shapes = { a: [30, 8], b: [8], c: [5, 3] } as Record<string, number[]>;
    const init = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, rand(s[0] * (s[1] ?? 1), rng)]));
    const gs = [0.01, 5].map((scale) =>
      Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, rand(s[0] * (s[1] ?? 1), rng, scale)])),
    );
    const run =
      (set: typeof hostOps, shareB: boolean, maxNorm = 1) =>
      () => {
        const items: AdamWItem[] = Object.entries(shapes).map(([name, s]) => ({
          name,
          w: tf.variable(tf.tensor(init[name], s)),
          m: tf.variable(tf.zeros(s), false),
          v: tf.variable(tf.zeros(s), false),
          lrMult: name === 'c' ? 2 : 1,
          weightDecay: name === 'b' ? 0 : 0.01,
        }));
        const keep = shareB ? tf.clone(items[1].w) : null; // shares b's data: b must not change in place
        for (let step = 1; step <= 4; step++) {
          const grads = Object.fromEntries(
            items.map((it) => [it.name, tf.tensor(gs[step % 2][it.name], shapes[it.name])]),
          );
          const b1 = 0.9;
          const b2 = 0.999;
          set.adamw(items, grads, {
            lr: 1e-2,
            beta1: b1,
            beta2: b2,
            eps: 1e-8,
            c1: 1 - b1 ** step,
            c2: 1 - b2 ** step,
            maxNorm,
          });
          for (const g of Object.values(grads)) g.dispose();
        }
        if (keep) expect(keep.dataSync()).toEqual(new Float32Array(init.b));
        keep?.dispose();
        const out = tf.concat(items.flatMap((it) => [it.w, it.m, it.v].map((t) => tf.reshape(t, [-1]))));
        for (const it of items) [it.w, it.m, it.v].forEach((t) => t.dispose());
        return out;
      };
    for (const shareB of [false, true])
      expectClose(on('wasm', run(native, shareB)), on('cpu', run(hostOps, shareB)), 1e-5);
  });
});
