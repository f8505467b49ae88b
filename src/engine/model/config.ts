// The model configuration: a HF transformers BertConfig, as written to config.json.
//
// Pruned models stay loadable by HF: removed heads are recorded in `pruned_heads` exactly as HF
// does it ({"layer": [original head indices removed]}; HF re-applies them with `prune_heads` after
// construction). HF has no per-layer FFN size, so when layers differ we add `intermediate_sizes`
// (one entry per layer); HF ignores the key, our loader reads it. A model whose hidden size was
// pruned keeps its heads' size: where hidden_size / num_attention_heads is no longer that size we
// write it to `attention_head_size` (ours too; such a config loads in bert-pruner and through the
// ONNX export only, see docs/pruning-structures.md).
import { SECTIONS, type FieldDef } from '../config/fields';
import type { ModelSettings } from '../config/settings';
import { clipValue, UserError } from '../errors';
import { GAIIC_LABELS, GAIIC_NUM_LABELS, hfDefaultNames, MAX_LABELS } from '../data/labels';
// Label names are the data layer's; the model's config speaks of them too.
export { GAIIC_LABELS, GAIIC_NUM_LABELS, hfDefaultNames, MAX_LABELS };

export interface BertConfig {
  architectures: string[];
  model_type: 'bert';
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number; // heads per layer before pruning; head size = hidden / this unless attention_head_size
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
  problem_type?: ProblemType;
  id2label?: Record<string, string>;
  label2id?: Record<string, number>;
  pruned_heads: Record<string, number[]>;
  intermediate_sizes?: number[];
  /**
   * bert-pruner: the size of one attention head, when it is not hidden_size / num_attention_heads
   * (a model whose hidden size was pruned while its heads kept their size). HF ignores the key.
   */
  attention_head_size?: number;
  /** bert-pruner: the longest input (incl. [CLS] and [SEP]) the model was trained with. */
  max_len?: number;
}

/** What a classifier predicts: independent labels (sigmoid, BCE) or one class a row (softmax, cross-entropy). */
export type ProblemType = 'multi_label_classification' | 'single_label_classification';
export const PROBLEM_TYPES: readonly ProblemType[] = ['multi_label_classification', 'single_label_classification'];

/** A model's label set: names by id, and the problem type. */
export interface LabelSet {
  names: string[];
  problem: ProblemType;
}

export const GAIIC_LABEL_SET: LabelSet = { names: [...GAIIC_LABELS], problem: 'multi_label_classification' };

/** The number of labels of a config: its id2label, else the GAIIC default (17). */
export function numLabels(cfg: Pick<BertConfig, 'id2label'>): number {
  return cfg.id2label ? Object.keys(cfg.id2label).length : GAIIC_NUM_LABELS;
}

/** The label names of a config, by id: its id2label, else the GAIIC default. */
export function labelNamesOf(cfg: Pick<BertConfig, 'id2label'>): string[] {
  if (!cfg.id2label) return [...GAIIC_LABELS];
  return [...Array(numLabels(cfg)).keys()].map((i) => cfg.id2label![String(i)] ?? String(i));
}

/** The problem type of a config: single-label only when it says so. */
export function problemOf(cfg: Pick<BertConfig, 'problem_type'>): ProblemType {
  return cfg.problem_type === 'single_label_classification'
    ? 'single_label_classification'
    : 'multi_label_classification';
}

export const isSingleLabel = (cfg: Pick<BertConfig, 'problem_type'>) =>
  problemOf(cfg) === 'single_label_classification';

/** The label set a config carries. */
export function labelSetOf(cfg: Pick<BertConfig, 'id2label' | 'problem_type'>): LabelSet {
  return { names: labelNamesOf(cfg), problem: problemOf(cfg) };
}

/** Whether a config names its labels itself (HF's placeholder LABEL_0, LABEL_1 of an untrained head do not count). */
export function hasOwnLabels(cfg: Pick<BertConfig, 'id2label'>): boolean {
  if (!cfg.id2label) return false;
  const names = labelNamesOf(cfg);
  return names.join('\u0000') !== hfDefaultNames(names.length).join('\u0000');
}

export function makeConfig(m: ModelSettings, vocabSize: number, task: 'mlm' | 'classification'): BertConfig {
  if (m.hidden_size % m.num_attention_heads !== 0) {
    throw new Error(`hidden_size ${m.hidden_size} is not a multiple of num_attention_heads ${m.num_attention_heads}`);
  }
  // The model settings with an HF name (config/fields.ts) go into config.json under that name.
  const fromSettings = Object.fromEntries(HF_FIELDS.map((h) => [h.name, m[h.key]]));
  const cfg = {
    architectures: [task === 'mlm' ? 'BertForMaskedLM' : 'BertForSequenceClassification'],
    model_type: 'bert',
    vocab_size: vocabSize,
    hidden_act: 'gelu',
    type_vocab_size: 2,
    layer_norm_eps: 1e-12,
    pad_token_id: 0,
    position_embedding_type: 'absolute',
    pruned_heads: {},
    ...fromSettings,
  } as BertConfig;
  if (task === 'classification') setClassification(cfg);
  return cfg;
}

/**
 * Turn a (pretrained) config into a classifier config with `labels` (default: the GAIIC 17-label
 * multi-label set): id2label with string keys "0".. and label2id as HF writes them, and problem_type.
 */
export function setClassification(cfg: BertConfig, labels: LabelSet = GAIIC_LABEL_SET): BertConfig {
  cfg.architectures = ['BertForSequenceClassification'];
  cfg.problem_type = labels.problem;
  cfg.id2label = Object.fromEntries(labels.names.map((n, i) => [String(i), n]));
  cfg.label2id = Object.fromEntries(labels.names.map((n, i) => [n, i]));
  return cfg;
}

/** The largest attention_head_size a config.json may give. */
export const MAX_HEAD_SIZE = 8192;

/** The size D of one attention head: attention_head_size where given, else hidden / heads (HF's). */
export function headSize(cfg: Pick<BertConfig, 'hidden_size' | 'num_attention_heads' | 'attention_head_size'>): number {
  return cfg.attention_head_size ?? cfg.hidden_size / cfg.num_attention_heads;
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

// ---- limits and the checks of a config.json we did not write ---------------------------------

/**
 * The largest model shapes accepted, from a settings file or a checkpoint's config.json: the
 * settings table's maxima (config/fields.ts), and the config.json-only vocab_size and type_vocab_size. They admit every
 * real BERT (BERT-large: 1024 wide, 24 layers, 16 heads, FFN 4096; multilingual vocabularies of
 * 250k tokens) with room to spare; what fits in memory is checked separately (model/memory.ts).
 */

/** The model settings a config.json holds (the settings table's fields with an HF name). */
const HF_FIELDS = Object.entries(SECTIONS.model.fields as Record<string, FieldDef>).flatMap(([key, f]) =>
  f.hf
    ? [{ key: key as keyof ModelSettings, name: f.hf.name, hfDefault: f.hf.default, optional: f.hf.optional, f }]
    : [],
);

const maxOf = (key: keyof typeof SECTIONS.model.fields) => (SECTIONS.model.fields[key] as FieldDef).maximum!;

export const MODEL_LIMITS = {
  vocab_size: 1_000_000,
  hidden_size: maxOf('hidden_size'),
  num_hidden_layers: maxOf('num_hidden_layers'),
  num_attention_heads: maxOf('num_attention_heads'),
  intermediate_size: maxOf('intermediate_size'),
  max_position_embeddings: maxOf('max_position_embeddings'),
  max_len: maxOf('max_len'),
  type_vocab_size: 1024,
} as const;

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const show = (v: unknown) => clipValue(typeof v === 'string' ? `"${v}"` : (JSON.stringify(v) ?? String(v)));

/**
 * Type- and range-check every field of a parsed config.json that the engine reads, and fill in
 * the defaults HF uses for the optional ones. Unknown keys stay allowed (Hub configs carry many).
 * Each problem is a UserError naming `file` and the field.
 */
export function checkConfigJson(raw: unknown, file: string): BertConfig {
  if (!isObj(raw)) throw new UserError(`${file}: not a model config (expected a JSON object)`);
  const bad = (key: string, want: string) => new UserError(`${file}: '${key}' must be ${want}, got ${show(raw[key])}`);
  checkShape(raw, bad);
  const cfg = raw as unknown as BertConfig;
  const hs = raw.attention_head_size;
  if (hs !== undefined && !(typeof hs === 'number' && Number.isInteger(hs) && hs >= 1 && hs <= MAX_HEAD_SIZE)) {
    throw bad('attention_head_size', `an integer from 1 to ${MAX_HEAD_SIZE}`);
  }
  if (hs === undefined && cfg.hidden_size % cfg.num_attention_heads !== 0) {
    throw new UserError(
      `${file}: hidden_size ${cfg.hidden_size} is not a multiple of num_attention_heads ${cfg.num_attention_heads}` +
        ' (and no attention_head_size says the size of a head)',
    );
  }
  checkArchitecture(raw, file, bad);
  checkLabels(raw, file, bad);
  checkPruned(raw, cfg, file, bad);
  return withHfDefaults(cfg);
}

type Bad = (key: string, want: string) => UserError;

/** What a number within a field's bounds is, in words: "an integer from 1 to 8192", "a number > 0". */
function boundsText(f: FieldDef): string {
  if (f.type === 'integer' && f.minimum !== undefined && f.maximum !== undefined)
    return `an integer from ${f.minimum} to ${f.maximum}`;
  const parts = [
    f.minimum !== undefined ? `>= ${f.minimum}` : '',
    f.exclusiveMinimum !== undefined ? `> ${f.exclusiveMinimum}` : '',
    f.exclusiveMaximum !== undefined ? `< ${f.exclusiveMaximum}` : '',
    f.maximum !== undefined ? `<= ${f.maximum}` : '',
  ].filter(Boolean);
  return `${f.type === 'integer' ? 'an integer' : 'a number'} ${parts.join(' and ')}`.trim();
}

function withinBounds(v: unknown, f: FieldDef): boolean {
  if (typeof v !== 'number' || !Number.isFinite(v)) return false;
  if (f.type === 'integer' && !Number.isInteger(v)) return false;
  return (
    (f.minimum === undefined || v >= f.minimum) &&
    (f.exclusiveMinimum === undefined || v > f.exclusiveMinimum) &&
    (f.maximum === undefined || v <= f.maximum) &&
    (f.exclusiveMaximum === undefined || v < f.exclusiveMaximum)
  );
}

/** The shape's numbers: the settings table's model fields by their HF names, and HF's own. */
function checkShape(raw: Record<string, unknown>, bad: Bad): void {
  const int = (key: string, min: number, max: number, optional = false) => {
    const v = raw[key];
    if (v === undefined && optional) return;
    const ok = typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
    if (!ok) throw bad(key, `an integer from ${min} to ${max}`);
  };
  int('vocab_size', 1, MODEL_LIMITS.vocab_size);
  for (const h of HF_FIELDS) {
    const v = raw[h.name];
    if (v === undefined && (h.optional || h.hfDefault !== undefined)) continue;
    if (!withinBounds(v, h.f)) throw bad(h.name, boundsText(h.f));
  }
  int('type_vocab_size', 1, MODEL_LIMITS.type_vocab_size, true);
  int('pad_token_id', 0, (raw.vocab_size as number) - 1, true);
  const eps = raw.layer_norm_eps;
  if (eps !== undefined && !(typeof eps === 'number' && Number.isFinite(eps) && eps > 0 && eps < 1))
    throw bad('layer_norm_eps', 'a number > 0 and < 1');
}

/** BERT only: the architecture, model type, position embeddings and activation it says. */
function checkArchitecture(raw: Record<string, unknown>, file: string, bad: Bad): void {
  const archs = raw.architectures;
  if (archs !== undefined && !(Array.isArray(archs) && archs.every((a) => typeof a === 'string'))) {
    throw bad('architectures', 'a list of strings');
  }
  // Another architecture in a BERT-shaped config: one line saying what is not supported.
  if (raw.model_type !== undefined && raw.model_type !== 'bert') {
    throw new UserError(`${file}: model_type ${show(raw.model_type)} is not supported (BERT only)`);
  }
  const other = Array.isArray(archs) ? archs.find((a) => typeof a === 'string' && !a.startsWith('Bert')) : undefined;
  if (other !== undefined) throw new UserError(`${file}: architecture "${other}" is not supported (BERT only)`);
  if (raw.position_embedding_type != null && raw.position_embedding_type !== 'absolute') {
    throw bad('position_embedding_type', '"absolute" (relative position embeddings are not supported)');
  }
  if (raw.hidden_act !== undefined && raw.hidden_act !== 'gelu') {
    throw bad('hidden_act', '"gelu" (the only activation this engine has)');
  }
  for (const k of ['problem_type', 'position_embedding_type', 'model_type']) {
    if (raw[k] !== undefined && raw[k] !== null && typeof raw[k] !== 'string') throw bad(k, 'a string');
  }
}

/** The classifier's labels: problem_type, id2label / label2id, or num_labels (HF's names then). */
function checkLabels(raw: Record<string, unknown>, file: string, bad: Bad): void {
  for (const k of ['id2label', 'label2id']) if (raw[k] !== undefined && !isObj(raw[k])) throw bad(k, 'an object');
  if (raw.problem_type === 'regression') {
    throw bad(
      'problem_type',
      '"multi_label_classification" or "single_label_classification" (regression is not supported)',
    );
  }
  if (raw.problem_type != null && !PROBLEM_TYPES.includes(raw.problem_type as ProblemType)) {
    throw bad('problem_type', '"multi_label_classification" or "single_label_classification"');
  }
  if (raw.problem_type === null) delete raw.problem_type;
  if (raw.id2label !== undefined) {
    const id2 = raw.id2label as Record<string, unknown>;
    const n = Object.keys(id2).length;
    if (n === 0 || n > MAX_LABELS) throw bad('id2label', `an object of 1 to ${MAX_LABELS} labels`);
    for (let i = 0; i < n; i++) {
      const name = id2[String(i)];
      if (typeof name !== 'string' || name === '') {
        throw new UserError(
          `${file}: id2label must name the labels "0" .. "${n - 1}" (a string each); '${i}' is ${show(name)}`,
        );
      }
    }
  } else if (raw.num_labels !== undefined) {
    const n = raw.num_labels;
    if (!(typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_LABELS)) {
      throw bad('num_labels', `an integer from 1 to ${MAX_LABELS}`);
    }
    raw.id2label = Object.fromEntries(hfDefaultNames(n).map((name, i) => [String(i), name]));
  }
}

/** A pruned model's record: HF's pruned_heads, and bert-pruner's per-layer intermediate_sizes. */
function checkPruned(raw: Record<string, unknown>, cfg: BertConfig, file: string, bad: Bad): void {
  if (raw.pruned_heads !== undefined && !isObj(raw.pruned_heads)) {
    throw bad('pruned_heads', 'an object {"layer": [heads]}');
  }
  for (const [l, hs] of Object.entries((raw.pruned_heads ?? {}) as Record<string, unknown>)) {
    const okLayer = /^\d+$/.test(l) && Number(l) < cfg.num_hidden_layers;
    const okHeads = Array.isArray(hs) && hs.every((h) => Number.isInteger(h) && h >= 0 && h < cfg.num_attention_heads);
    if (!okLayer || !okHeads) {
      throw new UserError(`${file}: pruned_heads['${l}'] names a layer or head the model does not have`);
    }
  }
  if (raw.intermediate_sizes !== undefined) {
    const v = raw.intermediate_sizes;
    if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x >= 0 && x <= MODEL_LIMITS.intermediate_size)) {
      throw new UserError(
        `${file}: 'intermediate_sizes' must be a list of integers from 0 to ${MODEL_LIMITS.intermediate_size}`,
      );
    }
    if (v.length !== cfg.num_hidden_layers) {
      throw new UserError(`${file}: intermediate_sizes has ${v.length} entries for ${cfg.num_hidden_layers} layers`);
    }
  }
}

/** HF's defaults for what a config.json may leave out. */
function withHfDefaults(cfg: BertConfig): BertConfig {
  cfg.pruned_heads = cfg.pruned_heads ?? {};
  cfg.architectures = cfg.architectures ?? ['BertModel'];
  cfg.layer_norm_eps = cfg.layer_norm_eps ?? 1e-12;
  cfg.type_vocab_size = cfg.type_vocab_size ?? 2;
  const c = cfg as unknown as Record<string, unknown>;
  for (const h of HF_FIELDS) if (h.hfDefault !== undefined) c[h.name] = c[h.name] ?? h.hfDefault;
  cfg.pad_token_id = cfg.pad_token_id ?? 0;
  return cfg;
}
