// The model's weights: one map from HF parameter name to a tf.Variable in PyTorch layout
// (Linear weights are [out, in]). These names are the names of the checkpoint, of the sidebar
// tree and of every report; there is no second naming scheme anywhere.
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../data/rng';
import { BertConfig, ffnPerLayer, hasClassifier, headSize, headsPerLayer, numLabels } from './config';
import {
  CLASSIFIER,
  EMB_LN,
  layer,
  MLM_BIAS,
  MLM_DENSE,
  MLM_LN,
  Module,
  POOLER,
  POS_EMB,
  TYPE_EMB,
  WORD_EMB,
} from './names';

export type Params = Map<string, tf.Variable>;

export type ParamKind = 'embedding' | 'linear' | 'layernorm' | 'bias';

/** Every parameter the config implies, with its shape, in a stable order. */
export function paramShapes(cfg: BertConfig, opts: { mlm: boolean; classifier: boolean }): [string, number[]][] {
  const H = cfg.hidden_size;
  const D = headSize(cfg);
  const heads = headsPerLayer(cfg);
  const ffn = ffnPerLayer(cfg);
  const out: [string, number[]][] = [];
  const linear = (m: Module, o: number, i: number) => out.push([m.weight, [o, i]], [m.bias, [o]]);
  const ln = (m: Module) => out.push([m.weight, [H]], [m.bias, [H]]);

  out.push([WORD_EMB, [cfg.vocab_size, H]]);
  out.push([POS_EMB, [cfg.max_position_embeddings, H]]);
  out.push([TYPE_EMB, [cfg.type_vocab_size, H]]);
  ln(EMB_LN);
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const L = layer(l);
    const AD = heads[l] * D;
    linear(L.query, AD, H);
    linear(L.key, AD, H);
    linear(L.value, AD, H);
    linear(L.attnOut, H, AD);
    ln(L.attnLn);
    linear(L.inter, ffn[l], H);
    linear(L.out, H, ffn[l]);
    ln(L.outLn);
  }
  if (opts.classifier) {
    linear(POOLER, H, H);
    linear(CLASSIFIER, numLabels(cfg), H);
  }
  if (opts.mlm) {
    linear(MLM_DENSE, H, H);
    ln(MLM_LN);
    // The decoder weight is tied to the word embeddings (as in HF); its bias:
    out.push([MLM_BIAS, [cfg.vocab_size]]);
  }
  return out;
}

function paramKind(name: string): ParamKind {
  if (name.includes('LayerNorm')) return 'layernorm';
  if (name.endsWith('embeddings.weight')) return 'embedding';
  if (name.endsWith('.bias')) return 'bias';
  return 'linear';
}

/** HF's _init_weights: normal(0, initializer_range) for Linear and Embedding, LayerNorm 1/0, biases 0. */
export function initParams(cfg: BertConfig, opts: { mlm: boolean; classifier?: boolean; seed: number }): Params {
  const rng = new Rng(opts.seed);
  const params: Params = new Map();
  const classifier = opts.classifier ?? hasClassifier(cfg);
  for (const [name, shape] of paramShapes(cfg, { mlm: opts.mlm, classifier })) {
    // tfjs variable names are global: they stay auto-named, the map key is the HF name.
    params.set(name, tf.variable(initTensor(name, shape, cfg, rng), true));
  }
  return params;
}

export function initTensor(name: string, shape: number[], cfg: BertConfig, rng: Rng): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  const kind = paramKind(name);
  if (kind === 'layernorm' && name.endsWith('.weight')) data.fill(1);
  else if (kind === 'linear' || kind === 'embedding') {
    for (let i = 0; i < n; i++) data[i] = rng.normal() * cfg.initializer_range;
    // HF zeroes the padding row of the word embeddings.
    if (name === WORD_EMB) data.fill(0, cfg.pad_token_id * shape[1], (cfg.pad_token_id + 1) * shape[1]);
  }
  return tf.tensor(data, shape, 'float32');
}

export function disposeParams(params: Params): void {
  for (const v of params.values()) v.dispose();
  params.clear();
}

/** Parameters excluded from weight decay (HF convention: biases and LayerNorm weights). */
export function noDecay(name: string): boolean {
  return name.endsWith('.bias') || name.includes('LayerNorm');
}
