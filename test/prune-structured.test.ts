// The prune stage with all four structures (prune/structured.ts): one budget, whole layers, the
// hidden size; the report, pruned-from.json, gradual recovery, and layer-wise distillation.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { getPreset } from '../src/engine/config/presets';
import type { TransformerPruneConfig } from '../src/engine/config/settings';
import type { StageContext } from '../src/engine/context';
import type { Row } from '../src/engine/data/csv';
import type { Vocab } from '../src/engine/data/vocab';
import { loadCheckpoint, PRUNED_FROM_FILE, readPrunedFrom, saveCheckpoint } from '../src/engine/io/checkpoint';
import { encode, toInputs } from '../src/engine/model/bert';
import { CLASSIFIER, MLM_BIAS } from '../src/engine/model/names';
import { disposeParams } from '../src/engine/model/params';
import type { EngineEvent } from '../src/engine/protocol';
import { encoderParamsOf, modelParamsOf, shapeOf } from '../src/engine/prune/budget';
import { resolvePruneConfig } from '../src/engine/prune/config';
import { readReport } from '../src/engine/prune/report';
import { pruneCheckpoint as pruneStage } from '../src/engine/prune/run';
import { finetuneClassifier } from '../src/engine/train/classifier';
import { maskForDistillation, stepTeacherOf } from '../src/engine/train/distill';
import { Rng } from '../src/engine/data/rng';
import { userError, userErrorAsync } from './helpers/errors';
import { corpusRows, tinyModel, tmpDir, writeCsv } from './prune-helpers';

let dir: string;
let model: string; // 3 layers, hidden 32, 4 heads, FFN 64, classifier + MLM head
let dataFile: string;
let rows: Row[];
let vocab: Vocab;
const events: EngineEvent[] = [];
const ctx: StageContext = { emit: (e) => events.push(e), backend: 'wasm' };

const tc = (o: Partial<TransformerPruneConfig>): TransformerPruneConfig =>
  resolvePruneConfig({ transformer: { n_iters: 2, batch_size: 16, ...o } }, {}, 'test.prune.json').transformer!;

beforeAll(async () => {
  await initBackend('wasm');
  dir = tmpDir('structured');
  ({ rows, vocab } = corpusRows(40));
  dataFile = path.join(dir, 'train.csv');
  writeCsv(dataFile, rows);
  const { cfg, params } = tinyModel({ vocab: vocab.tokens.length, mlm: true, seed: 4, layers: 3 });
  cfg.max_len = 16;
  model = path.join(dir, 'finetuned');
  await saveCheckpoint(model, cfg, params, vocab);
  disposeParams(params);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('structured pruning', () => {
  it('one budget over all four structures: fits it, reports it, records where each unit came from', async () => {
    events.length = 0;
    const out = path.join(dir, 'budget');
    const config = { transformer: tc({ target_encoder_params: 0.25, prune_layers: true, prune_hidden: true }) };
    const r = await pruneStage({ model, config, out, dataFile, seed: 1 }, ctx);
    const rep = readReport(r.report);
    const ck = loadCheckpoint(out);
    const reached = encoderParamsOf(shapeOf(ck.config));
    expect(rep.after.encoder_params).toBe(reached);
    expect(reached).toBeLessThanOrEqual(Math.floor(0.25 * rep.before.encoder_params));
    expect(rep.structure?.budget).toEqual({ target_encoder_params: 0.25, reached, before: rep.before.encoder_params });
    // two geometric steps: about half the encoder after the first
    expect(rep.iterations).toHaveLength(2);
    expect(rep.iterations[0].encoder_params!).toBeLessThanOrEqual(Math.round(0.5 * rep.before.encoder_params));
    expect(rep.iterations[1].encoder_params).toBe(reached);
    // the report's structure and the checkpoint's pruned-from.json agree with the model
    const from = readPrunedFrom(out, ck.config)!;
    expect(from.layers).toEqual(rep.structure!.layers_kept);
    expect(from.hidden).toHaveLength(ck.config.hidden_size);
    expect(rep.structure!.hidden_after).toBe(ck.config.hidden_size);
    expect(rep.structure!.layer_importance).toHaveLength(3);
    expect(rep.structure!.hidden_importance).toHaveLength(32);
    expect(rep.layers.filter((l) => !l.removed).map((l) => l.layer)).toEqual(from.layers);
    rep.layers.forEach((l) => expect(l.layer_importance).toBeTypeOf('number'));
    // the tables say it
    const summary = events.find((e) => e.type === 'table' && e.title === 'Pruning: before / after');
    expect(JSON.stringify(summary)).toContain('hidden size');
    expect(events.some((e) => e.type === 'table' && e.title === 'Pruning: iterations')).toBe(true);
    // the pruned model runs
    const x = encode(ck.params, ck.config, toInputs(new Int32Array([2, 7, 9, 3]), new Float32Array(4).fill(1), 1, 4));
    expect(x.shape).toEqual([4, ck.config.hidden_size]);
    disposeParams(ck.params);
  });

  it('a whole-model budget: the checkpoint (its MLM head included) fits it, and the report says so', async () => {
    events.length = 0;
    const out = path.join(dir, 'model-budget');
    const config = { transformer: tc({ target_model_params: 0.5, prune_layers: true, prune_hidden: true }) };
    const r = await pruneStage({ model, config, out, dataFile, seed: 1 }, ctx);
    const rep = readReport(r.report);
    const ck = loadCheckpoint(out);
    expect(ck.params.has(MLM_BIAS)).toBe(true);
    const reached = [...ck.params.values()].reduce((s, v) => s + v.size, 0);
    expect(rep.after.params).toBe(reached);
    expect(modelParamsOf(ck.config, true)).toBe(reached);
    expect(reached).toBeLessThanOrEqual(Math.floor(0.5 * rep.before.params));
    expect(rep.structure?.budget).toEqual({ target_model_params: 0.5, reached, before: rep.before.params });
    expect(rep.iterations.map((it) => it.model_params)).toEqual([expect.any(Number), reached]);
    expect(rep.iterations[0].model_params!).toBeLessThanOrEqual(Math.round(Math.SQRT1_2 * rep.before.params));
    const titled = (t: string) => JSON.stringify(events.find((e) => e.type === 'table' && e.title === t));
    expect(titled('Pruning: before / after')).toContain('model budget (params)');
    expect(titled('Pruning: iterations')).toContain('model params');
    expect(JSON.stringify(events)).toContain(`encoder params, ${reached} in the model`);
    disposeParams(ck.params);
  });

  it('scoring rounds: each step removes its share in rounds, scored again on the smaller model', async () => {
    const out = path.join(dir, 'rounds');
    const config = {
      transformer: tc({ target_encoder_params: 0.25, prune_layers: true, prune_hidden: true, scoring_rounds: 3 }),
    };
    const r = await pruneStage({ model, config, out, dataFile, seed: 1 }, ctx);
    const rep = readReport(r.report);
    const before = rep.before.encoder_params;
    const [a, b] = rep.iterations;
    // three rounds per step, each at most its geometric share of the step (a round finds its share
    // already met when the one before removed a layer); the last meets the step's size
    expect(a.round_params).toHaveLength(3);
    expect(b.round_params).toHaveLength(3);
    const steps = [before, a.encoder_params!, b.encoder_params!];
    [a, b].forEach((it, s) => {
      const goal = s === 0 ? Math.round(0.5 * before) : Math.floor(0.25 * before);
      it.round_params!.forEach((p, k) =>
        expect(p).toBeLessThanOrEqual(
          Math.round(steps[s] * Math.pow(goal / steps[s], (k + 1) / 3)) + (k === 2 ? 0 : 1),
        ),
      );
      expect(it.round_params![0]).toBeLessThan(steps[s]);
      expect(it.round_params![2]).toBe(it.encoder_params);
    });
    expect(b.encoder_params).toBeLessThanOrEqual(Math.floor(0.25 * before));
    const ck = loadCheckpoint(out);
    expect(encoderParamsOf(shapeOf(ck.config))).toBe(b.encoder_params);
    disposeParams(ck.params);
  });

  it('fixed layer and hidden targets with per-layer head and FFN targets', async () => {
    const out = path.join(dir, 'targets');
    const config = {
      transformer: tc({ target_num_layers: 2, target_hidden_size: 24, target_num_of_heads: 2, target_ffn_size: 32 }),
    };
    const r = await pruneStage({ model, config, out, dataFile, seed: 1 }, ctx);
    const ck = loadCheckpoint(out);
    expect(ck.config.num_hidden_layers).toBe(2);
    expect(ck.config.hidden_size).toBe(24);
    const rep = readReport(r.report);
    expect(rep.layers.filter((l) => l.removed)).toHaveLength(1);
    expect(rep.iterations.map((it) => it.layers!.length)).toEqual([3, 2]); // 3 -> 2 in two linear steps
    disposeParams(ck.params);
  });

  it('refuses what it cannot do before any work', async () => {
    const out = path.join(dir, 'refused');
    const msg = await userErrorAsync(() =>
      pruneStage(
        {
          model,
          config: { transformer: tc({ target_encoder_params: 0.3, keep_shape: true }) },
          out,
          dataFile,
          seed: 1,
        },
        ctx,
      ),
    );
    expect(msg).toMatch(/keep_shape works with heads and FFN only/);
    expect(
      await userErrorAsync(() =>
        pruneStage(
          {
            model,
            config: { transformer: tc({ target_num_layers: 5, target_encoder_params: 0.3 }) },
            out,
            dataFile,
            seed: 1,
          },
          ctx,
        ),
      ),
    ).toMatch(/target_num_layers 5 is more than the model has \(3\)/);
    expect(
      await userErrorAsync(() =>
        pruneStage(
          { model, config: { transformer: tc({ target_model_params: 10 ** 9 }) }, out, dataFile, seed: 1 },
          ctx,
        ),
      ),
    ).toMatch(
      /target_model_params 1000000000 keeps 1000000000 model parameters; the model has \d+ \(nothing to prune\)/,
    );
    expect(userError(() => tc({ target_encoder_params: 0.3, target_model_params: 0.2 }))).toMatch(
      /test.prune.json: \/transformer\/target_model_params: give one budget, target_encoder_params or target_model_params, not both/,
    );
    expect(userError(() => tc({ target_model_params: 20000.5 }))).toMatch(
      /\/transformer\/target_model_params: 20000.5 is neither a fraction below 1 nor a whole parameter count/,
    );
    expect(userError(() => tc({ target_encoder_params: 1234.5 }))).toMatch(
      /target_encoder_params.*whole parameter count/,
    );
    expect(userError(() => resolvePruneConfig({ transformer: { n_iters: 2 } }, {}, 'x.prune.json'))).toMatch(
      /x.prune.json.*target_encoder_params/,
    );
    expect(fs.existsSync(out)).toBe(false);
  });

  it('gradual: recovery between steps trains the sliced model, with layer-wise distillation', async () => {
    events.length = 0;
    const settings = getPreset('tiny');
    settings.refinetune.batch_size = 16;
    settings.refinetune.distill_hidden = 1;
    const out = path.join(dir, 'gradual');
    const config = {
      transformer: tc({ target_encoder_params: 0.3, prune_layers: true, prune_hidden: true, recovery_epochs: 1 }),
    };
    const r = await pruneStage({ model, config, out, dataFile, seed: 1, settings }, ctx);
    const rep = readReport(r.report);
    expect(rep.iterations.map((it) => typeof it.recovered_val_score)).toEqual(['number', 'undefined']);
    expect(events.some((e) => e.type === 'log' && /layer-wise distillation/.test(e.message))).toBe(true);
    expect(rep.after.encoder_params).toBeLessThanOrEqual(Math.floor(0.3 * rep.before.encoder_params));

    // refinetune of the result, distilled layer by layer from the unpruned model
    const best = path.join(dir, 'refined');
    const res = await finetuneClassifier('', settings, ctx, {
      stage: 'refinetune',
      from: out,
      out: best,
      last: `${best}-last`,
      teacher: model,
      trainFile: dataFile,
      settings: { ...settings.refinetune, epochs: 1 },
    });
    expect(res.checkpoint).toBe(best);
    // the trained model keeps its mapping
    expect(fs.existsSync(path.join(best, PRUNED_FROM_FILE))).toBe(true);

    // a teacher of another label set is refused, naming it, before any training
    const teacher3 = path.join(dir, 'teacher3');
    const t = loadCheckpoint(model);
    for (const n of [CLASSIFIER.weight, CLASSIFIER.bias]) {
      const v = t.params.get(n)!;
      t.params.set(n, tf.variable(tf.slice(v, 0, 3), true));
      v.dispose();
    }
    const cfg3 = { ...t.config, id2label: { '0': 'a', '1': 'b', '2': 'c' }, label2id: { a: 0, b: 1, c: 2 } };
    await saveCheckpoint(teacher3, cfg3, t.params, t.vocab);
    disposeParams(t.params);
    const refused = await userErrorAsync(() =>
      finetuneClassifier('', settings, ctx, {
        stage: 'refinetune',
        from: out,
        out: path.join(dir, 'refined3'),
        last: path.join(dir, 'refined3-last'),
        teacher: teacher3,
        trainFile: dataFile,
        settings: { ...settings.refinetune, epochs: 1 },
      }),
    );
    expect(refused).toBe(`${teacher3}: the teacher has 3 labels, the model 17`);
    expect(fs.existsSync(path.join(dir, 'refined3'))).toBe(false);
  });
});

describe('layer-wise distillation loss', () => {
  it('is 0 for the teacher itself and grows with the difference, on the mapped layers and dimensions', async () => {
    const t = loadCheckpoint(model);
    const hiddenT = stepTeacherOf(loadCheckpoint(model), model, null, t.config, rows.slice(0, 2), 16, 17, 1);
    const ids = hiddenT.rowIds[0];
    const T = ids.length;
    const mask = new Float32Array(T).fill(1);
    const states: tf.Tensor2D[] = [];
    encode(t.params, t.config, toInputs(ids, mask, 1, T), { hiddenStates: states });
    expect(states).toHaveLength(3);
    expect((await hiddenT.hiddenLoss(states, hiddenT.run(ids, mask, 1, T), mask).data())[0]).toBeLessThan(1e-10);
    const off = states.map((s) => tf.add(s, 0.5) as tf.Tensor2D);
    expect((await hiddenT.hiddenLoss(off, hiddenT.run(ids, mask, 1, T), mask).data())[0]).toBeCloseTo(0.25, 5);
    hiddenT.dispose();

    // a student of 1 layer and 2 hidden dims mapped onto teacher layer 2, dims 5 and 9
    const student = structuredClone(t.config);
    student.num_hidden_layers = 1;
    student.hidden_size = 2;
    student.attention_head_size = 8;
    const sdir = path.join(dir, 'mapped');
    fs.mkdirSync(sdir);
    fs.writeFileSync(
      path.join(sdir, PRUNED_FROM_FILE),
      JSON.stringify({ layers: [2], hidden: [5, 9], teacher_layers: 3, teacher_hidden: 32 }),
    );
    const mapped = stepTeacherOf(
      loadCheckpoint(model),
      sdir,
      readPrunedFrom(sdir, student),
      student,
      rows.slice(0, 2),
      16,
      17,
      2,
    );
    const picked = tf.gather(states[2], tf.tensor1d([5, 9], 'int32'), 1) as tf.Tensor2D;
    expect((await mapped.hiddenLoss([picked], mapped.run(ids, mask, 1, T), mask).data())[0]).toBeLessThan(1e-10);
    expect(
      (await mapped.hiddenLoss([tf.add(picked, 1) as tf.Tensor2D], mapped.run(ids, mask, 1, T), mask).data())[0],
    ).toBeCloseTo(2, 5);
    mapped.dispose();
    // a mapping that does not fit the teacher, or the student, names the file
    fs.writeFileSync(
      path.join(sdir, PRUNED_FROM_FILE),
      JSON.stringify({ layers: [3], hidden: [5, 9], teacher_layers: 3, teacher_hidden: 32 }),
    );
    expect(userError(() => readPrunedFrom(sdir, student))).toMatch(
      /pruned-from.json: 'layers' must list 1 increasing ids below 3/,
    );
    disposeParams(t.params);
  });
});

describe('augmented distillation', () => {
  it('masks real, non-special tokens at the same positions in both vocabularies, at about the rate asked', () => {
    const T = 50;
    const B = 40;
    const ids = new Int32Array(B * T);
    const tIds = new Int32Array(B * T);
    const mask = new Float32Array(B * T);
    for (let b = 0; b < B; b++) {
      const n = 10 + b; // real tokens of row b: [CLS] ... [SEP], then padding
      for (let t = 0; t < n; t++) {
        mask[b * T + t] = 1;
        ids[b * T + t] = t === 0 ? 2 : t === n - 1 ? 3 : 5 + ((b + t) % 30);
        tIds[b * T + t] = t === 0 ? 102 : t === n - 1 ? 103 : 205 + ((b + t) % 30);
      }
    }
    const specials = new Set([0, 1, 2, 3, 4]);
    const out = maskForDistillation(ids, tIds, mask, specials, { student: 4, teacher: 104 }, 0.3, new Rng(7));
    let picked = 0;
    let real = 0;
    for (let i = 0; i < ids.length; i++) {
      const isReal = mask[i] > 0 && !specials.has(ids[i]);
      real += isReal ? 1 : 0;
      if (out.ids[i] !== ids[i]) {
        expect(isReal).toBe(true);
        expect(out.ids[i]).toBe(4);
        expect(out.teacherIds[i]).toBe(104);
        picked++;
      } else expect(out.teacherIds[i]).toBe(tIds[i]);
    }
    expect(picked / real).toBeGreaterThan(0.25);
    expect(picked / real).toBeLessThan(0.35);
    expect(ids[1]).not.toBe(4); // the input arrays are left as they were
  });

  it('re-fine-tunes a shallower model than its teacher, which labels masked rows in every step', async () => {
    events.length = 0;
    const settings = getPreset('tiny');
    const student = path.join(dir, 'shallow');
    const { cfg, params } = tinyModel({ vocab: vocab.tokens.length, seed: 9, layers: 1 });
    cfg.max_len = 16;
    await saveCheckpoint(student, cfg, params, vocab);
    disposeParams(params);
    const out = path.join(dir, 'augmented');
    const res = await finetuneClassifier('', settings, ctx, {
      stage: 'refinetune',
      from: student,
      out,
      last: `${out}-last`,
      teacher: model,
      trainFile: dataFile,
      settings: { ...settings.refinetune, batch_size: 16, epochs: 1, distill_alpha: 0.7, distill_augment: 0.2 },
    });
    expect(res.checkpoint).toBe(out);
    expect(events.some((e) => e.type === 'log' && /augmented distillation: 0.2 of the tokens/.test(e.message))).toBe(
      true,
    );
    // layer-wise distillation of this student still needs its mapping
    const refused = await userErrorAsync(() =>
      finetuneClassifier('', settings, ctx, {
        stage: 'refinetune',
        from: student,
        out: path.join(dir, 'augmented2'),
        last: path.join(dir, 'augmented2-last'),
        teacher: model,
        trainFile: dataFile,
        settings: { ...settings.refinetune, epochs: 1, distill_augment: 0.2, distill_hidden: 1 },
      }),
    );
    expect(refused).toMatch(/distill_hidden needs pruned-from.json/);
  });
});
