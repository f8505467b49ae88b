// Batched inference: probabilities (sigmoid of the classifier logits) for a list of examples, in
// the examples' order. Batches are sorted by length so padding stays small.
import * as tf from '@tensorflow/tfjs';
import { type Example, makeBatches } from '../data/encode';
import { classify, toInputs } from './bert';
import { BertConfig, NUM_LABELS } from './config';
import type { Params } from './params';

/** Logits [N * 17] for the examples, in their order. */
export function predictLogits(params: Params, cfg: BertConfig, ex: Example[], batchSize = 64): Float32Array {
  // Sort by length (stable), batch in that order, scatter back.
  const order = ex.map((_, i) => i).sort((a, b) => ex[a].ids.length - ex[b].ids.length);
  const sorted = order.map((i) => ({ ...ex[i], row: i }));
  const out = new Float32Array(ex.length * NUM_LABELS);
  for (const b of makeBatches(sorted, { batchSize })) {
    const logits = tf.tidy(() => classify(params, cfg, toInputs(b.ids, b.mask, b.B, b.T, b.types)));
    const data = logits.dataSync();
    logits.dispose();
    b.rows.forEach((row, k) => out.set(data.subarray(k * NUM_LABELS, (k + 1) * NUM_LABELS), row * NUM_LABELS));
  }
  return out;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export function predictProbs(params: Params, cfg: BertConfig, ex: Example[], batchSize = 64): Float32Array {
  return predictLogits(params, cfg, ex, batchSize).map(sigmoid);
}

/** Multi-hot labels [N * 17] of labeled examples. */
export function labelMatrix(ex: Example[]): Float32Array {
  const out = new Float32Array(ex.length * NUM_LABELS);
  ex.forEach((e, i) => {
    if (!e.labels) throw new Error(`example ${e.row} has no labels`);
    out.set(e.labels, i * NUM_LABELS);
  });
  return out;
}
