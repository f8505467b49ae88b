// A tiny BERT and batch for engine tests.
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../src/engine/data/rng';
import { BertConfig, makeConfig } from '../../src/engine/model/config';
import { initParams, Params } from '../../src/engine/model/params';
import { Inputs, toInputs } from '../../src/engine/model/bert';

export function tinyConfig(
  over: Partial<BertConfig> = {},
  task: 'mlm' | 'classification' = 'classification',
): BertConfig {
  const cfg = makeConfig(
    {
      hidden_size: 16,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      intermediate_size: 24,
      max_position_embeddings: 32,
      max_len: 32,
      hidden_dropout_prob: 0.1,
      attention_probs_dropout_prob: 0.1,
      initializer_range: 0.2,
    },
    30,
    task,
  );
  return { ...cfg, ...over };
}

export function tinyModel(seed = 1, over: Partial<BertConfig> = {}, mlm = false): { cfg: BertConfig; params: Params } {
  const cfg = tinyConfig(over, mlm ? 'mlm' : 'classification');
  return { cfg, params: initParams(cfg, { mlm, classifier: !mlm, seed }) };
}

/** B rows of random lengths 3..T with padding. */
export function tinyBatch(B = 3, T = 7, V = 30, seed = 2): Inputs & { ids32: Int32Array; mask32: Float32Array } {
  const rng = new Rng(seed);
  const ids = new Int32Array(B * T);
  const mask = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    const len = b === 0 ? T : 3 + rng.int(T - 3);
    for (let t = 0; t < len; t++) {
      ids[b * T + t] = t === 0 ? 2 : t === len - 1 ? 3 : 5 + rng.int(V - 5);
      mask[b * T + t] = 1;
    }
  }
  return { ...toInputs(ids, mask, B, T), ids32: ids, mask32: mask };
}

export function randomLabels(B: number, seed = 3): tf.Tensor2D {
  const rng = new Rng(seed);
  return tf.tensor2d(
    Array.from({ length: B * 17 }, () => (rng.next() < 0.2 ? 1 : 0)),
    [B, 17],
  );
}
