// A checkpoint's `tokenizer.json` (HF's fast tokenizer file), read through @huggingface/tokenizers
// (Tokenizers.js: pure JS, no dependencies, no native code, no network). Only BERT-style WordPiece
// tokenizers are accepted: the model must be WordPiece and its vocabulary must be the folder's
// vocab.txt (same tokens at the same ids), so the ids every other part of the engine uses agree.
// The post-processor ([CLS] a [SEP] b [SEP]) and truncation stay ours (tokenizer.ts's assemble), as
// they are for vocab.txt; the library gives the token strings of one text.
//
// After vocabulary pruning the file is rewritten (rewriteTokenizerJson): the WordPiece vocab becomes
// the pruned vocabulary, added tokens and the post-processor's special ids follow their tokens.
import { Tokenizer } from '@huggingface/tokenizers';
import { UserError } from '../errors';
import { readJson } from '../io/atomic';
import { READ_LIMITS } from '../io/read';
import type { TextTokenizer } from './tokenizer';

/** Biggest tokenizer.json we parse (bert-base's is 466 KB, multilingual ones a few MB). */
export const MAX_TOKENIZER_JSON_BYTES = READ_LIMITS.tokenizerJson;

export type TokenizerJson = Record<string, unknown> & {
  model: Record<string, unknown> & { vocab: Record<string, number> };
};

const NORMALIZERS = new Set(['BertNormalizer', 'NFC', 'NFD', 'NFKC', 'NFKD', 'Lowercase', 'StripAccents', 'Strip']);
const PRE_TOKENIZERS = new Set(['BertPreTokenizer', 'Whitespace', 'WhitespaceSplit', 'Punctuation', 'Digits']);

/** A normalizer / pre-tokenizer: null, one of `ok`, or a Sequence of them (one level). */
function checkParts(file: string, key: string, part: unknown, ok: Set<string>, list: string): void {
  if (part === null || part === undefined) return;
  const type = (part as { type?: unknown }).type;
  const items = type === 'Sequence' ? (part as Record<string, unknown>)[list] : [part];
  if (!Array.isArray(items) || items.length > 16)
    throw new UserError(`${file}: ${key} must be a BERT ${key} or a short Sequence of them`);
  for (const p of items) {
    const t = (p as { type?: unknown } | null)?.type;
    if (typeof t !== 'string' || !ok.has(t)) {
      const what = `${key} ${JSON.stringify(t ?? null)}`;
      throw new UserError(`${file}: ${what} is not supported (only BERT-style tokenizers: ${[...ok].join(', ')})`);
    }
  }
}

/** WordPiece's longest word in characters: HF's default is 100; the work per word grows with its square. */
export const MAX_INPUT_CHARS_PER_WORD = 1000;

/** The fields the tokenizer library reads without checking: present and of the right type. */
function checkShape(file: string, j: Record<string, unknown>, model: Record<string, unknown>): void {
  const bad = (at: string, what: string): never => {
    throw new UserError(`${file}: ${at}: ${what}`);
  };
  const added = j.added_tokens;
  if (!Array.isArray(added))
    bad('/added_tokens', added === undefined ? 'missing (a list, [] for none)' : 'must be a list');
  (added as unknown[]).forEach((a, i) => {
    const o = a as Record<string, unknown> | null;
    if (typeof o !== 'object' || o === null || Array.isArray(o)) bad(`/added_tokens/${i}`, 'must be an object');
    if (typeof o!.content !== 'string') bad(`/added_tokens/${i}/content`, 'must be a string');
    if (!Number.isSafeInteger(o!.id) || (o!.id as number) < 0) bad(`/added_tokens/${i}/id`, 'must be an integer >= 0');
  });
  const m = model.max_input_chars_per_word;
  if (m !== undefined && !(Number.isInteger(m) && (m as number) >= 1 && (m as number) <= MAX_INPUT_CHARS_PER_WORD))
    bad(
      '/model/max_input_chars_per_word',
      `must be an integer from 1 to ${MAX_INPUT_CHARS_PER_WORD}, got ${JSON.stringify(m)}`,
    );
  for (const k of ['unk_token', 'continuing_subword_prefix']) {
    const s = model[k];
    if (s !== undefined && s !== null && !(typeof s === 'string' && s.length <= 100))
      bad(`/model/${k}`, 'must be a string');
  }
}

/** Parse and check a tokenizer.json: bounded size, a WordPiece model with a {token: id} vocab. */
export function readTokenizerJson(file: string): TokenizerJson {
  const j = readJson<unknown>(file, 'tokenizerJson'); // bounded (io/read.ts), depth-checked
  const model = (j as { model?: unknown } | null)?.model as Record<string, unknown> | undefined;
  if (typeof j !== 'object' || j === null || Array.isArray(j) || typeof model !== 'object' || model === null)
    throw new UserError(`${file}: expected a JSON object with a "model"`);
  if (model.type !== 'WordPiece')
    throw new UserError(
      `${file}: a ${String(model.type)} tokenizer; only BERT-style (WordPiece) tokenizers are supported`,
    );
  // BERT's normalizers and pre-tokenizers only: no regex patterns from an untrusted file (Split, Replace).
  checkParts(file, 'normalizer', (j as Record<string, unknown>).normalizer, NORMALIZERS, 'normalizers');
  checkParts(file, 'pre_tokenizer', (j as Record<string, unknown>).pre_tokenizer, PRE_TOKENIZERS, 'pretokenizers');
  const v = model.vocab;
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((x) => Number.isInteger(x)))
    throw new UserError(`${file}: /model/vocab: must be {token: id}`);
  checkShape(file, j as Record<string, unknown>, model);
  return j as TokenizerJson;
}

/** A tokenizer.json's vocab must be vocab.txt's: same tokens at the same ids (UserError otherwise). */
export function checkSameVocab(j: TokenizerJson, tokens: readonly string[], file: string): void {
  const v = j.model.vocab;
  const n = Object.keys(v).length;
  if (n !== tokens.length)
    throw new UserError(`${file}: its WordPiece vocab has ${n} tokens, vocab.txt ${tokens.length}`);
  tokens.forEach((t, i) => {
    if (v[t] !== i) throw new UserError(`${file}: token '${t}' has id ${v[t]} but is line ${i + 1} of vocab.txt`);
  });
}

/** Token strings of a text, from a tokenizer.json (no [CLS]/[SEP]); ids through the vocabulary. */
export class JsonTokenizer implements TextTokenizer {
  private readonly tok: Tokenizer;
  constructor(
    json: TokenizerJson,
    private readonly index: ReadonlyMap<string, number>,
    private readonly unkId: number,
  ) {
    // The post-processor is ours (tokenizer.ts's assemble); the library only normalises and splits.
    this.tok = new Tokenizer({ ...json, post_processor: null }, {});
  }
  tokenize(text: string): string[] {
    return this.tok.tokenize(text, { add_special_tokens: false });
  }
  idsOf(tokens: string[]): number[] {
    return tokens.map((t) => this.index.get(t) ?? this.unkId);
  }
}

/** Remap a post-processor's special token ids (TemplateProcessing, BertProcessing, Sequence) by name. */
function remapProcessor(p: unknown, ids: ReadonlyMap<string, number>): unknown {
  if (typeof p !== 'object' || p === null) return p;
  const o = structuredClone(p) as Record<string, unknown>;
  if (o.type === 'Sequence' && Array.isArray(o.processors))
    o.processors = o.processors.map((q) => remapProcessor(q, ids));
  if (o.type === 'BertProcessing' || o.type === 'RobertaProcessing') {
    for (const k of ['sep', 'cls']) {
      const pair = o[k];
      if (Array.isArray(pair) && typeof pair[0] === 'string' && ids.has(pair[0])) o[k] = [pair[0], ids.get(pair[0])];
    }
  }
  if (o.type === 'TemplateProcessing' && typeof o.special_tokens === 'object' && o.special_tokens !== null) {
    for (const st of Object.values(o.special_tokens as Record<string, { tokens?: unknown; ids?: unknown }>)) {
      if (Array.isArray(st.tokens)) st.ids = st.tokens.map((t) => ids.get(String(t)) ?? 0);
    }
  }
  return o;
}

/**
 * The tokenizer.json for another vocabulary (vocabulary pruning): the WordPiece vocab becomes
 * `tokens`, added tokens not kept are dropped and the others get their new ids, the post-processor's
 * special ids follow their names. Everything else (normalizer, pre-tokenizer, decoder) is kept.
 */
export function rewriteTokenizerJson(j: TokenizerJson, tokens: readonly string[]): TokenizerJson {
  const ids = new Map(tokens.map((t, i) => [t, i]));
  const out = structuredClone(j);
  out.model.vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));
  if (Array.isArray(out.added_tokens)) {
    out.added_tokens = (out.added_tokens as { content?: unknown; id?: number }[])
      .filter((a) => ids.has(String(a.content)))
      .map((a) => ({ ...a, id: ids.get(String(a.content)) }));
  }
  if (out.post_processor) out.post_processor = remapProcessor(out.post_processor, ids);
  return out;
}
