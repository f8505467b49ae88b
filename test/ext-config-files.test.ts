// Engine validation errors -> editor locations, and the "New pruning config" template, checked
// against the engine's own validator so the template can never be one the engine rejects.
import { describe, expect, it } from 'vitest';
import { SCHEMAS, validateConfig } from '../src/engine/config/validate';
import { parseEngineErrors, pointerRange, pointerSegments, pruneConfigTemplate, type PruneSchema } from '../src/extension/configFiles';

function engineError(value: unknown, file: string): string {
  try {
    validateConfig('prune', value, file);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected a validation error');
}

describe('parseEngineErrors', () => {
  it('reads the lines validateConfig writes, root included', () => {
    const text = engineError({ transformer: { n_iters: 0, bogus: 1 } }, '/ws/a.prune.json');
    const locs = parseEngineErrors(text);
    expect(locs.length).toBeGreaterThanOrEqual(2);
    expect(locs.every((l) => l.file === '/ws/a.prune.json')).toBe(true);
    expect(locs.map((l) => l.pointer)).toContain('/transformer/n_iters');
    const root = parseEngineErrors(engineError({}, 'x.prune.json'));
    expect(root[0]).toMatchObject({ file: 'x.prune.json', pointer: '' });
  });

  it('reads FILE:LINE:COL lines, Windows paths too, and skips prose', () => {
    expect(parseEngineErrors('C:\\d\\train.csv:17: label \'18\' is outside 0..16\nsomething else\nb.json:3:14: invalid JSON: x')).toEqual([
      { file: 'C:\\d\\train.csv', line: 17, col: undefined, message: "label '18' is outside 0..16" },
      { file: 'b.json', line: 3, col: 14, message: 'invalid JSON: x' },
    ]);
  });
});

describe('pointerRange', () => {
  const text = '{\n  "transformer": {\n    "n_iters": 0,\n    "list": [1, {"a~b/c": true}]\n  }\n}\n';
  const at = (p: string) => {
    const r = pointerRange(text, p);
    return text.slice(r.start, r.end);
  };
  it('finds values, keys of containers, escaped segments and array items', () => {
    expect(at('/transformer/n_iters')).toBe('0');
    expect(at('/transformer')).toBe('"transformer"');
    expect(at('/transformer/list/1/a~0b~1c')).toBe('true');
    expect(pointerSegments('/a~1b/~0')).toEqual(['a/b', '~']);
  });
  it('underlines the key an "unknown key" message names', () => {
    const r = pointerRange(text, '/transformer', "unknown key 'n_iters' (allowed: ...)");
    expect(text.slice(r.start, r.end)).toBe('"n_iters"');
    const r2 = pointerRange(text, '/transformer', "unknown key 'nope' (allowed: ...)");
    expect(text.slice(r2.start, r2.end)).toBe('"transformer"');
  });
  it('falls back to the nearest existing ancestor, then the document start', () => {
    expect(at('/transformer/missing')).toBe('"transformer"');
    expect(at('')).toBe('{');
    expect(pointerRange('', '/x')).toEqual({ start: 0, end: 0 });
  });
});

describe('pruneConfigTemplate', () => {
  it('is valid for the engine, lists the options and halves the model', () => {
    const text = pruneConfigTemplate(SCHEMAS.prune as unknown as PruneSchema, { num_attention_heads: 12, intermediate_size: 3072 });
    const value = JSON.parse(text);
    expect(() => validateConfig('prune', value, 'new.prune.json')).not.toThrow();
    expect(value.transformer).toMatchObject({ target_num_of_heads: 6, target_ffn_size: 1536, pruning_method: 'iterative', n_iters: 16 });
    const small = JSON.parse(pruneConfigTemplate(SCHEMAS.prune as unknown as PruneSchema, { num_attention_heads: 1, intermediate_size: 1 }));
    expect(small.transformer).toMatchObject({ target_num_of_heads: 1, target_ffn_size: 1 });
  });
});
