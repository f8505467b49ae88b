import fc from 'fast-check';
import { checkTransformerTargets, resolvePruneConfig } from '../src/engine/prune/config';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PRESET, getPreset, PRESETS, presetNames } from '../src/engine/config/presets';
import { deepMerge, resolveSettings, type Settings } from '../src/engine/config/settings';
import { SCHEMAS, validateConfig } from '../src/engine/config/validate';
import { userError } from './helpers/errors';

/** Every leaf key path of a settings object, e.g. 'model.hidden_size'. */
function leafPaths(v: unknown, at = ''): string[] {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return [at];
  return Object.entries(v).flatMap(([k, x]) => leafPaths(x, at ? `${at}.${k}` : k));
}

describe('presets', () => {
  it('are quick, gaiic, gaiic-deep, tiny; quick is the default', () => {
    expect(presetNames().sort()).toEqual(['gaiic', 'gaiic-deep', 'quick', 'tiny']);
    expect(DEFAULT_PRESET).toBe('quick');
  });

  for (const name of ['quick', 'gaiic', 'gaiic-deep', 'tiny'] as const) {
    it(`${name} validates against settings.schema.json and sets every key of Settings`, () => {
      expect(() => validateConfig('settings', PRESETS[name], `preset ${name}`)).not.toThrow();
      // Same keys in every preset: a key missing in one would be undefined at run time (the only
      // optional key, max_examples, means 'all examples' when absent).
      const required = (p: object) =>
        leafPaths(p)
          .filter((k) => k !== 'prune.transformer.max_examples')
          // a preset gives per-layer targets or one budget (prune/config.ts checkTransformerTargets)
          .filter((k) => !/^prune\.transformer\.target_/.test(k))
          .sort();
      expect(required(PRESETS[name])).toEqual(required(PRESETS.tiny));
      expect(PRESETS[name].seed).toBe(42);
      const m = PRESETS[name].model;
      expect(m.hidden_size % m.num_attention_heads).toBe(0);
      expect(m.max_len).toBeLessThanOrEqual(m.max_position_embeddings);
      const t = PRESETS[name].prune.transformer!;
      if (t.target_encoder_params === undefined) {
        expect(t.target_ffn_size).toBeLessThanOrEqual(m.intermediate_size);
        expect(t.target_num_of_heads).toBeLessThanOrEqual(m.num_attention_heads);
      } else expect(t.target_encoder_params).toBeGreaterThan(0);
      expect(() => checkTransformerTargets(t, `preset ${name}`)).not.toThrow();
      expect(() => validateConfig('prune', PRESETS[name].prune, `preset ${name}`)).not.toThrow();
    });
  }

  it('the tiny preset has the values tests rely on', () => {
    // (the settings it leaves at the table's defaults may grow: those are checked there)
    expect(PRESETS.tiny).toMatchObject({
      seed: 42,
      model: {
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 64,
        max_position_embeddings: 128,
        max_len: 64,
        vocab_size: 2000,
        hidden_dropout_prob: 0.1,
        attention_probs_dropout_prob: 0.1,
        initializer_range: 0.02,
      },
      pretrain: {
        epochs: 1,
        batch_size: 32,
        lr: 1e-3,
        weight_decay: 0.01,
        warmup_ratio: 0.1,
        schedule: 'linear',
        clip_norm: 1,
        mask_prob: 0.15,
        mask_ngram: 1,
      },
      finetune: {
        epochs: 2,
        batch_size: 32,
        lr: 1e-3,
        weight_decay: 0.01,
        warmup_ratio: 0.1,
        schedule: 'linear',
        clip_norm: 1,
        fgm_epsilon: 0,
        val_fraction: 0.1,
        head_lr_multiplier: 1,
        ema_decay: 0,
        problem_type: 'auto',
      },
      prune: {
        transformer: {
          target_ffn_size: 32,
          target_num_of_heads: 1,
          pruning_method: 'iterative',
          n_iters: 2,
          ffn_even_masking: true,
          head_even_masking: false,
          multiple_of: 1,
          pruning_order: null,
          use_logits: true,
          keep_shape: false,
          importance_data: 'train',
          batch_size: 32,
          recovery_epochs: 0,
        },
      },
      refinetune: {
        epochs: 2,
        batch_size: 32,
        lr: 1e-3,
        weight_decay: 0.01,
        warmup_ratio: 0.1,
        schedule: 'linear',
        clip_norm: 1,
        fgm_epsilon: 0,
        val_fraction: 0.1,
        head_lr_multiplier: 1,
        ema_decay: 0,
        distill_alpha: 0.5,
        distill_temperature: 2,
      },
    });
  });

  it('settings.schema.json shows the default preset as its defaults', () => {
    const props = SCHEMAS.settings.properties as Record<
      string,
      { default?: unknown; properties?: Record<string, { default?: unknown }> }
    >;
    const preset = PRESETS[DEFAULT_PRESET] as unknown as Record<string, unknown>;
    let compared = 0;
    for (const [section, schema] of Object.entries(props)) {
      if (section === 'prune' || section === '$schema') continue; // prune shows TextPruner's defaults
      if (schema.properties) {
        for (const [k, p] of Object.entries(schema.properties)) {
          expect(p.default, `${section}.${k}`).toEqual((preset[section] as Record<string, unknown>)[k]);
          compared++;
        }
      } else {
        expect(schema.default, section).toEqual(preset[section]);
        compared++;
      }
    }
    expect(compared).toBe(leafPaths(preset).filter((p) => !p.startsWith('prune.')).length);
  });

  it('presets cannot be changed by accident; getPreset returns a private copy', () => {
    expect(() => {
      (PRESETS.quick.model as { hidden_size: number }).hidden_size = 1;
    }).toThrow();
    const copy = getPreset('quick');
    copy.model.hidden_size = 1;
    expect(PRESETS.quick.model.hidden_size).toBe(64);
    expect(getPreset('quick').model.hidden_size).toBe(64);
  });

  it('an unknown preset names the valid ones', () => {
    expect(userError(() => getPreset('fast'))).toBe(
      `--preset: unknown preset 'fast' (valid: quick, gaiic, gaiic-deep, tiny)`,
    );
    expect(userError(() => resolveSettings('toString'))).toMatch(/unknown preset 'toString'/);
  });
});

describe('deepMerge', () => {
  it('merges objects, replaces arrays and scalars, keeps base for undefined', () => {
    const base = { a: 1, b: { c: 2, d: [1, 2], e: { f: 3 } }, g: 'x' };
    const out = deepMerge(base, { b: { d: [9], e: { h: 4 } }, g: null, i: { j: 1 }, a: undefined });
    expect(out).toEqual({ a: 1, b: { c: 2, d: [9], e: { f: 3, h: 4 } }, g: null, i: { j: 1 } });
    expect(base).toEqual({ a: 1, b: { c: 2, d: [1, 2], e: { f: 3 } }, g: 'x' }); // untouched
  });

  it('treats "__proto__" and inherited names as plain keys', () => {
    const override = JSON.parse('{"__proto__": {"polluted": 1}, "toString": 2}');
    const out = deepMerge({ a: 1 }, override) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(out)).toEqual(['a', '__proto__', 'toString']);
    expect(out.toString).toBe(2);
  });

  it('shares nothing with its inputs', () => {
    const override = { b: { d: [1] } };
    const out = deepMerge<{ b: { c?: number; d?: number[] } }>({ b: { c: 1 } }, override);
    out.b.d!.push(2);
    expect(override.b.d).toEqual([1]);
  });

  it('merging with {} is a copy; merging a full object replaces every leaf', () => {
    const json = fc.jsonValue();
    fc.assert(
      fc.property(fc.dictionary(fc.string(), json), (o) => {
        expect(deepMerge(o, {})).toEqual(o);
        expect(deepMerge({}, o)).toEqual(o);
        expect(deepMerge(o, o)).toEqual(o);
      }),
      { numRuns: 100 },
    );
  });
});

describe('resolveSettings', () => {
  it('without an override returns the preset (a copy)', () => {
    const s = resolveSettings('gaiic');
    expect(s).toEqual(PRESETS.gaiic);
    s.seed = 1;
    expect(PRESETS.gaiic.seed).toBe(42);
  });

  it('merges an override into the preset', () => {
    const s: Settings = resolveSettings('quick', {
      $schema: './schemas/settings.schema.json',
      seed: 7,
      model: { num_hidden_layers: 3 },
      finetune: { fgm_epsilon: 1, schedule: 'cosine' },
      prune: { transformer: { n_iters: 8 }, vocabulary: { min_count: 2, prune_lm_head: 'auto' } },
    });
    expect(s.seed).toBe(7);
    expect(s.model).toEqual({ ...PRESETS.quick.model, num_hidden_layers: 3 });
    expect(s.finetune).toEqual({ ...PRESETS.quick.finetune, fgm_epsilon: 1, schedule: 'cosine' });
    expect(s.prune.transformer).toEqual({ ...PRESETS.quick.prune.transformer, n_iters: 8 });
    expect(s.prune.vocabulary).toEqual({ min_count: 2, prune_lm_head: 'auto' });
    expect(s).not.toHaveProperty('$schema');
  });

  it("a budget in the override replaces the preset's other budget; one file may not give both", () => {
    expect(getPreset('gaiic-deep').prune!.transformer!.target_encoder_params).toBe(99000);
    const t = resolveSettings('gaiic-deep', { prune: { transformer: { target_model_params: 216085 } } }).prune!
      .transformer!;
    expect(t.target_model_params).toBe(216085);
    expect(t).not.toHaveProperty('target_encoder_params');
    // a prune config file over the run's settings: the same
    const file = resolvePruneConfig(
      { transformer: { target_model_params: 0.3 } },
      getPreset('gaiic-deep').prune!,
      'a.prune.json',
    ).transformer!;
    expect([file.target_model_params, file.target_encoder_params]).toEqual([0.3, undefined]);
    expect(
      resolveSettings('gaiic-deep', { prune: { transformer: { prune_hidden: true } } }).prune!.transformer!
        .target_encoder_params,
    ).toBe(99000);
    expect(
      userError(() =>
        checkTransformerTargets({ target_encoder_params: 0.1, target_model_params: 0.2 }, '--config prune'),
      ),
    ).toMatch(/^--config prune: \/transformer\/target_model_params: give one budget/);
  });

  it('rejects an invalid override with schema messages', () => {
    expect(userError(() => resolveSettings('tiny', { model: { hidden_size: '64' } }, 'my.bert-pruner.json'))).toBe(
      `my.bert-pruner.json: /model/hidden_size: must be integer >= 1 and <= 8192, got "64"`,
    );
  });

  it('checks constraints across keys after merging', () => {
    const msg = userError(() => resolveSettings('quick', { model: { hidden_size: 130, max_len: 256 } }, 'o.json'));
    expect(msg.split('\n')).toEqual([
      `o.json (over preset 'quick'): model.hidden_size (130) must be a multiple of model.num_attention_heads (4)`,
      `o.json (over preset 'quick'): model.max_len (256) must be <= model.max_position_embeddings (128)`,
    ]);
    expect(() => resolveSettings('quick', { model: { max_len: 256, max_position_embeddings: 256 } })).not.toThrow();
  });

  it('refuses token masking together with augmented distillation, which masks the tokens itself', () => {
    // gaiic-deep re-fine-tunes with distill_augment 0.15
    expect(userError(() => resolveSettings('gaiic-deep', { refinetune: { mask_augment: 0.1 } }, 'o.json'))).toBe(
      `o.json (over preset 'gaiic-deep'): refinetune.mask_augment (0.1) and refinetune.distill_augment (0.15) ` +
        'both mask the tokens: set one of them to 0',
    );
    const ok = resolveSettings('gaiic-deep', { refinetune: { mask_augment: 0.1, distill_augment: 0 } });
    expect(ok.refinetune.mask_augment).toBe(0.1);
    expect(resolveSettings('gaiic-deep', { finetune: { mask_augment: 0.1 } }).finetune.mask_augment).toBe(0.1);
  });
});
