// model/grads.ts: tf.variableGrads' values, with the backward pass freeing as it goes.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { Rng } from '../src/engine/data/rng';
import { bceWithLogits, classify } from '../src/engine/model/bert';
import { variableGrads } from '../src/engine/model/grads';
import { randomLabels, tinyBatch, tinyModel } from './helpers/tiny';

beforeAll(async () => {
  await initBackend('cpu');
});

type Grads = (f: () => tf.Scalar, vars: tf.Variable[]) => { value: tf.Scalar; grads: Record<string, tf.Tensor> };
const tfjs: Grads = (f, vars) => tf.variableGrads(f, vars) as { value: tf.Scalar; grads: Record<string, tf.Tensor> };

/** Run g, read its loss and gradients, dispose them; and tf.profile's peak bytes and tensors left over. */
async function measure(g: Grads, f: () => tf.Scalar, vars: tf.Variable[]) {
  const before = tf.memory().numTensors;
  let out: { value: number; grads: Record<string, Float32Array> } | null = null;
  const prof = await tf.profile(() => {
    const { value, grads } = g(f, vars);
    out = {
      value: value.dataSync()[0],
      grads: Object.fromEntries(
        Object.entries(grads)
          .filter(([, t]) => t != null) // tfjs: null for a frozen variable named in the list
          .map(([k, t]) => [k, t.dataSync() as Float32Array]),
      ),
    };
    value.dispose();
    for (const t of Object.values(grads)) t?.dispose();
  });
  return { ...out!, peakBytes: prof.peakBytes, leftOver: tf.memory().numTensors - before };
}

function expectSame(a: Record<string, Float32Array>, b: Record<string, Float32Array>) {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  for (const k of Object.keys(a)) {
    let worst = 0;
    for (let i = 0; i < a[k].length; i++)
      worst = Math.max(worst, Math.abs(a[k][i] - b[k][i]) / (1e-6 + Math.abs(b[k][i])));
    expect(worst, k).toBeLessThan(1e-6);
  }
}

describe('variableGrads (model/grads.ts)', () => {
  it("a BERT classifier's gradients with dropout: tfjs's values, under 75% of its peak bytes, none left", async () => {
    const { cfg, params } = tinyModel(3, { hidden_size: 32, intermediate_size: 128, num_attention_heads: 4 });
    const inp = tinyBatch(8, 24, 30, 5);
    const labels = randomLabels(8, 6);
    const vars = [...params.values()];
    // the same dropout masks for both: the rng starts again from the same seed
    const loss = () => {
      const rng = new Rng(9);
      return () => bceWithLogits(classify(params, cfg, inp, { dropout: rng }), labels);
    };
    const ours = await measure(variableGrads, loss(), vars);
    const theirs = await measure(tfjs, loss(), vars);
    expect(ours.value).toBe(theirs.value);
    expectSame(ours.grads, theirs.grads);
    expect(Object.keys(ours.grads).length).toBe(vars.length);
    // The saved activations stay until their node is passed, the gradients go a layer at a time;
    // tfjs keeps both to the end. Measured: 0.64 of its peak here (the host ops, many small ones,
    // hold much at the forward pass's end); 0.58 on webgpu's fused ops, 768 wide.
    expect(ours.peakBytes).toBeLessThan(0.75 * theirs.peakBytes);
    expect(ours.leftOver).toBe(0);
    expect(theirs.leftOver).toBe(0);
    labels.dispose();
  });

  it('gradient functions handing back their inputs; a variable used twice, one unused, one frozen', async () => {
    const a = tf.variable(tf.tensor1d([1, 2, 3]), true, 'g_a');
    const b = tf.variable(tf.tensor2d([[0.5, -1, 2]]), true, 'g_b');
    const unused = tf.variable(tf.tensor1d([4]), true, 'g_unused');
    const frozen = tf.variable(tf.tensor1d([1, 1, 1]), false, 'g_frozen');
    const f = () => {
      const r = tf.reshape(tf.cast(a, 'float32'), [1, 3]); // gradients passed through as they come
      const twice = tf.add(tf.mul(r, b), tf.mul(tf.clone(r), tf.square(b))); // b and a, each twice
      return tf.sum(tf.mul(tf.sin(twice), frozen)) as tf.Scalar;
    };
    const vars = [a, b, unused, frozen];
    const ours = await measure(variableGrads, f, vars);
    const theirs = await measure(tfjs, f, vars);
    expect(ours.value).toBe(theirs.value);
    expectSame(ours.grads, theirs.grads);
    expect(Object.keys(ours.grads).sort()).toEqual(['g_a', 'g_b']);
    expect(ours.leftOver).toBe(0);
    for (const v of vars) v.dispose();
  });

  it('refuses a loss that is not a scalar or depends on no variable, and leaves nothing behind', () => {
    const v = tf.variable(tf.tensor1d([1, 2]), true, 'g_v');
    const w = tf.variable(tf.tensor1d([3]), true, 'g_w');
    const before = tf.memory().numTensors;
    expect(() => variableGrads(() => tf.mul(v, 2) as unknown as tf.Scalar, [v])).toThrow(/scalar/);
    expect(() => variableGrads(() => tf.sum(w), [v])).toThrow(/none of the variables/);
    expect(tf.memory().numTensors).toBe(before);
    v.dispose();
    w.dispose();
  });

  it('inside another gradient (higher order), tfjs computes it: the outer tape is kept', () => {
    const v = tf.variable(tf.scalar(3), true, 'g_h');
    // d/dx of x * dL/dv where L = v^2 x: dL/dv = 2 v x, so d/dx (x * 2 v x) = 4 v x = 24 at x = 2
    const dx = tf.grad((x: tf.Tensor) =>
      tf.mul(x, variableGrads(() => tf.mul(tf.square(v), x) as tf.Scalar, [v]).grads['g_h']),
    );
    expect(dx(tf.scalar(2)).dataSync()[0]).toBeCloseTo(24, 4);
    v.dispose();
  });
});
