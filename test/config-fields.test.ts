// The settings table (config/fields.ts) is the one declaration of every setting: both JSON Schemas
// are built from it and schemas/*.json must be exactly those (the editor reads the files); the
// 'quick' preset is its defaults; its model fields reach config.json under their HF names and are
// checked there with the same bounds. `npm run schemas` rewrites the files from the table.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultsOf, SECTIONS, type FieldDef } from '../src/engine/config/fields';
import { PRESETS, TEXTPRUNER_DEFAULTS } from '../src/engine/config/presets';
import { pruneSchema, settingsSchema } from '../src/engine/config/schemas';
import { checkConfigJson, makeConfig } from '../src/engine/model/config';
import { userError } from './helpers/errors';

const ROOT = path.join(__dirname, '..');
const FILES = { settings: settingsSchema, prune: pruneSchema } as const;

describe('the settings table', () => {
  for (const [kind, build] of Object.entries(FILES)) {
    it(`schemas/${kind}.schema.json is the schema the table gives`, () => {
      const file = path.join(ROOT, 'schemas', `${kind}.schema.json`);
      if (process.env.UPDATE_SCHEMAS === '1') fs.writeFileSync(file, JSON.stringify(build(), null, 2) + '\n');
      expect(JSON.parse(fs.readFileSync(file, 'utf8')), `${file}: run npm run schemas`).toEqual(build());
    });
  }

  it("the quick preset is the table's defaults (with its prune targets)", () => {
    const { prune, ...rest } = structuredClone(PRESETS.quick);
    expect(rest).toEqual({
      seed: defaultsOf('seed').seed,
      model: defaultsOf('model'),
      pretrain: defaultsOf('pretrain'),
      finetune: defaultsOf('finetune'),
      refinetune: defaultsOf('refinetune'),
    });
    // its pruning: TextPruner's defaults (the table's) with its targets and number of steps
    const { target_ffn_size, target_num_of_heads, n_iters, ...others } = prune.transformer!;
    expect([target_ffn_size, target_num_of_heads, n_iters].every(Number.isInteger)).toBe(true);
    const { n_iters: _n, ...defaults } = TEXTPRUNER_DEFAULTS;
    expect(others).toEqual(defaults);
  });

  it('every field has a description, and a default unless it is optional or a prune target', () => {
    for (const [section, def] of Object.entries(SECTIONS)) {
      for (const [key, f] of Object.entries(def.fields as Record<string, FieldDef>)) {
        expect(f.description, `${section}.${key}`).toMatch(/\w/);
        const target = section === 'transformer' && key.startsWith('target_');
        if (!f.optional && !target) expect(f.default, `${section}.${key}`).not.toBeUndefined();
      }
    }
  });

  it('model fields with an HF name reach config.json, and config.json is checked with their bounds', () => {
    const cfg = makeConfig(PRESETS.quick.model, 100, 'classification');
    const fields = Object.entries(SECTIONS.model.fields as Record<string, FieldDef>).filter(([, f]) => f.hf);
    expect(fields.length).toBeGreaterThanOrEqual(9);
    for (const [key, f] of fields) {
      expect((cfg as unknown as Record<string, unknown>)[f.hf!.name], key).toBe(
        (PRESETS.quick.model as Record<string, unknown>)[key],
      );
      const over = f.maximum !== undefined ? f.maximum + 1 : f.exclusiveMaximum;
      if (over === undefined) continue;
      const raw = { ...structuredClone(cfg), [f.hf!.name]: over };
      expect(
        userError(() => checkConfigJson(raw, 'c.json')),
        key,
      ).toMatch(new RegExp(`^c\\.json: '${f.hf!.name}' must be `));
    }
    // HF's defaults fill what a Hub config.json leaves out
    const bare = { ...structuredClone(cfg) } as Record<string, unknown>;
    delete bare.initializer_range;
    expect(checkConfigJson(bare, 'c.json').initializer_range).toBe(0.02);
  });
});
