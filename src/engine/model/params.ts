// The model's weights: one map from HF parameter name to a tf.Variable in PyTorch layout
// (Linear weights are [out, in]). These names are the names of the checkpoint, of the sidebar
// tree and of every report; there is no second naming scheme anywhere.
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../data/rng';
import { BertConfig, ffnPerLayer, hasClassifier, headSize, headsPerLayer, NUM_LABELS } from './config';

export type Params = Map<string, tf.Variable>;

export const layerPrefix = (l: number) => `bert.encoder.layer.${l}`;

export type ParamKind = 'embedding' | 'linear' | 'layernorm' | 'bias';

/** Every parameter the config implies, with its shape, in a stable order. */
export function paramShapes(cfg: BertConfig, opts: { mlm: boolean; classifier: boolean }): [string, number[]][] {
  const H = cfg.hidden_size;
  const D = headSize(cfg);
  const heads = headsPerLayer(cfg);
  const ffn = ffnPerLayer(cfg);
  const out: [string, number[]][] = [];
  const linear = (name: string, o: number, i: number) => out.push([`${name}.weight`, [o, i]], [`${name}.bias`, [o]]);
  const ln = (name: string) => out.push([`${name}.weight`, [H]], [`${name}.bias`, [H]]);

  out.push(['bert.embeddings.word_embeddings.weight', [cfg.vocab_size, H]]);
  out.push(['bert.embeddings.position_embeddings.weight', [cfg.max_position_embeddings, H]]);
  out.push(['bert.embeddings.token_type_embeddings.weight', [cfg.type_vocab_size, H]]);
  ln('bert.embeddings.LayerNorm');
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = layerPrefix(l);
    const AD = heads[l] * D;
    linear(`${p}.attention.self.query`, AD, H);
    linear(`${p}.attention.self.key`, AD, H);
    linear(`${p}.attention.self.value`, AD, H);
    linear(`${p}.attention.output.dense`, H, AD);
    ln(`${p}.attention.output.LayerNorm`);
    linear(`${p}.intermediate.dense`, ffn[l], H);
    linear(`${p}.output.dense`, H, ffn[l]);
    ln(`${p}.output.LayerNorm`);
  }
  if (opts.classifier) {
    linear('bert.pooler.dense', H, H);
    linear('classifier', NUM_LABELS, H);
  }
  if (opts.mlm) {
    linear('cls.predictions.transform.dense', H, H);
    ln('cls.predictions.transform.LayerNorm');
    // The decoder weight is tied to bert.embeddings.word_embeddings.weight (as in HF); its bias:
    out.push(['cls.predictions.bias', [cfg.vocab_size]]);
  }
  return out;
}

export function paramKind(name: string): ParamKind {
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
    if (name === 'bert.embeddings.word_embeddings.weight') data.fill(0, cfg.pad_token_id * shape[1], (cfg.pad_token_id + 1) * shape[1]);
  }
  return tf.tensor(data, shape, 'float32');
}

export function countParams(params: Params): number {
  let n = 0;
  for (const v of params.values()) n += v.size;
  return n;
}

export function disposeParams(params: Params): void {
  for (const v of params.values()) v.dispose();
  params.clear();
}

/** Parameters excluded from weight decay (HF convention: biases and LayerNorm weights). */
export function noDecay(name: string): boolean {
  return name.endsWith('.bias') || name.includes('LayerNorm');
}
