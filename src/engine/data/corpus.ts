// The run's data and vocabulary (the corpus-vocab stage):
//   <run>/data/train.csv, test.csv   the labeled training rows and the test rows (copied from the
//                                    data folder, or carved from train.csv with --test-split)
//   <run>/corpus.txt                 one text per line (train + test texts; never test labels)
//   <run>/vocab/vocab.txt            [PAD] [UNK] [CLS] [SEP] [MASK] + tokens by frequency
//   <run>/vocab/token_counts.json    corpus count of each vocab entry (for vocabulary pruning)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readGaiicCsv, Row, writeGaiicCsv } from './csv';
import { splitRows } from './split';
import { buildVocab, Vocab, writeVocab } from './vocab';
import { UserError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { runPaths } from '../io/paths';
import { log, StageContext } from '../stages/context';

export interface CorpusOptions {
  data: string; // folder with train.csv [and test.csv]
  run: string;
  testSplit?: number; // carve a test split out of train.csv when there is no test.csv
  seed: number;
  skipBadRows?: boolean;
}

function readRows(file: string, ctx: StageContext, opts: { skipBadRows?: boolean; requireLabels?: boolean }): Row[] {
  const { rows, skipped } = readGaiicCsv(file, { ...opts, progress: (m) => log(ctx, m) });
  if (skipped.length) {
    const reasons = skipped
      .slice(0, 5)
      .map((s) => `  line ${s.line}: ${s.reason}`)
      .join('\n');
    log(
      ctx,
      `${file}: skipped ${skipped.length} bad row(s) (--skip-bad-rows):\n` +
        `${reasons}${skipped.length > 5 ? '\n  ...' : ''}`,
      'warn',
    );
  }
  return rows;
}

export async function corpusVocab(
  o: CorpusOptions,
  ctx: StageContext,
): Promise<{ metrics: Record<string, number>; vocab: Vocab; train: Row[]; test: Row[] }> {
  if (!fs.existsSync(o.data) || !fs.statSync(o.data).isDirectory())
    throw new UserError(`${o.data}: not a data folder (it needs train.csv, and test.csv or --test-split)`);
  const trainFile = path.join(o.data, 'train.csv');
  const testFile = path.join(o.data, 'test.csv');
  let train = readRows(trainFile, ctx, { skipBadRows: o.skipBadRows, requireLabels: true });
  let test: Row[];
  if (fs.existsSync(testFile)) {
    if (o.testSplit) log(ctx, `${testFile} exists: --test-split is ignored`, 'warn');
    test = readRows(testFile, ctx, { skipBadRows: o.skipBadRows });
  } else {
    if (!o.testSplit)
      throw new UserError(
        `${o.data}: has no test.csv; pass --test-split F (e.g. 0.2) to carve a seeded test split out of train.csv`,
      );
    ({ train, test } = splitRows(train, o.testSplit, o.seed));
    log(
      ctx,
      `carved a test split of ${test.length} rows (fraction ${o.testSplit}, seed ${o.seed}) out of ${trainFile}`,
    );
  }
  if (train.length === 0) throw new UserError(`${trainFile}: no rows`);
  const p = runPaths(o.run);
  fs.mkdirSync(path.dirname(p.train), { recursive: true });
  writeGaiicCsv(p.train, train);
  writeGaiicCsv(p.test, test);
  // The corpus: texts a user has, train and test alike; test labels never enter it.
  const texts = [...train, ...test].map((r) => r.tokens);
  writeFileAtomic(p.corpus, texts.map((t) => t.join(' ')).join('\n') + '\n');
  const vocab = buildVocab(texts);
  writeVocab(p.vocab, vocab);
  const tokens = texts.reduce((a, t) => a + t.length, 0);
  log(
    ctx,
    `corpus: ${texts.length} texts, ${tokens} tokens; vocab: ${vocab.tokens.length} entries; ` +
      `train ${train.length} rows, test ${test.length} rows`,
  );
  return {
    metrics: {
      texts: texts.length,
      tokens,
      vocab_size: vocab.tokens.length,
      train_rows: train.length,
      test_rows: test.length,
    },
    vocab,
    train,
    test,
  };
}
