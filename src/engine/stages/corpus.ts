// corpus-vocab: the run's data and vocabulary.
//   <run>/data/train.csv, test.csv   the labeled training rows and the test rows (copied from the
//                                    data folder, or carved from train.csv with --test-split)
//   <run>/corpus.txt                 one text per line (train + test texts; never test labels)
//   <run>/vocab/vocab.txt            [PAD] [UNK] [CLS] [SEP] [MASK] + tokens by frequency
//   <run>/vocab/token_counts.json    corpus count of each vocab entry (for vocabulary pruning)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readGaiicCsv, Row, writeGaiicCsv } from '../data/csv';
import { splitRows } from '../data/split';
import { buildVocab, Vocab, writeVocab } from '../data/vocab';
import { UserError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { log, StageContext } from './context';
import { formatMetrics } from '../format';
import { ensureRun, runStage } from './context';
import type { StageRun } from './registry';

export interface CorpusOptions {
  data: string; // folder with train.csv [and test.csv]
  run: string;
  testSplit?: number; // carve a test split out of train.csv when there is no test.csv
  seed: number;
  skipBadRows?: boolean;
}

export const runPaths = (run: string) => ({
  train: path.join(run, 'data', 'train.csv'),
  test: path.join(run, 'data', 'test.csv'),
  corpus: path.join(run, 'corpus.txt'),
  vocab: path.join(run, 'vocab'),
  pretrain: path.join(run, 'pretrain'),
  pretrainLast: path.join(run, 'pretrain-last'),
  finetune: path.join(run, 'finetune'),
  finetuneLast: path.join(run, 'finetune-last'),
  pruned: path.join(run, 'pruned'),
  refinetune: path.join(run, 'refinetune'),
  refinetuneLast: path.join(run, 'refinetune-last'),
});

function readRows(file: string, ctx: StageContext, opts: { skipBadRows?: boolean; requireLabels?: boolean }): Row[] {
  const { rows, skipped } = readGaiicCsv(file, opts);
  if (skipped.length) {
    const reasons = skipped.slice(0, 5).map((s) => `  line ${s.line}: ${s.reason}`).join('\n');
    log(ctx, `${file}: skipped ${skipped.length} bad row(s) (--skip-bad-rows):\n${reasons}${skipped.length > 5 ? '\n  ...' : ''}`, 'warn');
  }
  return rows;
}

export async function corpusVocab(o: CorpusOptions, ctx: StageContext): Promise<{ metrics: Record<string, number>; vocab: Vocab; train: Row[]; test: Row[] }> {
  if (!fs.existsSync(o.data) || !fs.statSync(o.data).isDirectory()) throw new UserError(`${o.data}: not a data folder (it needs train.csv, and test.csv or --test-split)`);
  const trainFile = path.join(o.data, 'train.csv');
  const testFile = path.join(o.data, 'test.csv');
  let train = readRows(trainFile, ctx, { skipBadRows: o.skipBadRows, requireLabels: true });
  let test: Row[];
  if (fs.existsSync(testFile)) {
    if (o.testSplit) log(ctx, `${testFile} exists: --test-split is ignored`, 'warn');
    test = readRows(testFile, ctx, { skipBadRows: o.skipBadRows });
  } else {
    if (!o.testSplit) throw new UserError(`${o.data}: has no test.csv; pass --test-split F (e.g. 0.2) to carve a seeded test split out of train.csv`);
    ({ train, test } = splitRows(train, o.testSplit, o.seed));
    log(ctx, `carved a test split of ${test.length} rows (fraction ${o.testSplit}, seed ${o.seed}) out of ${trainFile}`);
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
  log(ctx, `corpus: ${texts.length} texts, ${tokens} tokens; vocab: ${vocab.tokens.length} entries; train ${train.length} rows, test ${test.length} rows`);
  return { metrics: { texts: texts.length, tokens, vocab_size: vocab.tokens.length, train_rows: train.length, test_rows: test.length }, vocab, train, test };
}

export const runCorpusVocab: StageRun<'corpus-vocab'> = async ({ args, ctx, runDir, settings, preset }) => {
  const data = { dir: args.data, testSplit: args['test-split'], seed: settings.seed };
  ensureRun(runDir, { preset, settings, backend: ctx.backend, data });
  const o = { data: args.data, run: runDir, testSplit: args['test-split'], seed: settings.seed, skipBadRows: args['skip-bad-rows'] };
  const r = await runStage(ctx, runDir, 'corpus-vocab', 'corpus-vocab', () => corpusVocab(o, ctx));
  return { result: r.metrics, text: formatMetrics('corpus-vocab', r.metrics) };
};
