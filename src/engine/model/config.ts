// The model configuration: a HF transformers BertConfig, as written to config.json.
//
// Pruned models stay loadable by HF: removed heads are recorded in `pruned_heads` exactly as HF
// does it ({"layer": [original head indices removed]}; HF re-applies them with `prune_heads` after
// construction). HF has no per-layer FFN size, so when layers differ we add `intermediate_sizes`
// (one entry per layer); HF ignores the key, our loader reads it.
import type { ModelSettings } from '../config/settings';

export interface BertConfig {
  architectures: string[];
  model_type: 'bert';
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number; // heads per layer before pruning; head size = hidden / this
  intermediate_size: number; // FFN size before pruning (or of every layer when they agree)
  hidden_act: 'gelu';
  hidden_dropout_prob: number;
  attention_probs_dropout_prob: number;
  max_position_embeddings: number;
  type_vocab_size: number;
  initializer_range: number;
  layer_norm_eps: number;
  pad_token_id: number;
  position_embedding_type: 'absolute';
  problem_type?: 'multi_label_classification';
  id2label?: Record<string, string>;
  label2id?: Record<string, number>;
  pruned_heads: Record<string, number[]>;
  intermediate_sizes?: number[];
  /** bert-pruner: the longest input (incl. [CLS] and [SEP]) the model was trained with. */
  max_len?: number;
}

export const NUM_LABELS = 17;

export function makeConfig(m: ModelSettings, vocabSize: number, task: 'mlm' | 'classification'): BertConfig {
  if (m.hidden_size % m.num_attention_heads !== 0) {
    throw new Error(`hidden_size ${m.hidden_size} is not a multiple of num_attention_heads ${m.num_attention_heads}`);
  }
  const cfg: BertConfig = {
    architectures: [task === 'mlm' ? 'BertForMaskedLM' : 'BertForSequenceClassification'],
    model_type: 'bert',
    vocab_size: vocabSize,
    hidden_size: m.hidden_size,
    num_hidden_layers: m.num_hidden_layers,
    num_attention_heads: m.num_attention_heads,
    intermediate_size: m.intermediate_size,
    hidden_act: 'gelu',
    hidden_dropout_prob: m.hidden_dropout_prob,
    attention_probs_dropout_prob: m.attention_probs_dropout_prob,
    max_position_embeddings: m.max_position_embeddings,
    type_vocab_size: 2,
    initializer_range: m.initializer_range,
    layer_norm_eps: 1e-12,
    pad_token_id: 0,
    position_embedding_type: 'absolute',
    pruned_heads: {},
    max_len: m.max_len,
  };
  if (task === 'classification') setClassification(cfg);
  return cfg;
}

/** Turn a (pretrained) config into a 17-label multi-label classifier config. */
export function setClassification(cfg: BertConfig): BertConfig {
  cfg.architectures = ['BertForSequenceClassification'];
  cfg.problem_type = 'multi_label_classification';
  cfg.id2label = Object.fromEntries([...Array(NUM_LABELS).keys()].map((i) => [String(i), `region_${i}`]));
  cfg.label2id = Object.fromEntries([...Array(NUM_LABELS).keys()].map((i) => [`region_${i}`, i]));
  return cfg;
}

export function headSize(cfg: BertConfig): number {
  return cfg.hidden_size / cfg.num_attention_heads;
}

/** Original indices of the heads still present in layer l (HF keeps them in original order). */
export function keptHeads(cfg: BertConfig, l: number): number[] {
  const removed = new Set(cfg.pruned_heads[String(l)] ?? []);
  return [...Array(cfg.num_attention_heads).keys()].filter((h) => !removed.has(h));
}

export function headsPerLayer(cfg: BertConfig): number[] {
  return [...Array(cfg.num_hidden_layers).keys()].map((l) => keptHeads(cfg, l).length);
}

export function ffnPerLayer(cfg: BertConfig): number[] {
  return cfg.intermediate_sizes ?? Array(cfg.num_hidden_layers).fill(cfg.intermediate_size);
}

export function hasClassifier(cfg: BertConfig): boolean {
  return cfg.architectures.includes('BertForSequenceClassification');
}
