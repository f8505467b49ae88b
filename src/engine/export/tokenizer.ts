// The tokenizer.json an export always carries, so a server needs only `tokenizers` (Python, Rust,
// JS) to make the model's inputs. A checkpoint that came with a tokenizer.json keeps it (rewritten
// for its vocabulary, io/tokenizer-files.ts); one without gets a BERT WordPiece tokenizer built from
// its vocab.txt and tokenizer settings (lower-casing, accents, CJK characters), with [CLS] a [SEP]
// (b [SEP]) templates and truncation at the model's max_len. Either way the file is loaded with
// @huggingface/tokenizers and must split a sample of the vocabulary into the same ids as the
// engine's own tokenizer does.
import { Tokenizer } from '@huggingface/tokenizers';
import { tokenizerOf } from '../data/rows';
import { rewriteTokenizerJson, readTokenizerJson, type TokenizerJson } from '../data/tokenizer-json';
import type { Vocab } from '../data/vocab';
import { UserError } from '../errors';

/** A BERT tokenizer.json for `v` (WordPiece over its tokens, BertNormalizer with its settings). */
export function bertTokenizerJson(v: Vocab, maxLen: number): TokenizerJson {
  const t = v.tokenizer;
  const tok = (role: keyof Vocab['special']) => v.tokens[v.special[role]];
  const ids = (role: keyof Vocab['special']) => v.special[role];
  const cls = tok('cls');
  const sep = tok('sep');
  const special = (['pad', 'unk', 'cls', 'sep', 'mask'] as const).map((r) => ({
    id: ids(r),
    content: tok(r),
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const st = (id: string, type_id: number) => ({ SpecialToken: { id, type_id } });
  const seq = (id: 'A' | 'B', type_id: number) => ({ Sequence: { id, type_id } });
  return {
    version: '1.0',
    truncation: { direction: 'Right', max_length: maxLen, strategy: 'LongestFirst', stride: 0 },
    padding: null,
    added_tokens: special.sort((a, b) => a.id - b.id),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: t?.tokenizeChineseChars ?? true,
      strip_accents: t?.stripAccents ?? null,
      lowercase: t?.doLowerCase ?? true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [st(cls, 0), seq('A', 0), st(sep, 0)],
      pair: [st(cls, 0), seq('A', 0), st(sep, 0), seq('B', 1), st(sep, 1)],
      special_tokens: {
        [cls]: { id: cls, ids: [ids('cls')], tokens: [cls] },
        [sep]: { id: sep, ids: [ids('sep')], tokens: [sep] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: tok('unk'),
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(v.tokens.map((s, i) => [s, i])),
    },
  };
}

/** The tokenizer.json of an export: the checkpoint's own (for its vocabulary), else built. */
export function exportTokenizerJson(v: Vocab, maxLen: number): { json: TokenizerJson; built: boolean } {
  const src = v.tokenizer?.jsonFile;
  if (src) return { json: rewriteTokenizerJson(readTokenizerJson(src), v.tokens), built: false };
  return { json: bertTokenizerJson(v, maxLen), built: true };
}

/**
 * Load `json` with @huggingface/tokenizers and check it against the engine's tokenizer of the
 * checkpoint: a sample of whole-word vocabulary tokens must give the same ids, wrapped in [CLS] ..
 * [SEP]. Returns the number of tokens compared; a UserError names the first difference.
 */
export function checkTokenizerJson(json: TokenizerJson, v: Vocab, checkpointDir: string, file: string): number {
  let lib: Tokenizer;
  try {
    lib = new Tokenizer(json, {});
  } catch (e) {
    throw new UserError(`${file}: @huggingface/tokenizers cannot load it (${(e as Error).message})`);
  }
  const specials = new Set(Object.values(v.special));
  const words = v.tokens
    .map((t, i) => ({ t, i }))
    .filter(({ t, i }) => !specials.has(i) && !t.startsWith('##') && /^[\p{L}\p{N}]+$/u.test(t))
    .filter((_, k, a) => k % Math.max(1, Math.floor(a.length / 200)) === 0)
    .slice(0, 200)
    .map(({ t }) => t);
  if (words.length === 0) return 0;
  const text = words.join(' ');
  const ours = tokenizerOf(v, checkpointDir);
  const want = [v.special.cls, ...ours.idsOf(ours.tokenize(text)), v.special.sep];
  const got = lib.encode(text).ids;
  const at = want.findIndex((id, k) => got[k] !== id);
  if (at >= 0 || got.length !== want.length) {
    const k = at >= 0 ? at : Math.min(got.length, want.length);
    throw new UserError(
      `${file}: tokenizes differently from the checkpoint's tokenizer at token ${k} ` +
        `(id ${got[k] ?? 'none'} instead of ${want[k] ?? 'none'})`,
    );
  }
  return words.length;
}
