// The HF BERT parameter names, said once. These are the tensor names of the checkpoint
// (model.safetensors, as HF's BertForSequenceClassification / BertForPreTraining write them), of
// the sidebar tree and of every report. Every other file takes its names from here, and
// parseName reads one back (no regexes over names elsewhere).
//
// A "module" is a Linear or LayerNorm: its tensors are `${name}.weight` and `${name}.bias`.
// No imports: the extension bundle uses this file too.

export interface Module {
  name: string; // e.g. 'bert.pooler.dense'
  weight: string; // name + '.weight'
  bias: string; // name + '.bias'
}

const module_ = (name: string): Module => ({ name, weight: `${name}.weight`, bias: `${name}.bias` });

/** Module-path prefixes of the parameter groups (with the trailing dot). */
export const EMBEDDINGS_PREFIX = 'bert.embeddings.';
export const ENCODER = 'bert.encoder'; // the module whose parameter count is "encoder params"
export const POOLER_PREFIX = 'bert.pooler.';
export const CLASSIFIER_PREFIX = 'classifier.';
export const MLM_PREFIX = 'cls.';

export const WORD_EMB = `${EMBEDDINGS_PREFIX}word_embeddings.weight`;
export const POS_EMB = `${EMBEDDINGS_PREFIX}position_embeddings.weight`;
export const TYPE_EMB = `${EMBEDDINGS_PREFIX}token_type_embeddings.weight`;
export const EMB_LN = module_(`${EMBEDDINGS_PREFIX}LayerNorm`);

export const POOLER = module_(`${POOLER_PREFIX}dense`);
export const CLASSIFIER = module_('classifier');

/** The MLM head: transform (dense + gelu + LayerNorm), then the decoder tied to WORD_EMB, plus a bias. */
export const MLM_DENSE = module_(`${MLM_PREFIX}predictions.transform.dense`);
export const MLM_LN = module_(`${MLM_PREFIX}predictions.transform.LayerNorm`);
export const MLM_BIAS = `${MLM_PREFIX}predictions.bias`;
/** Written by HF, never by us: tied to WORD_EMB, so ignored when loading. */
export const MLM_DECODER_W = `${MLM_PREFIX}predictions.decoder.weight`;

/** The modules of one encoder layer, keyed by the part names parseName returns. */
const LAYER_PARTS = {
  query: 'attention.self.query',
  key: 'attention.self.key',
  value: 'attention.self.value',
  attnOut: 'attention.output.dense',
  attnLn: 'attention.output.LayerNorm',
  inter: 'intermediate.dense',
  out: 'output.dense',
  outLn: 'output.LayerNorm',
} as const;

export type LayerPart = keyof typeof LAYER_PARTS;
export const LAYER_PART_NAMES = Object.keys(LAYER_PARTS) as LayerPart[];

const LAYERS_PREFIX = `${ENCODER}.layer.`;

/** Sub-prefixes inside a layer (after layer(l).prefix), as the sidebar groups them. */
export const ATTENTION_SELF = 'attention.self.';
export const ATTENTION_OUTPUT = 'attention.output.';
export const ATTENTION = 'attention.';
export const INTERMEDIATE = 'intermediate.';
export const OUTPUT = 'output.';

export type LayerNames = Record<LayerPart, Module> & { prefix: string };

/** The names of layer l's modules; `prefix` is 'bert.encoder.layer.<l>.' (with the trailing dot). */
export function layer(l: number): LayerNames {
  const prefix = `${LAYERS_PREFIX}${l}.`;
  const out = { prefix } as LayerNames;
  for (const part of LAYER_PART_NAMES) out[part] = module_(prefix + LAYER_PARTS[part]);
  return out;
}

/** The parts outside the encoder layers: single tensors, then modules. */
const TOP_TENSORS = {
  wordEmb: WORD_EMB,
  posEmb: POS_EMB,
  typeEmb: TYPE_EMB,
  mlmBias: MLM_BIAS,
  mlmDecoder: MLM_DECODER_W,
} as const;
const TOP_MODULES = {
  embLn: EMB_LN,
  pooler: POOLER,
  classifier: CLASSIFIER,
  mlmDense: MLM_DENSE,
  mlmLn: MLM_LN,
} as const;

export type TopPart = keyof typeof TOP_TENSORS | keyof typeof TOP_MODULES;

export interface ParsedName {
  layer: number | null; // the encoder layer, null outside the encoder
  part: LayerPart | TopPart;
  /** 'weight' / 'bias' of a module; null for a single tensor (embedding tables, the MLM bias). */
  tensor: 'weight' | 'bias' | null;
}

/** Name -> {layer, part, tensor}; null for a name that is not a BERT parameter of this table. */
export function parseName(name: string): ParsedName | null {
  for (const [part, n] of Object.entries(TOP_TENSORS) as [TopPart, string][]) {
    if (name === n) return { layer: null, part, tensor: null };
  }
  for (const [part, m] of Object.entries(TOP_MODULES) as [TopPart, Module][]) {
    if (name === m.weight) return { layer: null, part, tensor: 'weight' };
    if (name === m.bias) return { layer: null, part, tensor: 'bias' };
  }
  const l = layerOf(name);
  if (l === null) return null;
  const rest = name.slice(`${LAYERS_PREFIX}${l}.`.length);
  for (const part of LAYER_PART_NAMES) {
    const n = LAYER_PARTS[part];
    if (rest === `${n}.weight`) return { layer: l, part, tensor: 'weight' };
    if (rest === `${n}.bias`) return { layer: l, part, tensor: 'bias' };
  }
  return null;
}

/** The encoder layer a name belongs to ('bert.encoder.layer.<l>.…'), null for any other name. */
export function layerOf(name: string): number | null {
  if (!name.startsWith(LAYERS_PREFIX)) return null;
  const rest = name.slice(LAYERS_PREFIX.length);
  const dot = rest.indexOf('.');
  const digits = dot < 0 ? '' : rest.slice(0, dot);
  return /^\d+$/.test(digits) ? Number(digits) : null;
}

// ---- the names other HF BERT checkpoints use for the same tensors ---------------------------------

/** A BertModel's state dict has no 'bert.' prefix: these are its top-level module names. */
const UNPREFIXED_ROOTS = ['embeddings.', 'encoder.', 'pooler.'];
const BERT_PREFIX = 'bert.';
/** Tensors HF checkpoints carry that are not parameters, or are tied to one we have. */
export const HF_IGNORED = new Set([
  `${EMBEDDINGS_PREFIX}position_ids`, // a buffer (0..max_position-1)
  MLM_DECODER_W, // tied to the word embeddings
  `${MLM_PREFIX}predictions.decoder.bias`, // tied to cls.predictions.bias
]);

/**
 * The name this engine uses for a tensor of a HF BERT checkpoint: the 'bert.' prefix added to a
 * BertModel's names, and the TF-era LayerNorm 'gamma'/'beta' read as 'weight'/'bias'. Any other
 * name is returned as it is (it then either is one of ours or is reported as unexpected).
 */
export function canonicalName(hfName: string): string {
  let n = hfName;
  if (UNPREFIXED_ROOTS.some((r) => n.startsWith(r))) n = BERT_PREFIX + n;
  if (n.endsWith('LayerNorm.gamma')) n = n.slice(0, -'gamma'.length) + 'weight';
  else if (n.endsWith('LayerNorm.beta')) n = n.slice(0, -'beta'.length) + 'bias';
  return n;
}
