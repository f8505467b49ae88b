import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/engine/errors';
import { loadConfigFile, SCHEMAS, validateConfig } from '../src/engine/config/validate';
import { SECTIONS } from '../src/engine/config/fields';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'config-validate-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The lines of the UserError validateConfig throws. */
function problems(kind: 'prune' | 'settings', value: unknown, file = 'cfg.json'): string[] {
  try {
    validateConfig(kind, value, file);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message.split('\n');
  }
  throw new Error('expected a UserError');
}

describe('validateConfig: prune', () => {
  it('accepts a full transformer config, a vocabulary-only config and $schema', () => {
    expect(() =>
      validateConfig(
        'prune',
        {
          $schema: './schemas/prune.schema.json',
          transformer: {
            target_ffn_size: 128,
            target_num_of_heads: 2,
            pruning_method: 'iterative',
            n_iters: 4,
            head_even_masking: false,
            ffn_even_masking: true,
            multiple_of: 8,
            pruning_order: null,
            use_logits: true,
            keep_shape: false,
            importance_data: 'corpus',
            batch_size: 16,
            max_examples: 1000,
          },
        },
        'p.json',
      ),
    ).not.toThrow();
    expect(() =>
      validateConfig('prune', { vocabulary: { min_count: 2, prune_lm_head: 'auto' } }, 'p.json'),
    ).not.toThrow();
    expect(() =>
      validateConfig('prune', { transformer: { pruning_method: 'masks', masks_file: 'm.json' } }, 'p.json'),
    ).not.toThrow();
  });

  it('wrong type and out of range: JSON path and what was expected', () => {
    const iters = 'cfg.json: /transformer/n_iters: must be integer >= 1 and <= 1000, got';
    expect(problems('prune', { transformer: { n_iters: 'many' } })).toEqual([`${iters} "many"`]);
    expect(problems('prune', { transformer: { n_iters: 0 } })).toEqual([`${iters} 0`]);
    expect(problems('prune', { transformer: { n_iters: 2.5 } })).toEqual([`${iters} 2.5`]);
    expect(problems('prune', { transformer: 5 })).toEqual([`cfg.json: /transformer: must be object, got 5`]);
    expect(problems('prune', [])).toEqual([`cfg.json: (top level): must be object, got []`]);
  });

  it('unknown keys are named, with a suggestion when one is close', () => {
    expect(problems('prune', { transformer: { n_iter: 4 } })).toEqual([
      `cfg.json: /transformer: unknown key 'n_iter' (did you mean 'n_iters'?)`,
    ]);
    const [line] = problems('prune', { vocabulary: { zzzzzz: 1 } });
    expect(line).toBe(`cfg.json: /vocabulary: unknown key 'zzzzzz' (allowed: min_count, prune_lm_head)`);
    expect(problems('prune', { transformer: {}, extra: 1 })).toEqual([
      `cfg.json: (top level): unknown key 'extra' (allowed: transformer, vocabulary)`,
    ]);
  });

  it('enums list the allowed values', () => {
    expect(problems('prune', { transformer: { pruning_method: 'magic' } })).toEqual([
      `cfg.json: /transformer/pruning_method: must be one of "masks", "iterative", got "magic"`,
    ]);
    expect(problems('prune', { transformer: { pruning_order: 'both' } })).toEqual([
      `cfg.json: /transformer/pruning_order: must be one of null, "head-first", "ffn-first", got "both"`,
    ]);
    expect(problems('prune', { vocabulary: { prune_lm_head: 'yes' } })).toEqual([
      `cfg.json: /vocabulary/prune_lm_head: must be one of "auto", true, false, got "yes"`,
    ]);
  });

  it("pruning_method 'masks' requires masks_file", () => {
    expect(problems('prune', { transformer: { pruning_method: 'masks' } })).toEqual([
      `cfg.json: /transformer: missing required key 'masks_file' (required when pruning_method is "masks")`,
    ]);
  });

  it('needs transformer or vocabulary', () => {
    expect(problems('prune', {})).toEqual([
      `cfg.json: (top level): must have at least one of 'transformer', 'vocabulary'`,
    ]);
    expect(problems('prune', { $schema: 'x' })).toEqual([
      `cfg.json: (top level): must have at least one of 'transformer', 'vocabulary'`,
    ]);
  });

  it('reports every problem, one per line', () => {
    const lines = problems('prune', {
      transformer: { n_iters: -1, use_logits: 'yes', bogus: 1, pruning_method: 'masks' },
      vocabulary: { min_count: 0 },
    });
    expect(lines.sort()).toEqual(
      [
        `cfg.json: /transformer/n_iters: must be integer >= 1 and <= 1000, got -1`,
        `cfg.json: /transformer/use_logits: must be boolean, got "yes"`,
        `cfg.json: /transformer: missing required key 'masks_file' (required when pruning_method is "masks")`,
        `cfg.json: /transformer: unknown key 'bogus' (allowed: target_ffn_size, target_num_of_heads, ` +
          'target_encoder_params, target_model_params, prune_layers, target_num_layers, prune_hidden, ' +
          'target_hidden_size, ' +
          'pruning_method, n_iters, scoring_rounds, head_even_masking, ffn_even_masking, multiple_of, pruning_order, ' +
          'use_logits, keep_shape, masks_file, importance_data, batch_size, max_examples, recovery_epochs)',
        `cfg.json: /vocabulary/min_count: must be integer >= 1, got 0`,
      ].sort(),
    );
  });
});

describe('validateConfig: settings', () => {
  it('accepts an empty override and a partial one', () => {
    expect(() => validateConfig('settings', {}, 's.json')).not.toThrow();
    expect(() =>
      validateConfig(
        'settings',
        {
          seed: 1,
          model: { hidden_size: 64 },
          prune: { transformer: { n_iters: 8 } },
          refinetune: { distill_alpha: 0 },
        },
        's.json',
      ),
    ).not.toThrow();
  });

  it('bounds with exclusive limits and nested prune errors', () => {
    expect(problems('settings', { finetune: { lr: 0 } })).toEqual([
      `cfg.json: /finetune/lr: must be number > 0, got 0`,
    ]);
    expect(problems('settings', { model: { hidden_dropout_prob: 1 } })).toEqual([
      `cfg.json: /model/hidden_dropout_prob: must be number >= 0 and < 1, got 1`,
    ]);
    expect(problems('settings', { refinetune: { distill_alpha: 1.5 } })).toEqual([
      `cfg.json: /refinetune/distill_alpha: must be number >= 0 and <= 1, got 1.5`,
    ]);
    expect(problems('settings', { pretrain: { schedule: 'step' } })).toEqual([
      `cfg.json: /pretrain/schedule: must be one of "linear", "cosine", "constant", got "step"`,
    ]);
    expect(problems('settings', { prune: { transformer: { pruning_method: 'masks' } } })).toEqual([
      `cfg.json: /prune/transformer: missing required key 'masks_file' (required when pruning_method is "masks")`,
    ]);
    expect(problems('settings', { finetune: { distill_alpha: 0.5 } })).toEqual([
      // the allowed keys: the settings table's finetune fields, in its order
      `cfg.json: /finetune: unknown key 'distill_alpha' (allowed: ${Object.keys(SECTIONS.finetune.fields).join(', ')})`,
    ]);
  });
});

describe('loadConfigFile', () => {
  it('reads and validates, naming the file', () => {
    const good = path.join(tmp, 'good.bert-pruner.json');
    fs.writeFileSync(good, JSON.stringify({ seed: 7 }));
    expect(loadConfigFile('settings', good)).toEqual({ seed: 7 });

    const bad = path.join(tmp, 'bad.bert-pruner.json');
    fs.writeFileSync(bad, JSON.stringify({ seed: -1 }));
    expect(() => loadConfigFile('settings', bad)).toThrow(
      `${bad}: /seed: must be integer >= 0 and <= 4294967295, got -1`,
    );

    const broken = path.join(tmp, 'broken.json');
    fs.writeFileSync(broken, '{\n  "seed": 1,,\n}');
    expect(() => loadConfigFile('settings', broken)).toThrow(
      new RegExp(`^${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2:13: invalid JSON`),
    );
  });
});

describe('the schemas themselves', () => {
  /** Every schema object under `node`, with its JSON pointer. */
  function* walk(node: unknown, at = ''): Generator<[string, Record<string, unknown>]> {
    if (typeof node !== 'object' || node === null) return;
    if (Array.isArray(node)) {
      for (const [i, x] of node.entries()) yield* walk(x, `${at}/${i}`);
      return;
    }
    const obj = node as Record<string, unknown>;
    yield [at, obj];
    for (const [k, v] of Object.entries(obj)) {
      if (k === 'default' || k === 'enum' || k === 'const') continue; // values, not schemas
      if (k === 'if' || k === 'then' || k === 'anyOf') continue; // conditions, not shapes
      yield* walk(v, `${at}/${k}`);
    }
  }

  for (const kind of ['prune', 'settings'] as const) {
    it(`${kind}: every property has a description; every object schema forbids unknown keys`, () => {
      for (const [at, s] of walk(SCHEMAS[kind])) {
        if (s.properties) {
          expect(s.additionalProperties, `${at} additionalProperties`).toBe(false);
          for (const [k, p] of Object.entries(s.properties as Record<string, Record<string, unknown>>)) {
            if (p.$ref) continue; // described where it is defined
            expect(typeof p.description, `${at}/properties/${k} description`).toBe('string');
          }
        }
        if (s.type === 'object') expect(s.additionalProperties, `${at} additionalProperties`).toBe(false);
      }
    });
  }

  it('settings.schema.json carries the same prune definitions as prune.schema.json', () => {
    expect(SCHEMAS.settings.definitions).toEqual(SCHEMAS.prune.definitions);
  });

  it('every default is valid for its property', () => {
    let checked = 0;
    for (const kind of ['prune', 'settings'] as const) {
      for (const [at, s] of walk(SCHEMAS[kind])) {
        if (!('default' in s) || at.startsWith('/definitions/')) continue; // definitions: checked below
        // The smallest config that sets this property to its default, e.g. {model: {max_len: 128}}.
        const keys = at.split('/').filter((_, i, a) => a[i - 1] === 'properties');
        const value = keys.reduceRight<unknown>((inner, k) => ({ [k]: inner }), s.default);
        expect(() => validateConfig(kind, value, at)).not.toThrow();
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(42); // every property with a default in both schemas
    const t = (SCHEMAS.prune.definitions as Record<string, { properties: Record<string, { default?: unknown }> }>)
      .transformer.properties;
    const defaults = Object.fromEntries(
      Object.entries(t)
        .filter(([, p]) => 'default' in p)
        .map(([k, p]) => [k, p.default]),
    );
    expect(defaults).toEqual({
      pruning_method: 'iterative',
      n_iters: 16,
      scoring_rounds: 1,
      head_even_masking: false,
      ffn_even_masking: true,
      multiple_of: 1,
      pruning_order: null,
      use_logits: true,
      keep_shape: false,
      importance_data: 'train',
      batch_size: 32,
      recovery_epochs: 0,
      prune_layers: false,
      prune_hidden: false,
    });
    expect(() => validateConfig('prune', { transformer: defaults }, 'defaults')).not.toThrow();
  });
});
