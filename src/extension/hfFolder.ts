// A Hugging Face BERT folder picked in the editor (Fine-tune's "A Hugging Face folder…"): checked
// before anything runs, and its parameter tree shown without reading the weights. A folder with
// model.safetensors shows the header's shapes (runModel.ts); one with only pytorch_model.bin (or a
// sharded checkpoint) shows the shapes config.json implies, as the engine's loader will require them
// (io/checkpoint.ts): reading a pickle of hundreds of MB is no job for the extension host thread.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CLASSIFIER_PREFIX, EMBEDDINGS_PREFIX, layer, MLM_PREFIX, POOLER_PREFIX } from '../engine/model/names';
import type { TensorInfo } from './paramTree';
import { readTextBounded } from '../engine/io/read';

/** The weight files the engine reads, in its order of preference. */
export const WEIGHT_FILES = [
  'model.safetensors',
  'model.safetensors.index.json',
  'pytorch_model.bin',
  'pytorch_model.bin.index.json',
] as const;

/** Biggest config.json read (real ones are about 1 KB). */
const MAX_CONFIG_BYTES = 1024 * 1024;

/** The weights file of a folder's listing, or undefined. */
export function weightsFileOf(files: readonly string[]): string | undefined {
  return WEIGHT_FILES.find((f) => files.includes(f));
}

/**
 * Why a folder is not a BERT checkpoint the engine can read (one line), or null when it is one:
 * config.json, a JSON object with model_type "bert", and weights in a form the engine reads.
 */
export function checkBertFolder(dir: string): string | null {
  let files: string[];
  try {
    files = fs.readdirSync(dir);
  } catch (e) {
    return `${dir}: ${(e as Error).message}`;
  }
  const cfgFile = path.join(dir, 'config.json');
  if (!files.includes('config.json')) return `${dir}: no config.json (not a Hugging Face model folder)`;
  const st = fs.statSync(cfgFile);
  if (!st.isFile() || st.size > MAX_CONFIG_BYTES) return `${cfgFile}: not a config file (${st.size} bytes)`;
  let cfg: unknown;
  try {
    cfg = JSON.parse(readTextBounded(cfgFile, 'json', MAX_CONFIG_BYTES));
  } catch (e) {
    return `${cfgFile}: not valid JSON (${(e as Error).message})`;
  }
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) return `${cfgFile}: not a JSON object`;
  const type = (cfg as { model_type?: unknown }).model_type;
  if (type !== 'bert')
    return `${cfgFile}: model_type ${JSON.stringify(type ?? null)}; only BERT models ("bert") are supported`;
  if (!weightsFileOf(files))
    return `${dir}: no weights (model.safetensors, pytorch_model.bin or a sharded *.index.json)`;
  if (!files.includes('vocab.txt')) return `${dir}: no vocab.txt`;
  return null;
}

/** The config.json fields configShapes reads. */
export interface ShapeConfig {
  vocab_size?: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  attention_head_size?: number; // ours: a pruned hidden size keeps the heads' own size
  intermediate_size?: number;
  intermediate_sizes?: number[];
  max_position_embeddings?: number;
  type_vocab_size?: number;
  pruned_heads?: Record<string, number[]>;
  architectures?: string[];
  id2label?: Record<string, string>;
}

const pos = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0;

/**
 * The tensors (HF names, float32 sizes) a BERT config.json implies: embeddings, every layer with
 * its kept heads (pruned_heads) and FFN width, the pooler and classifier of a sequence classifier
 * (architectures / id2label), the MLM head of a *ForMaskedLM / *ForPreTraining. Bad fields throw.
 */
export function configShapes(cfg: ShapeConfig): Record<string, TensorInfo> {
  const H = cfg.hidden_size;
  const L = cfg.num_hidden_layers;
  const A = cfg.num_attention_heads;
  for (const [k, v] of Object.entries({ hidden_size: H, num_hidden_layers: L, num_attention_heads: A }))
    if (!pos(v)) throw new Error(`'${k}' must be a positive integer`);
  // The head size: ours where given (then hidden_size need not be a multiple of the heads), else HF's.
  const given = cfg.attention_head_size;
  if (given !== undefined && !pos(given)) throw new Error(`'attention_head_size' must be a positive integer`);
  if (given === undefined && H % A !== 0)
    throw new Error(`hidden_size ${H} is not a multiple of num_attention_heads ${A}`);
  if (L > 1024) throw new Error(`num_hidden_layers ${L} is too many`);
  const D = given ?? H / A;
  const out: Record<string, TensorInfo> = {};
  let off = 0;
  const add = (name: string, shape: number[]) => {
    const bytes = shape.reduce((a, b) => a * b, 4);
    out[name] = { dtype: 'F32', shape, data_offsets: [off, off + bytes] };
    off += bytes;
  };
  const lin = (m: string, o: number, i: number) => {
    add(`${m}.weight`, [o, i]);
    add(`${m}.bias`, [o]);
  };
  const ln = (m: string) => {
    add(`${m}.weight`, [H]);
    add(`${m}.bias`, [H]);
  };
  const V = pos(cfg.vocab_size) ? cfg.vocab_size : 30522;
  add(`${EMBEDDINGS_PREFIX}word_embeddings.weight`, [V, H]);
  add(`${EMBEDDINGS_PREFIX}position_embeddings.weight`, [
    pos(cfg.max_position_embeddings) ? cfg.max_position_embeddings : 512,
    H,
  ]);
  add(`${EMBEDDINGS_PREFIX}token_type_embeddings.weight`, [pos(cfg.type_vocab_size) ? cfg.type_vocab_size : 2, H]);
  ln(`${EMBEDDINGS_PREFIX}LayerNorm`);
  for (let l = 0; l < L; l++) {
    const n = layer(l);
    const pruned = new Set(cfg.pruned_heads?.[String(l)] ?? []);
    const heads = A - [...pruned].filter((h) => Number.isInteger(h) && h >= 0 && h < A).length;
    const ffn = cfg.intermediate_sizes?.[l] ?? cfg.intermediate_size ?? 4 * H;
    if (!pos(ffn)) throw new Error(`the FFN size of layer ${l} must be a positive integer`);
    for (const m of [n.query, n.key, n.value]) lin(m.name, heads * D, H);
    lin(n.attnOut.name, H, heads * D);
    ln(n.attnLn.name);
    lin(n.inter.name, ffn, H);
    lin(n.out.name, H, ffn);
    ln(n.outLn.name);
  }
  const arch = (cfg.architectures ?? []).join(' ');
  const classifier = /ForSequenceClassification/.test(arch);
  if (classifier || /BertModel|ForPreTraining/.test(arch) || arch === '') lin(`${POOLER_PREFIX}dense`, H, H);
  if (classifier) lin(`${CLASSIFIER_PREFIX.slice(0, -1)}`, Object.keys(cfg.id2label ?? {}).length || 2, H);
  if (/ForMaskedLM|ForPreTraining/.test(arch)) {
    lin(`${MLM_PREFIX}predictions.transform.dense`, H, H);
    ln(`${MLM_PREFIX}predictions.transform.LayerNorm`);
    add(`${MLM_PREFIX}predictions.bias`, [V]);
  }
  return out;
}
