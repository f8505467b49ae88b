// The shape of run settings, declared once: config/settings.ts resolves them, config/presets.ts
// names whole sets of them. Both import these types; neither imports the other's values the other
// way round. The types mirror schemas/settings.schema.json (overrides, every key optional) and
// schemas/prune.schema.json; after resolveSettings every field of Settings is present.

export interface ModelSettings {
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  max_position_embeddings: number;
  /** Inputs are cut to this many tokens, [CLS] and [SEP] included. */
  max_len: number;
  /** Raw-text data: the most entries corpus-vocab's WordPiece vocabulary has (GAIIC data keeps every token). */
  vocab_size?: number;
  hidden_dropout_prob: number;
  attention_probs_dropout_prob: number;
  initializer_range: number;
}

export type LrSchedule = 'linear' | 'cosine' | 'constant';

/** What every training stage has. */
export interface OptimSettings {
  epochs: number;
  batch_size: number;
  lr: number;
  weight_decay: number;
  warmup_ratio: number;
  schedule: LrSchedule;
  /** Global gradient-norm clip; 0 = off. */
  clip_norm: number;
}

export interface PretrainSettings extends OptimSettings {
  mask_prob: number;
  /** N-gram masking: runs of 1..mask_ngram tokens; 1 = token masking. */
  mask_ngram: number;
}

export interface FinetuneSettings extends OptimSettings {
  /** FGM adversarial perturbation size; 0 = off. */
  fgm_epsilon: number;
  val_fraction: number;
  head_lr_multiplier: number;
  /** Weight averaging: decay of the exponential moving average of the weights; 0 = off. */
  ema_decay: number;
  /**
   * finetune: the problem type of a classifier whose checkpoint does not say; 'auto': multi-label
   * when a training row has zero or several labels, else single-label.
   */
  problem_type?: ProblemTypeSetting;
}

export type ProblemTypeSetting = 'auto' | 'multi_label_classification' | 'single_label_classification';

export interface RefinetuneSettings extends FinetuneSettings {
  /** Weight of the distillation loss; 0 = off. */
  distill_alpha: number;
  distill_temperature: number;
}

export interface TransformerPruneConfig {
  target_ffn_size: number;
  /** Average heads kept per layer. */
  target_num_of_heads: number;
  pruning_method: 'masks' | 'iterative';
  n_iters: number;
  head_even_masking: boolean;
  ffn_even_masking: boolean;
  multiple_of: number;
  pruning_order: null | 'head-first' | 'ffn-first';
  use_logits: boolean;
  keep_shape: boolean;
  /** Required when pruning_method is 'masks'. */
  masks_file?: string;
  importance_data: 'train' | 'test' | 'corpus';
  batch_size: number;
  max_examples?: number;
  /** Gradual pruning: epochs of re-fine-tuning after each iteration but the last; 0 = none (TextPruner). */
  recovery_epochs: number;
}

export interface VocabularyPruneConfig {
  min_count: number;
  prune_lm_head: 'auto' | boolean;
}

export interface PruneConfig {
  transformer?: TransformerPruneConfig;
  vocabulary?: VocabularyPruneConfig;
}

export interface Settings {
  seed: number;
  model: ModelSettings;
  pretrain: PretrainSettings;
  finetune: FinetuneSettings;
  prune: PruneConfig;
  refinetune: RefinetuneSettings;
}

/** Recursively optional: the shape of an override file (and of a standalone prune config). */
export type DeepPartial<T> = T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;
export type SettingsOverride = DeepPartial<Settings> & { $schema?: string };
