// A WordPiece tokenizer that behaves as Hugging Face's (slow) `BertTokenizer` does with a `vocab.txt`:
//
//   1. basic tokenization: drop NUL, U+FFFD and control characters, every whitespace character becomes
//      a space; spaces around CJK ideographs (the code point ranges HF uses); NFC; split on spaces;
//      per word (unless it is a special token, "never split"): lower-case and strip accents (NFD, drop
//      the Mn marks) when do_lower_case, or strip accents alone when strip_accents is true; then every
//      punctuation character (ASCII 33-47, 58-64, 91-96, 123-126 and Unicode P*) is a word of its own;
//   2. WordPiece: per word, the longest vocabulary entry from the left, then the longest `##`-prefixed
//      entry for the rest, and so on; a word that cannot be covered, or longer than 100 characters, is
//      [UNK] as a whole.
//
// Pairs are `[CLS] a [SEP] b [SEP]` with token types 0 (through the first [SEP]) and 1; truncation to
// max_length is HF's 'longest_first': one token at a time from the end of the longer text (the second
// text when they are equally long).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors';
import { readJson } from '../io/atomic';

export interface TokenizerOptions {
  /** Lower-case (and strip accents unless stripAccents is false). Default true, as BertTokenizer. */
  doLowerCase?: boolean;
  /** null/undefined: follow doLowerCase (HF's default); true/false: force it. */
  stripAccents?: boolean | null;
  /** Spaces around CJK ideographs, so each is a word. Default true. */
  tokenizeChineseChars?: boolean;
  /** Words kept as they are (the special tokens are always added). */
  neverSplit?: string[];
  /** Longer words are [UNK]. Default 100. */
  maxInputCharsPerWord?: number;
}

export const SPECIALS = { unk: '[UNK]', cls: '[CLS]', sep: '[SEP]', pad: '[PAD]', mask: '[MASK]' } as const;

/** HF's _is_whitespace: space, tab, newline, carriage return, and Unicode category Zs. */
export function isWhitespace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || /^\p{Zs}$/u.test(ch);
}

/** HF's _is_control: Unicode category C* (Cc, Cf, Cn, Co, Cs), except tab, newline and carriage return. */
export function isControl(ch: string): boolean {
  if (ch === '\t' || ch === '\n' || ch === '\r') return false;
  return /^\p{C}$/u.test(ch);
}

/** HF's _is_punctuation: every non-alphanumeric ASCII printable character, and Unicode category P*. */
export function isPunctuation(ch: string): boolean {
  const cp = ch.codePointAt(0)!;
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126))
    return true;
  return /^\p{P}$/u.test(ch);
}

/** HF's _is_chinese_char: the CJK Unified Ideographs blocks (not Japanese kana nor Korean hangul). */
export function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

function cleanText(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp === 0 || cp === 0xfffd || isControl(ch)) continue;
    out += isWhitespace(ch) ? ' ' : ch;
  }
  return out;
}

function spaceChineseChars(text: string): string {
  let out = '';
  for (const ch of text) out += isChineseChar(ch.codePointAt(0)!) ? ` ${ch} ` : ch;
  return out;
}

export function stripAccents(text: string): string {
  let out = '';
  for (const ch of text.normalize('NFD')) if (!/^\p{Mn}$/u.test(ch)) out += ch;
  return out;
}

function splitOnPunctuation(word: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const ch of word) {
    if (isPunctuation(ch)) {
      if (cur) out.push(cur);
      out.push(ch);
      cur = '';
    } else cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}

/** Python's str.split(): runs of whitespace separate, none at the ends. */
function whitespaceSplit(text: string): string[] {
  return text.split(/[ \t\n\r]+/).filter((w) => w !== '');
}

/** What the data readers need of a tokenizer: the token strings of a text, and their ids. */
export interface TextTokenizer {
  tokenize(text: string): string[];
  idsOf(tokens: string[]): number[];
}

export class BertTokenizer implements TextTokenizer {
  readonly doLowerCase: boolean;
  readonly stripAccents: boolean | null;
  readonly tokenizeChineseChars: boolean;
  readonly maxInputCharsPerWord: number;
  private readonly neverSplit: Set<string>;
  readonly unkId: number;
  readonly clsId: number;
  readonly sepId: number;

  constructor(
    private readonly vocab: ReadonlyMap<string, number>,
    opts: TokenizerOptions = {},
  ) {
    this.doLowerCase = opts.doLowerCase ?? true;
    this.stripAccents = opts.stripAccents ?? null;
    this.tokenizeChineseChars = opts.tokenizeChineseChars ?? true;
    this.maxInputCharsPerWord = opts.maxInputCharsPerWord ?? 100;
    this.neverSplit = new Set([...Object.values(SPECIALS), ...(opts.neverSplit ?? [])]);
    const need = (t: string) => {
      const id = vocab.get(t);
      if (id === undefined) throw new UserError(`the vocabulary has no '${t}' token`);
      return id;
    };
    this.unkId = need(SPECIALS.unk);
    this.clsId = need(SPECIALS.cls);
    this.sepId = need(SPECIALS.sep);
  }

  /** BasicTokenizer: the words (and punctuation marks) of a text, normalised. */
  basicTokenize(text: string): string[] {
    let t = cleanText(text);
    if (this.tokenizeChineseChars) t = spaceChineseChars(t);
    t = t.normalize('NFC');
    const out: string[] = [];
    for (let w of whitespaceSplit(t)) {
      if (this.neverSplit.has(w)) {
        out.push(w);
        continue;
      }
      if (this.doLowerCase) {
        w = w.toLowerCase();
        if (this.stripAccents !== false) w = stripAccents(w);
      } else if (this.stripAccents) w = stripAccents(w);
      for (const piece of splitOnPunctuation(w)) if (piece !== '') out.push(...whitespaceSplit(piece));
    }
    return out;
  }

  /** WordPiece on one word: greedy longest match first, `##` for the pieces after the first. */
  wordpiece(word: string): string[] {
    const chars = Array.from(word);
    if (chars.length > this.maxInputCharsPerWord) return [SPECIALS.unk];
    const pieces: string[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found: string | null = null;
      while (start < end) {
        const sub = (start > 0 ? '##' : '') + chars.slice(start, end).join('');
        if (this.vocab.has(sub)) {
          found = sub;
          break;
        }
        end--;
      }
      if (found === null) return [SPECIALS.unk];
      pieces.push(found);
      start = end;
    }
    return pieces;
  }

  /** The token strings of a text (no [CLS]/[SEP]). */
  tokenize(text: string): string[] {
    const out: string[] = [];
    for (const w of this.basicTokenize(text)) {
      if (this.neverSplit.has(w)) out.push(w);
      else out.push(...this.wordpiece(w));
    }
    return out;
  }

  /** The vocabulary ids of a text (no [CLS]/[SEP]); a token not in the vocabulary is [UNK]. */
  ids(text: string): number[] {
    return this.idsOf(this.tokenize(text));
  }

  idsOf(tokens: string[]): number[] {
    return tokens.map((t) => this.vocab.get(t) ?? this.unkId);
  }

  /**
   * `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]` with token types, truncated 'longest_first' to maxLength
   * (when given); `truncated`: whether any token was removed.
   */
  encode(
    text: string,
    pair?: string,
    opts: { maxLength?: number } = {},
  ): { ids: number[]; typeIds: number[]; truncated: boolean } {
    return assemble(this.ids(text), pair === undefined ? undefined : this.ids(pair), this.clsId, this.sepId, opts);
  }
}

/** Truncate a (and b) 'longest_first' so that, with the specials, they fit in maxLength. */
export function truncateLongestFirst(
  a: number[],
  b: number[] | undefined,
  maxLength: number,
): { a: number[]; b: number[] | undefined; truncated: boolean } {
  const specials = b === undefined ? 2 : 3;
  let remove = a.length + (b?.length ?? 0) + specials - maxLength;
  if (remove <= 0) return { a, b, truncated: false };
  let la = a.length;
  let lb = b?.length ?? 0;
  // HF removes one token at a time from the longer text, from the second one on a tie.
  while (remove > 0 && (la > 0 || lb > 0)) {
    if (b === undefined || la > lb) la--;
    else lb--;
    remove--;
  }
  return { a: a.slice(0, la), b: b?.slice(0, lb), truncated: true };
}

export function assemble(
  a: number[],
  b: number[] | undefined,
  clsId: number,
  sepId: number,
  opts: { maxLength?: number } = {},
): { ids: number[]; typeIds: number[]; truncated: boolean } {
  let truncated = false;
  if (opts.maxLength !== undefined) ({ a, b, truncated } = truncateLongestFirst(a, b, opts.maxLength));
  const ids = [clsId, ...a, sepId];
  const typeIds = ids.map(() => 0);
  if (b !== undefined) {
    ids.push(...b, sepId);
    for (let i = 0; i <= b.length; i++) typeIds.push(1);
  }
  return { ids, typeIds, truncated };
}

/**
 * The options a checkpoint's `tokenizer_config.json` sets (do_lower_case, strip_accents,
 * tokenize_chinese_chars, never_split), or the defaults when it has none.
 */
export function readTokenizerOptions(dir: string): TokenizerOptions {
  const file = path.join(dir, 'tokenizer_config.json');
  if (!fs.existsSync(file)) return {};
  const j = readJson<unknown>(file); // bounded (io/read.ts): a regular file of at most READ_LIMITS.json
  if (typeof j !== 'object' || j === null || Array.isArray(j))
    throw new UserError(`${file}: /: expected a JSON object`);
  const o = j as Record<string, unknown>;
  const bool = (k: string, nullable = false): boolean | null | undefined => {
    const v = o[k];
    if (v === undefined || typeof v === 'boolean' || (nullable && v === null)) return v as boolean | null | undefined;
    throw new UserError(`${file}: /${k}: must be true or false${nullable ? ' (or null)' : ''}`);
  };
  const opts: TokenizerOptions = {};
  const lc = bool('do_lower_case');
  if (lc !== undefined && lc !== null) opts.doLowerCase = lc;
  const sa = bool('strip_accents', true);
  if (sa !== undefined) opts.stripAccents = sa;
  const cc = bool('tokenize_chinese_chars');
  if (cc !== undefined && cc !== null) opts.tokenizeChineseChars = cc;
  const ns = o.never_split;
  if (ns !== undefined && ns !== null) {
    if (!Array.isArray(ns) || ns.length > 10_000 || !ns.every((s) => typeof s === 'string' && s.length <= 100))
      throw new UserError(`${file}: /never_split: must be a list of strings`);
    opts.neverSplit = ns as string[];
  }
  return opts;
}
