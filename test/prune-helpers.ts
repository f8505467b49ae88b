// Shared by the prune-*.test.ts files: a tiny classifier with weights large enough that every head
// and neuron matters, and a few random batches.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { TEXTPRUNER_DEFAULTS } from '../src/engine/config/presets';
import type { ModelSettings, TransformerPruneConfig } from '../src/engine/config/settings';
import { formatGaiicCsv, Row } from '../src/engine/data/csv';
import { makeBatches, type Batch, type Example } from '../src/engine/data/encode';
import { Rng } from '../src/engine/data/rng';
import { buildVocab, DEFAULT_SPECIAL, SPECIAL_TOKENS, type Vocab } from '../src/engine/data/vocab';
import { classify, toInputs } from '../src/engine/model/bert';
import { BertConfig, makeConfig } from '../src/engine/model/config';
import { initParams, Params } from '../src/engine/model/params';

export function tinyModel(
  o: { heads?: number; ffn?: number; layers?: number; vocab?: number; seed?: number; mlm?: boolean } = {},
): { cfg: BertConfig; params: Params } {
  const m: ModelSettings = {
    hidden_size: 32,
    num_hidden_layers: o.layers ?? 2,
    num_attention_heads: o.heads ?? 4,
    intermediate_size: o.ffn ?? 64,
    max_position_embeddings: 64,
    max_len: 16,
    hidden_dropout_prob: 0.1,
    attention_probs_dropout_prob: 0.1,
    // Far larger than BERT's 0.02, so that attention is not uniform and units differ in importance.
    initializer_range: 0.3,
  };
  const cfg = makeConfig(m, o.vocab ?? 40, 'classification');
  const params = initParams(cfg, { mlm: o.mlm ?? false, classifier: true, seed: o.seed ?? 1 });
  // HF initialises biases to 0; nonzero ones make the tests see the bias terms too.
  const rng = new Rng((o.seed ?? 1) + 1000);
  for (const [name, v] of params) {
    if (name.endsWith('.bias'))
      v.assign(
        tf.tensor(
          Float32Array.from({ length: v.size }, () => 0.2 * rng.normal()),
          v.shape,
        ),
      );
  }
  return { cfg, params };
}

/** Random examples over ids 5..vocab-1, lengths 3..maxLen, random multi-hot labels. */
export function randomExamples(n: number, vocab: number, seed = 3, maxLen = 12): Example[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, row) => {
    const len = 3 + rng.int(maxLen - 2);
    const ids = new Int32Array(len).map(() => 5 + rng.int(vocab - 5));
    ids[0] = 2;
    ids[len - 1] = 3;
    const labels = new Float32Array(17).map(() => (rng.next() < 0.2 ? 1 : 0));
    return { ids, labels, row };
  });
}

export function batchesOf(ex: Example[], batchSize: number): Batch[] {
  return makeBatches(ex, { batchSize });
}

export function logitsOf(params: Params, cfg: BertConfig, b: Batch): Float32Array {
  return tf.tidy(() => classify(params, cfg, toInputs(b.ids, b.mask, b.B, b.T)).dataSync() as Float32Array);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `bert-pruner-${prefix}-`));
}

/** GAIIC rows over corpus tokens 100..100+k, and a vocab built from them. */
export function corpusRows(n: number, seed = 5, distinct = 30): { rows: Row[]; vocab: Vocab } {
  const rng = new Rng(seed);
  const rows: Row[] = Array.from({ length: n }, (_, i) => {
    const len = 3 + rng.int(8);
    // Skewed so that some tokens are rare (vocabulary pruning has something to remove).
    const tokens = Array.from({ length: len }, () => 100 + Math.floor(distinct * rng.next() ** 2));
    const labels = [...Array(17).keys()].filter(() => rng.next() < 0.15);
    return { id: `r${i}`, tokens, labels, line: i + 1 };
  });
  return { rows, vocab: buildVocab(rows.map((r) => r.tokens)) };
}

export function writeCsv(file: string, rows: Row[]): void {
  fs.writeFileSync(file, formatGaiicCsv(rows));
}

/** A vocabulary of n tokens: the special ones, then "100", "101", ... (each counted once). */
export function vocabOf(n: number): Vocab {
  const tokens = [...SPECIAL_TOKENS, ...Array.from({ length: n - SPECIAL_TOKENS.length }, (_, i) => String(100 + i))];
  return {
    tokens,
    counts: tokens.map(() => 1),
    index: new Map(tokens.map((t, i) => [t, i])),
    special: DEFAULT_SPECIAL,
  };
}

/** A transformer prune config for the tests: TextPruner's defaults, 1 head and 32 FFN per layer, batches of 16. */
export const transformerConfig = (o: Partial<TransformerPruneConfig> = {}): TransformerPruneConfig => ({
  ...TEXTPRUNER_DEFAULTS,
  target_ffn_size: 32,
  target_num_of_heads: 1,
  batch_size: 16,
  ...o,
});
