// BERT, as HF transformers' modeling_bert.py has it, on tfjs ops — readable top to bottom.
//
//   embeddings:  x = LayerNorm(word[ids] + position[0..T) + token_type[types or 0]) [B, T, H]
//   layer l:     a = SelfAttention_l(x)  with A_l heads of size D               [B, T, A_l*D]
//                x = LayerNorm(x + Dense(a))                                    [B, T, H]
//                x = LayerNorm(x + Dense(gelu(Dense(x))))   FFN size I_l        [B, T, H]
//   pooler:      p = tanh(Dense(x[:, 0]))                                       [B, H]
//   classifier:  logits = Dense(p)                                              [B, 17]
//   MLM head:    logits = LayerNorm(gelu(Dense(x[masked]))) @ word^T + bias     [n, V]
//
// Every layer has its own A_l and I_l (pruned models are first class); the head size D is the
// config's (model/config.ts headSize: hidden / heads, or attention_head_size once the hidden size
// was pruned). Weights are stored in PyTorch layout ([out, in]), so a dense layer is x @ W^T + b.
//
// Pruning gates (ForwardOptions; importance and the masked forward of prune/):
//   layerGate g_l     layer l's output is x + g_l (layer_l(x) - x): 1 = the layer, 0 = skipped
//   hiddenMask m [H]  every LayerNorm takes its mean and variance over the kept dims only
//                     (sum(x m) / sum(m)) and multiplies its output by m; so does the pooler's
//                     output. A 0/1 m computes exactly the model sliced to the kept dims.
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../data/rng';
import { ops, type DropSpec } from '../ops';
import { BertConfig, headSize } from './config';
import { CLASSIFIER, EMB_LN, layer, MLM_BIAS, MLM_DENSE, MLM_LN, POOLER, POS_EMB, TYPE_EMB, WORD_EMB } from './names';
import type { Params } from './params';

export interface Inputs {
  ids: tf.Tensor2D; // [B, T] int32, PAD = 0
  mask: tf.Tensor2D; // [B, T] float32, 1 = real token
  types?: tf.Tensor2D; // [B, T] int32 token types (pairs); absent: all 0
}

export interface ForwardOptions {
  /** Dropout on (training) when an rng is given; the rng seeds every dropout mask. */
  dropout?: Rng | null;
  /** Per layer [A_l] multipliers of each head's output (pruning: importance and masks). */
  headMask?: (tf.Tensor1D | null)[];
  /** Per layer [I_l] multipliers of each FFN neuron. */
  ffnMask?: (tf.Tensor1D | null)[];
  /** Collects every layer's output [B*T, H], in order (layer-wise distillation). */
  hiddenStates?: tf.Tensor2D[];
  /** Per layer gate g_l: output = x + g_l (layer_l(x) - x) (1 = the layer, 0 = the layer skipped). */
  layerGate?: (tf.Scalar | null)[];
  /** [H] multipliers of the hidden dims (LayerNorm over the kept dims; see the header). */
  hiddenMask?: tf.Tensor1D | null;
}

const p = (params: Params, name: string): tf.Variable => {
  const v = params.get(name);
  if (!v) throw new Error(`missing parameter ${name}`);
  return v;
};

const weightOf = (params: Params, name: string) => p(params, `${name}.weight`) as tf.Tensor as tf.Tensor2D;
const biasOf = (params: Params, name: string) => p(params, `${name}.bias`) as tf.Tensor as tf.Tensor1D;

/** The named dense layer: x [N, in] @ W^T [in, out] + b  (W is [out, in]). */
function denseLayer(x: tf.Tensor2D, params: Params, name: string): tf.Tensor2D {
  return ops().linear(x, weightOf(params, name), biasOf(params, name));
}

/** The named LayerNorm of x, or of x + residual (a block's output and its input, one fused pass). */
function layerNorm(
  x: tf.Tensor2D,
  params: Params,
  name: string,
  eps: number,
  hiddenMask?: tf.Tensor1D | null,
  residual?: tf.Tensor2D,
  drop?: DropSpec,
): tf.Tensor2D {
  const g = p(params, `${name}.weight`) as tf.Tensor as tf.Tensor1D;
  if (hiddenMask) {
    const xd = drop ? ops().dropout(x, drop.rate, drop.seed) : x;
    return maskedLayerNorm(residual ? tf.add(xd, residual) : xd, g, biasOf(params, name), eps, hiddenMask);
  }
  return ops().layerNorm(x, g, biasOf(params, name), eps, residual, drop);
}

/** A dropout's rate and seed where it is on (training, rate > 0): one seed drawn from rng. */
function dropSpec(rate: number, rng: Rng | null | undefined): DropSpec | undefined {
  return rng && rate > 0 ? { rate, seed: nextSeed(rng) } : undefined;
}

/**
 * LayerNorm over the dims m keeps (plain tf ops; only the pruning gates use it): mean and biased
 * variance are sum(x m) / sum(m) and sum(((x - mean) m)^2) / sum(m), and the output is multiplied
 * by m. A 0/1 m gives exactly the LayerNorm of the model sliced to the kept dims (zeros elsewhere).
 */
export function maskedLayerNorm(
  x: tf.Tensor2D,
  g: tf.Tensor1D,
  b: tf.Tensor1D,
  eps: number,
  m: tf.Tensor1D,
): tf.Tensor2D {
  const n = tf.sum(m);
  const mean = tf.div(tf.sum(tf.mul(x, m), -1, true), n);
  const xc = tf.mul(tf.sub(x, mean), m);
  const rstd = tf.rsqrt(tf.add(tf.div(tf.sum(tf.square(xc), -1, true), n), eps));
  return tf.mul(tf.add(tf.mul(tf.mul(xc, rstd), g), b), m) as tf.Tensor2D;
}

/** gelu(denseLayer(x)), exact (erf) GELU as HF's "gelu". */
function denseGelu(x: tf.Tensor2D, params: Params, name: string): tf.Tensor2D {
  return ops().linearGelu(x, weightOf(params, name), biasOf(params, name));
}

/** The next dropout seed from rng (one draw per dropout, in model order). */
export const nextSeed = (rng: Rng) => rng.int(2 ** 31 - 1);

function dropout<T extends tf.Tensor>(x: T, rate: number, rng: Rng | null | undefined): T {
  const d = dropSpec(rate, rng);
  return d ? ops().dropout(x, d.rate, d.seed) : x;
}

/** The encoder: returns the last hidden states [B*T, H] (flattened; rows are b*T + t). */
export function encode(params: Params, cfg: BertConfig, inp: Inputs, opt: ForwardOptions = {}): tf.Tensor2D {
  const [B, T] = inp.ids.shape;
  const eps = cfg.layer_norm_eps;
  if (T > cfg.max_position_embeddings)
    throw new Error(`sequence length ${T} > max_position_embeddings ${cfg.max_position_embeddings}`);

  // Embeddings [B*T, H]
  const ids = tf.reshape(inp.ids, [B * T]) as tf.Tensor1D;
  const types = inp.types ? (tf.reshape(inp.types, [B * T]) as tf.Tensor1D) : null;
  const emb = (name: string) => p(params, name) as tf.Tensor as tf.Tensor2D;
  let x = ops().embeddings(emb(WORD_EMB), emb(POS_EMB), emb(TYPE_EMB), ids, types, T);
  const hm = opt.hiddenMask;
  x = dropout(layerNorm(x, params, EMB_LN.name, eps, hm), cfg.hidden_dropout_prob, opt.dropout);

  for (let l = 0; l < cfg.num_hidden_layers; l++) x = encoderLayer(params, cfg, inp, opt, l, x);
  return x;
}

/**
 * Layer l of the encoder on x [B*T, H]. In a tidy: under a gradient, what the backward pass needs
 * is saved apart, so the layer's other temporaries are freed at its end, not the forward pass's.
 */
function encoderLayer(
  params: Params,
  cfg: BertConfig,
  inp: Inputs,
  opt: ForwardOptions,
  l: number,
  x: tf.Tensor2D,
): tf.Tensor2D {
  const [B, T] = inp.ids.shape;
  const H = cfg.hidden_size;
  const D = headSize(cfg);
  const eps = cfg.layer_norm_eps;
  const hm = opt.hiddenMask;
  return tf.tidy(() => {
    const M = layer(l);
    const xIn = x;
    const AD = p(params, M.query.weight).shape[0];
    const A = AD / D;
    let attnOut: tf.Tensor2D;
    if (A === 0) {
      // Every head pruned: the attention block adds only its output bias (as HF's pruned Linear does).
      attnOut = tf.add(tf.zeros([B * T, H]), p(params, M.attnOut.bias));
    } else {
      const rng = opt.dropout;
      const drop = rng ? { rate: cfg.attention_probs_dropout_prob, seed: () => nextSeed(rng) } : null;
      const dense = (name: string) => ({ w: weightOf(params, name), b: biasOf(params, name) });
      const [q, k, v] = [dense(M.query.name), dense(M.key.name), dense(M.value.name)];
      const ctx = ops().selfAttention(x, q, k, v, inp.mask, { B, T, A, D }, drop, opt.headMask?.[l]); // [B*T, A*D]
      attnOut = denseLayer(ctx, params, M.attnOut.name);
    }
    // the block's output dropped out and added to its input inside the LayerNorm (fused on webgpu)
    x = layerNorm(attnOut, params, M.attnLn.name, eps, hm, x, dropSpec(cfg.hidden_dropout_prob, opt.dropout));

    let h = denseGelu(x, params, M.inter.name); // [B*T, I_l]
    const fm = opt.ffnMask?.[l];
    if (fm) h = tf.mul(h, fm);
    const ffnOut = denseLayer(h, params, M.out.name);
    x = layerNorm(ffnOut, params, M.outLn.name, eps, hm, x, dropSpec(cfg.hidden_dropout_prob, opt.dropout));
    const gate = opt.layerGate?.[l];
    if (gate) x = tf.add(xIn, tf.mul(gate, tf.sub(x, xIn))) as tf.Tensor2D;
    opt.hiddenStates?.push(x);
    return x;
  });
}

/** Classification logits [B, 17] from the [CLS] position. */
export function classify(params: Params, cfg: BertConfig, inp: Inputs, opt: ForwardOptions = {}): tf.Tensor2D {
  const [B, T] = inp.ids.shape;
  const x = encode(params, cfg, inp, opt);
  const cls = tf.reshape(tf.slice(tf.reshape(x, [B, T, cfg.hidden_size]), [0, 0, 0], [B, 1, cfg.hidden_size]), [
    B,
    cfg.hidden_size,
  ]) as tf.Tensor2D;
  let pooled = tf.tanh(denseLayer(cls, params, POOLER.name));
  if (opt.hiddenMask) pooled = tf.mul(pooled, opt.hiddenMask);
  return denseLayer(dropout(pooled, cfg.hidden_dropout_prob, opt.dropout), params, CLASSIFIER.name);
}

/** MLM logits [n, V] at the given flat positions (b*T + t) of the encoder output. */
export function mlmLogits(
  params: Params,
  cfg: BertConfig,
  hidden: tf.Tensor2D,
  positions: tf.Tensor1D,
  opt: Pick<ForwardOptions, 'hiddenMask'> = {},
): tf.Tensor2D {
  const h = tf.gather(hidden, positions) as tf.Tensor2D; // [n, H]
  const t = layerNorm(denseGelu(h, params, MLM_DENSE.name), params, MLM_LN.name, cfg.layer_norm_eps, opt.hiddenMask);
  // Decoder tied to the word embeddings: t @ E^T + bias
  return tf.add(tf.matMul(t, p(params, WORD_EMB), false, true), p(params, MLM_BIAS));
}

/** Mean binary cross-entropy with logits over all B*17 entries (the ops' set: one program each way on webgpu). */
export function bceWithLogits(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return ops().bceWithLogits(logits, targets);
}

/** Mean over rows of the softmax cross-entropy of [n, L] logits against target distributions [n, L]. */
export function softCrossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), -1))) as tf.Scalar;
}

/**
 * The training loss of a classifier against multi-hot targets [n, L]: multi-label BCE (mean over
 * n x L), or single-label softmax cross-entropy (one-hot targets, mean over n).
 */
export function classifierLoss(logits: tf.Tensor, targets: tf.Tensor, singleLabel: boolean): tf.Scalar {
  return singleLabel ? softCrossEntropy(logits, targets) : bceWithLogits(logits, targets);
}

/** Mean softmax cross-entropy of [n, V] logits against int targets [n] (weighted by weights [n] if given). */
export function softmaxCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights?: tf.Tensor1D): tf.Scalar {
  return ops().softmaxCrossEntropy(logits, targets, weights);
}

export function toInputs(ids: Int32Array, mask: Float32Array, B: number, T: number, types?: Int32Array | null): Inputs {
  const inp: Inputs = { ids: tf.tensor2d(ids, [B, T], 'int32'), mask: tf.tensor2d(mask, [B, T], 'float32') };
  if (types) inp.types = tf.tensor2d(types, [B, T], 'int32');
  return inp;
}
