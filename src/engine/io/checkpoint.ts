// Checkpoints: a directory HF transformers can load.
//   config.json        a BertConfig (see model/config.ts)
//   model.safetensors  float32, PyTorch layout, HF names; the MLM decoder is tied (not stored)
//   vocab.txt          (+ token_counts.json, the corpus counts vocabulary pruning uses)
// A checkpoint is written complete into a temporary sibling directory and renamed into place, so
// a crash never leaves a half-written one and the previous checkpoint survives until the new one
// is complete.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readVocab, Vocab, writeVocab } from '../data/vocab';
import { UserError } from '../errors';
import { BertConfig, checkConfigJson, hasClassifier } from '../model/config';
import { checkMemory } from '../model/memory';
import { CLASSIFIER, MLM_BIAS } from '../model/names';
import { paramShapes, Params } from '../model/params';
import { readJson, recoverDir, replaceDirAtomic, writeJsonAtomic } from './atomic';
import { assertReplaceable, guardWrite, markDir } from './ownership';
import { readSafetensors, writeSafetensors } from './safetensors';

export interface Checkpoint {
  dir: string;
  config: BertConfig;
  params: Params;
  vocab: Vocab;
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
  recoverDir(dir); // a crash in the middle of replacing it left the previous version aside
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UserError(`${dir}: not a checkpoint directory`);
  if (!fs.existsSync(file))
    throw new UserError(`${file}: missing (a checkpoint needs config.json, model.safetensors and vocab.txt)`);
  return checkConfigJson(readJson(file), file); // every field we read, type- and range-checked
}

/**
 * Load a checkpoint. Every tensor the config implies must be present with the implied shape;
 * the MLM decoder weight (tied) and unknown extra tensors are ignored.
 */
export function loadCheckpoint(dir: string): Checkpoint {
  const cfg = readConfig(dir);
  // Weights are about to be allocated: refuse a model the backend cannot even hold (model/memory.ts).
  const seqLen = Math.min(cfg.max_len ?? 128, cfg.max_position_embeddings);
  checkMemory(cfg, { mode: 'infer', batch: 1, seqLen }, tf.getBackend() ?? '', { shape: path.join(dir, CONFIG_FILE) });
  const wfile = path.join(dir, WEIGHTS_FILE);
  if (!fs.existsSync(wfile)) throw new UserError(`${wfile}: missing`);
  const vocab = readVocab(dir);
  if (vocab.tokens.length !== cfg.vocab_size) {
    throw new UserError(
      `${path.join(dir, 'vocab.txt')}: ${vocab.tokens.length} tokens, ` +
        `but config.json says vocab_size ${cfg.vocab_size}`,
    );
  }
  const tensors = readSafetensors(wfile);
  const has = { mlm: tensors.has(MLM_BIAS), classifier: tensors.has(CLASSIFIER.weight) || hasClassifier(cfg) };
  const params: Params = new Map();
  try {
    for (const [name, shape] of paramShapes(cfg, has)) {
      const t = tensors.get(name);
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
  return { dir, config: cfg, params, vocab };
}

/** Read a tensors file saved next to a checkpoint (e.g. optimizer state) as tf tensors. */
export function loadTensorFile(file: string): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [name, t] of readSafetensors(file)) out.set(name, tf.tensor(t.data, t.shape, 'float32'));
  return out;
}

/** Model size in MB as float32 weights (what the reference table reports). */
export function checkpointMB(dir: string): number {
  return fs.statSync(path.join(dir, WEIGHTS_FILE)).size / 1e6;
}
