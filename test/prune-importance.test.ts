// Taylor importance against a brute-force computation: for each unit, the derivative of the batch
// loss along "scale this unit's weights by (1 + e)" is exactly sum(grad * weight) over those
// weights, so central finite differences of the loss must reproduce the scores.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import type { Batch } from '../src/engine/data/encode';
import { classify, toInputs } from '../src/engine/model/bert';
import { BertConfig, headSize } from '../src/engine/model/config';
import { layer } from '../src/engine/model/names';
import { disposeParams, Params } from '../src/engine/model/params';
import { computeImportance, ImportanceTarget, importanceLoss, referenceTargets } from '../src/engine/prune/importance';
import { batchesOf, randomExamples, tinyModel } from './prune-helpers';

beforeAll(async () => {
  await initBackend('wasm');
});

/** d loss / d e at e = 0 for weights[name] scaled by (1 + e) where sel is 1. */
function directional(
  params: Params,
  cfg: BertConfig,
  b: Batch,
  target: ImportanceTarget,
  k: number,
  parts: { name: string; sel: tf.Tensor }[],
  eps = 1e-2,
): number {
  const orig = parts.map((p) => params.get(p.name)!.clone());
  const lossAt = (e: number) => {
    parts.forEach((p, i) => params.get(p.name)!.assign(tf.tidy(() => tf.mul(orig[i], tf.add(1, tf.mul(p.sel, e))))));
    return tf.tidy(() => importanceLoss(params, cfg, b, target, k).dataSync()[0]);
  };
  const d = (lossAt(eps) - lossAt(-eps)) / (2 * eps);
  parts.forEach((p, i) => params.get(p.name)!.assign(orig[i]));
  orig.forEach((t) => t.dispose());
  return d;
}

function bruteForce(params: Params, cfg: BertConfig, batches: Batch[], target: ImportanceTarget, ffnEven: boolean) {
  const H = cfg.hidden_size;
  const D = headSize(cfg);
  const A = cfg.num_attention_heads;
  const I = cfg.intermediate_size;
  const head = [...Array(cfg.num_hidden_layers)].map(() => new Float64Array(A));
  const ffn = [...Array(cfg.num_hidden_layers)].map(() => new Float64Array(I));
  let n = 0;
  batches.forEach((b, k) => {
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      const p = layer(l);
      for (let h = 0; h < A; h++) {
        const cols = tf.tidy(() =>
          tf.tile(
            tf.reshape(
              tf
                .oneHot(tf.fill([D], h, 'int32'), A)
                .transpose()
                .reshape([A * D]),
              [1, A * D],
            ),
            [H, 1],
          ),
        );
        head[l][h] += Math.abs(directional(params, cfg, b, target, k, [{ name: p.attnOut.weight, sel: cols }]));
        cols.dispose();
      }
      for (let i = 0; i < I; i++) {
        const one = tf.oneHot(tf.tensor1d([i], 'int32'), I).reshape([I]);
        const row = tf.tile(tf.reshape(one, [I, 1]), [1, H]);
        const col = tf.tile(tf.reshape(one, [1, I]), [H, 1]);
        if (ffnEven) {
          ffn[l][i] += Math.abs(
            directional(params, cfg, b, target, k, [
              { name: p.inter.weight, sel: row },
              { name: p.inter.bias, sel: one },
            ]),
          );
        }
        ffn[l][i] += Math.abs(directional(params, cfg, b, target, k, [{ name: p.out.weight, sel: col }]));
        [one, row, col].forEach((t) => t.dispose());
      }
    }
    n += b.B;
  });
  return { head: head.map((r) => Array.from(r, (v) => v / n)), ffn: ffn.map((r) => Array.from(r, (v) => v / n)) };
}

function expectClose(actual: number[][], expected: number[][]) {
  const scale = Math.max(...expected.flat().map(Math.abs));
  expect(scale).toBeGreaterThan(0);
  actual.forEach((row, l) =>
    row.forEach((v, i) => expect(Math.abs(v - expected[l][i])).toBeLessThanOrEqual(0.02 * scale + 1e-6)),
  );
}

describe('computeImportance', () => {
  let cfg: BertConfig;
  let params: Params;
  const batches = batchesOf(randomExamples(10, 40, 11), 5);
  beforeAll(() => {
    ({ cfg, params } = tinyModel({ heads: 4, ffn: 12, seed: 7 }));
  });

  it('matches finite differences of the loss (labels, even FFN masking)', async () => {
    const target: ImportanceTarget = { kind: 'labels' };
    const tensors = tf.memory().numTensors;
    const imp = await computeImportance(params, cfg, batches, target, { ffnEven: true });
    expect(tf.memory().numTensors).toBe(tensors); // nothing leaks per batch
    const bf = bruteForce(params, cfg, batches, target, true);
    expectClose(imp.head, bf.head);
    expectClose(imp.ffn, bf.ffn);
  });

  it('matches finite differences of the Bernoulli divergence (use_logits, uneven FFN masking)', async () => {
    // The reference is another model, so the divergence is not at its minimum.
    const other = tinyModel({ heads: 4, ffn: 12, seed: 8 });
    const target: ImportanceTarget = {
      kind: 'logits',
      reference: await referenceTargets(other.params, other.cfg, batches),
    };
    const imp = await computeImportance(params, cfg, batches, target, { ffnEven: false });
    const bf = bruteForce(params, cfg, batches, target, false);
    expectClose(imp.head, bf.head);
    expectClose(imp.ffn, bf.ffn);
    // uneven scores only the output columns: smaller than the even scores
    const even = await computeImportance(params, cfg, batches, target, { ffnEven: true });
    expect(even.ffn.flat().reduce((a, b) => a + b)).toBeGreaterThan(imp.ffn.flat().reduce((a, b) => a + b));
    disposeParams(other.params);
  });

  it('scores 0 for a head whose output weights are zero, and > 0 for the others', async () => {
    const w = params.get('bert.encoder.layer.1.attention.output.dense.weight')!;
    const saved = w.clone();
    const D = headSize(cfg);
    const keep = tf.tidy(() => tf.reshape(tf.concat([tf.ones([D]), tf.zeros([D]), tf.ones([2 * D])]), [1, 4 * D]));
    w.assign(tf.mul(w, keep));
    const imp = await computeImportance(params, cfg, batches, { kind: 'labels' }, { ffnEven: true });
    expect(imp.head[1][1]).toBe(0);
    for (const [l, h] of [
      [1, 0],
      [1, 2],
      [1, 3],
      [0, 1],
    ])
      expect(imp.head[l][h]).toBeGreaterThan(0);
    w.assign(saved);
    saved.dispose();
    keep.dispose();
  });

  it('use_logits against the model itself: soft targets give a zero gradient, its own decisions do not', async () => {
    // Soft targets = the model's own probabilities: the divergence is at its minimum, the gradient is 0.
    const ownSoft = batches.map((b) =>
      tf.tidy(() => tf.sigmoid(classify(params, cfg, toInputs(b.ids, b.mask, b.B, b.T))).dataSync() as Float32Array),
    );
    const zero = await computeImportance(
      params,
      cfg,
      batches,
      { kind: 'logits', reference: ownSoft },
      { ffnEven: true },
    );
    expect(Math.max(...zero.head.flat(), ...zero.ffn.flat())).toBeLessThan(1e-6);
    // Its decisions (pseudo-labels), what use_logits uses: a real signal from the first step.
    const own = await computeImportance(
      params,
      cfg,
      batches,
      { kind: 'logits', reference: await referenceTargets(params, cfg, batches) },
      { ffnEven: true },
    );
    expect(Math.max(...own.head.flat())).toBeGreaterThan(1e-6);
    expect(Math.max(...own.ffn.flat())).toBeGreaterThan(1e-6);
  });
});
