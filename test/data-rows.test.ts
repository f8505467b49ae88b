// readRows: GAIIC csv, .jsonl and header .csv behind one reader; raw text tokenized with a vocab.txt;
// encodeRows of tokenized pairs; the WordPiece vocabulary corpus-vocab builds from raw text.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_SPECIAL } from '../src/engine/data/vocab';
import { encodeRows, truncatedCount } from '../src/engine/data/encode';
import { dataFormat, parseCsvRecords, readRows, readTextRows } from '../src/engine/data/rows';
import { buildTextVocab } from '../src/engine/data/text-vocab';
import { BertTokenizer } from '../src/engine/data/tokenizer';
import { demoWord } from '../src/engine/data/demo';
import { userError } from './helpers/errors';
import { GAIIC_LABELS } from '../src/engine/model/config';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'data-rows-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
};

const VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'hello', 'world', ',', 'un', '##aff', '##able', '中'];
const vocab = {
  tokens: VOCAB,
  counts: VOCAB.map(() => 0),
  index: new Map(VOCAB.map((t, i) => [t, i])),
  special: DEFAULT_SPECIAL,
};
const tokenizer = new BertTokenizer(vocab.index);

describe('dataFormat', () => {
  it('tells GAIIC csv, jsonl and header csv apart by extension and content', () => {
    expect(dataFormat(file('g.csv', '1|,|4 5|,|0\n'))).toBe('gaiic');
    expect(dataFormat(file('a.jsonl', '{"text": "x"}\n'))).toBe('jsonl');
    expect(dataFormat(file('a.txt', '\n{"text": "x"}\n'))).toBe('jsonl');
    expect(dataFormat(file('h.csv', 'id,text,labels\n1,x,0\n'))).toBe('csv');
    expect(dataFormat(file('bad.csv', 'what "is" this\n'))).toBe('gaiic'); // the GAIIC reader says what
  });
});

describe('readRows', () => {
  it('reads jsonl with label ids and names, pairs, default ids; tokens are vocab ids', () => {
    const f = file(
      'r.jsonl',
      '{"id": "a", "text": "Hello, WORLD", "labels": [0, 16]}\n\n' +
        '{"text": "unaffable", "text_pair": "中", "labels": ["region_3", 3]}\n',
    );
    const { rows, format } = readRows(f, { tokenizer, requireLabels: true });
    expect(format).toBe('jsonl');
    expect(rows).toEqual([
      { id: 'a', tokens: [5, 7, 6], pieces: ['hello', ',', 'world'], encoded: true, labels: [0, 16], line: 1 },
      {
        id: '3',
        tokens: [8, 9, 10],
        pieces: ['un', '##aff', '##able'],
        pair: [11],
        pairPieces: ['中'],
        encoded: true,
        labels: [3],
        line: 3,
      },
    ]);
    // encodeRows maps the pieces through the vocabulary it is given (a pruned one, a teacher's)
    const small = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '中', 'un', 'hello'];
    const v2 = {
      tokens: small,
      counts: small.map(() => 0),
      index: new Map(small.map((t, i) => [t, i])),
      special: DEFAULT_SPECIAL,
    };
    expect(Array.from(encodeRows(rows, v2, 16)[1].ids)).toEqual([2, 6, 1, 1, 3, 5, 3]);
  });

  it('reads a header csv with RFC 4180 quoting and labels joined by ;', () => {
    const f = file(
      'r.csv',
      'text,labels,id\r\n"hello, ""world""",1;region_2,x\r\n"multi\nline hello",,y\nworld,16,z\n',
    );
    const { rows, format } = readRows(f, { tokenizer });
    expect(format).toBe('csv');
    expect(rows.map((r) => [r.id, r.tokens, r.labels, r.line])).toEqual([
      ['x', [5, 7, 1, 6, 1], [1, 2], 2], // the quotes are not in the vocabulary: [UNK]
      ['y', [1, 1, 5], [], 3],
      ['z', [6], [16], 5],
    ]);
    expect(parseCsvRecords('a,"b\n",c\n', 'f').records).toEqual([{ fields: ['a', 'b\n', 'c'], line: 1 }]);
  });

  it('names the file and line of a bad label, a missing text or bad JSON', () => {
    // against the GAIIC label set (a model fine-tuned on GAIIC labels); without a set, any label is read
    const labelSet = GAIIC_LABELS;
    const bad = (name: string, text: string) => userError(() => readRows(file(name, text), { tokenizer, labelSet }));
    expect(bad('l.jsonl', '{"text": "a", "labels": [0]}\n{"text": "a", "labels": [17]}\n')).toMatch(
      /l\.jsonl:2: label 17 is outside 0\.\.16/,
    );
    expect(bad('n.jsonl', '{"text": "a", "labels": ["lung"]}\n')).toMatch(/n\.jsonl:1: unknown label 'lung'/);
    expect(readRows(file('n2.jsonl', '{"text": "a", "labels": ["lung"]}\n'), { tokenizer }).labels.names).toEqual([
      'lung',
    ]);
    expect(bad('t.jsonl', '{"labels": []}\n')).toMatch(/t\.jsonl:1: no "text"/);
    expect(bad('j.jsonl', '{"text": \n')).toMatch(/j\.jsonl:1: not valid JSON/);
    expect(bad('d.jsonl', '{"id": 1, "text": "a"}\n{"id": "1", "text": "b"}\n')).toMatch(
      /d\.jsonl:2: duplicate id '1'/,
    );
    expect(bad('l.csv', 'text,labels\na,0\n"b",region_20\n')).toMatch(/l\.csv:3: label region_20 is outside 0\.\.16/);
    expect(bad('q.csv', 'text,labels\n"open,0\n')).toMatch(/q\.csv:2: a quoted field is not closed/);
    expect(bad('f.csv', 'text,labels\na,0,1\n')).toMatch(/f\.csv:2: 3 fields, the header has 2/);
    expect(userError(() => readRows(file('r2.jsonl', '{"text": "a"}\n'), { requireLabels: true, tokenizer }))).toMatch(
      /r2\.jsonl:1: no "labels"/,
    );
    expect(userError(() => readRows(file('nv.jsonl', '{"text": "a"}\n')))).toMatch(/raw text \(jsonl\) needs a vocab/);
  });

  it('still reads GAIIC csv as before (no tokenizer needed)', () => {
    const { rows, format } = readRows(file('g2.csv', '7|,|4 5|,|0 2\n'));
    expect(format).toBe('gaiic');
    expect(rows[0]).toEqual({ id: '7', tokens: [4, 5], labels: [0, 2], line: 1 });
  });
});

describe('encodeRows of tokenized rows', () => {
  it('pairs: [CLS] a [SEP] b [SEP] with token types, longest_first truncation counted', () => {
    const f = file('p.jsonl', '{"text": "hello world hello", "text_pair": "world", "labels": [1]}\n{"text": "中"}\n');
    const { rows } = readRows(f, { tokenizer });
    const ex = encodeRows(rows, vocab, 6);
    expect(Array.from(ex[0].ids)).toEqual([2, 5, 6, 3, 6, 3]);
    expect(Array.from(ex[0].types!)).toEqual([0, 0, 0, 0, 1, 1]);
    expect(ex[0].truncated).toBe(true);
    expect(Array.from(ex[1].ids)).toEqual([2, 11, 3]);
    expect(ex[1].types).toBeUndefined();
    expect(truncatedCount(ex)).toBe(1);
  });
});

describe('buildTextVocab', () => {
  it('specials, then characters and frequent words, ordered by use; every word spelled', () => {
    const texts = ['cat cats 中国', 'cat dog', 'Cat!'];
    const v = buildTextVocab(texts);
    expect(v.tokens.slice(0, 5)).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
    expect(v.tokens).toContain('cat'); // 3 times
    expect(v.tokens).not.toContain('dog'); // once: spelled d ##o ##g
    expect(v.tokens).toContain('中');
    expect(v.tokens).toContain('##s');
    const tok = new BertTokenizer(v.index);
    expect(tok.tokenize('cats dog 中国!')).toEqual(['cat', '##s', 'd', '##o', '##g', '中', '国', '!']);
    const used = v.counts.slice(5);
    expect(used).toEqual([...used].sort((a, b) => b - a)); // by count, so pruning is a prefix cut
    expect(v.counts[v.index.get('cat')!]).toBe(4); // cat, cat(s), cat, Cat
  });

  it('keeps the most frequent characters within vocab_size', () => {
    const v = buildTextVocab(['aaa b'], 7);
    expect(v.tokens).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '##a', 'a']);
  });
});

describe('demo pseudo-words', () => {
  it('are distinct, pronounceable and read back as raw text', () => {
    const words = Array.from({ length: 5000 }, (_, i) => demoWord(i));
    expect(new Set(words).size).toBe(5000);
    expect(words.slice(0, 2)).toEqual(['baba', 'beba']);
    for (const w of words) expect(w).toMatch(/^([bdfgklmnprstvz][aeiou])+$/);
    const f = file('demo.jsonl', JSON.stringify({ id: 'x', text: words.slice(0, 3).join(' '), labels: [] }) + '\n');
    expect(readTextRows(f).rows[0].text).toBe('baba beba biba');
  });
});
