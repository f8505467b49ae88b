// The native (OpenBLAS) BatchMatMul must give the cpu backend's results for every transpose and
// batch-broadcast combination, forward and backward. Skipped where the addon is not built.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { backendLabel, initBackend } from '../src/engine/backend';
import { loadNative, nativeStatus, setBlasThreads } from '../src/engine/backend/native';
import { broadcastIndices, usesNativeMatMul } from '../src/engine/backend/wasm-kernels';
import { Rng } from '../src/engine/data/rng';
import { on } from './helpers/backends';

const built = loadNative() !== null;

beforeAll(async () => {
  await initBackend('wasm');
});

function rand(shape: number[], rng: Rng): Float32Array {
  const n = shape.reduce((p, d) => p * d, 1);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.normal();
  return x;
}

function expectClose(got: { shape: number[]; values: Float32Array }, want: { shape: number[]; values: Float32Array }) {
  expect(got.shape).toEqual(want.shape);
  let worst = 0;
  for (let i = 0; i < want.values.length; i++)
    worst = Math.max(worst, Math.abs(got.values[i] - want.values[i]) / (1 + Math.abs(want.values[i])));
  expect(worst).toBeLessThan(1e-4);
}

// [a outer dims, b outer dims]; M, K, N fixed per case below.
const BATCHES: [number[], number[]][] = [
  [[], []],
  [[3], [3]],
  [
    [2, 3],
    [2, 3],
  ],
  [[3], []],
  [[], [3]],
  [
    [2, 1],
    [1, 3],
  ],
  [[4, 2], [2]],
  [[1], [5]],
];

describe('broadcastIndices', () => {
  it('maps every output matrix to its a and b matrix', () => {
    const r = broadcastIndices([2, 1], [1, 3]);
    expect(r.outer).toEqual([2, 3]);
    expect([...r.a]).toEqual([0, 0, 0, 1, 1, 1]);
    expect([...r.b]).toEqual([0, 1, 2, 0, 1, 2]);
    const s = broadcastIndices([4, 2], [2]);
    expect(s.outer).toEqual([4, 2]);
    expect([...s.b]).toEqual([0, 1, 0, 1, 0, 1, 0, 1]);
    expect(() => broadcastIndices([2], [3])).toThrow(/do not broadcast/);
  });
});

describe.skipIf(!built)('native OpenBLAS BatchMatMul', () => {
  it('is registered as the wasm BatchMatMul', () => {
    expect(usesNativeMatMul()).toBe(true);
    expect(backendLabel()).toBe('wasm+openblas');
    expect(nativeStatus().loaded).toBe(true);
  });

  for (const [oa, ob] of BATCHES) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        it(`matches cpu: a [${oa}] b [${ob}] transposeA=${ta} transposeB=${tb}`, () => {
          const rng = new Rng(oa.length * 31 + ob.length * 7 + (ta ? 2 : 0) + (tb ? 1 : 0));
          const [M, K, N] = [5, 7, 3];
          const sa = [...oa, ...(ta ? [K, M] : [M, K])];
          const sb = [...ob, ...(tb ? [N, K] : [K, N])];
          const da = rand(sa, rng);
          const db = rand(sb, rng);
          const f = () => tf.matMul(tf.tensor(da, sa), tf.tensor(db, sb), ta, tb);
          // The reference broadcasts explicitly: the cpu kernel's own broadcasting only handles
          // equal batches or a batch of 1 (it takes batch i % batchA), numpy's rule is the target.
          const outer = broadcastIndices(oa, ob).outer;
          const ref = () =>
            tf.matMul(
              tf.broadcastTo(tf.tensor(da, sa), [...outer, ...sa.slice(-2)]),
              tf.broadcastTo(tf.tensor(db, sb), [...outer, ...sb.slice(-2)]),
              ta,
              tb,
            );
          expectClose(on('wasm', f), on('cpu', ref));
        });
      }
    }
  }

  it('matches cpu on large, odd-sized matrices (the blocked BLAS paths)', () => {
    const rng = new Rng(5);
    const da = rand([2, 130, 67], rng);
    const db = rand([67, 259], rng);
    const f = () => tf.matMul(tf.tensor(da, [2, 130, 67]), tf.tensor(db, [67, 259]));
    expectClose(on('wasm', f), on('cpu', f));
    const g = () => tf.matMul(tf.tensor(da, [2, 130, 67]), tf.tensor(da, [2, 130, 67]), true, false);
    expectClose(on('wasm', g), on('cpu', g));
  });

  // (tfjs-core's matMul gradient does not sum over broadcast batch dims, so only equal batches.)
  it('gives the cpu gradients through transposed batched and 2-D matmuls', () => {
    const rng = new Rng(11);
    const da = rand([3, 4, 6], rng);
    const db = rand([3, 5, 6], rng);
    const grads =
      (ta: boolean, tb: boolean, which: 0 | 1, batched = true) =>
      () =>
        tf.tidy(() => {
          const a = tf.tensor(batched ? da : da.subarray(0, 24), [...(batched ? [3] : []), ...(ta ? [6, 4] : [4, 6])]);
          const b = tf.tensor(batched ? db : db.subarray(0, 30), [...(batched ? [3] : []), ...(tb ? [5, 6] : [6, 5])]);
          const loss = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y, ta, tb)));
          return tf.grads(loss)([a, b])[which];
        });
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        for (const w of [0, 1] as const) {
          for (const batched of [true, false])
            expectClose(on('wasm', grads(ta, tb, w, batched)), on('cpu', grads(ta, tb, w, batched)));
        }
      }
    }
  });

  it('splits a batch over threads with the same results as one thread', () => {
    const rng = new Rng(9);
    // 64 x [130 x 128] x [128 x 66] = 70M multiply-adds: above the addon's one-thread limit
    // (MT_MIN_MACS, 64M), so 2 and 3 threads really split the batch.
    const da = rand([64, 130, 128], rng);
    const db = rand([64, 66, 128], rng);
    const f = () => tf.matMul(tf.tensor(da, [64, 130, 128]), tf.tensor(db, [64, 66, 128]), false, true);
    const want = on('cpu', f);
    const before = nativeStatus().threads ?? 1;
    try {
      for (const n of [1, 2, 3]) {
        setBlasThreads(n);
        expect(nativeStatus().threads).toBe(n);
        expectClose(on('wasm', f), want);
      }
    } finally {
      setBlasThreads(before);
    }
  });

  it('handles empty inner and outer dims', () => {
    const z = () => tf.matMul(tf.zeros([2, 3, 0]), tf.zeros([2, 0, 4]));
    const r = on('wasm', z);
    expect(r.shape).toEqual([2, 3, 4]);
    expect([...r.values].every((v) => v === 0)).toBe(true);
    expect(on('wasm', () => tf.matMul(tf.zeros([0, 3]), tf.ones([3, 2]))).shape).toEqual([0, 2]);
  });
});
