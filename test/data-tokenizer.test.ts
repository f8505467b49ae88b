// BertTokenizer against hand-worked cases of what HF's slow BertTokenizer does with a vocab.txt.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BertTokenizer,
  isChineseChar,
  isPunctuation,
  readTokenizerOptions,
  truncateLongestFirst,
} from '../src/engine/data/tokenizer';
import { userError } from './helpers/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'data-tokenizer-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const VOCAB = [
  '[PAD]',
  '[UNK]',
  '[CLS]',
  '[SEP]',
  '[MASK]',
  'un',
  '##aff',
  '##able',
  'hello',
  'world',
  'hé',
  ',',
  '!',
  '.',
  '中',
  '国',
  'a',
  '##a',
  'runn',
  '##ing',
  'run',
];
const index = new Map(VOCAB.map((t, i) => [t, i]));
const tok = (o = {}) => new BertTokenizer(index, o);

describe('BertTokenizer (basic tokenization)', () => {
  it('lower-cases and strips accents: "Héllo" -> "hello"', () => {
    expect(tok().basicTokenize('Héllo WORLD')).toEqual(['hello', 'world']);
    expect(tok().tokenize('Héllo')).toEqual(['hello']);
  });

  it('keeps case and accents without do_lower_case; strip_accents alone strips them', () => {
    expect(tok({ doLowerCase: false }).basicTokenize('Héllo')).toEqual(['Héllo']);
    expect(tok({ doLowerCase: false, stripAccents: true }).basicTokenize('Héllo')).toEqual(['Hello']);
    expect(tok({ doLowerCase: true, stripAccents: false }).basicTokenize('Héllo')).toEqual(['héllo']);
    // a decomposed é (e + U+0301) is composed first (NFC), so it matches a composed vocab entry
    expect(tok({ stripAccents: false }).tokenize('he\u0301')).toEqual(['hé']);
  });

  it('splits on ASCII and Unicode punctuation, but not on other symbols', () => {
    expect(tok().basicTokenize('hello,world!')).toEqual(['hello', ',', 'world', '!']);
    expect(tok().basicTokenize('a$b`c~d')).toEqual(['a', '$', 'b', '`', 'c', '~', 'd']); // ASCII 33-47 .. 123-126
    expect(tok().basicTokenize('«x»—y¿')).toEqual(['«', 'x', '»', '—', 'y', '¿']); // P*
    expect(tok().basicTokenize('a+b')).toEqual(['a', '+', 'b']); // '+' is ASCII 43
    expect(tok().basicTokenize('5€×2')).toEqual(['5€×2']); // Sc / Sm outside ASCII: not punctuation
    expect(isPunctuation('^')).toBe(true);
    expect(isPunctuation('€')).toBe(false);
  });

  it('puts spaces around CJK ideographs (and only those)', () => {
    expect(tok().basicTokenize('中国abc')).toEqual(['中', '国', 'abc']);
    expect(tok().tokenize('我爱中国')).toEqual(['[UNK]', '[UNK]', '中', '国']);
    // kana and hangul are not split; lower-casing strips the dakuten (Mn) and leaves hangul decomposed (NFD)
    expect(tok({ doLowerCase: false }).basicTokenize('ひらがな한국')).toEqual(['ひらがな한국']);
    expect(tok().basicTokenize('ひらがな한국')).toEqual(['ひらかな' + '한국'.normalize('NFD')]);
    expect(tok({ tokenizeChineseChars: false }).basicTokenize('中国')).toEqual(['中国']);
    expect(isChineseChar(0x4e00)).toBe(true);
    expect(isChineseChar(0x20000)).toBe(true); // extension B (astral)
    expect(isChineseChar(0x3040)).toBe(false);
    expect(tok().basicTokenize('𠀀x')).toEqual(['𠀀', 'x']);
  });

  it('drops NUL, U+FFFD and control characters; every whitespace becomes a separator', () => {
    expect(tok().basicTokenize('hel\u0000lo\ufffd\u0007 wor\u200bld')).toEqual(['hello', 'world']); // \u200b is Cf
    expect(tok().basicTokenize(' \thello\u00a0\u3000world\r\n')).toEqual(['hello', 'world']); // Zs and \t\r\n
    expect(tok().tokenize('')).toEqual([]);
  });

  it('never splits nor lower-cases the special tokens', () => {
    expect(tok().tokenize('hello [SEP] world [MASK]')).toEqual(['hello', '[SEP]', 'world', '[MASK]']);
    expect(tok({ neverSplit: ['Hello!'] }).basicTokenize('Hello! x')).toEqual(['Hello!', 'x']);
  });
});

describe('BertTokenizer (WordPiece)', () => {
  it('greedy longest match first with ## continuations: "unaffable" -> un ##aff ##able', () => {
    expect(tok().tokenize('unaffable')).toEqual(['un', '##aff', '##able']);
    expect(tok().tokenize('running')).toEqual(['runn', '##ing']); // the longest prefix wins over 'run'
    expect(tok().ids('unaffable')).toEqual([5, 6, 7]);
  });

  it('a word it cannot cover is one [UNK], not a partial match', () => {
    expect(tok().tokenize('unaffablex hello')).toEqual(['[UNK]', 'hello']);
    expect(tok().tokenize('xyz')).toEqual(['[UNK]']);
  });

  it('words over 100 characters are [UNK]; 100 characters still go through WordPiece', () => {
    expect(tok().tokenize('a'.repeat(100))).toEqual(['a', ...Array(99).fill('##a')]);
    expect(tok().tokenize('a'.repeat(101))).toEqual(['[UNK]']);
    expect(tok({ maxInputCharsPerWord: 3 }).tokenize('aaaa aaa')).toEqual(['[UNK]', 'a', '##a', '##a']);
  });

  it('counts characters by code point, as Python does', () => {
    expect(tok({ maxInputCharsPerWord: 2 }).basicTokenize('𝒳𝒳')).toEqual(['𝒳𝒳']);
    expect(tok({ maxInputCharsPerWord: 2 }).tokenize('𝒳𝒳')).toEqual(['[UNK]']);
  });

  it('needs [UNK], [CLS] and [SEP] in the vocabulary', () => {
    expect(userError(() => new BertTokenizer(new Map([['a', 0]])))).toMatch(/no '\[UNK\]' token/);
  });
});

describe('pairs and truncation', () => {
  it('encodes [CLS] a [SEP] b [SEP] with token types 0/1', () => {
    const r = tok().encode('hello', 'world!');
    expect(r.ids).toEqual([2, 8, 3, 9, 12, 3]);
    expect(r.typeIds).toEqual([0, 0, 0, 1, 1, 1]);
    expect(r.truncated).toBe(false);
  });

  it("truncates 'longest_first': from the longer text, the second one on a tie", () => {
    // a = 5 tokens, b = 2 tokens, max 8: remove 2 from a (5+2+3 = 10)
    const r = tok().encode('hello hello hello hello hello', 'world world', { maxLength: 8 });
    expect(r.ids).toEqual([2, 8, 8, 8, 3, 9, 9, 3]);
    expect(r.typeIds).toEqual([0, 0, 0, 0, 0, 1, 1, 1]);
    expect(r.truncated).toBe(true);
    // equal lengths: b loses first, then a, alternating
    expect(truncateLongestFirst([1, 2, 3], [4, 5, 6], 6)).toEqual({ a: [1, 2], b: [4], truncated: true });
    expect(truncateLongestFirst([1, 2, 3], [4, 5, 6], 8)).toEqual({ a: [1, 2, 3], b: [4, 5], truncated: true });
    expect(truncateLongestFirst([1, 2, 3], undefined, 4)).toEqual({ a: [1, 2], b: undefined, truncated: true });
    expect(truncateLongestFirst([1, 2], undefined, 4).truncated).toBe(false);
  });
});

describe('tokenizer_config.json', () => {
  it('reads do_lower_case and friends; none means the defaults', () => {
    expect(readTokenizerOptions(tmp)).toEqual({});
    fs.writeFileSync(path.join(tmp, 'tokenizer_config.json'), '{"do_lower_case": false, "strip_accents": null}');
    expect(readTokenizerOptions(tmp)).toEqual({ doLowerCase: false, stripAccents: null });
  });

  it('refuses a wrong type, naming the file and key', () => {
    fs.writeFileSync(path.join(tmp, 'tokenizer_config.json'), '{"do_lower_case": "yes"}');
    expect(userError(() => readTokenizerOptions(tmp))).toMatch(/tokenizer_config\.json: \/do_lower_case: must be/);
  });
});
