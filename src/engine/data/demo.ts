// The embedded default dataset: a synthetic corpus in the GAIIC-2021 track-1 format, small enough
// to pretrain + fine-tune + prune in minutes, with real learnable structure in it.
//
// How a row is made (all randomness from one seeded Rng, so a seed gives the same files anywhere):
//
// 1. The "language" is fixed (LANGUAGE_SEED, independent of the dataset seed, so every seed poses
//    the same task): token ids 0..857 like the real data, a Zipf unigram over a shuffled ranking of
//    them, and for each token a few preferred successors (a crude bigram model) so background text
//    has local structure that masked-LM pretraining can learn. The most frequent token acts as a
//    clause separator (the real data has one too: token 693, the "full stop").
// 2. Labels: first the number of labels k is drawn from the real label-count distribution, then k
//    distinct labels, each drawn with weight = its real frequency (LABEL_RATES). Rates and count
//    distribution were computed once from ../shared/datasets/gaiic2021/train.csv (8000 rows).
// 3. Each label owns 2-3 short phrases (2-4 tokens) made of tokens from a shared pool of
//    mid-frequency "finding" tokens, so a single token says little and the sequence says more.
//    A present label is mentioned by one of its phrases (sometimes two mentions).
// 4. Negated mentions: NEG + phrase of a label that is absent ("no sign of X"). A bag of words sees
//    the phrase and a negation somewhere in the row; only an order-aware model knows which phrase
//    the negation belongs to.
// 5. Noise so the task is not trivially perfect: a present label is sometimes not mentioned at all,
//    and a phrase of an absent label is sometimes mentioned without negation.
// 6. Background clauses from the bigram model fill the row up to a target length drawn from a
//    log-normal around 40 tokens (clamped to 8..100; many mentions can push a row a little past
//    100), and all clauses are shuffled and joined by the separator token.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic';
import { isOurs, markDir } from '../io/ownership';
import { UserError } from '../errors';
import { formatGaiicCsv, type Row } from './csv';
import { Rng } from './rng';

export interface DemoOptions {
  trainRows: number;
  testRows: number;
  seed: number;
}

/** Sizes of the quick preset's demo dataset. */
export const DEMO_DEFAULTS: DemoOptions = { trainRows: 3000, testRows: 600, seed: 1 };

const DEMO_VOCAB_SIZE = 858; // token ids 0..857, as in GAIIC-2021
const DEMO_NUM_LABELS = 17;

// Share of rows that carry each label 0..16, from the real train.csv (rounded to 3 decimals).
export const LABEL_RATES = [
  0.109, 0.115, 0.092, 0.045, 0.121, 0.038, 0.021, 0.104, 0.107, 0.084, 0.038, 0.102, 0.041, 0.029, 0.056, 0.183, 0.077,
];
// Share of rows with 0, 1, 2, ... 8 labels, from the same file (26% of rows have no label).
export const LABEL_COUNT_DIST = [0.263, 0.443, 0.155, 0.058, 0.021, 0.032, 0.007, 0.02, 0.002];

// Fixed seed of the language (vocabulary ranking, bigrams, phrases, negation tokens).
const LANGUAGE_SEED = 2021;
const ZIPF_EXPONENT = 1.05;
const ZIPF_OFFSET = 3; // flattens the head: the top token is ~5% of text as in the real data
const SUCCESSORS = 3; // preferred next tokens per token
const P_FOLLOW_BIGRAM = 0.45; // chance the next background token is a preferred successor
const PHRASE_POOL = [150, 858] as const; // phrase tokens come from these frequency ranks (rarer in background text)

// Per-row probabilities of the mention process.
const P_SILENT = 0.08; // a present label is not mentioned at all
const P_SECOND_MENTION = 0.25; // a present label is mentioned twice
const P_NEGATED = [0.45, 0.2]; // chance of a first, and then a second, negated mention per row
const P_SPURIOUS = 0.05; // chance of an un-negated mention of an absent label (label noise)

interface Language {
  rankToToken: number[];
  zipfCdf: Float64Array;
  successors: number[][];
  separator: number;
  negations: number[];
  phrases: number[][][]; // phrases[label] = list of token sequences
}

function cdfOf(weights: number[]): Float64Array {
  const cdf = new Float64Array(weights.length);
  let s = 0;
  weights.forEach((w, i) => (cdf[i] = s += w));
  for (let i = 0; i < cdf.length; i++) cdf[i] /= s;
  return cdf;
}

/** Index i with probability weight_i (binary search in the cumulative distribution). */
function draw(cdf: Float64Array, rng: Rng): number {
  const u = rng.next();
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid] > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function buildLanguage(): Language {
  const rng = new Rng(LANGUAGE_SEED);
  const rankToToken = rng.shuffle([...Array(DEMO_VOCAB_SIZE).keys()]);
  const zipfCdf = cdfOf(rankToToken.map((_, r) => 1 / Math.pow(r + ZIPF_OFFSET, ZIPF_EXPONENT)));
  const successors = rankToToken.map(() => Array.from({ length: SUCCESSORS }, () => rankToToken[draw(zipfCdf, rng)]));
  const separator = rankToToken[0];
  const negations = [rankToToken[7], rankToToken[13]]; // frequent function words ("no", "without")

  const pool = rankToToken.slice(PHRASE_POOL[0], PHRASE_POOL[1]);
  const seen = new Set<string>();
  const phrases: number[][][] = [];
  for (let l = 0; l < DEMO_NUM_LABELS; l++) {
    const own: number[][] = [];
    const n = 2 + rng.int(2);
    while (own.length < n) {
      const len = 2 + rng.int(3);
      const p = Array.from({ length: len }, () => pool[rng.int(pool.length)]);
      const key = p.join(' ');
      if (seen.has(key) || new Set(p).size < len) continue; // unique phrases, no repeated token
      seen.add(key);
      own.push(p);
    }
    phrases.push(own);
  }
  return { rankToToken, zipfCdf, successors, separator, negations, phrases };
}

let language: Language | undefined;
function getLanguage(): Language {
  return (language ??= buildLanguage());
}

/**
 * The fixed hidden structure of the demo data: the clause separator, the negation tokens and each
 * label's phrases. For tests, documentation and analysis views (e.g. "did the model attend to the
 * phrase?"); the model never sees it.
 */
export function demoLanguage(): { separator: number; negations: number[]; phrases: number[][][] } {
  const { separator, negations, phrases } = getLanguage();
  return { separator, negations: [...negations], phrases: phrases.map((ps) => ps.map((p) => [...p])) };
}

/** k distinct labels, each drawn with weight LABEL_RATES[label]. */
function drawLabels(k: number, rng: Rng, exclude: number[] = []): number[] {
  const w = LABEL_RATES.map((r, l) => (exclude.includes(l) ? 0 : r));
  const out: number[] = [];
  for (let j = 0; j < k; j++) {
    const l = draw(cdfOf(w), rng);
    out.push(l);
    w[l] = 0;
  }
  return out.sort((a, b) => a - b);
}

/** A background clause of n tokens from the bigram model (never the separator). */
function backgroundClause(n: number, lang: Language, rng: Rng): number[] {
  const out: number[] = [];
  let prev = -1;
  while (out.length < n) {
    const t =
      prev >= 0 && rng.next() < P_FOLLOW_BIGRAM
        ? lang.successors[prev][rng.int(SUCCESSORS)]
        : lang.rankToToken[draw(lang.zipfCdf, rng)];
    if (t === lang.separator) continue;
    out.push(t);
    prev = t;
  }
  return out;
}

function generateRow(id: string, lang: Language, rng: Rng): Row {
  const labels = drawLabels(draw(cdfOf(LABEL_COUNT_DIST), rng), rng);
  const pick = (l: number) => lang.phrases[l][rng.int(lang.phrases[l].length)];

  // Mentions of present labels (some silent, some twice), negated mentions of absent labels, and
  // rarely an un-negated mention of an absent label (noise).
  const mentions: number[][] = [];
  for (const l of labels) {
    if (rng.next() < P_SILENT) continue;
    mentions.push(pick(l));
    if (rng.next() < P_SECOND_MENTION) mentions.push(pick(l));
  }
  const absent = (n: number) => (labels.length + n <= DEMO_NUM_LABELS ? drawLabels(n, rng, labels) : []);
  let negated = 0;
  while (negated < P_NEGATED.length && rng.next() < P_NEGATED[negated]) negated++;
  for (const l of absent(negated)) mentions.push([lang.negations[rng.int(lang.negations.length)], ...pick(l)]);
  if (rng.next() < P_SPURIOUS) for (const l of absent(1)) mentions.push(pick(l));
  // Each mention clause may start with a few background tokens ("left lower lobe" + phrase). Leads
  // contain no negation token, so a negation right before a phrase always means "absent".
  const lead = () => backgroundClause(rng.int(3), lang, rng).filter((t) => !lang.negations.includes(t));
  const withLead = mentions.map((m) => [...lead(), ...m]);

  // Fill with background clauses up to the target length.
  const target = Math.min(100, Math.max(8, Math.round(Math.exp(Math.log(36) + 0.5 * rng.normal()))));
  const clauses = [...withLead];
  let used = withLead.reduce((s, c) => s + c.length + 1, 0);
  while (used < target) {
    const n = Math.min(3 + rng.int(7), Math.max(2, target - used - 1));
    clauses.push(backgroundClause(n, lang, rng));
    used += n + 1;
  }
  rng.shuffle(clauses);
  const tokens: number[] = [];
  clauses.forEach((c, i) => {
    if (i > 0) tokens.push(lang.separator);
    tokens.push(...c);
  });
  tokens.push(lang.separator); // reports end with a full stop
  return { id, tokens, labels, line: 0 };
}

export function generateDemo(o: DemoOptions): { train: Row[]; test: Row[] } {
  for (const [k, v] of Object.entries(o)) {
    if (!Number.isInteger(v) || (k !== 'seed' && v < 1))
      throw new Error(`demo option ${k} must be a positive integer, got ${v}`);
  }
  const lang = getLanguage();
  const rng = new Rng(o.seed);
  const train = Array.from({ length: o.trainRows }, (_, i) => generateRow(String(i), lang, rng));
  const test = Array.from({ length: o.testRows }, (_, i) => generateRow(String(o.trainRows + i), lang, rng));
  return { train, test };
}

const CONSONANTS = 'bdfgklmnprstvz';
const VOWELS = 'aeiou';

/**
 * The pronounceable pseudo-word of a demo token id: consonant-vowel syllables, the id's digits in base
 * 70 from the lowest ("ba" is 0), at least two: 0 -> "baba", 1 -> "beba", 71 -> "bebe". Distinct ids
 * give distinct words (every syllable is two letters).
 */
export function demoWord(id: number): string {
  const n = CONSONANTS.length * VOWELS.length;
  let w = '';
  let rest = id;
  do {
    const s = rest % n;
    w += CONSONANTS[Math.floor(s / VOWELS.length)] + VOWELS[s % VOWELS.length];
    rest = Math.floor(rest / n);
  } while (rest > 0 || w.length < 4);
  return w;
}

/** Rows as JSON lines {"id", "text", "labels"}: each token id written as its pseudo-word. */
export function formatDemoJsonl(rows: Row[]): string {
  return rows
    .map((r) =>
      JSON.stringify({
        id: r.id,
        text: r.tokens.map(demoWord).join(' '),
        ...(r.labels !== null ? { labels: r.labels } : {}),
      }),
    )
    .map((l) => l + '\n')
    .join('');
}

export type DemoFormat = 'gaiic' | 'jsonl';

/**
 * Write dir/train.csv, dir/test.csv (labels kept, so evaluation works) and dir/README.md; with format
 * 'jsonl', dir/train.jsonl and dir/test.jsonl: the same rows as raw text.
 */
export function writeDemo(
  dir: string,
  o: DemoOptions,
  force = false,
  format: DemoFormat = 'gaiic',
): { train: string; test: string } {
  const ext = format === 'jsonl' ? 'jsonl' : 'csv';
  const files = { train: path.join(dir, `train.${ext}`), test: path.join(dir, `test.${ext}`) };
  // Regenerating demo data in place is fine; overwriting a user's own data folder is not (the
  // folder's .bert-pruner marker, or for older folders our README, says it is ours).
  const isDemo = fs.existsSync(dir) && isOurs(dir, 'demo-data');
  for (const f of [files.train, files.test, path.join(dir, 'README.md')]) {
    if (fs.existsSync(f) && !isDemo && !force) {
      const why = 'refusing to overwrite it (choose another --out, or pass --force)';
      throw new UserError(`${f}: exists and is not demo data; ${why}`);
    }
  }
  const { train, test } = generateDemo(o);
  // The marker goes only into a folder that holds nothing else: a folder of the user's we write
  // into stays theirs.
  const fresh = !fs.existsSync(dir) || fs.readdirSync(dir).length === 0;
  fs.mkdirSync(dir, { recursive: true });
  if (fresh) markDir(dir, 'demo-data');
  const write = format === 'jsonl' ? formatDemoJsonl : formatGaiicCsv;
  writeFileAtomic(files.train, write(train));
  writeFileAtomic(files.test, write(test));
  writeFileAtomic(path.join(dir, 'README.md'), demoReadme(o) + (format === 'jsonl' ? DEMO_JSONL_NOTE : ''));
  return files;
}

const DEMO_JSONL_NOTE = `
## Raw-text variant (\`demo-data --format jsonl\`)

\`train.jsonl\` and \`test.jsonl\` hold the same rows as raw text, one JSON object a line:
\`{"id": "...", "text": "...", "labels": [...]}\`. Each token id is written as a pronounceable pseudo-word
(consonant-vowel syllables from the id, demoWord in demo.ts), so corpus-vocab builds a WordPiece vocabulary
from the words and the tokenizer encodes them.
`;

function demoReadme(o: DemoOptions): string {
  return `# Synthetic demo data (GAIIC-2021 track-1 format)

Generated by bert-pruner's demo generator (src/engine/data/demo.ts) with seed ${o.seed}:
\`train.csv\` ${o.trainRows} rows, \`test.csv\` ${o.testRows} rows (with labels, for evaluation).

Format: \`id|,|t1 t2 ...|,|l1 l2 ...\`, tokens 0..${DEMO_VOCAB_SIZE - 1}, labels 0..${DEMO_NUM_LABELS - 1}.

- Background text: a Zipf unigram with a simple bigram structure over token ids, split into clauses
  by a separator token; lengths around 40 tokens (about 8..100).
- Labels: label count and label frequencies follow the real GAIIC-2021 training data (about 26% of
  rows have no label).
- Each label has 2-3 characteristic phrases of 2-4 tokens; a present label is usually mentioned.
- Negated mentions (a negation token right before a phrase) mean the label is absent, so word order
  matters; some labels go unmentioned and some phrases appear without their label (noise).

The same seed always gives the same files. This is not real data: scores on it say that the
pipeline works, not how well a model does on medical reports.
`;
}
