/* eslint-disable max-len -- descriptions are one string each, as the editor shows them */
// Every setting declared once: its type, bounds, default, description and (model fields) its name
// in a Hugging Face config.json. From this table follow the Settings types (config/types.ts), both
// JSON Schemas (config/schemas.ts writes them; test/config-fields.test.ts keeps schemas/*.json in
// step), the presets' defaults (config/presets.ts), makeConfig and the config.json checks
// (model/config.ts). A default is what applies when neither a preset nor the user sets a field:
// the 'quick' preset is exactly these defaults (and its prune targets).
//
// Adding a setting: a field here, `npm run schemas` (rewrites schemas/*.json), and the code that
// uses it.

/** One setting: a JSON Schema property plus what the engine needs to know of it. */
export interface FieldDef {
  readonly type?: 'integer' | 'number' | 'boolean' | 'string';
  readonly enum?: readonly (string | boolean | null)[];
  readonly minimum?: number;
  readonly exclusiveMinimum?: number;
  readonly maximum?: number;
  readonly exclusiveMaximum?: number;
  readonly default?: string | number | boolean | null;
  /** The field may be absent after resolving (no default). */
  readonly optional?: boolean;
  /** Its key in a Hugging Face config.json, and HF's default where a config.json leaves it out. */
  readonly hf?: { readonly name: string; readonly default?: number; readonly optional?: boolean };
  readonly description: string;
}

export interface SectionDef {
  readonly description: string;
  readonly fields: Readonly<Record<string, FieldDef>>;
}

const SEED = {
  seed: {
    type: 'integer',
    minimum: 0,
    maximum: 4294967295,
    default: 42,
    description: 'Seed for weight initialisation, masking, shuffling and data splits.',
  },
} as const satisfies Record<string, FieldDef>;

/** What every training stage has; `epochs` and `lr` defaults are each stage's own. */
const optim = (d: { epochs: number; lr: number }) =>
  ({
    epochs: {
      type: 'integer',
      minimum: 1,
      maximum: 10000,
      default: d.epochs,
      description: 'Passes over the training data.',
    },
    batch_size: {
      type: 'integer',
      minimum: 1,
      maximum: 65536,
      default: 32,
      description: 'Examples per training step.',
    },
    lr: {
      type: 'number',
      exclusiveMinimum: 0,
      default: d.lr,
      description: 'Peak learning rate (AdamW).',
    },
    weight_decay: {
      type: 'number',
      minimum: 0,
      default: 0.01,
      description: 'AdamW weight decay.',
    },
    warmup_ratio: {
      type: 'number',
      minimum: 0,
      maximum: 1,
      default: 0.1,
      description: 'Fraction of the training steps over which the learning rate rises linearly from 0 to lr.',
    },
    schedule: {
      enum: ['linear', 'cosine', 'constant'],
      default: 'linear',
      description:
        "Learning rate after warm-up: 'linear' decays to 0, 'cosine' follows a half cosine to 0, 'constant' stays at lr.",
    },
    clip_norm: {
      type: 'number',
      minimum: 0,
      default: 1,
      description: 'Clip the global gradient norm to this value; 0 = no clipping.',
    },
  }) as const satisfies Record<string, FieldDef>;

/** What both fine-tuning stages have. */
const FINETUNE_EXTRAS = {
  fgm_epsilon: {
    type: 'number',
    minimum: 0,
    default: 0,
    description: 'Adversarial training (FGM): size of the perturbation added to the word embeddings; 0 = off.',
  },
  val_fraction: {
    type: 'number',
    minimum: 0,
    exclusiveMaximum: 1,
    default: 0.1,
    description:
      'Fraction of the training data held out for validation; the best epoch on it is kept. 0 = none: all rows train and the last epoch is kept.',
  },
  head_lr_multiplier: {
    type: 'number',
    exclusiveMinimum: 0,
    default: 1,
    description: "The classifier head's learning rate is lr times this.",
  },
  ema_decay: {
    type: 'number',
    minimum: 0,
    exclusiveMaximum: 1,
    default: 0,
    description:
      'Weight averaging: decay of the exponential moving average of the weights, updated every step (e.g. 0.999); the averaged weights are validated and saved. 0 = off.',
  },
  mask_augment: {
    type: 'number',
    minimum: 0,
    maximum: 0.5,
    default: 0,
    description:
      'Token masking as augmentation: in every training step each real token of the batch is replaced by [MASK] with this probability (new positions every epoch); the row keeps its labels. 0 = off. In refinetune it cannot be combined with distill_augment, which masks the tokens itself.',
  },
} as const satisfies Record<string, FieldDef>;

export const SECTIONS = {
  seed: { description: 'The seed.', fields: SEED },
  model: {
    description: 'Shape of the BERT model built by pretrain (later stages read it from the checkpoint).',
    fields: {
      hidden_size: {
        type: 'integer',
        minimum: 1,
        maximum: 8192,
        default: 64,
        hf: { name: 'hidden_size' },
        description: 'Width of the hidden states and embeddings. Must be a multiple of num_attention_heads.',
      },
      num_hidden_layers: {
        type: 'integer',
        minimum: 1,
        maximum: 128,
        default: 2,
        hf: { name: 'num_hidden_layers' },
        description: 'Number of transformer layers.',
      },
      num_attention_heads: {
        type: 'integer',
        minimum: 1,
        maximum: 128,
        default: 4,
        hf: { name: 'num_attention_heads' },
        description: 'Attention heads per layer.',
      },
      intermediate_size: {
        type: 'integer',
        minimum: 1,
        maximum: 65536,
        default: 256,
        hf: { name: 'intermediate_size' },
        description: "Neurons in each layer's feed-forward (FFN) block.",
      },
      max_position_embeddings: {
        type: 'integer',
        minimum: 1,
        maximum: 8192,
        default: 128,
        hf: { name: 'max_position_embeddings' },
        description: 'Size of the position embedding table: the longest input the model can take. At least max_len.',
      },
      max_len: {
        type: 'integer',
        minimum: 3,
        maximum: 8192,
        default: 128,
        hf: { name: 'max_len', optional: true },
        description: 'Inputs are cut to this many tokens, [CLS] and [SEP] included.',
      },
      vocab_size: {
        type: 'integer',
        minimum: 6,
        maximum: 1000000,
        default: 30000,
        optional: true,
        description:
          'Raw-text data (.jsonl, .csv with a header): the most entries of the WordPiece vocabulary corpus-vocab builds, special tokens included. GAIIC data keeps every token.',
      },
      hidden_dropout_prob: {
        type: 'number',
        minimum: 0,
        exclusiveMaximum: 1,
        default: 0.1,
        hf: { name: 'hidden_dropout_prob', default: 0.1 },
        description: 'Dropout probability on embeddings and layer outputs while training.',
      },
      attention_probs_dropout_prob: {
        type: 'number',
        minimum: 0,
        exclusiveMaximum: 1,
        default: 0.1,
        hf: { name: 'attention_probs_dropout_prob', default: 0.1 },
        description: 'Dropout probability on attention weights while training.',
      },
      initializer_range: {
        type: 'number',
        exclusiveMinimum: 0,
        maximum: 10,
        default: 0.1,
        hf: { name: 'initializer_range', default: 0.02 },
        description:
          "Standard deviation of the normal distribution new weights are drawn from. The default, 0.1, suits the small models trained from scratch here; BERT's own (the tiny preset's, and a config.json's that names none) is 0.02.",
      },
    },
  },
  pretrain: {
    description: 'Masked-language-model pretraining on the corpus.',
    fields: {
      ...optim({ epochs: 8, lr: 0.002 }),
      mask_prob: {
        type: 'number',
        exclusiveMinimum: 0,
        exclusiveMaximum: 1,
        default: 0.15,
        description: 'Fraction of tokens chosen for masked-language-model prediction (BERT uses 0.15).',
      },
      mask_ngram: {
        type: 'integer',
        minimum: 1,
        maximum: 8,
        default: 1,
        description:
          "N-gram masking: the chosen tokens come in runs of 1..mask_ngram consecutive tokens (p(n) proportional to 1/n), each run masked as a whole; about mask_prob of the tokens are still chosen. 1 = BERT's token masking.",
      },
    },
  },
  finetune: {
    description:
      'Fine-tuning the pretrained model as a classifier of the label set of the checkpoint or the training data (GAIIC: 17 labels, multi-label).',
    fields: {
      ...optim({ epochs: 6, lr: 0.002 }),
      ...FINETUNE_EXTRAS,
      problem_type: {
        enum: ['auto', 'multi_label_classification', 'single_label_classification'],
        default: 'auto',
        optional: true,
        description:
          "Multi-label (sigmoid outputs, BCE, score 1 - mlogloss, micro-F1, per-label thresholds) or single-label (softmax, cross-entropy, score accuracy, macro-F1, the argmax decides). 'auto': the checkpoint's problem_type when it names its labels, else multi-label for the GAIIC format or when any training row has zero or several labels, else single-label.",
      },
    },
  },
  refinetune: {
    description: 'Fine-tuning the pruned model again to recover accuracy, optionally distilling from the unpruned one.',
    fields: {
      ...optim({ epochs: 4, lr: 0.001 }),
      ...FINETUNE_EXTRAS,
      distill_alpha: {
        type: 'number',
        minimum: 0,
        maximum: 1,
        default: 0.5,
        description:
          'Weight of distillation from the unpruned fine-tuned model: loss = (1 - alpha) * label loss + alpha * distillation loss; 0 = off.',
      },
      distill_temperature: {
        type: 'number',
        exclusiveMinimum: 0,
        default: 2,
        description: 'Temperature applied to teacher and student logits in the distillation loss.',
      },
      distill_augment: {
        type: 'number',
        minimum: 0,
        maximum: 0.5,
        default: 0,
        description:
          "Augmented distillation: in every training step each real token of the batch is replaced by [MASK] with this probability (new positions every epoch), and the teacher's logits of the masked rows are the distillation targets, so the model sees new examples labeled by the teacher instead of the same rows again. The teacher then runs inside every step (as with distill_hidden). 0 = off; needs distill_alpha > 0 and a teacher with the same tokenization.",
      },
      distill_hidden: {
        type: 'number',
        minimum: 0,
        maximum: 1000,
        default: 0,
        description:
          "Layer-wise distillation: weight of the mean squared error between each kept layer's hidden states and those of the teacher layer it was pruned from (on the teacher's kept hidden dimensions), added to the loss. 0 = off. Needs a teacher the model was pruned from (the prune stage records the mapping in pruned-from.json).",
      },
    },
  },
  transformer: {
    description:
      "Structured pruning of attention heads and feed-forward (FFN) neurons, as TextPruner's TransformerPruner does it.",
    fields: {
      target_ffn_size: {
        type: 'integer',
        minimum: 1,
        maximum: 65536,
        optional: true,
        description:
          "FFN (intermediate) neurons to keep per layer, on average over the layers. At most the model's intermediate_size. Ignored when a budget (target_encoder_params or target_model_params) is given.",
      },
      target_num_of_heads: {
        type: 'integer',
        minimum: 1,
        maximum: 128,
        optional: true,
        description:
          "Attention heads to keep per layer, on average over the layers. At most the model's num_attention_heads. Ignored when a budget (target_encoder_params or target_model_params) is given.",
      },
      target_encoder_params: {
        type: 'number',
        exclusiveMinimum: 0,
        maximum: 1000000000000,
        optional: true,
        description:
          'One budget for the whole encoder instead of per-structure targets: a fraction of the unpruned encoder when below 1 (0.15 = keep 15%), or a parameter count when an integer of at least 1. The iterative method spends it across heads and FFN neurons (and whole layers and the hidden size where prune_layers / prune_hidden are on), removing the units of least importance per parameter first.',
      },
      target_model_params: {
        type: 'number',
        exclusiveMinimum: 0,
        maximum: 1000000000000,
        optional: true,
        description:
          'One budget for the whole classification model (embeddings, encoder, pooler and classifier: what is shipped) instead of target_encoder_params: a fraction of the unpruned model when below 1, or a parameter count when an integer of at least 1. Spent like target_encoder_params, but a hidden dimension counts what it saves in the embeddings, the pooler and the classifier too, so a smaller hidden size is chosen where it pays. Give one budget, not both.',
      },
      prune_layers: {
        type: 'boolean',
        default: false,
        description:
          'Also remove whole encoder layers, by importance (the first-order effect of skipping the layer on the same loss as heads and FFN), gradually with the other structures. With target_num_layers the model keeps that many layers; else the budget (target_encoder_params or target_model_params) decides.',
      },
      target_num_layers: {
        type: 'integer',
        minimum: 1,
        maximum: 128,
        optional: true,
        description: 'Encoder layers to keep (implies prune_layers). At most the number of layers the model has.',
      },
      prune_hidden: {
        type: 'boolean',
        default: false,
        description:
          'Also shrink the hidden size: one mask over the hidden dimension shared by the embeddings, every layer, the pooler and the classifier, chosen by importance. Heads keep their size (the attention width becomes heads x head size). With target_hidden_size the model keeps that many dimensions; else the budget (target_encoder_params or target_model_params) decides.',
      },
      target_hidden_size: {
        type: 'integer',
        minimum: 1,
        maximum: 8192,
        optional: true,
        description: 'Hidden size to keep (implies prune_hidden). At most the hidden size the model has.',
      },
      pruning_method: {
        enum: ['masks', 'iterative'],
        default: 'iterative',
        description:
          "'iterative': score heads and FFN neurons by their importance on data and remove the least important ones in n_iters steps. 'masks': remove exactly the heads and neurons that masks_file marks with 0.",
      },
      n_iters: {
        type: 'integer',
        minimum: 1,
        maximum: 1000,
        default: 16,
        description:
          'Number of pruning steps of the iterative method; each step re-scores importance and removes a share of what is left to remove.',
      },
      scoring_rounds: {
        type: 'integer',
        minimum: 1,
        maximum: 64,
        default: 1,
        description:
          'With a budget (target_encoder_params or target_model_params): each of the n_iters steps removes its share in this many rounds, scoring importance again on the smaller model before each round (no training between rounds). Removing several heads or neurons on scores measured with all of them present misses what they do together; more rounds cost one importance pass each.',
      },
      head_even_masking: {
        type: 'boolean',
        default: false,
        description:
          'true: every layer keeps the same number of heads. false: heads are ranked across all layers, so important layers keep more.',
      },
      ffn_even_masking: {
        type: 'boolean',
        default: true,
        description:
          'true: every layer keeps the same FFN size. false: neurons are ranked across all layers, so layers end up with different sizes.',
      },
      multiple_of: {
        type: 'integer',
        minimum: 1,
        maximum: 4096,
        default: 1,
        description:
          'With ffn_even_masking false: FFN neurons are ranked in groups of this many (by summed importance), so each layer keeps a multiple of it (e.g. 8 for faster matrix products). Ignored with even masking, as in TextPruner (there every layer keeps exactly target_ffn_size).',
      },
      pruning_order: {
        enum: [null, 'head-first', 'ffn-first'],
        default: null,
        description:
          "null: prune heads and FFN neurons together in each of the n_iters steps. 'head-first' / 'ffn-first': 2 x n_iters steps that alternate between heads and FFN neurons, starting with the one named (importance is re-scored before every step).",
      },
      use_logits: {
        type: 'boolean',
        default: true,
        description:
          "true: score importance against the unpruned model's own predictions (per-label Bernoulli cross-entropy to its sigmoid outputs, not TextPruner's softmax; needs no labels). false: against the true labels (the training loss).",
      },
      keep_shape: {
        type: 'boolean',
        default: false,
        description:
          'true: zero the pruned heads and neurons but keep the tensor shapes (to check the effect of pruning). false: remove them, making the model smaller and faster.',
      },
      masks_file: {
        type: 'string',
        optional: true,
        description:
          "File with the head and FFN masks to apply (1 = keep, 0 = prune), relative to the working directory. Required when pruning_method is 'masks'.",
      },
      importance_data: {
        enum: ['train', 'test', 'corpus'],
        default: 'train',
        description:
          "Examples the importance scores are computed on: 'train' (the training split), 'test' (the test split) or 'corpus' (unlabelled corpus text; works with use_logits only).",
      },
      batch_size: {
        type: 'integer',
        minimum: 1,
        maximum: 65536,
        default: 32,
        description: 'Batch size for computing importance scores.',
      },
      max_examples: {
        type: 'integer',
        minimum: 1,
        maximum: 100000000,
        optional: true,
        description: 'Use at most this many examples for the importance scores (all of them when absent).',
      },
      recovery_epochs: {
        type: 'integer',
        minimum: 0,
        maximum: 1000,
        default: 0,
        description:
          "Gradual pruning (iterative method): after each iteration but the last, remove what is masked and re-fine-tune the smaller model for this many epochs (refinetune settings, distilled from the unpruned model) before scoring importance again. 0 = TextPruner's behaviour: no training between iterations. Needs keep_shape false and labeled data.",
      },
    },
  },
  vocabulary: {
    description:
      "Vocabulary pruning, as TextPruner's VocabularyPruner does it: drop the tokens the corpus does not use, shrinking the embedding matrix.",
    fields: {
      min_count: {
        type: 'integer',
        minimum: 1,
        default: 1,
        description:
          'Keep tokens that occur at least this many times in the corpus. Special tokens ([PAD], [UNK], [CLS], [SEP], [MASK]) are always kept.',
      },
      prune_lm_head: {
        enum: ['auto', true, false],
        default: 'auto',
        description: "Also prune the masked-language-model output layer. 'auto': when the checkpoint has one.",
      },
    },
  },
} as const satisfies Record<string, SectionDef>;

export type SectionName = keyof typeof SECTIONS;

/** A section's defaults: every field that has one. */
export function defaultsOf(name: SectionName): Record<string, unknown> {
  const fields = SECTIONS[name].fields as Record<string, FieldDef>;
  return Object.fromEntries(
    Object.entries(fields)
      .filter(([, f]) => f.default !== undefined)
      .map(([k, f]) => [k, f.default]),
  );
}
