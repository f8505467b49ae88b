// Vocabulary: the five BERT special tokens, then the corpus tokens (GAIIC's anonymised integers,
// kept as strings so vocab.txt is an ordinary Hugging Face WordPiece vocab file) by frequency.
// Frequency order makes vocabulary pruning a prefix cut and keeps the layout stable for one corpus.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors';
import { readJson, writeFileAtomic } from '../io/atomic';
import { readTextBounded } from '../io/read';
import { readTokenizerOptions } from './tokenizer';
import { readTokenizerJson } from './tokenizer-json';

export const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;
export const PAD_ID = 0;
export const UNK_ID = 1;
export const CLS_ID = 2;
export const SEP_ID = 3;
export const MASK_ID = 4;

/** The ids of the special tokens, resolved by name (never by position). */
export interface SpecialIds {
  pad: number;
  unk: number;
  cls: number;
  sep: number;
  mask: number;
}
/** bert-pruner's own vocabularies: the five specials first, in this order. */
export const DEFAULT_SPECIAL: SpecialIds = { pad: PAD_ID, unk: UNK_ID, cls: CLS_ID, sep: SEP_ID, mask: MASK_ID };
const SPECIAL_NAMES: Record<keyof SpecialIds, string> = {
  pad: '[PAD]',
  unk: '[UNK]',
  cls: '[CLS]',
  sep: '[SEP]',
  mask: '[MASK]',
};

export interface Vocab {
  tokens: string[];
  /** Special token ids by role (HF's special_tokens_map.json / tokenizer_config.json, else BERT's names). */
  special: SpecialIds;
  /** Corpus count per id, aligned with tokens; 0 for the specials (and for vocabs read without counts). */
  counts: number[];
  index: Map<string, number>;
  /**
   * The tokenizer settings the vocabulary came with (a checkpoint's tokenizer_config.json and
   * tokenizer.json), carried to every checkpoint made from it (io/tokenizer-files.ts). None: BERT's defaults.
   */
  tokenizer?: TokenizerSettings;
}

export interface TokenizerSettings {
  doLowerCase: boolean;
  /** null: follow doLowerCase (HF's default). */
  stripAccents: boolean | null;
  tokenizeChineseChars: boolean;
  /** tokenizer_config.json's model_max_length, when the source gave a sensible one. */
  modelMaxLength?: number;
  /** The tokenizer.json this vocabulary came with; rewritten for the vocabulary when a checkpoint is saved. */
  jsonFile?: string;
}

const VOCAB_FILE = 'vocab.txt';
export const COUNTS_FILE = 'token_counts.json';

function makeVocab(tokens: string[], counts: number[], special: SpecialIds = DEFAULT_SPECIAL): Vocab {
  const index = new Map<string, number>();
  tokens.forEach((t, i) => index.set(t, i));
  return { tokens, counts, index, special };
}

/** The special ids as a sorted list (masking and vocabulary pruning skip / keep them). */
export function specialIdList(s: SpecialIds): number[] {
  return [...new Set(Object.values(s))].sort((a, b) => a - b);
}

/** A token name from a HF tokenizer file: a string, or {"content": string} (AddedToken). */
function tokenName(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  const c = (v as { content?: unknown } | null)?.content;
  return typeof v === 'object' && typeof c === 'string' ? c : undefined;
}

/**
 * The special tokens' names: special_tokens_map.json, then tokenizer_config.json, then BERT's
 * defaults; each looked up in the vocabulary by name. A name the vocabulary lacks is a UserError.
 */
function resolveSpecial(dir: string, index: Map<string, number>, vocabFile: string): SpecialIds {
  const names = { ...SPECIAL_NAMES };
  for (const f of ['tokenizer_config.json', 'special_tokens_map.json']) {
    const file = path.join(dir, f);
    if (!fs.existsSync(file)) continue;
    const raw = readJson<unknown>(file);
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw new UserError(`${file}: /: expected a JSON object`);
    for (const role of Object.keys(names) as (keyof SpecialIds)[]) {
      const v = (raw as Record<string, unknown> | null)?.[`${role}_token`];
      if (v === undefined || v === null) continue;
      const name = tokenName(v);
      if (name === undefined) throw new UserError(`${file}: /${role}_token: is not a token name`);
      names[role] = name;
    }
  }
  const out = {} as SpecialIds;
  for (const role of Object.keys(names) as (keyof SpecialIds)[]) {
    const id = index.get(names[role]);
    if (id === undefined)
      throw new UserError(`${vocabFile}: the ${role} token '${names[role]}' is not in the vocabulary`);
    out[role] = id;
  }
  return out;
}

/** Specials, then every token seen at least minCount times, by count desc, ties by numeric value asc. */
export function buildVocab(texts: number[][], opts: { minCount?: number } = {}): Vocab {
  const minCount = opts.minCount ?? 1;
  const count = new Map<number, number>();
  for (const text of texts) for (const t of text) count.set(t, (count.get(t) ?? 0) + 1);
  const kept = [...count.entries()].filter(([, c]) => c >= minCount).sort((x, y) => y[1] - x[1] || x[0] - y[0]);
  return makeVocab(
    [...SPECIAL_TOKENS, ...kept.map(([t]) => String(t))],
    [...SPECIAL_TOKENS.map(() => 0), ...kept.map(([, c]) => c)],
  );
}

/** Write dir/vocab.txt (one token a line) and dir/token_counts.json ({"counts": [...]}), atomically. */
export function writeVocab(dir: string, v: Vocab): void {
  if (v.counts.length !== v.tokens.length)
    throw new Error(`vocab has ${v.tokens.length} tokens but ${v.counts.length} counts`);
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, VOCAB_FILE), v.tokens.map((t) => t + '\n').join(''));
  writeFileAtomic(path.join(dir, COUNTS_FILE), JSON.stringify({ counts: v.counts }) + '\n');
  // Special tokens under other names (a HF tokenizer's): keep them findable by name when read back.
  const roles = Object.keys(SPECIAL_NAMES) as (keyof SpecialIds)[];
  if (v.special && roles.some((r) => v.tokens[v.special[r]] !== SPECIAL_NAMES[r])) {
    const map = Object.fromEntries(roles.map((r) => [`${r}_token`, v.tokens[v.special[r]]]));
    writeFileAtomic(path.join(dir, 'special_tokens_map.json'), JSON.stringify(map, null, 2) + '\n');
  }
}

export function readVocab(dir: string): Vocab {
  const file = path.join(dir, VOCAB_FILE);
  let text: string;
  try {
    text = readTextBounded(file, 'vocab');
  } catch (e) {
    if (!fs.existsSync(file)) throw new UserError(`${file}: vocab file not found`);
    throw e;
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop(); // the final newline
  const tokens: string[] = [];
  const seen = new Map<string, number>();
  lines.forEach((tok, i) => {
    const lineNo = i + 1;
    if (tok === '') throw new UserError(`${file}:${lineNo}: empty token`);
    const first = seen.get(tok);
    if (first !== undefined)
      throw new UserError(`${file}:${lineNo}: duplicate token '${tok}' (first on line ${first})`);
    seen.set(tok, lineNo);
    tokens.push(tok);
  });
  let counts = tokens.map(() => 0);
  const countsFile = path.join(dir, COUNTS_FILE);
  if (fs.existsSync(countsFile)) {
    const parsed = readJson<unknown>(countsFile, 'tokenCounts');
    const c = (parsed as { counts?: unknown } | null)?.counts;
    if (!Array.isArray(c)) throw new UserError(`${countsFile}: /counts: expected a list of non-negative integers`);
    const bad = c.findIndex((x) => !(Number.isSafeInteger(x) && x >= 0));
    if (bad >= 0) throw new UserError(`${countsFile}: /counts/${bad}: expected a non-negative integer`);
    if (c.length !== tokens.length) {
      throw new UserError(`${countsFile}: has ${c.length} counts but ${file} has ${tokens.length} tokens`);
    }
    counts = c as number[];
  }
  const v = makeVocab(tokens, counts);
  v.special = resolveSpecial(dir, v.index, file);
  // Only a folder with tokenizer files has settings of its own (none: BERT's defaults).
  if (['tokenizer_config.json', 'tokenizer.json'].some((f) => fs.existsSync(path.join(dir, f))))
    v.tokenizer = readTokenizerSettings(dir);
  return v;
}

/** The tokenizer settings of a folder: tokenizer_config.json's (validated), and whether it has a tokenizer.json. */
export function readTokenizerSettings(dir: string): TokenizerSettings {
  const o = readTokenizerOptions(dir);
  const t: TokenizerSettings = {
    doLowerCase: o.doLowerCase ?? true,
    stripAccents: o.stripAccents ?? null,
    tokenizeChineseChars: o.tokenizeChineseChars ?? true,
  };
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  if (fs.existsSync(cfgFile)) {
    // readTokenizerOptions has bounded and parsed it; HF writes 1e30 for "no limit": keep real lengths only.
    const m = readJson<{ model_max_length?: unknown }>(cfgFile).model_max_length;
    if (Number.isInteger(m) && (m as number) > 0 && (m as number) <= 1_000_000) t.modelMaxLength = m as number;
  }
  const json = path.join(dir, 'tokenizer.json');
  if (fs.existsSync(json)) {
    t.jsonFile = path.resolve(json);
    // What tokenizer_config.json leaves out, the fast tokenizer's BertNormalizer says (HF's fast tokenizer obeys it).
    const n = readTokenizerJson(json).normalizer as Record<string, unknown> | null | undefined;
    if (n?.type === 'BertNormalizer') {
      if (o.doLowerCase === undefined && typeof n.lowercase === 'boolean') t.doLowerCase = n.lowercase;
      if (o.stripAccents === undefined && typeof n.strip_accents === 'boolean') t.stripAccents = n.strip_accents;
      if (o.tokenizeChineseChars === undefined && typeof n.handle_chinese_chars === 'boolean')
        t.tokenizeChineseChars = n.handle_chinese_chars;
    }
  }
  return t;
}

/** Map corpus tokens to vocab ids; tokens not in the vocab become the unknown token. */
export function idsOf(tokens: number[], v: Vocab): number[] {
  return tokens.map((t) => v.index.get(String(t)) ?? v.special.unk);
}
