// Batched inference: probabilities for a list of examples, in the examples' order: the sigmoid of
// each logit for a multi-label classifier, the softmax of a row's logits for a single-label one.
// Batches are sorted by length so padding stays small.
import * as tf from '@tensorflow/tfjs';
import { inferenceRecorder, queuePass, replayPadding } from '../ops/record';
import { type Batch, type Example, makeBatches } from '../data/encode';
import { classify, Inputs, toInputs } from './bert';
import { BertConfig, isSingleLabel, numLabels } from './config';
import type { Params } from './params';

/**
 * The logits of one batch, op by op (never recorded: analyze's latency, export's comparison), read
 * back: inputs() is called inside the tidy, so tensors it makes are freed with the rest. Like every
 * read-back of a classifier's output it goes through queuePass, so a GPU error stops the stage at
 * the next batch (ops().check).
 */
export async function batchLogits(params: Params, cfg: BertConfig, inputs: () => Inputs): Promise<Float32Array> {
  return (await queuePass(null, {}, () => tf.tidy(() => classify(params, cfg, inputs())))).result;
}

/** The host arrays of a batch that inference reads. */
export type InferBatch = Pick<Batch, 'ids' | 'mask' | 'B' | 'T' | 'types'>;

/**
 * Queue one batch's forward pass; resolves once it is queued, with its logits to come. On webgpu
 * a batch shape seen before is recorded, then replayed (backend/webgpu-record.ts): one submit a
 * batch, its logits read back while the next ones run. Elsewhere the logits are read back first.
 */
export async function queueBatchLogits(
  params: Params,
  cfg: BertConfig,
  b: InferBatch,
): Promise<{ logits: Promise<Float32Array> }> {
  const r = await queuePass(inferenceRecorder(params), b, () =>
    tf.tidy(() => classify(params, cfg, toInputs(b.ids, b.mask, b.B, b.T, b.types))),
  );
  return { logits: r.result };
}

/** Logits [N * L] for the examples, in their order (L: the config's labels). */
export async function predictLogits(
  params: Params,
  cfg: BertConfig,
  ex: Example[],
  batchSize = 64,
): Promise<Float32Array> {
  const L = numLabels(cfg);
  // Sort by length (stable), batch in that order, scatter back.
  const order = ex.map((_, i) => i).sort((a, b) => ex[a].ids.length - ex[b].ids.length);
  const sorted = order.map((i) => ({ ...ex[i], row: i }));
  const out = new Float32Array(ex.length * L);
  const pending: Promise<void>[] = [];
  const padTo = replayPadding(cfg.max_position_embeddings); // webgpu: few shapes to record
  for (const b of makeBatches(sorted, { batchSize, padTo })) {
    const q = await queueBatchLogits(params, cfg, b);
    pending.push(
      q.logits.then((data) => b.rows.forEach((row, k) => out.set(data.subarray(k * L, (k + 1) * L), row * L))),
    );
  }
  await Promise.all(pending);
  return out;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Softmax of every row of a flat [N * L] array (in place), e.g. logits / T. */
export function softmaxRows(x: Float32Array, L: number, T = 1): Float32Array {
  for (let i = 0; i < x.length; i += L) {
    let max = -Infinity;
    for (let j = 0; j < L; j++) max = Math.max(max, x[i + j] / T);
    let sum = 0;
    for (let j = 0; j < L; j++) sum += x[i + j] = Math.exp(x[i + j] / T - max);
    for (let j = 0; j < L; j++) x[i + j] /= sum;
  }
  return x;
}

/** Probabilities from logits [N * L]: sigmoid (multi-label) or row softmax (single-label). */
export function probsOf(logits: Float32Array, cfg: BertConfig): Float32Array {
  return isSingleLabel(cfg) ? softmaxRows(logits, numLabels(cfg)) : logits.map(sigmoid);
}

export async function predictProbs(
  params: Params,
  cfg: BertConfig,
  ex: Example[],
  batchSize = 64,
): Promise<Float32Array> {
  return probsOf(await predictLogits(params, cfg, ex, batchSize), cfg);
}

/** Multi-hot labels [N * L] of labeled examples (L: default the examples' own). */
export function labelMatrix(ex: Example[], L = ex.find((e) => e.labels)?.labels?.length ?? 17): Float32Array {
  const out = new Float32Array(ex.length * L);
  ex.forEach((e, i) => {
    if (!e.labels) throw new Error(`example ${e.row} has no labels`);
    out.set(e.labels, i * L);
  });
  return out;
}
