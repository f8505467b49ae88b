// The model's weights: one map from HF parameter name to a tf.Variable in PyTorch layout
// (Linear weights are [out, in]). These names are the names of the checkpoint, of the sidebar
// tree and of every report; there is no second naming scheme anywhere.
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../data/rng';
import { BertConfig, hasClassifier } from './config';
import { WORD_EMB } from './names';
import { paramShapes } from './shapes';

export { paramShapes } from './shapes';

export type Params = Map<string, tf.Variable>;

export type ParamKind = 'embedding' | 'linear' | 'layernorm' | 'bias';

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
