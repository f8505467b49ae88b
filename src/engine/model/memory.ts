// A memory estimate made before any weights are allocated: the model's weights, the optimizer's
// state and gradients, and one batch's activations, against what the backend can hold. Without it
// a model too big for the machine (a settings file with hidden_size 8192 and 128 layers, say) runs
// until the process is killed for memory, with no message. The estimate is deliberately rough
// (float32 everywhere, a fixed number of saved activations per layer) and errs on the high side
// only by small factors: it is there to refuse the hopeless cases with one line, not to tune.
//
//   limit: the wasm backend's heap (4 GiB), otherwise the machine's memory (os.totalmem());
//          BERT_PRUNER_MEMORY_MB overrides both.
//   webgpu: also the device's largest buffer (WebGPU tells no total; one tensor in one buffer):
//          the attention maps [B, heads, T, T], the embedding matrix, the MLM logits.
import * as os from 'node:os';
import { ops } from '../ops';
import { UserError } from '../errors';

const GiB = 1024 ** 3;
const F32 = 4;
/** The wasm backend's linear memory: 32-bit addresses. */
export const WASM_HEAP_BYTES = 4 * GiB;

/** The shape numbers the estimate needs (a BertConfig or ModelSettings plus the vocabulary). */
export interface ShapeForEstimate {
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  /** The size of one head when it is not hidden / heads (a model whose hidden size was pruned). */
  attention_head_size?: number;
  intermediate_size: number;
  max_position_embeddings: number;
  type_vocab_size?: number;
}

/** The attention's inner width, heads x head size (hidden_size unless the two were decoupled). */
export function attentionWidth(m: ShapeForEstimate): number {
  return m.num_attention_heads * (m.attention_head_size ?? m.hidden_size / m.num_attention_heads);
}

export interface EstimateOptions {
  /** 'train': weights + AdamW moments + gradients (+ EMA / a teacher) + saved activations. */
  mode: 'train' | 'infer';
  batch: number;
  seqLen: number;
  /** Extra weight copies held (EMA weights, a distillation teacher). */
  extraCopies?: number;
  /** MLM pretraining: the share of positions whose vocabulary logits are computed. */
  maskProb?: number;
}

export interface MemoryEstimate {
  params: number;
  weights: number;
  optimizer: number;
  activations: number;
  total: number;
}

export function paramCount(m: ShapeForEstimate): number {
  const H = m.hidden_size;
  const I = m.intermediate_size;
  const AD = attentionWidth(m);
  const emb = (m.vocab_size + m.max_position_embeddings + (m.type_vocab_size ?? 2)) * H + 2 * H;
  // Q, K, V [AD, H] + [AD], attention output [H, AD] + [H], FFN, two LayerNorms.
  const layer = 3 * (H * AD + AD) + (AD * H + H) + 2 * (H * I) + I + H + 4 * H;
  const heads = H * H + H + 17 * H + 17 + H * H + 3 * H + m.vocab_size; // pooler, classifier, MLM transform + bias
  return emb + m.num_hidden_layers * layer + heads;
}

export function estimateMemory(m: ShapeForEstimate, o: EstimateOptions): MemoryEstimate {
  const params = paramCount(m);
  const weights = params * F32 * (1 + (o.extraCopies ?? 0));
  // Training: gradients (1x) and the two AdamW moments (2x). Loading reads the file as well (1x).
  const optimizer = o.mode === 'train' ? 3 * params * F32 : params * F32;
  const tokens = o.batch * o.seqLen;
  const H = m.hidden_size;
  // Per token and layer: 4 attention-wide tensors (q, k, v, context), ~8 hidden-wide ones
  // (attention output, residuals, LayerNorms, dropout masks), 3 FFN-wide ones and 3 attention maps
  // per head; training keeps them for the backward pass (plus one layer's gradients at a time),
  // inference one layer's.
  const perLayer =
    tokens * (4 * attentionWidth(m) + 8 * H + 3 * m.intermediate_size + 3 * m.num_attention_heads * o.seqLen) * F32;
  const logits = tokens * (o.maskProb ?? 0) * m.vocab_size * F32 * 3;
  const activations = o.mode === 'train' ? perLayer * (m.num_hidden_layers + 1) + logits : perLayer + logits;
  return { params, weights, optimizer, activations, total: weights + optimizer + activations };
}

/** What the backend can hold, and in words. */
export function memoryLimit(backend: string): { bytes: number; what: string } {
  const env = process.env.BERT_PRUNER_MEMORY_MB;
  if (env !== undefined && env.trim() !== '') {
    const mb = Number(env);
    if (!(Number.isFinite(mb) && mb > 0)) {
      throw new UserError(`BERT_PRUNER_MEMORY_MB: '${env}' is not a positive number of MB`);
    }
    return { bytes: mb * 1024 * 1024, what: `BERT_PRUNER_MEMORY_MB (${formatGiB(mb * 1024 * 1024)})` };
  }
  if (backend.startsWith('wasm')) {
    return { bytes: WASM_HEAP_BYTES, what: `the wasm backend's ${formatGiB(WASM_HEAP_BYTES)} heap` };
  }
  return { bytes: os.totalmem(), what: `this machine's ${formatGiB(os.totalmem())} of memory` };
}

export function formatGiB(bytes: number): string {
  return bytes >= GiB ? `${(bytes / GiB).toFixed(1)} GiB` : `${Math.ceil(bytes / 1024 / 1024)} MiB`;
}

/**
 * Refuse (one UserError line) when the estimate does not fit. `shape` is the file the model shape
 * comes from and the prefix of its fields ('model.' in a settings file, '' in a config.json);
 * `batch` names where the batch size is set ("my.json: finetune.batch_size"). The line names the
 * field of the biggest part: the batch when activations dominate, else the shape field that weighs most.
 */
export function checkMemory(
  m: ShapeForEstimate,
  o: EstimateOptions,
  backend: string,
  where: { shape: string; prefix?: string; batch?: string },
): MemoryEstimate {
  const e = estimateMemory(m, o);
  const buffer = gpuBufferLimit(backend);
  const big = largestTensor(m, o);
  if (buffer !== null && big.bytes > buffer) {
    const what = big.byBatch && where.batch ? where.batch : `${where.shape}: ${where.prefix ?? ''}${biggestField(m)}`;
    throw new UserError(
      `${what}: one tensor of this model needs ${formatGiB(big.bytes)} at batch ${o.batch} x ${o.seqLen} tokens, ` +
        `more than the largest buffer the GPU (${backend}) allows, ${formatGiB(buffer)}; make it smaller`,
    );
  }
  const limit = memoryLimit(backend);
  if (e.total <= limit.bytes) return e;
  const what =
    e.activations > e.weights + e.optimizer && where.batch
      ? where.batch
      : `${where.shape}: ${where.prefix ?? ''}${biggestField(m)}`;
  const parts = [
    `weights ${formatGiB(e.weights)}`,
    o.mode === 'train' ? `gradients and AdamW ${formatGiB(e.optimizer)}` : '',
    `activations ${formatGiB(e.activations)} at batch ${o.batch} x ${o.seqLen} tokens`,
  ].filter(Boolean);
  throw new UserError(
    `${what}: the model needs about ${formatGiB(e.total)} (${parts.join(', ')}) but ${limit.what} holds less;` +
      ' make it smaller (or set BERT_PRUNER_MEMORY_MB if the estimate is wrong for this machine)',
  );
}

/** The largest single tensor of a step (bytes) and what makes it large. */
export function largestTensor(m: ShapeForEstimate, o: EstimateOptions): { bytes: number; byBatch: boolean } {
  const attention = o.batch * m.num_attention_heads * o.seqLen * o.seqLen * F32;
  const ffn = o.batch * o.seqLen * m.intermediate_size * F32;
  const logits = Math.ceil(o.batch * o.seqLen * (o.maskProb ?? 0)) * m.vocab_size * F32;
  const embedding = m.vocab_size * m.hidden_size * F32;
  const byBatch = Math.max(attention, ffn, logits);
  return { bytes: Math.max(byBatch, embedding), byBatch: byBatch >= embedding };
}

/** The largest buffer one tensor can be on `backend`, as its ops say (webgpu: the device's limit). */
function gpuBufferLimit(backend: string): number | null {
  return backend.startsWith(ops().name) ? ops().maxBufferBytes() : null;
}

/** The shape field whose weights weigh most: the one to lower. */
function biggestField(m: ShapeForEstimate): string {
  const H = m.hidden_size;
  const terms: [string, number][] = [
    ['vocab_size', m.vocab_size * H],
    ['num_hidden_layers', m.num_hidden_layers * (4 * H * attentionWidth(m) + 2 * H * m.intermediate_size)],
    ['max_position_embeddings', m.max_position_embeddings * H],
  ];
  terms.sort((a, b) => b[1] - a[1]);
  // Within the layers, the widest dimension is what to lower when a few layers are already huge.
  if (terms[0][0] === 'num_hidden_layers' && m.num_hidden_layers <= 24) {
    return m.intermediate_size > 4 * H ? 'intermediate_size' : 'hidden_size';
  }
  return terms[0][0];
}
