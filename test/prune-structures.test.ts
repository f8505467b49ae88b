// The four pruning structures (heads, FFN neurons, whole layers, hidden dims): the masked forward
// (model/bert.ts layerGate / hiddenMask / headMask / ffnMask) and the sliced model (prune/apply.ts
// applyStructures) are the same function; the sliced checkpoint saves and loads back exactly (a
// plain BertConfig where the shape allows, attention_head_size otherwise); the gate importances
// are the derivative a finite difference measures; vocabulary pruning still works on the result.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import type { Batch } from '../src/engine/data/encode';
import { loadCheckpoint, saveCheckpoint } from '../src/engine/io/checkpoint';
import { classify, encode, type ForwardOptions, mlmLogits, toInputs } from '../src/engine/model/bert';
import {
  BertConfig,
  checkConfigJson,
  ffnPerLayer,
  headSize,
  headsPerLayer,
  makeConfig,
} from '../src/engine/model/config';
import { paramCount } from '../src/engine/model/memory';
import { disposeParams, initParams, paramShapes, type Params } from '../src/engine/model/params';
import { analyze } from '../src/engine/analyze/model';
import { sizeOfConfig } from '../src/engine/backend/speeds';
import { flopsPerSequence } from '../src/engine/analyze/summary';
import { formatAnalysis } from '../src/engine/format';
import { applyMasks, applyStructures, composeKept, type StructureMasks } from '../src/engine/prune/apply';
import { computeImportance, importanceLoss } from '../src/engine/prune/importance';
import { cloneParams } from '../src/engine/prune/transformer';
import { pruneVocabulary } from '../src/engine/prune/vocabulary';
import { UserError } from '../src/engine/errors';
import { batchesOf, logitsOf, maxAbsDiff, randomExamples, tinyModel, tmpDir, vocabOf } from './prune-helpers';

let dir: string;
beforeAll(async () => {
  await initBackend('wasm');
  dir = tmpDir('structures');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// tinyModel: hidden 32, 4 heads of 8, FFN 64; here 3 layers.
const L = 3;
const H = 32;
const batch = batchesOf(randomExamples(6, 40), 6)[0];

/** The forward options of masks over the input model (layers, hidden dims, heads, FFN). */
function gatesOf(m: StructureMasks): ForwardOptions {
  return {
    layerGate: m.layer?.map((g) => tf.scalar(g)),
    hiddenMask: m.hidden ? tf.tensor1d(m.hidden) : null,
    headMask: m.head?.map((r) => tf.tensor1d(r)),
    ffnMask: m.ffn?.map((r) => tf.tensor1d(r)),
  };
}

function maskedLogits(params: Params, cfg: BertConfig, b: Batch, m: StructureMasks): Float32Array {
  return tf.tidy(() => classify(params, cfg, toInputs(b.ids, b.mask, b.B, b.T), gatesOf(m)).dataSync() as Float32Array);
}

/** MLM logits at every position, masked or not. */
function mlmOf(params: Params, cfg: BertConfig, b: Batch, m: StructureMasks = {}): Float32Array {
  return tf.tidy(() => {
    const g = gatesOf(m);
    const x = encode(params, cfg, toInputs(b.ids, b.mask, b.B, b.T), g);
    const pos = tf.range(0, b.B * b.T, 1, 'int32') as tf.Tensor1D;
    return mlmLogits(params, cfg, x, pos, { hiddenMask: g.hiddenMask }).dataSync() as Float32Array;
  });
}

const hiddenKeep = (n: number, step = 1) => Array.from({ length: H }, (_, j) => ((j * step) % H < n ? 1 : 0));
const ffnHalf = () => [...Array(L).keys()].map((l) => Array.from({ length: 64 }, (_, i) => ((i + l) % 2 ? 1 : 0)));
const CASES: [string, StructureMasks][] = [
  ['layers', { layer: [1, 0, 1] }],
  ['hidden (24 of 32: 4 heads of 8 no longer fit, attention_head_size)', { hidden: hiddenKeep(24, 5) }],
  [
    'hidden (16 of 32, 2 heads a layer: a plain BertConfig)',
    {
      hidden: hiddenKeep(16, 3),
      head: [
        [1, 0, 1, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 1],
      ],
    },
  ],
  [
    'heads',
    {
      head: [
        [0, 1, 1, 1],
        [1, 0, 0, 1],
        [0, 0, 0, 1],
      ],
    },
  ],
  ['FFN', { ffn: ffnHalf() }],
  [
    'all four',
    {
      layer: [1, 1, 0],
      hidden: hiddenKeep(20, 7),
      head: [
        [1, 0, 1, 1],
        [0, 1, 1, 0],
        [1, 1, 1, 1],
      ],
      ffn: ffnHalf(),
    },
  ],
];

describe('applyStructures: masked forward = sliced model', () => {
  it.each(CASES)('%s', (_, m) => {
    const { cfg, params } = tinyModel({ layers: L, seed: 4, mlm: true });
    const full = logitsOf(params, cfg, batch);
    const masked = maskedLogits(params, cfg, batch, m);
    const maskedMlm = mlmOf(params, cfg, batch, m);
    const sliced = cloneParams(params);
    const { cfg: cfgS, kept } = applyStructures(sliced, cfg, m, false);
    const s = logitsOf(sliced, cfgS, batch);
    expect(maxAbsDiff(masked, s)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(maskedMlm, mlmOf(sliced, cfgS, batch))).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(full, s)).toBeGreaterThan(1e-3); // the pruning changed the model
    // Shapes and config agree: every tensor the config implies is there with its shape.
    const want = paramShapes(cfgS, { mlm: true, classifier: true });
    expect(new Map([...sliced].map(([n, v]) => [n, v.shape]))).toEqual(new Map(want));
    expect(kept.layers).toEqual(m.layer ? m.layer.flatMap((g, l) => (g ? [l] : [])) : [0, 1, 2]);
    expect(kept.hidden).toEqual(m.hidden ? m.hidden.flatMap((g, j) => (g ? [j] : [])) : [...Array(H).keys()]);
    expect(cfgS.num_hidden_layers).toBe(kept.layers.length);
    expect(cfgS.hidden_size).toBe(kept.hidden.length);
    expect(headSize(cfgS)).toBe(8); // heads keep their size
    for (const p of [params, sliced]) disposeParams(p);
  });

  it('all-ones masks of every structure change nothing; the ones hidden mask is the plain forward', () => {
    const { cfg, params } = tinyModel({ layers: L, seed: 5 });
    const ones: StructureMasks = {
      layer: Array(L).fill(1),
      hidden: Array(H).fill(1),
      head: headsPerLayer(cfg).map((n) => Array(n).fill(1)),
      ffn: ffnPerLayer(cfg).map((n) => Array(n).fill(1)),
    };
    const before = logitsOf(params, cfg, batch);
    expect(maxAbsDiff(maskedLogits(params, cfg, batch, ones), before)).toBeLessThanOrEqual(1e-5);
    const copy = cloneParams(params);
    const r = applyStructures(copy, cfg, ones, false);
    expect(r.cfg).toEqual(cfg);
    expect(maxAbsDiff(logitsOf(copy, r.cfg, batch), before)).toBe(0);
    disposeParams(copy);
    disposeParams(params);
  });

  it("hiddenStates collects every layer's output; a skipped layer passes its input on", () => {
    const { cfg, params } = tinyModel({ layers: L, seed: 16 });
    const [all, gated] = tf.tidy(() => {
      const inp = toInputs(batch.ids, batch.mask, batch.B, batch.T);
      const states: tf.Tensor2D[] = [];
      const last = encode(params, cfg, inp, { hiddenStates: states });
      const skipped: tf.Tensor2D[] = [];
      encode(params, cfg, inp, { hiddenStates: skipped, layerGate: [null, tf.scalar(0), null] });
      expect(states.map((t) => t.shape)).toEqual(Array(L).fill([batch.B * batch.T, H]));
      expect(maxAbsDiff(states[L - 1].dataSync(), last.dataSync())).toBe(0);
      return [states.map((t) => t.dataSync()), skipped.map((t) => t.dataSync())];
    });
    expect(maxAbsDiff(gated[1], gated[0])).toBe(0);
    expect(maxAbsDiff(gated[0], all[0])).toBe(0);
    expect(maxAbsDiff(all[1], all[0])).toBeGreaterThan(1e-3);
    disposeParams(params);
  });

  it('the configs: attention_head_size where heads no longer fit, a plain BertConfig where they do', () => {
    const { cfg, params } = tinyModel({ layers: L, seed: 6 });
    const a = applyStructures(cloneParams(params), cfg, CASES[1][1], false).cfg;
    expect(a).toMatchObject({ hidden_size: 24, num_attention_heads: 4, attention_head_size: 8, pruned_heads: {} });
    const b = applyStructures(cloneParams(params), cfg, CASES[2][1], false).cfg;
    expect(b.attention_head_size).toBeUndefined();
    expect(b).toMatchObject({ hidden_size: 16, num_attention_heads: 2, pruned_heads: { '1': [1] } });
    expect(headsPerLayer(b)).toEqual([2, 1, 2]);
    const c = applyStructures(cloneParams(params), cfg, { layer: [0, 1, 1], ffn: ffnHalf() }, false).cfg;
    expect(c.num_hidden_layers).toBe(2);
    expect(c.intermediate_sizes).toBeUndefined();
    expect(c.intermediate_size).toBe(32);
    disposeParams(params);
  });

  it('a config of heads of their own size turns plain once the heads fit (here: by head pruning)', () => {
    const { cfg, params } = tinyModel({ layers: L, seed: 15 });
    const a = applyStructures(params, cfg, { hidden: hiddenKeep(24, 5) }, false).cfg;
    expect(a).toMatchObject({ num_attention_heads: 4, attention_head_size: 8 });
    const head = [
      [1, 1, 0, 1],
      [0, 1, 1, 1],
      [1, 1, 1, 0],
    ];
    const masked = maskedLogits(params, a, batch, { head });
    const b = applyStructures(params, a, { head }, false).cfg;
    expect(b.attention_head_size).toBeUndefined();
    expect(b).toMatchObject({ hidden_size: 24, num_attention_heads: 3, pruned_heads: {} });
    expect(maxAbsDiff(logitsOf(params, b, batch), masked)).toBeLessThanOrEqual(1e-5);
    disposeParams(params);
  });

  it('layers renumber pruned_heads and intermediate_sizes; KeptIndices compose', () => {
    const { cfg, params } = tinyModel({ layers: L, seed: 7 });
    const heads = [
      [1, 1, 1, 1],
      [0, 1, 1, 1],
      [1, 0, 0, 1],
    ];
    const ffn = [Array(64).fill(1), Array(64).fill(1), Array.from({ length: 64 }, (_, i) => (i < 10 ? 1 : 0))];
    const first = applyStructures(params, cfg, { head: heads, ffn }, false);
    expect(first.cfg.pruned_heads).toEqual({ '1': [0], '2': [1, 2] });
    expect(ffnPerLayer(first.cfg)).toEqual([64, 64, 10]);
    const before = logitsOf(params, first.cfg, batch);
    const masked = maskedLogits(params, first.cfg, batch, { layer: [0, 1, 1], hidden: hiddenKeep(28, 3) });
    const second = applyStructures(params, first.cfg, { layer: [0, 1, 1], hidden: hiddenKeep(28, 3) }, false);
    expect(second.cfg.pruned_heads).toEqual({ '0': [0], '1': [1, 2] });
    expect(second.cfg.intermediate_sizes).toEqual([64, 10]);
    expect(maxAbsDiff(logitsOf(params, second.cfg, batch), masked)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(before, masked)).toBeGreaterThan(1e-3);
    expect(params.has('bert.encoder.layer.2.output.dense.weight')).toBe(false);
    expect(params.get('bert.encoder.layer.1.output.dense.weight')!.shape).toEqual([28, 10]);
    const first14 = Array.from({ length: 28 }, (_, j) => (j < 14 ? 1 : 0));
    const third = applyStructures(params, second.cfg, { layer: [1, 0], hidden: first14 }, false);
    expect(composeKept(second.kept, third.kept)).toEqual({
      layers: [1],
      hidden: second.kept.hidden.slice(0, 14),
    });
    disposeParams(params);
  });

  it('refuses what it cannot do, with one line', () => {
    const { cfg, params } = tinyModel({ layers: L, seed: 8 });
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(UserError);
        return (e as Error).message;
      }
      throw new Error('did not throw');
    };
    expect(err(() => applyStructures(params, cfg, { layer: [0, 0, 0] }, false))).toBe(
      'layer mask: would keep no layer (keep at least one)',
    );
    expect(err(() => applyStructures(params, cfg, { hidden: Array(H).fill(0) }, false))).toBe(
      'hidden mask: would keep no hidden dim (keep at least one)',
    );
    expect(err(() => applyStructures(params, cfg, { layer: [1, 1] }, false))).toBe(
      'layer mask: has 2 entries, the model has 3 layers',
    );
    expect(err(() => applyStructures(params, cfg, { layer: [1, 0, 1] }, true))).toBe(
      'keep_shape works with heads and FFN only',
    );
    expect(err(() => applyStructures(params, cfg, { hidden: hiddenKeep(16) }, true))).toBe(
      'keep_shape works with heads and FFN only',
    );
    const noFfn = ffnPerLayer(cfg).map((n, l) => Array(n).fill(l === 2 ? 0 : 1));
    expect(err(() => applyStructures(params, cfg, { layer: [0, 1, 1], ffn: noFfn }, false))).toBe(
      'FFN mask: layer 2 would keep no neuron (keep at least one)',
    );
    // Nothing was changed by a refused call.
    expect(paramShapes(cfg, { mlm: false, classifier: true })).toEqual([...params].map(([n, v]) => [n, v.shape]));
    // keep_shape with all-ones layer/hidden masks is heads and FFN as before
    const zeroed = cloneParams(params);
    const head = headsPerLayer(cfg).map((n, l) => Array.from({ length: n }, (_, h) => (h === l ? 0 : 1)));
    const r = applyStructures(zeroed, cfg, { head, layer: [1, 1, 1], hidden: Array(H).fill(1) }, true);
    expect(r.cfg).toEqual(cfg);
    const viaMasks = cloneParams(params);
    applyMasks(viaMasks, cfg, head, null, true);
    for (const [n, v] of zeroed) expect(maxAbsDiff(v.dataSync(), viaMasks.get(n)!.dataSync())).toBe(0);
    for (const p of [params, zeroed, viaMasks]) disposeParams(p);
  });
});

describe('sliced checkpoints save and load back exactly', () => {
  it.each([
    ['attention_head_size', 1],
    ['plain BertConfig', 2],
    ['all four', 5],
  ])('%s', async (name, k) => {
    const { cfg, params } = tinyModel({ layers: L, seed: 9, mlm: true });
    const { cfg: cfgS } = applyStructures(params, cfg, CASES[k][1], false);
    const logits = logitsOf(params, cfgS, batch);
    const mlm = mlmOf(params, cfgS, batch);
    const ck = path.join(dir, name.replace(/\W+/g, '-'));
    await saveCheckpoint(ck, cfgS, params, vocabOf(40));
    const saved = JSON.parse(fs.readFileSync(path.join(ck, 'config.json'), 'utf8'));
    if (cfgS.attention_head_size === undefined) {
      expect(saved.attention_head_size).toBeUndefined();
      expect(saved.hidden_size % saved.num_attention_heads).toBe(0);
      expect(saved.hidden_size / saved.num_attention_heads).toBe(8);
    } else expect(saved.attention_head_size).toBe(8);
    const back = loadCheckpoint(ck);
    expect(back.config).toEqual(checkConfigJson(saved, 'x'));
    expect(headSize(back.config)).toBe(8);
    expect(maxAbsDiff(logitsOf(back.params, back.config, batch), logits)).toBe(0);
    expect(maxAbsDiff(mlmOf(back.params, back.config, batch), mlm)).toBe(0);
    for (const [n, v] of params) expect(maxAbsDiff(back.params.get(n)!.dataSync(), v.dataSync())).toBe(0);
    disposeParams(params);
    disposeParams(back.params);
  });

  it('analyze reads such a checkpoint: its layers, hidden size, head size, parameters and FLOPs', async () => {
    const { cfg, params } = tinyModel({ layers: L, seed: 14 });
    const { cfg: cfgS } = applyStructures(params, cfg, CASES[5][1], false);
    const ck = path.join(dir, 'analyzed');
    await saveCheckpoint(ck, cfgS, params, vocabOf(40));
    const encoder = [...params].filter(([n]) => n.startsWith('bert.encoder.')).reduce((a, [, v]) => a + v.size, 0);
    disposeParams(params);
    const { analysis: a } = await analyze(ck, { backend: 'wasm', emit: () => {} }, { batchSize: 2, seqLen: 8 });
    expect(a).toMatchObject({ num_layers: 2, hidden_size: 20, head_size: 8, heads_per_layer: [3, 2] });
    expect(a.encoder_params).toBe(encoder);
    expect(a.flops_per_sequence).toBe(flopsPerSequence(cfgS, 8));
    expect(a.latency_ms_per_batch).toBeGreaterThan(0);
    expect(formatAnalysis(a)).toContain('layers: 2   hidden size: 20   head size: 8');
  });

  it('vocabulary pruning works on a model with fewer layers and a smaller hidden size', async () => {
    const { cfg, params } = tinyModel({ layers: L, seed: 10, mlm: true });
    const { cfg: cfgS } = applyStructures(params, cfg, CASES[5][1], false);
    // A batch of tokens 5..19 only; the corpus uses 5..29.
    const b = batchesOf(randomExamples(4, 20, 11), 4)[0];
    const before = logitsOf(params, cfgS, b);
    const counts = Array.from({ length: 40 }, (_, i) => (i < 30 ? 3 : 0));
    const pv = pruneVocabulary(params, cfgS, vocabOf(40), counts, { min_count: 1, prune_lm_head: 'auto' });
    expect(pv.after).toBe(30);
    expect(params.get('bert.embeddings.word_embeddings.weight')!.shape).toEqual([30, 20]);
    expect(maxAbsDiff(logitsOf(params, pv.cfg, b), before)).toBe(0); // ids 0..29 keep their ids
    const ck = path.join(dir, 'vocab-pruned');
    await saveCheckpoint(ck, pv.cfg, params, pv.vocab);
    const back = loadCheckpoint(ck);
    expect(back.config.vocab_size).toBe(30);
    expect(maxAbsDiff(logitsOf(back.params, back.config, b), before)).toBe(0);
    disposeParams(params);
    disposeParams(back.params);
  });
});

describe('a config.json with its own head size', () => {
  const tiny = tinyModel();
  disposeParams(tiny.params);
  const base = () =>
    ({ ...structuredClone(tiny.cfg), hidden_size: 20, num_attention_heads: 3 }) as Record<string, unknown>;
  it('is accepted with attention_head_size, refused without or with a bad one (naming the file and field)', () => {
    expect(headSize(checkConfigJson({ ...base(), attention_head_size: 8 }, 'c.json'))).toBe(8);
    expect(() => checkConfigJson(base(), 'c.json')).toThrow(
      'c.json: hidden_size 20 is not a multiple of num_attention_heads 3 ' +
        '(and no attention_head_size says the size of a head)',
    );
    for (const bad of [0, 8.5, 9000, '8'])
      expect(() => checkConfigJson({ ...base(), attention_head_size: bad }, 'c.json')).toThrow(
        `c.json: 'attention_head_size' must be an integer from 1 to 8192, got ${JSON.stringify(bad)}`,
      );
  });

  it('parameters, memory estimate, speed table size and FLOPs count heads x head size as the attention width', () => {
    const cfg = makeConfig(
      {
        hidden_size: 20,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 24,
        max_position_embeddings: 16,
        max_len: 16,
        hidden_dropout_prob: 0,
        attention_probs_dropout_prob: 0,
        initializer_range: 0.02,
      },
      30,
      'classification',
    );
    cfg.attention_head_size = 8;
    const shapes = paramShapes(cfg, { mlm: true, classifier: true });
    expect(shapes.find(([n]) => n === 'bert.encoder.layer.0.attention.self.query.weight')![1]).toEqual([32, 20]);
    expect(paramCount(cfg)).toBe(shapes.reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0));
    expect(sizeOfConfig(cfg)).toEqual({ layers: 2, hidden: 20, attention: 32, ffn: 24 });
    const params = initParams(cfg, { mlm: false, classifier: true, seed: 1 });
    const b = batchesOf(randomExamples(3, 30), 3)[0];
    expect(logitsOf(params, cfg, b).every(Number.isFinite)).toBe(true);
    // Q, K, V and the attention output over 32 columns, not 20: 4 x 2 T H AD per layer.
    const T = 8;
    const plain = { ...cfg, attention_head_size: 5 };
    expect(flopsPerSequence(cfg, T) - flopsPerSequence(plain, T)).toBe(2 * (8 * T * 20 * 12 + 4 * T * T * 12));
    disposeParams(params);
  });
});

describe('importance: |dL/dz| at z = 1 (a finite difference), a layer by skipping it (one batch)', () => {
  it('layers and hidden dims', async () => {
    const { cfg, params } = tinyModel({ layers: L, seed: 12 });
    const b = batchesOf(randomExamples(8, 40, 13), 8)[0];
    const target = { kind: 'labels' } as const;
    const imp = await computeImportance(params, cfg, [b], target, {
      ffnEven: false,
      structures: { layers: true, hidden: true },
    });
    const plain = await computeImportance(params, cfg, [b], target, { ffnEven: false });
    expect(plain.layer).toBeUndefined();
    expect(plain.hidden).toBeUndefined();
    expect(imp.head).toEqual(plain.head.map((r) => r.map((v) => expect.closeTo(v, 5))));
    const loss = (g: ForwardOptions) => tf.tidy(() => importanceLoss(params, cfg, b, target, 0, g).dataSync()[0]);
    // (loss(z = 1) - loss(z = 1 - eps)) / eps as the issue asks (its curvature error is a few %
    // here), and the central difference, which float32 allows to check to 1%.
    const eps = 1e-3;
    const ceps = 1e-2; // the central difference's error is O(eps^2): a wider step, less float32 noise
    // computeImportance divides by the examples
    const perExample = (d: number, e: number) => Math.abs(d) / e / b.B;
    const check = (got: number, base: number, at: (z: number) => number) => {
      const backward = perExample(base - at(1 - eps), eps);
      const central = perExample((at(1 + ceps) - at(1 - ceps)) / 2, ceps);
      expect(Math.abs(got - backward)).toBeLessThanOrEqual(0.05 * backward + 5e-5);
      expect(Math.abs(got - central)).toBeLessThanOrEqual(0.01 * central + 1e-5);
    };
    const gateAt = (n: number, i: number, z: number) => Array.from({ length: n }, (_, k) => (k === i ? z : 1));
    // A layer: the loss change when it is skipped, which the model with that layer sliced off
    // computes too (the reference).
    expect(imp.layer).toHaveLength(L);
    const base = loss({});
    for (let l = 0; l < L; l++) {
      const skipped = perExample(loss({ layerGate: gateAt(L, l, 0).map((x) => tf.scalar(x)) }) - base, 1);
      expect(imp.layer![l]).toBeCloseTo(skipped, 6);
      const copy = new Map([...params].map(([n, v]) => [n, tf.variable(v.clone())]));
      const { cfg: sliced } = applyStructures(copy, cfg, { layer: gateAt(L, l, 0) }, false);
      const slicedLoss = tf.tidy(() => importanceLoss(copy, sliced, b, target, 0).dataSync()[0]);
      expect(perExample(slicedLoss - base, 1)).toBeCloseTo(skipped, 5);
      disposeParams(copy);
    }
    expect(imp.hidden).toHaveLength(H);
    const baseM = loss({ hiddenMask: tf.ones([H]) as tf.Tensor1D });
    for (let j = 0; j < H; j++) {
      const at = (z: number) => loss({ hiddenMask: tf.tensor1d(gateAt(H, j, z)) });
      check(imp.hidden![j], baseM, at);
    }
    expect(Math.max(...imp.layer!)).toBeGreaterThan(1e-3);

    // Heads and neurons: TextPruner's grad x weight sums are the same gate derivative; here on a
    // model whose heads have their own size (hidden 24, 4 heads of 8).
    const { cfg: dc } = applyStructures(params, cfg, { hidden: hiddenKeep(24, 5) }, false);
    expect(dc.attention_head_size).toBe(8);
    const di = await computeImportance(params, dc, [b], target, { ffnEven: false });
    const dloss = (g: ForwardOptions) => tf.tidy(() => importanceLoss(params, dc, b, target, 0, g).dataSync()[0]);
    const dbase = dloss({});
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < 4; h++) {
        const at = (z: number) =>
          dloss({
            headMask: [...Array(L).keys()].map((k) => tf.tensor1d(k === l ? gateAt(4, h, z) : Array(4).fill(1))),
          });
        check(di.head[l][h], dbase, at);
      }
    } // not trivially zero
    expect(Math.max(...imp.hidden!)).toBeGreaterThan(1e-4);
    disposeParams(params);
  });
});
