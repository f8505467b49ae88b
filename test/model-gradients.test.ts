// Gradients of every parameter of the model (and so of every layer and every patched wasm kernel)
// against central finite differences along a random direction (float32 arithmetic, the loss scaled
// so that the differences stand well above rounding).
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { Rng } from '../src/engine/data/rng';
import { bceWithLogits, classify, encode, mlmLogits, softmaxCrossEntropy } from '../src/engine/model/bert';
import { variableGrads } from '../src/engine/model/grads';
import { layerNorm } from '../src/engine/ops/host';
import { Params } from '../src/engine/model/params';
import { randomLabels, tinyBatch, tinyModel } from './helpers/tiny';

beforeAll(async () => {
  await initBackend('wasm');
});

function directionalCheck(params: Params, lossFn: () => tf.Scalar, names: string[]) {
  const vars = names.map((n) => params.get(n)!);
  const { grads } = variableGrads(lossFn, vars); // model/grads.ts, as training computes them
  const rng = new Rng(11);
  const bad: string[] = [];
  for (const [i, name] of names.entries()) {
    const v = vars[i];
    const g = grads[v.name];
    const d = tf.tensor(
      Array.from({ length: v.size }, () => rng.normal()),
      v.shape,
    );
    const analytic = tf.sum(tf.mul(g, d)).dataSync()[0];
    const eps = 1e-2;
    const orig = v.clone();
    v.assign(tf.add(orig, tf.mul(d, eps)));
    const lp = tf.tidy(() => lossFn().dataSync()[0]);
    v.assign(tf.sub(orig, tf.mul(d, eps)));
    const lm = tf.tidy(() => lossFn().dataSync()[0]);
    v.assign(orig);
    const numeric = (lp - lm) / (2 * eps);
    // float32 finite differences carry ~1e-4 of rounding noise: an absolute floor plus 3% relative.
    const tol = 1e-3 + 3e-2 * (Math.abs(numeric) + Math.abs(analytic));
    if (!(Math.abs(numeric - analytic) <= tol)) bad.push(`${name}: analytic ${analytic} numeric ${numeric}`);
    orig.dispose();
    d.dispose();
  }
  Object.values(grads).forEach((g) => g.dispose());
  return bad;
}

describe('gradients match finite differences', () => {
  it('classification: every parameter, uneven heads and FFN sizes', () => {
    // Layer 0 keeps 3 of 4 heads and 24 FFN neurons, layer 1 keeps 1 head and 10 neurons.
    const { cfg, params } = tinyModel(5, { pruned_heads: { '0': [2], '1': [0, 1, 3] }, intermediate_sizes: [24, 10] });
    const inp = tinyBatch(3, 7);
    const y = randomLabels(3);
    const loss = () => tf.mul(bceWithLogits(classify(params, cfg, inp), y), 100) as tf.Scalar;
    expect(directionalCheck(params, loss, [...params.keys()])).toEqual([]);
  });

  it('masked LM head with the tied decoder', () => {
    const { cfg, params } = tinyModel(6, {}, true);
    const inp = tinyBatch(2, 6);
    const positions = tf.tensor1d([1, 2, 7, 9], 'int32');
    const targets = tf.tensor1d([5, 9, 12, 29], 'int32');
    const loss = () =>
      tf.mul(
        softmaxCrossEntropy(mlmLogits(params, cfg, encode(params, cfg, inp), positions), targets),
        10,
      ) as tf.Scalar;
    expect(directionalCheck(params, loss, [...params.keys()])).toEqual([]);
  });

  it('head and FFN masks scale outputs (mask 0 = unit removed from the output)', () => {
    const { cfg, params } = tinyModel(7);
    const inp = tinyBatch(2, 5);
    const ones = [tf.ones([4]) as tf.Tensor1D, tf.ones([4]) as tf.Tensor1D];
    const full = classify(params, cfg, inp).arraySync();
    const masked = classify(params, cfg, inp, {
      headMask: ones,
      ffnMask: [tf.ones([24]) as tf.Tensor1D, null],
    }).arraySync();
    expect(masked).toEqual(full);
    const zeroed = classify(params, cfg, inp, { headMask: [tf.zeros([4]) as tf.Tensor1D, null] }).arraySync();
    expect(zeroed).not.toEqual(full);
  });
});

describe('dropout', () => {
  it('is off without an rng and seeded with one', () => {
    const { cfg, params } = tinyModel(8);
    const inp = tinyBatch(2, 5);
    const a = classify(params, cfg, inp).arraySync();
    expect(classify(params, cfg, inp).arraySync()).toEqual(a);
    const d1 = classify(params, cfg, inp, { dropout: new Rng(1) }).arraySync();
    const d2 = classify(params, cfg, inp, { dropout: new Rng(1) }).arraySync();
    expect(d1).toEqual(d2);
    expect(d1).not.toEqual(a);
  });
});

describe('LayerNorm off webgpu (its written-out gradient)', () => {
  it("equals tfjs's autodiff of the plain composition, values and gradients", () => {
    const rng = new Rng(5);
    const t = (shape: number[], scale = 1, shift = 0) =>
      tf.tensor(
        Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => shift + scale * rng.normal()),
        shape,
      );
    const x = t([7, 24], 3, 1) as tf.Tensor2D;
    const g = t([24], 0.5, 1) as tf.Tensor1D;
    const b = t([24], 0.1) as tf.Tensor1D;
    const w = t([7, 24]); // a loss that weighs every output differently
    const plain = (x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D) => {
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-12))), g), b);
    };
    const loss = (f: typeof plain) => (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(f(x as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D), w));
    const ours = tf.grads(loss((x, g, b) => layerNorm(x, g, b, 1e-12)))([x, g, b]);
    const ref = tf.grads(loss(plain))([x, g, b]);
    expect(maxDiff(layerNorm(x, g, b, 1e-12), plain(x, g, b))).toBeLessThan(1e-5);
    for (const [i, name] of ['x', 'gamma', 'beta'].entries()) {
      expect(maxDiff(ours[i], ref[i]), name).toBeLessThan(1e-4);
      expect(tf.max(tf.abs(ref[i])).dataSync()[0], name).toBeGreaterThan(1e-2); // not trivially zero
    }
  });
});

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
}
