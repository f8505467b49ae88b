// Property-based tests (fast-check) for the three readers of user files, on input generated to be
// mostly wrong: whatever the bytes, the CSV parser, the config validator and the safetensors
// header reader either accept (and what they accept is consistent) or throw a UserError that
// names the file (and the line or JSON path). Never another exception, never a silent mis-read.
// (Round trips of valid files are in data-csv, io-safetensors and config-settings tests.)
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PRESETS } from '../src/engine/config/presets';
import { resolveSettings } from '../src/engine/config/settings';
import { validateConfig, SCHEMAS } from '../src/engine/config/validate';
import { parseGaiicCsv } from '../src/engine/data/csv';
import { UserError } from '../src/engine/errors';
import { DTYPE_SIZES, parseHeader } from '../src/engine/io/safetensors';

/** Run fn; a throw must be a UserError whose message starts with `prefix`. Returns the message. */
function userErrorOr<T>(fn: () => T, prefix: string): { ok: T } | { error: string } {
  try {
    return { ok: fn() };
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    const msg = (e as Error).message;
    expect(msg.startsWith(prefix), msg).toBe(true);
    return { error: msg };
  }
}

describe('CSV parser on hostile text', () => {
  // Lines: good rows, good rows with one thing broken, and junk glued from separators and pieces.
  const goodRow = fc
    .tuple(
      fc.nat({ max: 20 }),
      fc.array(fc.nat({ max: 50 }), { minLength: 1, maxLength: 6 }),
      fc.option(fc.array(fc.nat({ max: 16 }), { maxLength: 3 })),
      fc.constantFrom('', ' ', '  '),
    )
    .map(
      ([id, toks, labels, pad]) =>
        `${id}${pad}|,|${toks.join(' ')}${pad}` + (labels === null ? '' : `|,|${labels.join(' ')}${pad}`),
    );
  const broken = fc
    .tuple(
      goodRow,
      fc.constantFrom('|,|', '|', ',', ' -1', ' 17', ' x', ' 99999999999999999999', '\u0000', 'é', ''),
      fc.nat(),
    )
    .map(([row, junk, at]) => row.slice(0, at % (row.length + 1)) + junk + row.slice(at % (row.length + 1)));
  const junk = fc
    .array(
      fc.oneof(
        fc.constantFrom('|,|', '|,', ',|', '|', ' ', '\t', '\r', '\ufeff', '-3', '17', '0'),
        fc.nat({ max: 30 }).map(String),
        fc.string({ maxLength: 4 }),
      ),
      { maxLength: 8 },
    )
    .map((p) => p.join(''));
  const text = fc
    .tuple(
      fc.array(
        fc.oneof(
          { weight: 4, arbitrary: goodRow },
          { weight: 2, arbitrary: broken },
          { weight: 1, arbitrary: junk },
          { weight: 1, arbitrary: fc.constant('') },
        ),
        { maxLength: 12 },
      ),
      fc.constantFrom('\n', '\r\n'),
      fc.boolean(),
    )
    .map(([lines, eol, bom]) => (bom ? '\ufeff' : '') + lines.join(eol));
  const FILE = 'data/train.csv';

  it('parses or names FILE:LINE; with --skip-bad-rows every non-blank line is a row or a skip', () => {
    fc.assert(
      fc.property(text, fc.boolean(), (t, requireLabels) => {
        const lines = t.split('\n');
        const nonBlank = lines.filter(
          (l) =>
            l
              .replace(/^\ufeff/, '')
              .replace(/\r$/, '')
              .trim() !== '',
        ).length;
        const strict = userErrorOr(() => parseGaiicCsv(t, FILE, { requireLabels }), `${FILE}:`);
        if ('error' in strict) {
          const m = /^data\/train\.csv:(\d+): /.exec(strict.error);
          if (m) {
            expect(Number(m[1])).toBeGreaterThanOrEqual(1);
            expect(Number(m[1])).toBeLessThanOrEqual(lines.length);
          } else expect(strict.error).toMatch(/^data\/train\.csv: no (valid )?rows/);
        }
        const lax = userErrorOr(() => parseGaiicCsv(t, FILE, { requireLabels, skipBadRows: true }), `${FILE}: no `);
        if ('ok' in lax) {
          const { rows, skipped } = lax.ok;
          expect(rows.length + skipped.length).toBe(nonBlank);
          if ('ok' in strict) expect(rows).toEqual(strict.ok.rows); // skipping changes nothing on a clean file
          for (const r of rows) {
            expect(r.tokens.length).toBeGreaterThan(0);
            expect(r.tokens.every((x) => Number.isSafeInteger(x) && x >= 0)).toBe(true);
            expect((r.labels ?? []).every((l) => Number.isInteger(l) && l >= 0 && l <= 16)).toBe(true);
            if (requireLabels) expect(r.labels).not.toBeNull();
            // The row is what its own line says, read alone.
            const again = parseGaiicCsv(lines[r.line - 1], FILE, { requireLabels }).rows[0];
            expect({ ...again, line: r.line }).toEqual(r);
          }
          expect(new Set(rows.map((r) => r.id)).size).toBe(rows.length); // duplicate ids are skipped
        } else {
          expect(lax.error).toMatch(/^data\/train\.csv: no (valid )?rows/);
          if ('ok' in strict) throw new Error('strict parse succeeded where skipping found no rows');
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe('config validator on arbitrary JSON', () => {
  const FILE = 'my.bert-pruner.json';
  const json = fc.jsonValue({ maxDepth: 3 });
  // Objects shaped like the settings: the real sections and keys, with random values mixed in.
  const sectionKeys = Object.fromEntries(
    Object.entries(PRESETS.tiny).map(([k, v]) => [k, typeof v === 'object' ? Object.keys(v) : []]),
  );
  const settingsLike = fc.dictionary(
    fc.constantFrom(...Object.keys(sectionKeys)),
    fc.oneof(
      json,
      fc.dictionary(
        fc.constantFrom(...new Set(Object.values(sectionKeys).flat()), 'transformer', 'bogus'),
        fc.oneof(
          fc.integer({ min: -2, max: 600 }),
          fc.double({ min: -1, max: 2, noNaN: true }),
          fc.boolean(),
          fc.constantFrom('linear', 'cosine', 'iterative', null),
        ),
        { maxKeys: 5 },
      ),
    ),
    { maxKeys: 4 },
  );

  const pruneValue = fc.oneof(
    fc.integer({ min: -1, max: 70 }),
    fc.boolean(),
    fc.constantFrom('iterative', 'masks', 'head-first', 'train', 'corpus', null, 'auto'),
  );
  const pruneLike = fc.record(
    {
      transformer: fc.dictionary(
        fc.constantFrom(...Object.keys(PRESETS.tiny.prune.transformer!), 'masks_file', 'max_examples', 'bogus'),
        pruneValue,
        { maxKeys: 6 },
      ),
      vocabulary: fc.dictionary(fc.constantFrom('min_count', 'prune_lm_head', 'bogus'), pruneValue, { maxKeys: 2 }),
    },
    { requiredKeys: [] },
  );

  it('accepts or names every problem as FILE: /json/path: ...; what it accepts resolves', () => {
    fc.assert(
      fc.property(
        fc.oneof(json, settingsLike, pruneLike),
        fc.constantFrom('settings', 'prune') as fc.Arbitrary<'settings' | 'prune'>,
        (v, kind) => {
          const r = userErrorOr(() => validateConfig(kind, v, FILE), `${FILE}: `);
          if ('error' in r) {
            for (const line of r.error.split('\n'))
              expect(line).toMatch(/^my\.bert-pruner\.json: (\(top level\)|\/\S*): \S/);
          } else if (kind === 'settings') {
            // Valid by the schema: resolving it either works or fails on a cross-key constraint.
            const s = userErrorOr(() => resolveSettings('tiny', v, FILE), `${FILE} (over preset 'tiny'): `);
            if ('ok' in s) expect(s.ok.model.hidden_size % s.ok.model.num_attention_heads).toBe(0);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('a valid config with one unknown key anywhere is rejected, naming that key', () => {
    const known = new Set<string>();
    const walk = (s: unknown) => {
      if (typeof s !== 'object' || s === null) return;
      for (const [k, v] of Object.entries(s)) {
        if (k === 'properties' && typeof v === 'object' && v) Object.keys(v).forEach((p) => known.add(p));
        walk(v);
      }
    };
    walk(SCHEMAS.settings);
    const keyArb = fc.string({ minLength: 1, maxLength: 10 }).filter((k) => !known.has(k));
    fc.assert(
      fc.property(
        keyArb,
        fc.constantFrom('', 'model', 'pretrain', 'finetune', 'refinetune', 'prune', 'prune.transformer'),
        fc.jsonValue({ maxDepth: 1 }),
        (key, where, value) => {
          const cfg = structuredClone(PRESETS.tiny) as unknown as Record<string, Record<string, unknown>>;
          let target: Record<string, unknown> = cfg;
          for (const part of where.split('.').filter(Boolean)) target = target[part] as Record<string, unknown>;
          Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
          const r = userErrorOr(() => validateConfig('settings', cfg, FILE), `${FILE}: `);
          expect('error' in r).toBe(true);
          if ('error' in r) expect(r.error).toContain(`unknown key '${key}'`);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('safetensors header reader on lying headers', () => {
  const FILE = 'ck/model.safetensors';
  const dtypes = [...Object.keys(DTYPE_SIZES), 'F4', 'float32'];
  // A valid layout, then each field lies with some probability.
  const header = fc
    .array(
      fc.record({
        dtype: fc.constantFrom('F32', 'F16', 'I64', 'U8'),
        shape: fc.array(fc.nat({ max: 5 }), { maxLength: 3 }),
      }),
      { maxLength: 5 },
    )
    .chain((ts) => {
      let pos = 0;
      const valid = ts.map((t, i) => {
        const n = t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZES[t.dtype]!;
        const e = { name: `t${i}`, dtype: t.dtype, shape: t.shape, data_offsets: [pos, pos + n] as [number, number] };
        pos += n;
        return e;
      });
      const lie = <T>(good: T, bad: fc.Arbitrary<T>) =>
        fc.oneof({ weight: 4, arbitrary: fc.constant(good) }, { weight: 1, arbitrary: bad });
      return fc.record({
        entries: fc.tuple(
          ...valid.map((e) =>
            fc.record({
              name: lie(e.name, fc.constantFrom('__metadata__', 't0', '')),
              dtype: lie(e.dtype, fc.constantFrom(...dtypes)),
              shape: lie(
                e.shape as unknown,
                fc.oneof(
                  fc.array(fc.integer({ min: -2, max: 6 }), { maxLength: 3 }),
                  fc.constant('3'),
                  fc.constant([1.5]),
                ),
              ),
              data_offsets: lie(
                e.data_offsets as unknown,
                fc.oneof(
                  fc.tuple(fc.integer({ min: -4, max: pos + 8 }), fc.integer({ min: -4, max: pos + 8 })),
                  fc.constant([0]),
                  fc.constant(null),
                ),
              ),
            }),
          ),
        ),
        fileData: lie(pos, fc.nat({ max: pos + 16 })),
        junk: lie(null as unknown, fc.jsonValue({ maxDepth: 1 })),
      });
    });

  it('rejects every lie with a UserError naming the file; what it accepts tiles the data exactly', () => {
    fc.assert(
      fc.property(header, ({ entries, fileData, junk }) => {
        const obj: Record<string, unknown> = {};
        for (const e of entries) obj[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: e.data_offsets };
        const text = junk === null ? JSON.stringify(obj) : JSON.stringify(junk);
        const buf = Buffer.from(text);
        const r = userErrorOr(() => parseHeader(FILE, buf, 8 + buf.length + fileData), `${FILE}: `);
        if ('ok' in r) {
          const ts = Object.values(r.ok.entries).sort(
            (a, b) => a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1],
          );
          let pos = 0;
          for (const t of ts) {
            expect(t.data_offsets[0]).toBe(pos);
            expect(t.data_offsets[1] - t.data_offsets[0]).toBe(
              t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZES[t.dtype]!,
            );
            pos = t.data_offsets[1];
          }
          expect(pos).toBe(fileData);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
