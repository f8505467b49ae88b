// Checkpoints: a directory HF transformers can load.
//   config.json        a BertConfig (see model/config.ts)
//   model.safetensors  float32, PyTorch layout, HF names; the MLM decoder is tied (not stored)
//   vocab.txt          (+ token_counts.json, the corpus counts vocabulary pruning uses)
//   tokenizer_config.json, special_tokens_map.json (+ tokenizer.json when the source had one):
//                      the tokenizer settings carried from the source (io/tokenizer-files.ts)
// A checkpoint is written complete into a temporary sibling directory and renamed into place, so
// a crash never leaves a half-written one and the previous checkpoint survives until the new one
// is complete.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readVocab, Vocab, writeVocab } from '../data/vocab';
import { UserError } from '../errors';
import { BertConfig, checkConfigJson, hasClassifier, MODEL_LIMITS } from '../model/config';
import { checkMemory } from '../model/memory';
import { Rng } from '../data/rng';
import { hfDefaultNames, MAX_LABELS, numLabels } from '../model/config';
import {
  canonicalName,
  CLASSIFIER,
  CLASSIFIER_PREFIX,
  HF_IGNORED,
  MLM_BIAS,
  MLM_PREFIX,
  POOLER,
  POOLER_PREFIX,
} from '../model/names';
import { initTensor, paramShapes, Params } from '../model/params';
import { readJson, replaceDirAtomic, writeJsonAtomic } from './atomic';
import { assertReplaceable, guardWrite, markDir } from './ownership';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from './safetensors';
import { writeTokenizerFiles } from './tokenizer-files';
import { readTorchBin } from './torch-bin';
import { defaultBudget, MAX_WEIGHT_ELEMENTS, type WeightBudget } from './weight-budget';

export interface Checkpoint {
  dir: string;
  config: BertConfig;
  params: Params;
  vocab: Vocab;
  /** Set by loadCheckpoint: what a HF folder needed (empty lists for our own checkpoints). */
  report?: LoadReport;
}

const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';

/** Extra files written into the checkpoint directory together with the weights. */
export interface ExtraFiles {
  json?: Record<string, unknown>;
  tensors?: Record<string, Map<string, tf.Tensor>>; // file name -> tensors (e.g. optimizer state)
}

async function tensorList(m: Map<string, tf.Tensor>): Promise<{ name: string; shape: number[]; data: Float32Array }[]> {
  const out = [];
  for (const [name, t] of m) out.push({ name, shape: t.shape, data: (await t.data()) as Float32Array });
  return out;
}

export async function saveCheckpoint(
  dir: string,
  cfg: BertConfig,
  params: Params,
  vocab: Vocab,
  extra: ExtraFiles = {},
): Promise<void> {
  const final = path.resolve(dir);
  // Replacing a directory deletes the old one: only ever do that to a checkpoint bert-pruner made
  // (or an empty folder), unless --force named it (io/ownership.ts). An --out that names a run
  // folder, a data folder, '.' or a downloaded HF model must not wipe it.
  assertReplaceable(dir, 'checkpoint');
  guardWrite(final);
  fs.mkdirSync(path.dirname(final), { recursive: true });
  const tmp = `${final}.tmp-${process.pid}-${Date.now()}`;
  fs.mkdirSync(tmp, { recursive: true });
  try {
    markDir(tmp, 'checkpoint'); // a dotfile: HF ignores it
    writeJsonAtomic(path.join(tmp, CONFIG_FILE), cfg);
    writeSafetensors(path.join(tmp, WEIGHTS_FILE), await tensorList(params));
    writeVocab(tmp, vocab);
    writeTokenizerFiles(tmp, vocab, cfg.max_position_embeddings);
    for (const [name, value] of Object.entries(extra.json ?? {})) writeJsonAtomic(path.join(tmp, name), value);
    for (const [name, m] of Object.entries(extra.tensors ?? {}))
      writeSafetensors(path.join(tmp, name), await tensorList(m));
    replaceDirAtomic(tmp, final);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

export function readConfig(dir: string): BertConfig {
  const file = path.join(dir, CONFIG_FILE);
  // A read never renames: a checkpoint a crash left aside (dir.old-*) stays where it is; the next
  // command that writes into the run (or --resume) puts it back (io/atomic.ts recoverRun).
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UserError(`${dir}: not a checkpoint directory`);
  if (!fs.existsSync(file))
    throw new UserError(`${file}: missing (a checkpoint needs config.json, model.safetensors and vocab.txt)`);
  return checkConfigJson(readJson(file), file); // every field we read, type- and range-checked
}

/**
 * pruned-from.json, written by the prune stage beside a model it made smaller by layers or hidden
 * size: where each layer and hidden dimension came from in the model it was pruned from (the
 * teacher of layer-wise distillation). Layer i of this model was layer layers[i] of that one, its
 * hidden dimension j was dimension hidden[j].
 */
export const PRUNED_FROM_FILE = 'pruned-from.json';

export interface PrunedFrom {
  layers: number[];
  hidden: number[];
  teacher_layers: number;
  teacher_hidden: number;
}

/** A checkpoint's pruned-from.json, checked against its config; null when it has none. */
export function readPrunedFrom(dir: string, cfg: BertConfig): PrunedFrom | null {
  const file = path.join(dir, PRUNED_FROM_FILE);
  if (!fs.existsSync(file)) return null;
  const raw = readJson<Record<string, unknown>>(file);
  const int = (v: unknown, lo: number, hi: number) => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;
  const tl = raw?.teacher_layers;
  const th = raw?.teacher_hidden;
  if (!int(tl, 1, MODEL_LIMITS.num_hidden_layers) || !int(th, 1, MODEL_LIMITS.hidden_size))
    throw new UserError(
      `${file}: 'teacher_layers' and 'teacher_hidden' must be the teacher's layer count and hidden size`,
    );
  const ids = (key: 'layers' | 'hidden', n: number, max: number): number[] => {
    const v = raw[key];
    const ok =
      Array.isArray(v) &&
      v.length === n &&
      v.every((x, i) => int(x, 0, max - 1) && (i === 0 || (x as number) > (v[i - 1] as number)));
    if (!ok)
      throw new UserError(
        `${file}: '${key}' must list ${n} increasing ids below ${max} ` +
          `(one per ${key === 'layers' ? 'layer' : 'hidden dimension'} of ${dir})`,
      );
    return v as number[];
  };
  return {
    layers: ids('layers', cfg.num_hidden_layers, tl as number),
    hidden: ids('hidden', cfg.hidden_size, th as number),
    teacher_layers: tl as number,
    teacher_hidden: th as number,
  };
}

/** What loading a HF folder had to adapt: heads it initialised, tensors it did not use. */
export interface LoadReport {
  weights: string; // the weights file (or the index of a sharded checkpoint) read
  initialised: string[];
  unexpected: string[];
}

type RawTensors = Map<string, { shape: number[]; data: Float32Array }>;

/** The weight files HF writes, in the order transformers prefers them. */
const WEIGHT_FORMS = [
  { file: WEIGHTS_FILE, read: readSafetensors, sharded: false },
  { file: `${WEIGHTS_FILE}.index.json`, read: readSafetensors, sharded: true },
  { file: 'pytorch_model.bin', read: readTorchBin, sharded: false },
  { file: 'pytorch_model.bin.index.json', read: readTorchBin, sharded: true },
] as const;

/** The shards an index names: plain file names next to it, each read once. */
function shardFiles(index: string): string[] {
  const raw = readJson<unknown>(index);
  const map = (raw as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map))
    throw new UserError(`${index}: /weight_map: expected {"weight_map": {tensor: file}}`);
  const files = new Set<string>();
  for (const [name, f] of Object.entries(map)) {
    if (typeof f !== 'string' || !/^[\w.-]{1,200}$/.test(f) || f.startsWith('.'))
      throw new UserError(`${index}: /weight_map/${name}: is not a file name in this folder`);
    files.add(f);
  }
  if (files.size === 0) throw new UserError(`${index}: weight_map is empty`);
  return [...files];
}

/**
 * What the weights of a checkpoint with this config may allocate: twice the parameters the config
 * implies with every head (pooler, classifier, MLM head, an untied decoder: hub checkpoints carry
 * them), plus room for small extras, and never more than MAX_WEIGHT_ELEMENTS.
 */
export function weightBudget(cfg: BertConfig, cfgFile: string): WeightBudget {
  const shapes = paramShapes(cfg, { mlm: true, classifier: true });
  let n = cfg.vocab_size * cfg.hidden_size + cfg.hidden_size * cfg.hidden_size; // decoder + pooler
  for (const [, s] of shapes) n += s.reduce((a, b) => a * b, 1);
  const elements = Math.min(MAX_WEIGHT_ELEMENTS, 2 * n + 2 ** 20);
  return { elements, bytes: 8 * elements, what: `${cfgFile} (a model of about ${n} parameters)` };
}

/** Every tensor of the folder's weights, under our names (HF's variants mapped by model/names.ts). */
function readWeights(dir: string, budget: WeightBudget = defaultBudget()): { file: string; tensors: RawTensors } {
  const form = WEIGHT_FORMS.find((f) => fs.existsSync(path.join(dir, f.file)));
  if (!form) {
    throw new UserError(
      `${dir}: no weights (model.safetensors, pytorch_model.bin or a sharded *.index.json; ` +
        'TensorFlow and Flax weights are not read)',
    );
  }
  const file = path.join(dir, form.file);
  const parts = form.sharded ? shardFiles(file).map((f) => path.join(dir, f)) : [file];
  const tensors: RawTensors = new Map();
  for (const part of parts) {
    for (const [hfName, t] of form.read(part, budget, (n) => HF_IGNORED.has(canonicalName(n)))) {
      const name = canonicalName(hfName);
      if (tensors.has(name)) throw new UserError(`${part}: tensor '${hfName}' is stored twice (as '${name}')`);
      tensors.set(name, t);
    }
  }
  return { file, tensors };
}

/** Parameter names and shapes of a checkpoint's weights (the sidebar tree), and their size on disk. */
export function weightShapes(dir: string): { shapes: [string, number[]][]; bytes: number } {
  const own = path.join(dir, WEIGHTS_FILE);
  if (fs.existsSync(own)) {
    const header = readSafetensorsHeader(own);
    return { shapes: Object.entries(header.entries).map(([n, e]) => [n, e.shape]), bytes: header.fileSize };
  }
  // The tensors are read to learn their shapes: budgeted by the config like a load.
  const { file, tensors } = readWeights(dir, weightBudget(readConfig(dir), path.join(dir, CONFIG_FILE)));
  const parts = file.endsWith('.json') ? shardFiles(file).map((f) => path.join(dir, f)) : [file];
  const bytes = parts.reduce((a, f) => a + fs.statSync(f).size, 0);
  return { shapes: [...tensors].map(([n, t]) => [n, t.shape]), bytes };
}

const isHead = (name: string) =>
  name.startsWith(POOLER_PREFIX) || name.startsWith(CLASSIFIER_PREFIX) || name.startsWith(MLM_PREFIX);

/**
 * Load a checkpoint: ours, or any HF BERT folder (BertModel / BertForMaskedLM / BertForPreTraining
 * / BertForSequenceClassification; safetensors, pytorch_model.bin or sharded; fp16/bf16 converted).
 * Every encoder tensor the config implies must be present with the implied shape; a missing head
 * the config asks for (pooler, classifier) is initialised and listed in `report.initialised`;
 * tensors we do not use are listed in `report.unexpected`.
 */
export function loadCheckpoint(dir: string): Checkpoint {
  const cfg = readConfig(dir);
  // Weights are about to be allocated: refuse a model the backend cannot even hold (model/memory.ts).
  const seqLen = Math.min(cfg.max_len ?? 128, cfg.max_position_embeddings);
  checkMemory(cfg, { mode: 'infer', batch: 1, seqLen }, tf.getBackend() ?? '', { shape: path.join(dir, CONFIG_FILE) });
  const vocab = readVocab(dir);
  if (vocab.tokens.length !== cfg.vocab_size) {
    throw new UserError(
      `${path.join(dir, 'vocab.txt')}: ${vocab.tokens.length} tokens, ` +
        `but config.json says vocab_size ${cfg.vocab_size}`,
    );
  }
  const { file: wfile, tensors } = readWeights(dir, weightBudget(cfg, path.join(dir, CONFIG_FILE)));
  const cls = tensors.get(CLASSIFIER.weight);
  // The classifier's shape is one more source of a label count: capped before names are made for it.
  if (cls && (cls.shape.length !== 2 || cls.shape[0] < 1 || cls.shape[0] > MAX_LABELS))
    throw new UserError(
      `${wfile}: tensor '${CLASSIFIER.weight}' has shape [${cls.shape}]; a classifier is [labels, hidden] ` +
        `with 1 to ${MAX_LABELS} labels`,
    );
  // The label set is the config's id2label; a classifier saved without one (HF omits it for 2
  // labels) gets HF's names LABEL_0, LABEL_1, ...
  if (cls && !cfg.id2label) cfg.id2label = Object.fromEntries(hfDefaultNames(cls.shape[0]).map((n, i) => [`${i}`, n]));
  if (cls && cls.shape[0] !== numLabels(cfg)) {
    throw new UserError(
      `${wfile}: the classifier has ${cls.shape[0]} outputs, but config.json's id2label names ${numLabels(cfg)} labels`,
    );
  }
  const has = { mlm: tensors.has(MLM_BIAS), classifier: !!cls || hasClassifier(cfg) };
  const shapes = paramShapes(cfg, has);
  // A BertModel's pretrained pooler is kept for fine-tuning (as HF keeps it).
  if (!has.classifier && tensors.has(POOLER.weight)) shapes.push([POOLER.weight, [cfg.hidden_size, cfg.hidden_size]]);
  if (!has.classifier && tensors.has(POOLER.bias)) shapes.push([POOLER.bias, [cfg.hidden_size]]);
  const report: LoadReport = { weights: wfile, initialised: [], unexpected: [] };
  const params: Params = new Map();
  const rng = new Rng(0);
  try {
    for (const [name, shape] of shapes) {
      const t = tensors.get(name);
      if (!t && isHead(name)) {
        params.set(name, tf.variable(initTensor(name, shape, cfg, rng), true));
        report.initialised.push(name);
        continue;
      }
      if (!t) throw new UserError(`${wfile}: tensor '${name}' is missing (config.json implies it)`);
      if (t.shape.join(',') !== shape.join(',')) {
        throw new UserError(`${wfile}: tensor '${name}' has shape [${t.shape}] but config.json implies [${shape}]`);
      }
      const bad = t.data.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0)
        throw new UserError(
          `${wfile}: tensor '${name}' holds ${t.data[bad]} at index ${bad}; ` +
            'the checkpoint is corrupt (saved from a diverged run?)',
        );
      params.set(name, tf.variable(tf.tensor(t.data, shape, 'float32'), true));
    }
  } catch (e) {
    for (const v of params.values()) v.dispose();
    throw e;
  }
  report.unexpected = [...tensors.keys()].filter((n) => !params.has(n));
  return { dir, config: cfg, params, vocab, report };
}

/** One line on what loading adapted, or null when the folder matched its config exactly. */
export function describeLoad(r: LoadReport): string | null {
  const parts = [];
  if (r.initialised.length) parts.push(`initialised (not in the weights): ${r.initialised.join(', ')}`);
  if (r.unexpected.length) parts.push(`not used: ${r.unexpected.join(', ')}`);
  return parts.length ? `${r.weights}: ${parts.join('; ')}` : null;
}

/** Read a tensors file saved next to a checkpoint (e.g. optimizer state) as tf tensors. */
export function loadTensorFile(file: string): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [name, t] of readSafetensors(file)) out.set(name, tf.tensor(t.data, t.shape, 'float32'));
  return out;
}

/** Model size in MB as float32 weights (what the reference table reports). */
export function checkpointMB(dir: string): number {
  const own = path.join(dir, WEIGHTS_FILE);
  return (fs.existsSync(own) ? fs.statSync(own).size : weightShapes(dir).bytes) / 1e6;
}
