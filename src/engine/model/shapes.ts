// The shapes of a model's parameters, from its config alone (no tensors): what the checkpoint
// reader expects, what initParams creates and what a budget counts (prune/budget.ts). Pure, so
// the extension bundles it too.
import { BertConfig, ffnPerLayer, headSize, headsPerLayer, numLabels } from './config';
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
