// Applying masks: zeroing (keep_shape), slicing, forward-pass masks and saved checkpoints must all
// be the same function; a second pruning accumulates HF's pruned_heads.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { loadCheckpoint, saveCheckpoint } from '../src/engine/io/checkpoint';
import { classify, toInputs } from '../src/engine/model/bert';
import { ffnPerLayer, headsPerLayer, keptHeads } from '../src/engine/model/config';
import { disposeParams } from '../src/engine/model/params';
import { applyMasks } from '../src/engine/prune/apply';
import { cloneParams } from '../src/engine/prune/transformer';
import { batchesOf, logitsOf, maxAbsDiff, randomExamples, tinyModel, tmpDir, vocabOf } from './prune-helpers';

let dir: string;
beforeAll(async () => {
  await initBackend('wasm');
  dir = tmpDir('apply');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// Uneven masks: layer 0 keeps heads 1 and 3 and 20 neurons, layer 1 keeps head 2 and 40 neurons.
const headMask = [
  [0, 1, 0, 1],
  [0, 0, 1, 0],
];
const ffnMask = [
  Array.from({ length: 64 }, (_, i) => (i % 3 === 0 && i < 60 ? 1 : 0)),
  Array.from({ length: 64 }, (_, i) => (i < 40 ? 1 : 0)),
];

describe('applyMasks', () => {
  const batch = batchesOf(randomExamples(6, 40), 6)[0];

  it('keep_shape (zeroed), physically pruned and forward-masked models give the same logits', () => {
    const { cfg, params } = tinyModel();
    const masked = tf.tidy(() =>
      classify(params, cfg, toInputs(batch.ids, batch.mask, batch.B, batch.T), {
        headMask: headMask.map((m) => tf.tensor1d(m)),
        ffnMask: ffnMask.map((m) => tf.tensor1d(m)),
      }).dataSync(),
    );
    const zeroed = cloneParams(params);
    const cfgZ = applyMasks(zeroed, cfg, headMask, ffnMask, true);
    expect(cfgZ).toEqual(cfg); // keep_shape changes no shape
    const sliced = cloneParams(params);
    const cfgS = applyMasks(sliced, cfg, headMask, ffnMask, false);
    expect(headsPerLayer(cfgS)).toEqual([2, 1]);
    expect(ffnPerLayer(cfgS)).toEqual([20, 40]);
    expect(cfgS.pruned_heads).toEqual({ '0': [0, 2], '1': [0, 1, 3] });
    expect(sliced.get('bert.encoder.layer.1.attention.self.query.weight')!.shape).toEqual([8, 32]);
    expect(sliced.get('bert.encoder.layer.0.output.dense.weight')!.shape).toEqual([32, 20]);

    const full = logitsOf(params, cfg, batch);
    const z = logitsOf(zeroed, cfgZ, batch);
    const s = logitsOf(sliced, cfgS, batch);
    expect(maxAbsDiff(z, s)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(masked, s)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(full, s)).toBeGreaterThan(1e-3); // the pruning did change the model
    for (const p of [params, zeroed, sliced]) disposeParams(p);
  });

  it('all-ones masks change nothing', () => {
    const { cfg, params } = tinyModel({ seed: 2 });
    const before = logitsOf(params, cfg, batch);
    const copy = cloneParams(params);
    const cfg2 = applyMasks(
      copy,
      cfg,
      headsPerLayer(cfg).map((n) => Array(n).fill(1)),
      ffnPerLayer(cfg).map((n) => Array(n).fill(1)),
      false,
    );
    expect(cfg2).toEqual(cfg);
    for (const [n, v] of params) expect(copy.get(n)!.shape).toEqual(v.shape);
    expect(maxAbsDiff(logitsOf(copy, cfg2, batch), before)).toBe(0);
    disposeParams(params);
    disposeParams(copy);
  });

  it(
    'pruned checkpoints with different sizes per layer round-trip, ' + 'and a second pruning accumulates pruned_heads',
    async () => {
      const { cfg, params } = tinyModel({ seed: 3 });
      const vocab = vocabOf(40);
      const reference = cloneParams(params);

      const cfg1 = applyMasks(params, cfg, headMask, ffnMask, false);
      const logits1 = logitsOf(params, cfg1, batch);
      const ck1 = path.join(dir, 'once');
      await saveCheckpoint(ck1, cfg1, params, vocab);
      const saved = JSON.parse(fs.readFileSync(path.join(ck1, 'config.json'), 'utf8'));
      expect(saved.pruned_heads).toEqual({ '0': [0, 2], '1': [0, 1, 3] });
      expect(saved.intermediate_sizes).toEqual([20, 40]);
      const l1 = loadCheckpoint(ck1);
      expect(maxAbsDiff(logitsOf(l1.params, l1.config, batch), logits1)).toBe(0);

      // Second pruning on the loaded model, over its present units: layer 0 drops its head 1
      // (original id 1, present [1, 3]), layer 1 keeps its only head; FFN halves layer 1.
      expect(keptHeads(l1.config, 0)).toEqual([1, 3]);
      const head2 = [[0, 1], [1]];
      const ffn2 = [Array(20).fill(1), Array.from({ length: 40 }, (_, i) => (i % 2 ? 1 : 0))];
      const cfg2 = applyMasks(l1.params, l1.config, head2, ffn2, false);
      expect(cfg2.pruned_heads).toEqual({ '0': [0, 1, 2], '1': [0, 1, 3] });
      expect(ffnPerLayer(cfg2)).toEqual([20, 20]);
      expect(cfg2.intermediate_sizes).toBeUndefined(); // equal sizes again: plain intermediate_size
      expect(cfg2.intermediate_size).toBe(20);
      const ck2 = path.join(dir, 'twice');
      await saveCheckpoint(ck2, cfg2, l1.params, vocab);
      const l2 = loadCheckpoint(ck2);
      expect(l2.config.intermediate_size).toBe(20);
      const logits2 = logitsOf(l2.params, l2.config, batch);
      expect(maxAbsDiff(logits2, logitsOf(l1.params, cfg2, batch))).toBe(0);

      // The same two prunings at once, as masks over the original model, zeroed: same function.
      const ffnKept1 = ffnMask[1].map((m, i) => i).filter((i) => ffnMask[1][i]);
      const combinedFfn = [ffnMask[0], Array(64).fill(0)];
      ffnKept1.forEach((orig, k) => (combinedFfn[1][orig] = ffn2[1][k]));
      const combined = applyMasks(
        reference,
        cfg,
        [
          [0, 0, 0, 1],
          [0, 0, 1, 0],
        ],
        combinedFfn,
        true,
      );
      expect(maxAbsDiff(logitsOf(reference, combined, batch), logits2)).toBeLessThanOrEqual(1e-5);
      for (const p of [params, l1.params, l2.params, reference]) disposeParams(p);
    },
  );
});
