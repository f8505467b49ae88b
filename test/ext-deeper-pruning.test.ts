// The editor side of pruning whole layers and the hidden size (issue 22, item 5): the config checks
// the schema cannot express, the budget template and its description, the parameter tree and panel
// of a checkpoint with fewer layers and a smaller hidden size, the report panel's removed layers,
// and the sweep's one series per set of structures (old sweep files too).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PRESETS, TEXTPRUNER_DEFAULTS } from '../src/engine/config/presets';
import { SCHEMAS, validateConfig } from '../src/engine/config/validate';
import type { TransformerPruneConfig } from '../src/engine/config/settings';
import { makeConfig } from '../src/engine/model/config';
import { encoderParamsOf, modelParamsOf, shapeOf } from '../src/engine/prune/budget';
import { resolvePruneConfig } from '../src/engine/prune/config';
import { checkPruneTargets } from '../src/engine/prune/structured';
import { compareWithBaseline, prunedStructures, structuresLabel } from '../src/engine/prune/structures';
import { sweepTable, type SweepRow as EngineSweepRow } from '../src/engine/stages/prune-sweep';
import {
  configChecks,
  errorRanges,
  modelShapeOf,
  pruneConfigTemplate,
  type PruneSchema,
} from '../src/extension/configFiles';
import { configShapes } from '../src/extension/hfFolder';
import { layerRows, paramsColumn } from '../src/extension/panelData/params';
import { paretoFront, reportMessage, sweepAxis, sweepSeries } from '../src/extension/panelData/report';
import {
  buildParamTree,
  checkpointDescription,
  describeStructure,
  indexTree,
  prunedFromReport,
} from '../src/extension/paramTree';
import { describePruneConfig, describePruneConfigText, pruneTarget } from '../src/extension/presetInfo';
import { readCheckpoint, readCheckpointAsync } from '../src/extension/runModel';

const schema = SCHEMAS.prune as unknown as PruneSchema;
// 4 heads and 512 FFN per layer; the encoder's parameters as prune/budget.ts counts them.
const model = {
  layers: 4,
  hidden: 128,
  heads: 16,
  ffn: 2048,
  encoder: encoderParamsOf({ heads: [4, 4, 4, 4], ffn: [512, 512, 512, 512], hidden: 128, headSize: 32 }),
};

describe('the schemas the editor validates with (hover and completion)', () => {
  it('define every new setting with a type and a description, in both config kinds', () => {
    for (const kind of ['prune', 'settings'] as const) {
      const props = (
        SCHEMAS[kind] as unknown as PruneSchema & {
          definitions: { transformer: { properties: Record<string, { type?: string; description?: string }> } };
        }
      ).definitions.transformer.properties;
      for (const k of [
        'target_encoder_params',
        'target_model_params',
        'prune_layers',
        'target_num_layers',
        'prune_hidden',
        'target_hidden_size',
      ])
        expect(props[k], `${kind}: ${k}`).toMatchObject({ type: expect.any(String), description: expect.any(String) });
    }
  });
});

// The same model as a config.json (the engine's BertConfig).
const bert = makeConfig(
  { ...PRESETS.quick.model, hidden_size: 128, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 512 },
  100,
  'classification',
);
const engine2 = (budget: number) => () =>
  checkPruneTargets(
    bert,
    { ...TEXTPRUNER_DEFAULTS, target_encoder_params: budget } as TransformerPruneConfig,
    'a.prune.json',
  );

describe('config checks the schema cannot express', () => {
  const check = (transformer: object, m: typeof model | null = model) =>
    configChecks('prune', { transformer }, 'a.prune.json', m ?? undefined).map((e) => `${e.pointer}: ${e.message}`);

  it('a count budget must be a whole number; a fraction or a whole count is fine', () => {
    expect(check({ target_encoder_params: 1.5 })).toEqual([
      expect.stringMatching(/^\/transformer\/target_encoder_params: 1\.5 is neither a fraction below 1 nor a whole/),
    ]);
    expect(check({ target_encoder_params: 0.15 })).toEqual([]);
    expect(check({ target_encoder_params: 99000 })).toEqual([]);
    // The engine refuses the same file.
    expect(() => resolvePruneConfig({ transformer: { target_encoder_params: 1.5 } }, {}, 'a.prune.json')).toThrow(
      /target_encoder_params: 1\.5 is neither/,
    );
  });

  it("keep_shape and pruning_method 'masks' with a budget, layers or hidden size, not with heads and FFN", () => {
    expect(check({ keep_shape: true, prune_layers: true, target_hidden_size: 64 })).toEqual([
      '/transformer/keep_shape: keep_shape works with heads and FFN only ' +
        '(a budget, layers and the hidden size remove tensors): ' +
        'set it to false to prune with prune_layers, target_hidden_size',
    ]);
    expect(check({ keep_shape: true, target_encoder_params: 0.5 })).toEqual([
      expect.stringMatching(/^\/transformer\/keep_shape: .* prune with target_encoder_params$/),
    ]);
    expect(check({ keep_shape: true, target_num_of_heads: 2, target_ffn_size: 8, prune_layers: false })).toEqual([]);
    expect(check({ keep_shape: false, prune_hidden: true })).toEqual([]);
    expect(check({ pruning_method: 'masks', masks_file: 'm.json', prune_hidden: true })).toEqual([
      "/transformer/pruning_method: prune_hidden need pruning_method 'iterative'",
    ]);
    // The engine refuses what the editor flags.
    const engine = (tc: object) => () =>
      checkPruneTargets(bert, { ...TEXTPRUNER_DEFAULTS, ...tc } as TransformerPruneConfig, 'a.prune.json');
    expect(engine({ keep_shape: true, target_encoder_params: 0.5 })).toThrow(
      /keep_shape works with heads and FFN only/,
    );
    expect(engine({ pruning_method: 'masks', prune_hidden: true })).toThrow(/need pruning_method 'iterative'/);
  });

  it('a budget that keeps the whole encoder, where the model is known (as the engine counts it)', () => {
    expect(check({ target_encoder_params: model.encoder })).toEqual([
      `/transformer/target_encoder_params: ${model.encoder} keeps ${model.encoder} encoder parameters; ` +
        `the model has ${model.encoder} (nothing to prune)`,
    ]);
    expect(check({ target_encoder_params: model.encoder - 1 })).toEqual([]);
    expect(check({ target_encoder_params: 0.99 })).toEqual([]);
    expect(modelShapeOf(bert)!.encoder).toBe(encoderParamsOf(shapeOf(bert)));
    expect(modelShapeOf(bert)!.encoder).toBe(model.encoder);
    expect(engine2(model.encoder)).toThrow(/nothing to prune/);
    expect(engine2(model.encoder - 1)).not.toThrow();
  });

  it('one budget at most; a whole-model budget counts what the engine counts', () => {
    expect(check({ target_encoder_params: 0.2, target_model_params: 0.3 })).toEqual([
      '/transformer/target_model_params: give one budget, target_encoder_params or target_model_params, not both ' +
        '(they count the encoder and the model)',
    ]);
    expect(check({ target_model_params: 2.5 })).toEqual([
      expect.stringMatching(/^\/transformer\/target_model_params: 2\.5 is neither .*15% of the model/),
    ]);
    const shape = modelShapeOf(bert)!;
    expect(shape.model).toBe(modelParamsOf(bert));
    expect(shape.model).toBeGreaterThan(shape.encoder);
    const m = (t: object) =>
      configChecks('prune', { transformer: t }, 'a.prune.json', shape).map((e) => `${e.pointer}: ${e.message}`);
    expect(m({ target_model_params: shape.model })).toEqual([
      `/transformer/target_model_params: ${shape.model} keeps ${shape.model} model parameters; ` +
        `the model has ${shape.model} (nothing to prune)`,
    ]);
    // more than the encoder has, less than the model: fine as a model budget, not as an encoder one
    expect(m({ target_model_params: shape.encoder + 1 })).toEqual([]);
    expect(m({ target_encoder_params: shape.encoder + 1 })).toHaveLength(1);
    expect(m({ keep_shape: true, target_model_params: 0.5 })).toEqual([
      expect.stringMatching(/keep_shape: .* prune with target_model_params$/),
    ]);
    // the engine agrees
    const engine = (tc: object) => () =>
      checkPruneTargets(bert, { ...TEXTPRUNER_DEFAULTS, ...tc } as TransformerPruneConfig, 'a.prune.json');
    expect(engine({ target_model_params: shape.model })).toThrow(/target_model_params .* \(nothing to prune\)/);
    expect(engine({ target_model_params: shape.encoder + 1 })).not.toThrow();
    expect(() =>
      resolvePruneConfig({ transformer: { target_encoder_params: 0.2, target_model_params: 0.3 } }, {}, 'a.prune.json'),
    ).toThrow(/a.prune.json: \/transformer\/target_model_params: give one budget/);
    // a model without vocabulary or labels in its config.json: no whole-model count, no check
    expect(
      modelShapeOf({ num_hidden_layers: 1, hidden_size: 8, num_attention_heads: 2, intermediate_size: 4 })?.model,
    ).toBeUndefined();
  });

  it("targets above the model's layers, hidden size, heads or FFN, where the model is known", () => {
    const t = { target_num_layers: 5, target_hidden_size: 129, target_num_of_heads: 5, target_ffn_size: 513 };
    expect(check(t)).toEqual([
      '/transformer/target_num_layers: 5 is more than the model has (4 layers)',
      '/transformer/target_hidden_size: 129 is more than the model has (hidden size 128)',
      '/transformer/target_num_of_heads: 5 is more than the model has (16 heads in 4 layers, 4.00 per layer)',
      '/transformer/target_ffn_size: 513 is more than the model has (512.0 neurons per layer on average)',
    ]);
    expect(
      check({ target_num_layers: 4, target_hidden_size: 128, target_num_of_heads: 4, target_ffn_size: 512 }),
    ).toEqual([]);
    expect(check(t, null)).toEqual([]); // no model known: nothing to compare with
  });

  it("a settings file's prune section, at its own pointer; the error lands on the value", () => {
    const text = '{\n  "prune": {\n    "transformer": { "target_encoder_params": 2.5 }\n  }\n}\n';
    const locs = configChecks('settings', JSON.parse(text), 'x.bert-pruner.json');
    expect(locs.map((l) => l.pointer)).toEqual(['/prune/transformer/target_encoder_params']);
    const { start, end } = errorRanges(text, locs)[0].range;
    expect([start.line, end.line]).toEqual([2, 2]);
    expect(text.split('\n')[2].slice(start.character, end.character)).toBe('2.5');
    expect(configChecks('prune', 'junk', 'a.prune.json')).toEqual([]);
    expect(configChecks('prune', { transformer: { target_num_layers: 'x' } }, 'a.prune.json', model)).toEqual([]);
  });

  it("reads the model's sizes from config.json: pruned heads, per-layer FFN sizes", () => {
    expect(
      modelShapeOf({
        num_hidden_layers: 2,
        hidden_size: 96,
        num_attention_heads: 4,
        attention_head_size: 32,
        intermediate_sizes: [100, 60],
        pruned_heads: { '1': [0, 2, 9] },
      }),
    ).toEqual({
      layers: 2,
      hidden: 96,
      heads: 6,
      ffn: 160,
      encoder: encoderParamsOf({ heads: [4, 2], ffn: [100, 60], hidden: 96, headSize: 32 }),
    });
    expect(modelShapeOf({ num_hidden_layers: 2, hidden_size: 96 })).toBeUndefined();
    expect(modelShapeOf(null)).toBeUndefined();
  });
});

describe('the budget template and how a config is described', () => {
  it('writes a budget config the engine accepts without per-layer targets', () => {
    const value = JSON.parse(
      pruneConfigTemplate(schema, { num_attention_heads: 4, intermediate_size: 512, num_hidden_layers: 4 }, 'budget'),
    );
    expect(() => validateConfig('prune', value, 'new.prune.json')).not.toThrow();
    expect(value.transformer).toMatchObject({ target_encoder_params: 0.15, prune_layers: true, prune_hidden: true });
    expect(value.transformer).not.toHaveProperty('target_num_of_heads');
    const resolved = resolvePruneConfig(value, { transformer: { ...TEXTPRUNER_DEFAULTS } as never }, 'new.prune.json');
    expect(structuresLabel(resolved)).toBe('heads+FFN+layers+hidden');
    expect(configChecks('prune', value, 'new.prune.json', model)).toEqual([]);
    // One layer: nothing to choose from.
    const one = JSON.parse(
      pruneConfigTemplate(schema, { num_attention_heads: 4, intermediate_size: 512, num_hidden_layers: 1 }, 'budget'),
    );
    expect(one.transformer.prune_layers).toBe(false);
    // A whole-model budget: the same structures, one budget key, and the engine takes it over a
    // run's settings that carry an encoder budget.
    const whole = JSON.parse(
      pruneConfigTemplate(
        schema,
        { num_attention_heads: 4, intermediate_size: 512, num_hidden_layers: 4 },
        'model-budget',
      ),
    );
    expect(() => validateConfig('prune', whole, 'new.prune.json')).not.toThrow();
    expect(whole.transformer).toMatchObject({ target_model_params: 0.3, prune_layers: true, prune_hidden: true });
    expect(whole.transformer).not.toHaveProperty('target_encoder_params');
    expect(configChecks('prune', whole, 'new.prune.json', modelShapeOf(bert))).toEqual([]);
    const over = resolvePruneConfig(
      whole,
      { transformer: { ...TEXTPRUNER_DEFAULTS, target_encoder_params: 0.1 } },
      'n',
    );
    expect([over.transformer!.target_model_params, over.transformer!.target_encoder_params]).toEqual([0.3, undefined]);
    expect(() => checkPruneTargets(bert, over.transformer!, 'new.prune.json')).not.toThrow();
    // The targets template is unchanged, and survives a config.json without the sizes.
    const targets = JSON.parse(pruneConfigTemplate(schema, {} as never));
    expect(targets.transformer).toMatchObject({ target_num_of_heads: 6, target_ffn_size: 1536, prune_layers: false });
  });

  it('describes a budget, a count, targets with layers and hidden size, and a vocabulary-only config', () => {
    expect(
      describePruneConfig({ transformer: { target_encoder_params: 0.15, prune_layers: true, prune_hidden: true } }),
    ).toBe('Prunes to 15% of the encoder (heads, FFN, layers, hidden)');
    expect(pruneTarget({ target_encoder_params: 99000 })).toBe('99,000 encoder parameters (heads, FFN)');
    expect(pruneTarget({ target_model_params: 216085, prune_layers: true, prune_hidden: true })).toBe(
      '216,085 model parameters (heads, FFN, layers, hidden)',
    );
    expect(pruneTarget({ target_model_params: 0.2 })).toBe('20% of the model (heads, FFN)');
    expect(pruneTarget({ target_encoder_params: 0.055, target_num_layers: 3 })).toBe(
      '5.5% of the encoder (heads, FFN, layers)',
    );
    expect(
      describePruneConfig({
        transformer: {
          target_num_of_heads: 2,
          target_ffn_size: 240,
          target_num_layers: 3,
          target_hidden_size: 96,
          recovery_epochs: 2,
        },
        vocabulary: {},
      }),
    ).toBe('Prunes gradually to 2 heads / 240 FFN / 3 layers / hidden 96, and the vocabulary');
    expect(pruneTarget({ target_num_of_heads: 2, target_ffn_size: 240, prune_hidden: true })).toBe(
      '2 heads / 240 FFN + hidden',
    );
    expect(describePruneConfig({ vocabulary: { min_count: 2 } })).toBe('Prunes the vocabulary');
    expect(pruneTarget({ target_num_of_heads: 1, target_ffn_size: 32, target_num_layers: 1 })).toBe(
      '1 head / 32 FFN / 1 layer',
    );
    expect(describePruneConfig({ transformer: { n_iters: 2, prune_layers: true } })).toBe(
      "Prunes to the run's targets + layers",
    );
    expect(describePruneConfig({})).toBeUndefined();
    // From a file being edited: a trailing comma or a missing brace still reads.
    expect(describePruneConfigText('{ "transformer": { "target_encoder_params": 0.3, }')).toBe(
      'Prunes to 30% of the encoder (heads, FFN)',
    );
    expect(describePruneConfigText('['.repeat(5000))).toBeUndefined();
  });
});

describe('structures of a config and the comparison with heads+FFN', () => {
  it('names what a config prunes', () => {
    expect(prunedStructures({ transformer: {} })).toEqual(['heads', 'FFN']);
    expect(structuresLabel({ transformer: { prune_layers: true, prune_hidden: true } })).toBe(
      'heads+FFN+layers+hidden',
    );
    expect(structuresLabel({ transformer: { target_hidden_size: 64 } })).toBe('heads+FFN+hidden');
    expect(structuresLabel({ transformer: { prune_layers: false, target_num_layers: 2 } })).toBe('heads+FFN+layers');
    expect(structuresLabel({ vocabulary: {} })).toBe('vocabulary');
    expect(structuresLabel({ transformer: {}, vocabulary: {} })).toBe('heads+FFN');
  });

  it('compares each deeper row with the smallest heads+FFN row at least as large', () => {
    const rows = [
      { config: '(unpruned)', structures: 'none', score: 0.96, encoder_params: 1000 },
      { config: 'hf30', structures: 'heads+FFN', score: 0.95, encoder_params: 300 },
      { config: 'hf10', structures: 'heads+FFN', score: 0.9, encoder_params: 120 }, // did not reach 10%
      { config: 'all10', structures: 'heads+FFN+layers+hidden', score: 0.93, encoder_params: 100 },
      { config: 'all30', structures: 'heads+FFN+layers+hidden', score: 0.955, encoder_params: 300 },
      { config: 'all50', structures: 'heads+FFN+layers+hidden', score: 0.96, encoder_params: 500 },
    ];
    const c = compareWithBaseline(rows);
    expect(c.slice(0, 3)).toEqual([undefined, undefined, undefined]);
    expect(c[3]!.config).toBe('hf10');
    expect(c[3]!.score_delta).toBeCloseTo(0.03);
    expect(c[3]!.ratio).toBeCloseTo(100 / 120);
    expect(c[4]).toMatchObject({ config: 'hf30', ratio: 1 });
    expect(c[4]!.score_delta).toBeCloseTo(0.005);
    expect(c[5]).toBeUndefined(); // no heads+FFN row this large
  });

  it("compares in the whole model's parameters too, where a smaller hidden size also shrinks the embeddings", () => {
    const rows = [
      { config: 'hf5', structures: 'heads+FFN', score: 0.96, encoder_params: 70, params: 216 },
      { config: 'hf10', structures: 'heads+FFN', score: 0.962, encoder_params: 79, params: 225 },
      // more encoder than hf5 and hf10, the same whole model as hf5: a smaller hidden size
      { config: 'h96', structures: 'heads+FFN+hidden', score: 0.963, encoder_params: 110, params: 216 },
      { config: 'big', structures: 'heads+FFN+hidden', score: 0.97, encoder_params: 60, params: 300 },
      { config: 'old', structures: 'heads+FFN+hidden', score: 0.97, encoder_params: 60 }, // no params
    ];
    const byEncoder = compareWithBaseline(rows);
    expect(byEncoder[2]).toBeUndefined(); // no heads+FFN encoder this large
    expect(byEncoder[3]).toMatchObject({ config: 'hf5', ratio: 60 / 70 });
    const byModel = compareWithBaseline(rows, 'params');
    expect(byModel.slice(0, 2)).toEqual([undefined, undefined]);
    expect(byModel[2]).toMatchObject({ config: 'hf5', ratio: 1 });
    expect(byModel[2]!.score_delta).toBeCloseTo(0.003);
    expect(byModel[3]).toBeUndefined(); // larger than every heads+FFN model
    expect(byModel[4]).toBeUndefined();
  });

  it('the CLI table has the structures, the share of the encoder kept and the difference', () => {
    const row = (o: Partial<EngineSweepRow>): EngineSweepRow => ({
      config: 'x',
      structures: 'heads+FFN',
      score: 0.9,
      params: 2000,
      encoder_params: 1000,
      encoder_kept: 1,
      mb: 0.008,
      latency_ms: null,
      ...o,
    });
    const t = sweepTable(
      [
        row({ config: '(unpruned)', structures: 'none' }),
        row({
          config: 'all',
          structures: 'heads+FFN+layers+hidden',
          encoder_params: 150,
          encoder_kept: 0.15,
          score: 0.93,
          vs_heads_ffn: { config: 'hf', score_delta: 0.0042, encoder_params_ratio: 0.93 },
          vs_heads_ffn_model: { config: 'hf', score_delta: 0.0042, params_ratio: 1 },
        }),
      ],
      '/r/data/test.csv',
      'cpu',
    );
    expect(t.columns).toEqual([
      'config',
      'structures',
      'score',
      'params',
      'encoder params',
      'encoder %',
      'MB',
      'latency ms',
      'vs heads+FFN',
      'vs heads+FFN (model)',
    ]);
    expect(t.rows[0]).toEqual(['(unpruned)', 'none', 0.9, 2000, 1000, 100, 0.008, '', '', '']);
    expect(t.rows[1]).toEqual([
      'all',
      'heads+FFN+layers+hidden',
      0.93,
      2000,
      150,
      15,
      0.008,
      '',
      '+0.0042 vs hf (0.93x)',
      '+0.0042 vs hf (1.00x)',
    ]);
  });
});

describe('the sweep chart: one series per set of structures', () => {
  const rows = [
    { config: '(unpruned)', structures: 'none', score: 0.96, params: 2000, encoder_params: 1000, encoder_kept: 1 },
    { config: 'hf30', structures: 'heads+FFN', score: 0.95, params: 1300, encoder_params: 300, encoder_kept: 0.3 },
    {
      config: 'all30',
      structures: 'heads+FFN+layers+hidden',
      score: 0.955,
      params: 1250,
      encoder_params: 290,
      encoder_kept: 0.29,
      vs_heads_ffn: { config: 'hf30', score_delta: 0.005, encoder_params_ratio: 0.97 },
      vs_heads_ffn_model: { config: 'hf30', score_delta: 0.005, params_ratio: 0.96 },
    },
    { config: 'hf10', structures: 'heads+FFN', score: 0.9, params: 1120, encoder_params: 120 },
    { config: 'all10', structures: 'heads+FFN+layers+hidden', score: 0.93, params: 1100, encoder_params: 100 },
  ];

  it('splits the rows by structures, the unpruned model its own series, on encoder parameters', () => {
    const m = reportMessage('t', undefined, { rows });
    expect(m.problems).toEqual([]);
    const series = sweepSeries(m.sweep);
    expect(series.map((s) => s.label)).toEqual(['unpruned', 'heads+FFN', 'heads+FFN+layers+hidden']);
    expect(series.map((s) => s.rows.map((r) => r.config))).toEqual([
      ['(unpruned)'],
      ['hf30', 'hf10'],
      ['all30', 'all10'],
    ]);
    expect(sweepAxis(m.sweep)).toEqual({ key: 'encoder_params', title: 'encoder parameters' });
    expect(m.sweep[2]).toMatchObject({
      encoder_kept: 0.29,
      vs: { config: 'hf30', scoreDelta: 0.005, ratio: 0.97 },
      vsModel: { config: 'hf30', scoreDelta: 0.005, ratio: 0.96 },
    });
    expect(paretoFront(m.sweep, 'encoder_params').map((r) => r.config)).toEqual(['all10', 'all30', '(unpruned)']);
  });

  it('an old sweep.json without structures or encoder parameters is one series on all parameters', () => {
    const old = rows.map(({ config, score, params }) => ({ config, score, params }));
    const m = reportMessage('t', undefined, { rows: old });
    expect(m.problems).toEqual([]);
    expect(sweepSeries(m.sweep)).toEqual([{ label: 'configs', rows: m.sweep }]);
    expect(sweepAxis(m.sweep)).toEqual({ key: 'params', title: 'parameters' });
    expect(m.sweep.every((r) => r.structures === undefined && r.vs === undefined && r.vsModel === undefined)).toBe(
      true,
    );
  });
});

describe('the report panel: layers and hidden size kept, removed layers', () => {
  const layer = (l: number, extra: object = {}) => ({
    layer: l,
    heads_total: 4,
    heads_kept: [0, 1],
    ffn_total: 512,
    ffn_kept: 100,
    head_importance: [1, 2, 3, 4],
    ...extra,
  });
  const structure = {
    layers_before: 4,
    layers_kept: [0, 2, 3],
    layer_importance: [0.5, 0.1, 0.3, 0.4],
    hidden_before: 128,
    hidden_after: 96,
    hidden_importance: [],
    head_size: 32,
    budget: { target_encoder_params: 0.15, reached: 150, before: 1000 },
  };

  it('reads the structure and marks the layers the report says were removed', () => {
    const m = reportMessage(
      't',
      { layers: [layer(0), layer(1, { removed: true }), layer(2), layer(3)], structure },
      undefined,
    );
    expect(m.problems).toEqual([]);
    expect(m.structure).toEqual({
      layersBefore: 4,
      layersKept: [0, 2, 3],
      layerImportance: [0.5, 0.1, 0.3, 0.4],
      hiddenBefore: 128,
      hiddenAfter: 96,
      headSize: 32,
      budget: { target: 0.15, reached: 150, before: 1000, counts: 'encoder' },
    });
    const modelBudget = { ...structure, budget: { target_model_params: 216085, reached: 216028, before: 900000 } };
    expect(reportMessage('t', { layers: [layer(0)], structure: modelBudget }, undefined).structure?.budget).toEqual({
      target: 216085,
      reached: 216028,
      before: 900000,
      counts: 'model',
    });
    expect(m.layers.map((l) => [l.layer, !!l.removed, l.headsKept.length, l.ffnKept, l.layerImportance])).toEqual([
      [0, false, 2, 100, 0.5],
      [1, true, 0, 0, 0.1],
      [2, false, 2, 100, 0.3],
      [3, false, 2, 100, 0.4],
    ]);
  });

  it('adds removed rows when the report lists only the kept layers; old reports have no structure', () => {
    const m = reportMessage('t', { layers: [layer(0), layer(2), layer(3)], structure }, undefined);
    expect(m.layers.map((l) => [l.layer, !!l.removed])).toEqual([
      [0, false],
      [1, true],
      [2, false],
      [3, false],
    ]);
    const old = reportMessage('t', { layers: [layer(0), layer(1)] }, undefined);
    expect(old.structure).toBeUndefined();
    expect(old.layers.some((l) => l.removed)).toBe(false);
    expect(reportMessage('t', { layers: [], structure: { layers_before: 'x' } }, undefined).problems).toEqual([
      'structure lacks layers_before, hidden_before or hidden_after',
    ]);
  });
});

describe('the parameter tree and panel of a checkpoint with fewer layers and a smaller hidden size', () => {
  // 3 layers kept of 4, hidden 10 of 16 (not a multiple of the 4 heads), heads keep their size 4.
  const cfg = {
    architectures: ['BertForSequenceClassification'],
    vocab_size: 20,
    hidden_size: 10,
    num_hidden_layers: 3,
    num_attention_heads: 4,
    attention_head_size: 4,
    intermediate_size: 8,
    max_position_embeddings: 8,
    pruned_heads: { '1': [3] },
    id2label: { '0': 'a', '1': 'b' },
  };
  const report = { structure: { layers_before: 4, layers_kept: [0, 2, 3], hidden_before: 16, hidden_after: 10 } };
  const from = prunedFromReport(report)!;

  it('takes the head size from attention_head_size, for the shapes and the heads kept', () => {
    const header = configShapes(cfg);
    expect(header['bert.encoder.layer.1.attention.self.query.weight'].shape).toEqual([12, 10]);
    expect(() => configShapes({ ...cfg, attention_head_size: undefined })).toThrow(/not a multiple/);
    const tree = buildParamTree(cfg, header);
    expect(indexTree(tree).get('encoder/layer 1')!.layer).toEqual({ index: 1, headsKept: 3, headsTotal: 4, ffn: 8 });
    expect(tree.structure).toEqual({ layers: 3, hidden: 10, headSize: 4 });
    expect(checkpointDescription(tree)).toMatch(/^[\d.]+K? params$/);
  });

  it('with its prune report: the original layers and the hidden size before', () => {
    const tree = buildParamTree(cfg, configShapes(cfg), from);
    const byId = indexTree(tree);
    expect(byId.get('encoder')!.detail).toBe('layers 3 of 4 kept (0, 2, 3) · hidden 10 of 16 · head size 4');
    expect(['encoder/layer 0', 'encoder/layer 1', 'encoder/layer 2'].map((id) => byId.get(id)!.label)).toEqual([
      'layer 0',
      'layer 1 (was 2)',
      'layer 2 (was 3)',
    ]);
    expect(byId.get('encoder/layer 2')!.layer!.original).toBe(3);
    expect(checkpointDescription(tree)).toMatch(/^[\d.]+K? params · 3 of 4 layers · hidden 10 of 16$/);
    // A report that does not match the checkpoint's layers names none of them.
    const other = buildParamTree(cfg, configShapes(cfg), { ...from, layersKept: [0, 1] });
    expect(indexTree(other).get('encoder/layer 1')!.label).toBe('layer 1');
    expect(describeStructure(other.structure!)).toBe('3 layers · hidden 10 of 16 · head size 4');
    const allKept = { layersBefore: 3, layersKept: [0, 1, 2], hiddenBefore: 10 };
    expect(describeStructure({ layers: 3, hidden: 10, headSize: 4, prunedFrom: allKept })).toBe(
      '3 layers · hidden 10 · head size 4',
    );
    expect(
      prunedFromReport({ structure: { layers_before: 2, layers_kept: [0, 5], hidden_before: 8 } }),
    ).toBeUndefined();
    expect(prunedFromReport({})).toBeUndefined();
  });

  it("the Parameters panel lines a pruned checkpoint's layers up with the ones they were", () => {
    const unprunedCfg = {
      ...cfg,
      hidden_size: 16,
      num_hidden_layers: 4,
      attention_head_size: undefined,
      pruned_heads: {},
    };
    const before = paramsColumn('before', '/b', buildParamTree(unprunedCfg, configShapes(unprunedCfg)));
    const after = paramsColumn('after', '/a', buildParamTree(cfg, configShapes(cfg), from));
    expect(after.structure).toMatchObject({ layers: 3, hidden: 10, headSize: 4, prunedFrom: from });
    const rows = layerRows([before, after]);
    expect(rows.map((r) => r.label)).toEqual(['0', '1', '2 (now 1)', '3 (now 2)']);
    expect(rows[1].cells[1]).toBe('removed');
    expect(rows.map((r) => (typeof r.cells[1] === 'object' ? r.cells[1].headsKept : r.cells[1]))).toEqual([
      4,
      'removed',
      3,
      4,
    ]);
    expect(layerRows([before]).map((r) => r.label)).toEqual(['0', '1', '2', '3']);
  });

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ext-deeper-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('reads the prune-report.json beside a checkpoint, and shows the checkpoint alone when it is broken', () => {
    const dir = path.join(tmp, 'pruned');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
    fs.writeFileSync(path.join(dir, 'model.safetensors'), '');
    const header = () => ({ entries: configShapes(cfg) });
    fs.writeFileSync(path.join(dir, 'prune-report.json'), JSON.stringify(report));
    expect(readCheckpoint(dir, header).tree!.structure!.prunedFrom).toEqual(from);
    fs.writeFileSync(path.join(dir, 'prune-report.json'), '{"structure": ');
    const view = readCheckpoint(dir, header);
    expect(view.error).toBeUndefined();
    expect(view.tree!.structure!.prunedFrom).toBeUndefined();
  });

  it('a re-fine-tuned checkpoint (no report) takes where it came from from its pruned-from.json', async () => {
    const dir = path.join(tmp, 'refinetuned');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
    fs.writeFileSync(path.join(dir, 'model.safetensors'), '');
    const hidden = [0, 1, 2, 4, 5, 7, 9, 11, 12, 15];
    const json = { layers: [0, 2, 3], hidden, teacher_layers: 4, teacher_hidden: 16 };
    fs.writeFileSync(path.join(dir, 'pruned-from.json'), JSON.stringify(json));
    const header = () => ({ entries: configShapes(cfg) });
    const tree = readCheckpoint(dir, header).tree!;
    expect(tree.structure!.prunedFrom).toEqual(from);
    expect(checkpointDescription(tree)).toMatch(/^[\d.]+K? params · 3 of 4 layers · hidden 10 of 16$/);
    const viaAsync = await readCheckpointAsync(dir, async () => ({ entries: configShapes(cfg) }));
    expect(viaAsync.tree!.structure!.prunedFrom).toEqual(from);
    // the report wins where both are there; a broken pruned-from.json is as if absent
    fs.writeFileSync(path.join(dir, 'pruned-from.json'), JSON.stringify({ ...json, layers: [0, 9] }));
    expect(readCheckpoint(dir, header).tree!.structure!.prunedFrom).toBeUndefined();
    fs.writeFileSync(path.join(dir, 'prune-report.json'), JSON.stringify(report));
    expect(readCheckpoint(dir, header).tree!.structure!.prunedFrom).toEqual(from);
  });
});
