// Engine validation errors -> editor locations, and the "New pruning config" template, checked
// against the engine's own validator so the template can never be one the engine rejects.
import { describe, expect, it } from 'vitest';
import { SCHEMAS, validateConfig } from '../src/engine/config/validate';
import {
  didYouMeanFix,
  errorRanges,
  parseEngineErrors,
  pointerRange,
  pointerSegments,
  positionAt,
  pruneConfigTemplate,
  toPublish,
  type PruneSchema,
} from '../src/extension/configFiles';

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
    expect(
      parseEngineErrors(
        "C:\\d\\train.csv:17: label '18' is outside 0..16\nsomething else\nb.json:3:14: invalid JSON: x",
      ),
    ).toEqual([
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

describe('errorRanges', () => {
  // The invalid config of the end-to-end test (test/e2e/run-e2e.mjs).
  const bad = '{\n  "transformer": {\n    "target_num_of_heads": 1,\n    "n_iters": 0,\n    "heads": 3\n  }\n}\n';
  it('puts an unknown key at the key and a bad value at the value (engine message to line/character)', () => {
    const ranges = errorRanges(bad, parseEngineErrors(engineError(JSON.parse(bad), '/ws/configs/bad.prune.json')));
    const heads = ranges.find((r) => r.message.startsWith("unknown key 'heads'"));
    expect(heads?.range).toEqual({ start: { line: 4, character: 4 }, end: { line: 4, character: 11 } });
    const iters = ranges.find((r) => r.message.startsWith('must be integer >= 1'));
    expect(iters?.range).toEqual({ start: { line: 3, character: 15 }, end: { line: 3, character: 16 } });
  });
  it('handles keys with quotes, CRLF text and line/column locations', () => {
    const text = '{\r\n  "it\'s": 1\r\n}';
    const r = pointerRange(text, '', "unknown key 'it's' (allowed: transformer, vocabulary)");
    expect(text.slice(r.start, r.end)).toBe('"it\'s"');
    expect(positionAt(text, r.start)).toEqual({ line: 1, character: 2 });
    const locs = [
      { file: 'f', line: 2, col: 3, message: 'm' },
      { file: 'f', line: 99, message: 'n' },
    ];
    expect(errorRanges(text, locs)).toEqual([
      { range: { start: { line: 1, character: 2 }, end: { line: 1, character: 3 } }, message: 'm' },
      { range: { start: { line: 2, character: 0 }, end: { line: 2, character: 1 } }, message: 'n' },
    ]);
  });
});

describe('toPublish: config mistakes are errors, open or not', () => {
  it('keeps schema mistakes while the file is open too (the JSON service only warns, with no fix)', () => {
    expect(toPublish(['schema'], ['engine'], false)).toEqual(['engine', 'schema']);
    expect(toPublish(['schema'], ['engine'], true)).toEqual(['engine', 'schema']);
    expect(toPublish([], [], true)).toEqual([]);
  });
});

describe('the "did you mean" quick fix', () => {
  it("replaces a typo'd key by the close name the engine suggests, at the key's range", () => {
    const text = '{\n  "transformer": { "target_num_heads": 2, "n_iters": 0 }\n}\n';
    let msg = '';
    try {
      validateConfig('prune', JSON.parse(text), 'p.prune.json');
    } catch (e) {
      msg = (e as Error).message;
    }
    const locs = parseEngineErrors(msg);
    const unknown = locs.find((l) => l.message.startsWith('unknown key'))!;
    expect(unknown.message).toContain("did you mean 'target_num_of_heads'?");
    // n_iters: 0 is out of range: an error too.
    expect(locs.some((l) => l.pointer === '/transformer/n_iters')).toBe(true);
    const [r] = errorRanges(text, [unknown]);
    const lines = text.split('\n');
    const keyText = lines[r.range.start.line].slice(r.range.start.character, r.range.end.character);
    const fix = didYouMeanFix(unknown.message, keyText)!;
    expect(fix.title).toBe("Change 'target_num_heads' to 'target_num_of_heads'");
    const fixed = text.replace(keyText, fix.text);
    expect(() => validateConfig('prune', JSON.parse(fixed.replace(', "n_iters": 0', '')), 'p')).not.toThrow();
    expect(didYouMeanFix("unknown key 'zzz' (allowed: a, b)", '"zzz"')).toBeUndefined();
  });
});

describe('pruneConfigTemplate', () => {
  it('is valid for the engine, lists the options and halves the model', () => {
    const text = pruneConfigTemplate(SCHEMAS.prune as unknown as PruneSchema, {
      num_attention_heads: 12,
      intermediate_size: 3072,
    });
    const value = JSON.parse(text);
    expect(() => validateConfig('prune', value, 'new.prune.json')).not.toThrow();
    expect(value.transformer).toMatchObject({
      target_num_of_heads: 6,
      target_ffn_size: 1536,
      pruning_method: 'iterative',
      n_iters: 16,
    });
    const small = JSON.parse(
      pruneConfigTemplate(SCHEMAS.prune as unknown as PruneSchema, { num_attention_heads: 1, intermediate_size: 1 }),
    );
    expect(small.transformer).toMatchObject({ target_num_of_heads: 1, target_ffn_size: 1 });
  });
});
