// The tokenizer files saved with every checkpoint, so HF's AutoTokenizer (and our own loader) read the
// same tokenization the model was trained with:
//   tokenizer_config.json    do_lower_case, strip_accents, tokenize_chinese_chars, model_max_length,
//                            tokenizer_class "BertTokenizer", the special tokens by name
//   special_tokens_map.json  the special tokens by name
//   tokenizer.json           when the source checkpoint had one, rewritten for the checkpoint's
//                            vocabulary (after vocabulary pruning: the pruned one)
// The settings come from the vocabulary's source (Vocab.tokenizer, read with it), so they are carried
// from a HF folder through finetune, prune and refinetune.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rewriteTokenizerJson, readTokenizerJson } from '../data/tokenizer-json';
import type { SpecialIds, Vocab } from '../data/vocab';
import { writeJsonAtomic } from './atomic';

/** The special tokens by HF's names (pad_token, ...), from the vocabulary's ids. */
export function specialTokenNames(v: Vocab): Record<string, string> {
  const roles: (keyof SpecialIds)[] = ['unk', 'sep', 'pad', 'cls', 'mask'];
  return Object.fromEntries(roles.map((r) => [`${r}_token`, v.tokens[v.special[r]]]));
}

/** tokenizer_config.json's content for a vocabulary. */
export function tokenizerConfig(v: Vocab, modelMaxLength: number): Record<string, unknown> {
  const t = v.tokenizer;
  return {
    tokenizer_class: 'BertTokenizer',
    do_lower_case: t?.doLowerCase ?? true,
    strip_accents: t?.stripAccents ?? null,
    tokenize_chinese_chars: t?.tokenizeChineseChars ?? true,
    model_max_length: t?.modelMaxLength ?? modelMaxLength,
    ...specialTokenNames(v),
  };
}

/** Write the tokenizer files of `v` into a checkpoint directory being made. */
export function writeTokenizerFiles(dir: string, v: Vocab, modelMaxLength: number): void {
  writeJsonAtomic(path.join(dir, 'tokenizer_config.json'), tokenizerConfig(v, modelMaxLength));
  writeJsonAtomic(path.join(dir, 'special_tokens_map.json'), specialTokenNames(v));
  const src = v.tokenizer?.jsonFile;
  if (src && fs.existsSync(src)) {
    const j = rewriteTokenizerJson(readTokenizerJson(src), v.tokens);
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(j) + '\n');
  }
}
