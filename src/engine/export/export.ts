// `export --format onnx`: a classifier checkpoint (ours or a HF folder, pruned or not) as a folder a
// server needs nothing else from:
//   model.onnx              the graph (export/onnx-graph.ts), fp32 or int8
//   tokenizer.json          always (the checkpoint's, or built from vocab.txt: export/tokenizer.ts)
//   vocab.txt, tokenizer_config.json, special_tokens_map.json   as in the checkpoint
//   labels.json             id2label, label2id, problem type, decision thresholds, max length
// The folder is written complete beside its place and renamed in (io/atomic.ts), with our marker;
// an existing --out that bert-pruner did not make is refused (io/ownership.ts).
//
// With test data and onnxruntime-node at hand, the export is scored against the checkpoint itself
// (the engine's fp32 predict path) on the same rows: the metric of each, the largest probability
// difference and the share of label decisions that agree.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeRows, makeBatches, type Example } from '../data/encode';
import { readRows, tokenizerIn } from '../data/rows';
import { writeVocab } from '../data/vocab';
import { UserError } from '../errors';
import { writeFileAtomic, writeJsonAtomic, replaceDirAtomic } from '../io/atomic';
import type { Checkpoint } from '../io/checkpoint';
import { assertReplaceable, markDir } from '../io/ownership';
import { decisionThresholds, readThresholds, type Thresholds } from '../io/thresholds';
import { writeTokenizerFiles } from '../io/tokenizer-files';
import { isSingleLabel, labelNamesOf, numLabels, problemOf } from '../model/config';
import { disposeParams } from '../model/params';
import { labelMatrix, predictProbs, probsOf } from '../model/predict';
import { classifierCheckpoint } from '../train/evaluate';
import { allMetrics } from '../train/metrics';
import { buildOnnx, INPUT_NAMES, OUTPUT_NAME, type WeightSource } from './onnx-graph';
import { type Ort, ortLogits, ortSession } from './ort';
import { checkTokenizerJson, exportTokenizerJson } from './tokenizer';

export const ONNX_FILE = 'model.onnx';
export const LABELS_FILE = 'labels.json';
export type Quantize = 'int8';

/** Load a checkpoint that has a trained classifier (a UserError otherwise): evaluate's own check. */
export { classifierCheckpoint };

/** The weights of a loaded checkpoint, by HF name. */
export function weightsOf(ck: Checkpoint): WeightSource {
  return (name) => {
    const v = ck.params.get(name);
    if (!v) throw new UserError(`${ck.dir}: tensor '${name}' is missing`);
    return { shape: v.shape, data: v.dataSync() as Float32Array };
  };
}

/** The ONNX model of a loaded checkpoint, encoded. */
export function onnxOf(ck: Checkpoint, quantize?: Quantize): Uint8Array {
  return buildOnnx(ck.config, weightsOf(ck), { quantize: quantize === 'int8', docString: path.basename(ck.dir) });
}

/** labels.json: what a server needs to turn logits into decisions. */
export function labelsJson(ck: Checkpoint, thresholds: Thresholds | null, quantize: Quantize | undefined) {
  const names = labelNamesOf(ck.config);
  const single = isSingleLabel(ck.config);
  return {
    problem_type: problemOf(ck.config),
    id2label: Object.fromEntries(names.map((n, i) => [String(i), n])),
    label2id: Object.fromEntries(names.map((n, i) => [n, i])),
    decision: single ? 'argmax of softmax(logits)' : 'label i when sigmoid(logits[i]) >= thresholds[i]',
    thresholds: single ? null : decisionThresholds(thresholds, names.length),
    thresholds_source: single ? null : (thresholds?.source ?? 'none stored with the checkpoint: 0.5 for every label'),
    max_length: Math.min(ck.config.max_len ?? 512, ck.config.max_position_embeddings),
    inputs: [...INPUT_NAMES],
    output: OUTPUT_NAME,
    quantization: quantize ?? 'none',
    source: path.resolve(ck.dir),
  };
}

/** Probabilities [N * L] of examples through an ONNX session (batches of `batchSize`, sorted by length). */
export async function onnxProbs(
  ort: Ort,
  model: Uint8Array | string,
  ck: Checkpoint,
  ex: Example[],
  batchSize = 64,
): Promise<Float32Array> {
  const L = numLabels(ck.config);
  const session = await ortSession(ort, model);
  try {
    const order = ex.map((_, i) => i).sort((a, b) => ex[a].ids.length - ex[b].ids.length);
    const sorted = order.map((i) => ({ ...ex[i], row: i }));
    const out = new Float32Array(ex.length * L);
    for (const b of makeBatches(sorted, { batchSize })) {
      const logits = await ortLogits(ort, session, b.ids, b.mask, b.types ?? null, b.B, b.T);
      b.rows.forEach((row, k) => out.set(logits.subarray(k * L, (k + 1) * L), row * L));
    }
    return probsOf(out, ck.config);
  } finally {
    await session.release();
  }
}

/** How an export's predictions compare with the checkpoint's own on labeled rows. */
export interface ExportComparison {
  data: string;
  rows: number;
  /** The metric (1 - mlogloss multi-label, accuracy single-label) of the checkpoint and of the export. */
  score_checkpoint: number;
  score_export: number;
  score_delta: number;
  max_prob_diff: number;
  /** Share of label decisions (multi-label: label x row at its threshold; single-label: argmax) that agree. */
  same_decisions: number;
}

/** Score the export against the checkpoint on a labeled file. */
export async function compareOnData(
  ort: Ort,
  model: Uint8Array | string,
  ck: Checkpoint,
  dataFile: string,
): Promise<ExportComparison> {
  if (!fs.existsSync(dataFile)) throw new UserError(`${dataFile}: file not found`);
  const L = numLabels(ck.config);
  const single = isSingleLabel(ck.config);
  const { rows } = readRows(dataFile, {
    requireLabels: true,
    tokenizer: tokenizerIn(ck.dir),
    vocabHint: `${ck.dir} has none`,
    labelSet: labelNamesOf(ck.config),
  });
  if (rows.length === 0) throw new UserError(`${dataFile}: no rows`);
  const maxLen = Math.min(ck.config.max_len ?? 128, ck.config.max_position_embeddings);
  const ex = encodeRows(rows, ck.vocab, maxLen, L);
  const ours = await predictProbs(ck.params, ck.config, ex);
  const theirs = await onnxProbs(ort, model, ck, ex);
  const labels = labelMatrix(ex, L);
  // Copies: the metrics may reorder what they are given.
  const a = allMetrics(ours.slice(), labels, L, single).score;
  const b = allMetrics(theirs.slice(), labels, L, single).score;
  let maxDiff = 0;
  for (let i = 0; i < ours.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours[i] - theirs[i]));
  let same = 0;
  let total = 0;
  if (single) {
    for (let r = 0; r < rows.length; r++) {
      const am = argmax(ours, r * L, L);
      same += am === argmax(theirs, r * L, L) ? 1 : 0;
      total++;
    }
  } else {
    const th = decisionThresholds(readThresholds(ck.dir, L), L);
    for (let i = 0; i < ours.length; i++) {
      same += ours[i] >= th[i % L] === theirs[i] >= th[i % L] ? 1 : 0;
      total++;
    }
  }
  const r6 = (x: number) => +x.toPrecision(6);
  return {
    data: dataFile,
    rows: rows.length,
    score_checkpoint: r6(a),
    score_export: r6(b),
    score_delta: r6(b - a),
    max_prob_diff: r6(maxDiff),
    same_decisions: r6(same / total),
  };
}

function argmax(x: Float32Array, at: number, L: number): number {
  let best = 0;
  for (let j = 1; j < L; j++) if (x[at + j] > x[at + best]) best = j;
  return best;
}

export interface ExportResult {
  out: string;
  file: string;
  quantization: Quantize | 'none';
  bytes: number;
  /** The fp32 export's size, for the ratio (int8 only). */
  fp32_bytes?: number;
  /** The checkpoint's tokenizer.json, or one built from vocab.txt (tokens compared with the engine's tokenizer). */
  tokenizer: { source: 'checkpoint' | 'built'; checked_tokens: number };
  labels: number;
  problem_type: string;
  /** Against the checkpoint on labeled data (onnxruntime-node and --data needed). */
  comparison?: ExportComparison;
}

export interface ExportOptions {
  quantize?: Quantize;
  /** A labeled file to score the export against the checkpoint on. */
  data?: string;
  /** onnxruntime-node, for the comparison (null: none). */
  ort?: Ort | null;
}

/** Export a checkpoint into `out` (replaced when it is an export bert-pruner made; checked before). */
export async function exportCheckpoint(model: string, out: string, opt: ExportOptions = {}): Promise<ExportResult> {
  const ck = classifierCheckpoint(model);
  try {
    const bytes = onnxOf(ck, opt.quantize);
    const fp32 = opt.quantize ? onnxOf(ck).length : undefined;
    const maxLen = Math.min(ck.config.max_len ?? 512, ck.config.max_position_embeddings);
    const tok = exportTokenizerJson(ck.vocab, maxLen);
    const thresholds = isSingleLabel(ck.config) ? null : readThresholds(model, numLabels(ck.config));
    const final = path.resolve(out);
    assertReplaceable(final, 'export');
    fs.mkdirSync(path.dirname(final), { recursive: true });
    const tmp = `${final}.tmp-${process.pid}-${Date.now()}`;
    fs.mkdirSync(tmp);
    let checked = 0;
    try {
      markDir(tmp, 'export');
      writeFileAtomic(path.join(tmp, ONNX_FILE), bytes);
      writeVocab(tmp, { ...ck.vocab, counts: ck.vocab.tokens.map(() => 0) });
      fs.rmSync(path.join(tmp, 'token_counts.json'), { force: true }); // corpus counts: pruning's, not serving's
      writeTokenizerFiles(
        tmp,
        { ...ck.vocab, tokenizer: ck.vocab.tokenizer && { ...ck.vocab.tokenizer, jsonFile: undefined } },
        maxLen,
      );
      const tokFile = path.join(tmp, 'tokenizer.json');
      writeFileAtomic(tokFile, JSON.stringify(tok.json) + '\n');
      checked = checkTokenizerJson(tok.json, ck.vocab, model, path.join(final, 'tokenizer.json'));
      writeJsonAtomic(path.join(tmp, 'labels.json'), labelsJson(ck, thresholds, opt.quantize));
      replaceDirAtomic(tmp, final);
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    const result: ExportResult = {
      out: final,
      file: path.join(final, ONNX_FILE),
      quantization: opt.quantize ?? 'none',
      bytes: bytes.length,
      ...(fp32 ? { fp32_bytes: fp32 } : {}),
      tokenizer: { source: tok.built ? 'built' : 'checkpoint', checked_tokens: checked },
      labels: numLabels(ck.config),
      problem_type: problemOf(ck.config),
    };
    if (opt.data && opt.ort) result.comparison = await compareOnData(opt.ort, bytes, ck, opt.data);
    return result;
  } finally {
    disposeParams(ck.params);
  }
}
