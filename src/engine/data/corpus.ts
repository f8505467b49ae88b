// The run's data and vocabulary (the corpus-vocab stage):
//   <run>/data/train.csv, test.csv   the labeled training rows and the test rows (copied from the
//                                    data folder, or carved from train.csv with --test-split)
//   <run>/data/train.jsonl, test.jsonl  the same for raw-text data (train.jsonl, or train.csv with a
//                                    header): {"id", "text", "text_pair"?, "labels"?} a line, and the
//                                    vocabulary is a WordPiece one built from the texts (text-vocab.ts)
//   <run>/corpus.txt                 one text per line (train + test texts; never test labels)
//   <run>/vocab/vocab.txt            [PAD] [UNK] [CLS] [SEP] [MASK] + tokens by frequency
//   <run>/vocab/token_counts.json    corpus count of each vocab entry (for vocabulary pruning)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readGaiicCsv, Row, writeGaiicCsv } from './csv';
import { splitRows } from './split';
import { dataFormat, readTextRows, tokenizeRows, type TextRow } from './rows';
import { buildTextVocab, DEFAULT_TEXT_VOCAB_SIZE } from './text-vocab';
import { BertTokenizer } from './tokenizer';
import { buildVocab, Vocab, writeVocab } from './vocab';
import { UserError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { runPaths } from '../io/paths';
import { log, StageContext } from '../context';

export interface CorpusOptions {
  data: string; // folder with train.csv [and test.csv]
  run: string;
  testSplit?: number; // carve a test split out of train.csv when there is no test.csv
  seed: number;
  skipBadRows?: boolean;
  /** Raw-text data: the most vocabulary entries (specials included). */
  vocabSize?: number;
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
    throw new UserError(
      `${o.data}: not a data folder (it needs train.csv or train.jsonl, and a test file or --test-split)`,
    );
  const raw = rawTextFiles(o.data);
  if (raw) return corpusVocabText(o, ctx, raw);
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
  const data = path.dirname(p.train);
  // the data files of a raw-text corpus-vocab before this one
  for (const f of ['train.jsonl', 'test.jsonl']) fs.rmSync(path.join(data, f), { force: true });
  writeGaiicCsv(path.join(data, 'train.csv'), train);
  writeGaiicCsv(path.join(data, 'test.csv'), test);
  // The corpus: texts a user has, train and test alike; test labels never enter it.
  const texts = [...train, ...test].map((r) => r.tokens);
  writeFileAtomic(p.corpus, texts.map((t) => t.join(' ')).join('\n') + '\n');
  const vocab = buildVocab(texts);
  writeVocab(p.vocab, vocab);
  const tokens = texts.reduce((a, t) => a + t.length, 0);
  return corpusResult(ctx, { texts: texts.length, tokens, unit: 'tokens' }, vocab, train, test);
}

/** A raw-text data folder's train and test files (train.jsonl, or train.csv with a header), or null. */
function rawTextFiles(dir: string): { train: string; test: string | null } | null {
  const pick = (name: string) => {
    const jsonl = path.join(dir, `${name}.jsonl`);
    if (fs.existsSync(jsonl)) return jsonl;
    const csv = path.join(dir, `${name}.csv`);
    return fs.existsSync(csv) && dataFormat(csv) === 'csv' ? csv : null;
  };
  const train = pick('train');
  return train ? { train, test: pick('test') } : null;
}

function warnSkipped(ctx: StageContext, file: string, skipped: { line: number; reason: string }[]): void {
  if (!skipped.length) return;
  const reasons = skipped
    .slice(0, 5)
    .map((s) => `  line ${s.line}: ${s.reason}`)
    .join('\n');
  log(ctx, `${file}: skipped ${skipped.length} bad row(s) (--skip-bad-rows):\n${reasons}`, 'warn');
}

/** corpus-vocab on raw text: the rows as JSON lines, a WordPiece vocabulary built from the texts. */
function corpusVocabText(
  o: CorpusOptions,
  ctx: StageContext,
  files: { train: string; test: string | null },
): { metrics: Record<string, number>; vocab: Vocab; train: Row[]; test: Row[] } {
  const r = readTextRows(files.train, { requireLabels: true, skipBadRows: o.skipBadRows });
  warnSkipped(ctx, files.train, r.skipped);
  // Labels are written back as the file gave them: names stay names (the fine-tuning reads the set
  // from them), ids stay ids.
  const named = (rows: TextRow[], names: string[] | null) =>
    names ? rows.map((x) => ({ ...x, labelNames: x.labels?.map((l) => names[l]) })) : rows;
  let train: (TextRow & { labelNames?: string[] })[] = named(r.rows, r.labels.names);
  let test: (TextRow & { labelNames?: string[] })[];
  if (files.test) {
    if (o.testSplit) log(ctx, `${files.test} exists: --test-split is ignored`, 'warn');
    const t = readTextRows(files.test, { skipBadRows: o.skipBadRows });
    warnSkipped(ctx, files.test, t.skipped);
    test = named(t.rows, t.labels.names);
  } else {
    if (!o.testSplit)
      throw new UserError(
        `${o.data}: has no test file; ` +
          `pass --test-split F (e.g. 0.2) to carve a seeded test split out of ${files.train}`,
      );
    ({ train, test } = splitRows(train, o.testSplit, o.seed));
    log(
      ctx,
      `carved a test split of ${test.length} rows (fraction ${o.testSplit}, seed ${o.seed}) out of ${files.train}`,
    );
  }
  const p = runPaths(o.run);
  const data = path.dirname(p.train);
  fs.mkdirSync(data, { recursive: true });
  for (const f of ['train.csv', 'test.csv']) fs.rmSync(path.join(data, f), { force: true }); // a GAIIC run before
  const toJsonl = (rows: (TextRow & { labelNames?: string[] })[]) =>
    rows
      .map((x) =>
        JSON.stringify({
          id: x.id,
          text: x.text,
          ...(x.textPair !== undefined ? { text_pair: x.textPair } : {}),
          ...(x.labels !== null ? { labels: x.labelNames ?? x.labels } : {}),
        }),
      )
      .join('\n') + '\n';
  writeFileAtomic(path.join(data, 'train.jsonl'), toJsonl(train));
  writeFileAtomic(path.join(data, 'test.jsonl'), toJsonl(test));
  const texts: string[] = [];
  for (const x of [...train, ...test]) {
    texts.push(x.text);
    if (x.textPair !== undefined) texts.push(x.textPair);
  }
  const vocab = buildTextVocab(texts, o.vocabSize ?? DEFAULT_TEXT_VOCAB_SIZE);
  writeVocab(p.vocab, vocab);
  // The corpus as the tokenizer sees it: one text a line, its WordPiece tokens separated by spaces.
  const tok = new BertTokenizer(vocab.index);
  const lines = texts.map((t) => tok.tokenize(t).join(' '));
  writeFileAtomic(p.corpus, lines.join('\n') + '\n');
  const tokens = lines.reduce((a, l) => a + (l === '' ? 0 : l.split(' ').length), 0);
  const counts = { texts: texts.length, tokens, unit: 'WordPiece tokens' };
  return corpusResult(ctx, counts, vocab, tokenizeRows(train, tok), tokenizeRows(test, tok));
}

/** The corpus-vocab stage's log line and result, for GAIIC and raw-text data alike. */
function corpusResult(
  ctx: StageContext,
  c: { texts: number; tokens: number; unit: string },
  vocab: Vocab,
  train: Row[],
  test: Row[],
) {
  const trainRows = train.length;
  const testRows = test.length;
  log(
    ctx,
    `corpus: ${c.texts} texts, ${c.tokens} ${c.unit}; vocab: ${vocab.tokens.length} entries; ` +
      `train ${trainRows} rows, test ${testRows} rows`,
  );
  const metrics = {
    texts: c.texts,
    tokens: c.tokens,
    vocab_size: vocab.tokens.length,
    train_rows: trainRows,
    test_rows: testRows,
  };
  return { metrics, vocab, train, test };
}
