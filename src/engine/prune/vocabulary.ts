// Vocabulary pruning (TextPruner's VocabularyPruner): keep the tokens the corpus uses at least
// min_count times, and the special tokens always; cut the word-embedding rows of the removed ones
// and, when there is an MLM head (prune_lm_head true or auto), its output bias (the decoder weight
// is tied to the embeddings, so it follows). Kept tokens keep their relative order. The special
// tokens (found by name, wherever they are: vocab.special) are always kept; bert-pruner's own stay
// at ids 0..4. vocab.txt and token_counts.json are rewritten by saveCheckpoint.
//
// An input made only of kept tokens gets exactly the same logits: its embedding rows are the
// same, only their ids changed. Removed tokens become [UNK] when text is encoded with the new vocab.
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type { VocabularyPruneConfig } from '../config/settings';
import { specialIdList, SpecialIds, Vocab } from '../data/vocab';
import { UserError } from '../errors';
import type { BertConfig } from '../model/config';
import { MLM_BIAS as LM_BIAS, MLM_PREFIX, WORD_EMB } from '../model/names';
import type { Params } from '../model/params';
import { readTextBounded } from '../io/read';

export interface VocabularyPruneResult {
  cfg: BertConfig;
  vocab: Vocab;
  before: number;
  after: number;
  removed: number;
  lmHead: boolean; // whether the MLM output layer was pruned too
}

/** Corpus counts per vocab id, from a corpus file (one text per line, tokens separated by spaces). */
export function countCorpus(file: string, vocab: Vocab): number[] {
  if (!fs.existsSync(file)) throw new UserError(`${file}: corpus file not found`);
  const counts = vocab.tokens.map(() => 0);
  for (const line of readTextBounded(file, 'text').split('\n')) {
    for (const t of line.trim().split(/\s+/)) {
      if (t === '') continue;
      const id = vocab.index.get(t);
      if (id !== undefined) counts[id]++;
    }
  }
  return counts;
}

/** Ids to keep: the special tokens (wherever they are) and every token counted >= minCount times, in id order. */
function keptTokenIds(counts: number[], minCount: number, special: SpecialIds): number[] {
  const keep = new Set(specialIdList(special));
  return counts.map((c, i) => i).filter((i) => keep.has(i) || counts[i] >= minCount);
}

export function pruneVocabulary(
  params: Params,
  cfg: BertConfig,
  vocab: Vocab,
  counts: number[],
  vc: VocabularyPruneConfig,
  source = 'vocabulary',
): VocabularyPruneResult {
  if (counts.length !== vocab.tokens.length)
    throw new Error(`vocabulary pruning: ${counts.length} counts for ${vocab.tokens.length} tokens`);
  const hasLm = params.has(LM_BIAS);
  if (vc.prune_lm_head === true && !hasLm)
    throw new UserError(`${source}: prune_lm_head is true but the checkpoint has no MLM head (use 'auto')`);
  const keep = keptTokenIds(counts, vc.min_count, vocab.special);
  const idx = tf.tensor1d(keep, 'int32');
  const names = [WORD_EMB, ...(hasLm && vc.prune_lm_head !== false ? [LM_BIAS] : [])];
  for (const name of names) {
    const old = params.get(name)!;
    const next = tf.gather(old, idx, 0);
    params.set(name, tf.variable(next, true));
    next.dispose();
    old.dispose();
  }
  idx.dispose();
  // The MLM decoder is tied to the embeddings, so an unpruned LM bias no longer fits: drop the head.
  if (hasLm && vc.prune_lm_head === false) {
    for (const n of [...params.keys()].filter((n) => n.startsWith(MLM_PREFIX))) {
      params.get(n)!.dispose();
      params.delete(n);
    }
  }
  const tokens = keep.map((i) => vocab.tokens[i]);
  const kept = keep.map((i) => counts[i]);
  const index = new Map(tokens.map((t, i) => [t, i]));
  const next: BertConfig = { ...structuredClone(cfg), vocab_size: keep.length };
  return {
    cfg: next,
    vocab: { tokens, counts: kept, index, special: newIds(vocab.special, keep), tokenizer: vocab.tokenizer },
    before: vocab.tokens.length,
    after: keep.length,
    removed: vocab.tokens.length - keep.length,
    lmHead: names.includes(LM_BIAS),
  };
}

/** The special ids after the cut: each one's position among the kept ids. */
function newIds(s: SpecialIds, keep: number[]): SpecialIds {
  const at = new Map(keep.map((id, i) => [id, i]));
  const m = (id: number) => at.get(id)!;
  return { pad: m(s.pad), unk: m(s.unk), cls: m(s.cls), sep: m(s.sep), mask: m(s.mask) };
}
