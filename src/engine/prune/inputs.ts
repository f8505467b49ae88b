// What pruning scores on: the rows for head / FFN importance, the token counts for the vocabulary.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TransformerPruneConfig } from '../config/settings';
import type { Row } from '../data/csv';
import { Rng } from '../data/rng';
import { dataFormat, readRows, tokenizerIn } from '../data/rows';
import { COUNTS_FILE } from '../data/vocab';
import { UserError } from '../errors';
import type { Checkpoint } from '../io/checkpoint';
import { countCorpus } from './vocabulary';
import type { PruneStageOptions } from './options';
import { readTextBounded } from '../io/read';

/** The rows importance is scored on: the data file, or the corpus for importance_data 'corpus'. */
export function importanceRows(o: PruneStageOptions, tc: TransformerPruneConfig | undefined, dataRows: Row[]): Row[] {
  let rows = dataRows;
  if (tc?.importance_data === 'corpus' && o.corpusFile) {
    if (!tc.use_logits)
      throw new UserError(
        `${o.configFile ?? 'prune config'}: importance_data 'corpus' has no labels; it needs use_logits true`,
      );
    rows = readTextBounded(o.corpusFile, 'text')
      .split('\n')
      .map((l, i) => ({
        id: `corpus-${i + 1}`,
        tokens: l.trim().split(/\s+/).filter(Boolean).map(Number),
        labels: null,
        line: i + 1,
      }))
      .filter((r) => r.tokens.length > 0 && r.tokens.every((t) => Number.isSafeInteger(t) && t >= 0));
  }
  if (tc?.max_examples && rows.length > tc.max_examples) {
    // A seeded subset, in the original order.
    const pick = new Set(new Rng(o.seed).shuffle(rows.map((_, i) => i)).slice(0, tc.max_examples));
    rows = rows.filter((_, i) => pick.has(i));
  }
  return rows;
}

/**
 * Vocabulary counts: from the corpus file when given, else the checkpoint's token_counts.json; a
 * checkpoint without counts (a HF folder's vocabulary, fine-tuned) gets them from `o.countTexts`
 * (the run's raw-text files) tokenized with its own tokenizer.
 */
export function vocabCounts(o: PruneStageOptions, ck: Checkpoint): number[] {
  if (o.corpusFile) return countCorpus(o.corpusFile, ck.vocab);
  const file = path.join(o.model, COUNTS_FILE);
  const none = !fs.existsSync(file) || ck.vocab.counts.every((c) => c === 0);
  const texts = (o.countTexts ?? []).filter((f) => fs.existsSync(f) && dataFormat(f) !== 'gaiic');
  if (none && texts.length) {
    const counts = ck.vocab.tokens.map(() => 0);
    const tokenizer = tokenizerIn(o.model);
    for (const f of texts)
      for (const r of readRows(f, { tokenizer }).rows) for (const id of [...r.tokens, ...(r.pair ?? [])]) counts[id]++;
    return counts;
  }
  if (none) {
    throw new UserError(
      `${file}: vocabulary pruning needs the corpus token counts (written by corpus-vocab), or a corpus file`,
    );
  }
  return ck.vocab.counts;
}
