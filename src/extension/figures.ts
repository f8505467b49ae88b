// One way to write a figure and one definition per metric, for every panel and the Runs view
// (pure, no 'vscode'; the webview pages bundle it too): the same size reads the same everywhere.

/** A size in megabytes (10^6 bytes, as the engine's `mb`), e.g. "0.182 MB", "1.35 MB", "418 MB". */
export function formatMB(mb: number): string {
  const a = Math.abs(mb);
  return `${a >= 100 ? mb.toFixed(0) : a >= 10 ? mb.toFixed(1) : a >= 1 ? mb.toFixed(2) : mb.toFixed(3)} MB`;
}

/** A size in bytes, written as formatMB writes it. */
export const formatBytes = (bytes: number): string => formatMB(bytes / 1e6);

/** The layers a pruned model kept, e.g. "layers 3 of 4 kept (0, 2, 3)" (original layer ids). */
export function layersKeptText(kept: readonly number[], before: number): string {
  return `layers ${kept.length} of ${before} kept (${kept.join(', ')})`;
}

/** The hidden size, e.g. "hidden 96 of 128" after pruning, "hidden 128" when unchanged or unknown. */
export function hiddenText(after: number, before?: number): string {
  return before !== undefined && before !== after ? `hidden ${after} of ${before}` : `hidden ${after}`;
}

/** What each metric a panel may show means (the first key that matches a name, in this order). */
const DEFINITIONS: [RegExp, string][] = [
  [
    /^(val_)?score$|^before$|^after_prune$|^after_refinetune$/,
    'score: the task score, 1 − mlogloss (multi-label) or accuracy (single-label); higher is better',
  ],
  [/mlogloss|logloss/, 'mlogloss: mean binary cross-entropy over labels and rows; lower is better'],
  [/micro_f1/, 'micro-F1: F1 over all label decisions pooled, each label at its threshold'],
  [/macro_f1/, 'macro-F1: the mean of the per-label (per-class) F1'],
  [/macro_auc|^auc$/, 'macro AUC: the mean ROC-AUC over labels with both classes present'],
  [/mlm_accuracy/, 'MLM accuracy: the share of masked tokens predicted right (pretraining)'],
  [
    /^(val_|train_)?loss$/,
    'loss: the training objective (cross-entropy) averaged over the steps or the validation rows',
  ],
  [/^lr$/, 'lr: the learning rate of the step (after warm-up and decay)'],
  [/^mb$|MB/, 'MB: the size of model.safetensors in 10^6 bytes (float32 weights)'],
  [/params/, 'parameters: weights in the model (encoder: the transformer layers only)'],
  [/flops/i, 'FLOPs: multiply-adds ×2 of one forward pass over a sequence of the stated length'],
  [/latency/, 'latency: ms per batch of 32 sequences on the backend named'],
];

/** The definition of a metric key, if it has one. */
export function defineMetric(key: string): string | undefined {
  return DEFINITIONS.find(([re]) => re.test(key))?.[1];
}

/** The definitions of the metrics shown, each once, in the order first shown. */
export function definitionsOf(keys: readonly string[]): string[] {
  return [...new Set(keys.map(defineMetric).filter((d): d is string => !!d))];
}
