// The budget's arithmetic (prune/budget.ts): parameter counts against the model's own tensors,
// the schedule, and the greedy allocation's choices and bounds.
import { describe, expect, it } from 'vitest';
import { makeConfig } from '../src/engine/model/config';
import { ENCODER } from '../src/engine/model/names';
import { paramShapes } from '../src/engine/model/params';
import {
  allocateBudget,
  budgetCount,
  budgetSchedule,
  checkBudget,
  encoderParamsOf,
  layerParams,
  modelParamsOf,
  outsideParams,
  shapeOf,
  type EncoderShape,
} from '../src/engine/prune/budget';
import type { Importance } from '../src/engine/prune/importance';
import { defaultsOf } from '../src/engine/config/fields';
import type { ModelSettings } from '../src/engine/config/settings';

const model = (o: Partial<ModelSettings>) =>
  makeConfig({ ...(defaultsOf('model') as ModelSettings), ...o }, 50, 'classification');

/** Encoder parameters counted from the tensors the config implies (the independent count). */
const tensorCount = (cfg: ReturnType<typeof model>) =>
  paramShapes(cfg, { mlm: false, classifier: true })
    .filter(([n]) => n.startsWith(`${ENCODER}.`))
    .reduce((s, [, shape]) => s + shape.reduce((a, b) => a * b, 1), 0);

/** The shape a budget result leaves. */
function shapeAfter(s: EncoderShape, r: ReturnType<typeof allocateBudget>): EncoderShape {
  const keep = s.heads.map((_, l) => l).filter((l) => r.layer[l]);
  return {
    heads: keep.map((l) => r.head[l].reduce((a, b) => a + b, 0)),
    ffn: keep.map((l) => r.ffn[l].reduce((a, b) => a + b, 0)),
    hidden: r.hidden.reduce((a, b) => a + b, 0),
    headSize: s.headSize,
  };
}

const rand = (seed: number) => () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};

function importance(s: EncoderShape, seed = 1): Required<Importance> {
  const r = rand(seed);
  return {
    head: s.heads.map((a) => Array.from({ length: a }, r)),
    ffn: s.ffn.map((n) => Array.from({ length: n }, () => r() / 10)),
    layer: s.heads.map(() => r() * 5),
    hidden: Array.from({ length: s.hidden }, r),
  };
}

describe('encoder parameter counts', () => {
  it('match the tensors of the model, pruned shapes included', () => {
    for (const o of [
      { hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 1024 },
      { hidden_size: 64, num_hidden_layers: 3, num_attention_heads: 2, intermediate_size: 96 },
    ]) {
      const cfg = model(o);
      expect(encoderParamsOf(shapeOf(cfg))).toBe(tensorCount(cfg));
      // uneven heads and FFN per layer
      cfg.pruned_heads = { '0': [1] };
      cfg.intermediate_sizes = [...Array(cfg.num_hidden_layers).keys()].map((l) => 10 + l);
      expect(encoderParamsOf(shapeOf(cfg))).toBe(tensorCount(cfg));
    }
  });

  it('the whole model (embeddings, encoder, pooler, classifier; the MLM head where there is one)', () => {
    const all = (cfg: ReturnType<typeof model>, mlm: boolean) =>
      paramShapes(cfg, { mlm, classifier: true }).reduce((s, [, shape]) => s + shape.reduce((a, b) => a * b, 1), 0);
    for (const o of [
      { hidden_size: 128, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 512 },
      { hidden_size: 64, num_hidden_layers: 3, num_attention_heads: 2, intermediate_size: 96 },
    ]) {
      const cfg = model(o);
      for (const mlm of [false, true]) expect(modelParamsOf(cfg, mlm)).toBe(all(cfg, mlm));
      // a pruned hidden size with heads of their own size, uneven layers, other labels
      const D = o.hidden_size / o.num_attention_heads;
      const pruned = {
        ...cfg,
        hidden_size: 40,
        attention_head_size: D,
        intermediate_sizes: [7, 9, 11].slice(0, o.num_hidden_layers - 1),
      };
      pruned.num_hidden_layers = pruned.intermediate_sizes.length;
      pruned.id2label = { '0': 'a', '1': 'b', '2': 'c' };
      for (const mlm of [false, true]) expect(modelParamsOf(pruned, mlm)).toBe(all(pruned, mlm));
      // what a hidden dimension costs outside the encoder: a row of each embedding table, the
      // embedding LayerNorm, the pooler's row and column, and the classifier's column
      const out = outsideParams(cfg);
      const H = o.hidden_size;
      const perDim = cfg.vocab_size + cfg.max_position_embeddings + cfg.type_vocab_size + 2 + (2 * H - 1) + 1 + 17;
      expect(out(H) - out(H - 1)).toBe(perDim);
    }
  });

  it('the gaiic encoder is 659,712 parameters', () => {
    const cfg = model({ hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 1024 });
    expect(encoderParamsOf(shapeOf(cfg))).toBe(659712);
  });
});

describe('budget and schedule', () => {
  it('a fraction or a count', () => {
    expect(budgetCount(0.15, 659712)).toBe(98956);
    expect(budgetCount(99000, 659712)).toBe(99000);
    expect(() => checkBudget({ key: 'target_encoder_params', target: 700000 }, 659712, 'x.prune.json')).toThrow(
      /x.prune.json: transformer.target_encoder_params 700000 keeps 700000 encoder parameters; the model has 659712/,
    );
    expect(() => checkBudget({ key: 'target_model_params', target: 1000 }, 1000, 'x.prune.json')).toThrow(
      /target_model_params 1000 keeps 1000 model parameters; the model has 1000 \(nothing to prune\)/,
    );
  });

  it('geometric steps from the encoder to the budget', () => {
    const s = budgetSchedule(1000, 125, 3);
    expect(s).toEqual([500, 250, 125]);
    expect(budgetSchedule(1000, 150, 1)).toEqual([150]);
    for (let i = 1; i < s.length; i++) expect(s[i]).toBeLessThan(s[i - 1]);
  });
});

describe('allocateBudget', () => {
  const cfg = model({ hidden_size: 64, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 128 });
  const s = shapeOf(cfg);
  const before = encoderParamsOf(s);

  it('meets the budget, and its count is the shape it leaves', () => {
    for (const [layers, hidden] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ]) {
      const target = Math.floor(before * 0.3);
      const r = allocateBudget(s, importance(s), target, { layers, hidden });
      expect(r.params).toBeLessThanOrEqual(target);
      expect(r.params).toBe(encoderParamsOf(shapeAfter(s, r)));
      if (!layers) expect(r.layer.every((x) => x === 1)).toBe(true);
      if (!hidden) expect(r.hidden.every((x) => x === 1)).toBe(true);
      // every kept layer keeps a head and an FFN neuron
      r.layer.forEach((k, l) => k && expect(r.ffn[l].some((x) => x === 1)).toBe(true));
      r.layer.forEach((k, l) => k && expect(r.head[l].some((x) => x === 1)).toBe(true));
    }
  });

  it('removes the least important units of a kind first', () => {
    const imp = importance(s, 7);
    const r = allocateBudget(s, imp, Math.floor(before * 0.5), { layers: false, hidden: false });
    const kept = r.ffn.flatMap((row, l) => row.flatMap((x, i) => (x ? [imp.ffn[l][i]] : [])));
    const gone = r.ffn.flatMap((row, l) => row.flatMap((x, i) => (x ? [] : [imp.ffn[l][i]])));
    expect(gone.length).toBeGreaterThan(0);
    expect(Math.max(...gone)).toBeLessThanOrEqual(Math.min(...kept));
  });

  it('prefers what costs the least loss per parameter across kinds', () => {
    // Layer 2 is worthless and big: it goes before any head or neuron of the others.
    const imp = importance(s, 3);
    imp.layer[2] = 0;
    const oneLayer = before - encoderParamsOf({ ...s, heads: s.heads.slice(1), ffn: s.ffn.slice(1) });
    const r = allocateBudget(s, imp, before - oneLayer, { layers: true, hidden: true });
    expect(r.layer).toEqual([1, 1, 0, 1]);
    expect(r.params).toBe(before - oneLayer);
  });

  it('does not spend a whole layer where a few FFN neurons meet the budget for less loss', () => {
    const imp = importance(s, 3);
    // per parameter, layer 2 is by far the cheapest unit; but the budget asks for 1,000 parameters
    const layer2 = layerParams(s.heads[2], s.ffn[2], s.hidden, s.headSize);
    imp.layer[2] = 0.5;
    imp.ffn = imp.ffn.map((row) => row.map((x) => 0.01 + x / 10)); // 0.01 to 0.02 each
    imp.head = imp.head.map((row) => row.map((x) => 1 + x));
    const ffnMax = Math.max(...imp.ffn.flat());
    const perParam = (x: number, cost: number) => x / cost;
    expect(perParam(imp.layer[2], layer2)).toBeLessThan(perParam(Math.min(...imp.ffn.flat()), 2 * s.hidden + 1));
    expect(8 * ffnMax).toBeLessThan(imp.layer[2]); // the 8 neurons that cover 1,000 cost less
    const r = allocateBudget(s, imp, before - 1000, { layers: true, hidden: false });
    expect(r.layer).toEqual([1, 1, 1, 1]);
    expect(r.params).toBeLessThanOrEqual(before - 1000);
    expect(r.params).toBeGreaterThan(before - 1000 - (2 * s.hidden + 1));
    // a layer that costs less than the neurons would is still the one to go
    imp.layer[2] = 1e-6;
    expect(allocateBudget(s, imp, before - 1000, { layers: true, hidden: false }).layer).toEqual([1, 1, 0, 1]);
  });

  it('a whole-model budget counts what a hidden dimension saves outside the encoder, taking it where it pays', () => {
    const out = outsideParams(cfg);
    const H = s.hidden;
    const inEncoder = s.heads.reduce((a, A, l) => a + 4 * A * s.headSize + 2 * s.ffn[l] + 6, 0);
    const outside = out(H) - out(H - 1);
    // Every hidden dimension and FFN neuron alike; heads and layers too important to go. Per
    // encoder parameter a hidden dimension loses more than a neuron; per model parameter, less.
    const ffnLoss = 1;
    const hiddenLoss = (1.1 * ffnLoss * inEncoder) / (2 * H + 1);
    expect(hiddenLoss / inEncoder).toBeGreaterThan(ffnLoss / (2 * H + 1));
    expect(hiddenLoss / (inEncoder + outside)).toBeLessThan(ffnLoss / (2 * H + 1));
    const imp: Required<Importance> = {
      head: s.heads.map((a) => Array(a).fill(1e9)),
      ffn: s.ffn.map((n) => Array(n).fill(ffnLoss)),
      layer: s.heads.map(() => 1e9),
      hidden: Array(H).fill(hiddenLoss),
    };
    const total = modelParamsOf(cfg);
    const target = total - 3 * (inEncoder + outside);
    const byModel = allocateBudget(s, imp, target, { layers: true, hidden: true, outside: out });
    const keptH = byModel.hidden.reduce((a, b) => a + b, 0);
    expect(keptH).toBeLessThan(H);
    expect(byModel.params).toBeLessThanOrEqual(target);
    const after = shapeAfter(s, byModel);
    expect(byModel.params).toBe(encoderParamsOf(after) + out(after.hidden));
    // The encoder's budget with the same importance spends it on neurons alone.
    const byEncoder = allocateBudget(s, imp, encoderParamsOf(after), { layers: true, hidden: true });
    expect(byEncoder.hidden.every((x) => x === 1)).toBe(true);
  });

  it('fixed targets first, and the smallest reachable shape when the budget is too small', () => {
    const imp = importance(s, 5);
    const r = allocateBudget(s, imp, before, { layers: false, hidden: false, keepLayers: 2, keepHidden: 32 });
    expect(r.layer.reduce((a, b) => a + b, 0)).toBe(2);
    const least = imp.layer
      .map((v, l) => [v, l])
      .sort((a, b) => a[0] - b[0])
      .slice(0, 2)
      .map((x) => x[1]);
    for (const l of least) expect(r.layer[l]).toBe(0);
    expect(r.hidden.reduce((a, b) => a + b, 0)).toBe(32);
    const tiny = allocateBudget(s, imp, 10, { layers: true, hidden: true });
    expect(tiny.layer.reduce((a, b) => a + b, 0)).toBe(1);
    expect(tiny.params).toBeGreaterThan(10);
    expect(tiny.params).toBe(encoderParamsOf(shapeAfter(s, tiny)));
  });
});
