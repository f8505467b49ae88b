// The native addon's other wasm kernels (Sum, GatherV2, UnsortedSegmentSum, Exp, Erf) must give the
// cpu backend's results, forward and through gradients. Skipped where the addon is not built.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { loadNative } from '../src/engine/backend/native';
import { sumBlock } from '../src/engine/backend/native-kernels';
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
});
