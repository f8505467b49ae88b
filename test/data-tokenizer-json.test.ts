// tokenizer.json through @huggingface/tokenizers against our vocab.txt BertTokenizer, on the
// hand-worked cases of data-tokenizer.test.ts; the size bound, non-WordPiece refusal, the vocab check
// and the rewrite after vocabulary pruning.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tokenizerOf } from '../src/engine/data/rows';
import { BertTokenizer } from '../src/engine/data/tokenizer';
import {
  JsonTokenizer,
  MAX_TOKENIZER_JSON_BYTES,
  readTokenizerJson,
  rewriteTokenizerJson,
  type TokenizerJson,
} from '../src/engine/data/tokenizer-json';
import { readVocab } from '../src/engine/data/vocab';
import { userError } from './helpers/errors';
import { bertTokenizerJson } from './helpers/tokenizer-json';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'data-tokenizer-json-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const VOCAB = [
  ...['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'un', '##aff', '##able', 'hello', 'world', 'hé', ',', '!', '.'],
  ...['中', '国', 'a', '##a', 'runn', '##ing', 'run', '$', 'b', '`', 'c', '~', 'd', '+', '«', '»', '—', 'x', 'y'],
];
const index = new Map(VOCAB.map((t, i) => [t, i]));

// The hand-worked cases of test/data-tokenizer.test.ts (the ones a tokenizer.json can express).
const CASES: [string, { lowercase?: boolean; stripAccents?: boolean | null; chinese?: boolean }][] = [
  ['Héllo WORLD', {}],
  ['Héllo', { lowercase: false }],
  ['Héllo', { lowercase: false, stripAccents: true }],
  ['Héllo', { lowercase: true, stripAccents: false }],
  ['hello,world!', {}],
  ['a$b`c~d', {}],
  ['«x»—y¿', {}],
  ['a+b', {}],
  ['5€×2', {}],
  ['中国abc', {}],
  ['我爱中国', {}],
  ['中国', { chinese: false }],
  ['hel\u0000lo\ufffd\u0007 wor\u200bld', {}],
  [' \thello\u00a0\u3000world\r\n', {}],
  ['', {}],
  ['hello [SEP] world [MASK]', {}],
  ['unaffable', {}],
  ['running', {}],
  ['unaffablex hello', {}],
  ['xyz', {}],
  ['a'.repeat(100), {}],
  ['a'.repeat(101), {}],
];

describe('tokenizer.json through @huggingface/tokenizers', () => {
  it.each(CASES)('%j (%j) gives the vocab.txt tokenizer’s tokens', (text, o) => {
    const ours = new BertTokenizer(index, {
      doLowerCase: o.lowercase ?? true,
      stripAccents: o.stripAccents ?? null,
      tokenizeChineseChars: o.chinese ?? true,
    });
    const j = new JsonTokenizer(bertTokenizerJson(VOCAB, o) as TokenizerJson, index, 1);
    expect(j.tokenize(text)).toEqual(ours.tokenize(text));
    expect(j.idsOf(j.tokenize(text))).toEqual(ours.ids(text));
  });

  it('differs on one case: a decomposed accent kept (strip_accents false), as HF fast and slow differ', () => {
    // The slow BertTokenizer (and ours) composes the text (NFC) first; the fast one's BertNormalizer does
    // not, so 'e' + U+0301 is no vocabulary entry 'hé' there. Tokenizers.js behaves as the fast one.
    const o = { stripAccents: false };
    const j = new JsonTokenizer(bertTokenizerJson(VOCAB, o) as TokenizerJson, index, 1);
    expect(new BertTokenizer(index, { stripAccents: false }).tokenize('he\u0301')).toEqual(['hé']);
    expect(j.tokenize('he\u0301')).toEqual(['[UNK]']);
    expect(j.tokenize('h\u00e9')).toEqual(['hé']);
  });

  it('is used when a checkpoint folder has one; a different vocab is refused', () => {
    const d = path.join(tmp, 'ck');
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'vocab.txt'), VOCAB.join('\n') + '\n');
    // lowercase false in tokenizer.json wins over the default of tokenizer_config.json
    fs.writeFileSync(path.join(d, 'tokenizer.json'), JSON.stringify(bertTokenizerJson(VOCAB, { lowercase: false })));
    const tok = tokenizerOf(readVocab(d), d);
    expect(tok).toBeInstanceOf(JsonTokenizer);
    // without a tokenizer_config.json, the settings saved with a checkpoint come from its BertNormalizer
    expect(readVocab(d).tokenizer).toMatchObject({
      doLowerCase: false,
      stripAccents: null,
      tokenizeChineseChars: true,
    });
    expect(tok.tokenize('Hello hello')).toEqual(['[UNK]', 'hello']);
    fs.writeFileSync(path.join(d, 'tokenizer.json'), JSON.stringify(bertTokenizerJson(VOCAB.slice(0, 10))));
    expect(userError(() => tokenizerOf(readVocab(d), d))).toMatch(/WordPiece vocab has 10 tokens, vocab.txt 33/);
  });

  it('refuses a non-WordPiece model, a non-object, and a file over the size bound, in one line', () => {
    const f = path.join(tmp, 'bpe.json');
    fs.writeFileSync(f, JSON.stringify({ model: { type: 'BPE', vocab: {}, merges: [] } }));
    expect(userError(() => readTokenizerJson(f))).toMatch(/a BPE tokenizer; only BERT-style \(WordPiece\)/);
    const split = { ...bertTokenizerJson(VOCAB), pre_tokenizer: { type: 'Split', pattern: { Regex: '(a+)+$' } } };
    fs.writeFileSync(f, JSON.stringify(split));
    expect(userError(() => readTokenizerJson(f))).toMatch(/pre_tokenizer "Split" is not supported/);
    const seq = { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'Replace', pattern: {}, content: '' }] };
    fs.writeFileSync(f, JSON.stringify({ ...bertTokenizerJson(VOCAB), normalizer: seq }));
    expect(userError(() => readTokenizerJson(f))).toMatch(/normalizer "Replace" is not supported/);
    fs.writeFileSync(f, '[1]');
    expect(userError(() => readTokenizerJson(f))).toMatch(/expected a JSON object/);
    fs.writeFileSync(f, '');
    fs.truncateSync(f, MAX_TOKENIZER_JSON_BYTES + 1);
    expect(userError(() => readTokenizerJson(f))).toMatch(/over the 67108864-byte limit/);
  });

  it('is rewritten for a pruned vocabulary: vocab, added tokens and the [CLS]/[SEP] ids follow', () => {
    const kept = ['[PAD]', '[UNK]', 'hello', '[CLS]', '[SEP]', '[MASK]'];
    const r = rewriteTokenizerJson(bertTokenizerJson(VOCAB) as TokenizerJson, kept);
    expect(r.model.vocab).toEqual({ '[PAD]': 0, '[UNK]': 1, hello: 2, '[CLS]': 3, '[SEP]': 4, '[MASK]': 5 });
    expect((r.added_tokens as { content: string; id: number }[]).map((a) => [a.content, a.id])).toEqual([
      ['[PAD]', 0],
      ['[UNK]', 1],
      ['[CLS]', 3],
      ['[SEP]', 4],
      ['[MASK]', 5],
    ]);
    const st = (r.post_processor as { special_tokens: Record<string, { ids: number[] }> }).special_tokens;
    expect([st['[CLS]'].ids, st['[SEP]'].ids]).toEqual([[3], [4]]);
    const t = new JsonTokenizer(r, new Map(kept.map((k, i) => [k, i])), 1);
    expect(t.tokenize('Hello world')).toEqual(['hello', '[UNK]']);
  });
});
