// Measured backend speeds, so that `auto` follows a measurement rather than a rule of thumb.
//
// A GPU is not faster for every model: a small one's training step is a few hundred tiny GPU
// programs, each with a fixed cost, where the CPU's OpenBLAS does the same arithmetic in less time
// (the GPU issue measured the H200 at 15501 train tok/s on L2-H128 against 17248 for wasm+OpenBLAS
// on a Xeon, and far ahead for inference). Which side wins depends on the GPU, the CPU and the
// model, so nothing here guesses: `bench` records what it measured on this machine, per backend
// label (the adapter's name included) and shape, in one file in the user's cache folder, and
// `auto`, where a hardware WebGPU adapter is there, compares the two backends on the measured
// shape nearest to the model it is about to run (training or inference, as the stage does). With
// no measurement of both for a model that size, `auto` keeps its order (webgpu first) and says how
// to measure.
//
// The file: BERT_PRUNER_CACHE_DIR, else $XDG_CACHE_HOME/bert-pruner, else ~/.cache/bert-pruner,
// then backend-speeds.json. It is ours: a file there that is not (another format) is never
// replaced, and is ignored with one warning.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeJsonAtomic } from '../io/atomic';
import { BertConfig, ffnPerLayer, headSize, headsPerLayer } from '../model/config';
import { readBounded } from '../io/read';
import { isUserError } from '../errors';
import type { MatmulTuning } from './webgpu-matmul';

const FORMAT = 'bert-pruner-backend-speeds';
const VERSION = 1;
/** Bounds: the file is read before every `auto` start, and may have been edited by anyone. */
const MAX_BYTES = 1 << 20;
const MAX_ENTRIES = 500;
/** A measurement stands for models whose encoder work per token is within this factor of its shape's. */
export const NEAR_FACTOR = 4;

/** A model's size as the speed comparison needs it: per-layer width of attention and FFN. */
export interface ModelSize {
  layers: number;
  hidden: number;
  /** The attention's width (kept heads x head size): the hidden size unless heads were pruned. */
  attention: number;
  /** The FFN's width (the mean over layers where pruning made them differ). */
  ffn: number;
}

export interface SpeedEntry {
  /** The backend label, as run.json records it: `wasm+openblas`, `webgpu (NVIDIA H200)`. */
  backend: string;
  /** The CPU's model name: a measurement is used only on the same kind of machine. */
  cpu: string;
  shape: string;
  size: ModelSize;
  train_tokens_per_s: number;
  infer_tokens_per_s: number;
  /** ISO time of the measurement. */
  measured: string;
}

interface SpeedsFile {
  format: typeof FORMAT;
  version: number;
  entries: SpeedEntry[];
  /** The webgpu matmul's measured choices, per adapter name (backend/webgpu-matmul.ts). */
  matmul?: Record<string, MatmulTuning>;
}

/** At most this many adapters' matmul choices are kept. */
const MAX_ADAPTERS = 16;

const isRecord = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object';
/** An object whose values are all strings (a measurement's choices, its reasons). */
const stringRecord = (x: unknown) => isRecord(x) && Object.values(x).every((v) => typeof v === 'string');

function validTuning(t: unknown): t is MatmulTuning {
  if (!isRecord(t)) return false;
  return (
    typeof t.adapter === 'string' &&
    typeof t.version === 'number' &&
    typeof t.measured === 'string' &&
    stringRecord(t.choices) &&
    isRecord(t.ms) &&
    (t.rejected === undefined || stringRecord(t.rejected))
  );
}

/** A kept mixed-precision measurement (webgpu-matmul.ts's MixedTuning); anything else is dropped. */
function validMixed(m: unknown): boolean {
  if (!isRecord(m)) return false;
  const f = m.form;
  const form =
    f === null ||
    f === 'emulated' ||
    (isRecord(f) && typeof f.templated === 'boolean' && typeof f.subgroupId === 'boolean');
  return typeof m.offer === 'string' && form && stringRecord(m.choices) && stringRecord(m.rejected) && isRecord(m.ms);
}

export function speedsFile(): string {
  const dir =
    process.env.BERT_PRUNER_CACHE_DIR ||
    path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'bert-pruner');
  return path.join(dir, 'backend-speeds.json');
}

export function cpuModel(): string {
  return (os.cpus()[0]?.model ?? 'unknown CPU').replace(/\s+/g, ' ').trim();
}

/** Encoder multiply-adds per token (the matmuls; attention's T-dependent part left out). */
export function workPerToken(s: ModelSize): number {
  return s.layers * (4 * s.hidden * s.attention + 2 * s.hidden * s.ffn);
}

const isPos = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x > 0;

function validEntry(e: unknown): e is SpeedEntry {
  if (!e || typeof e !== 'object') return false;
  const o = e as Record<string, unknown>;
  const s = o.size as Record<string, unknown> | undefined;
  return (
    typeof o.backend === 'string' &&
    typeof o.cpu === 'string' &&
    typeof o.shape === 'string' &&
    typeof o.measured === 'string' &&
    isPos(o.train_tokens_per_s) &&
    isPos(o.infer_tokens_per_s) &&
    !!s &&
    isPos(s.layers) &&
    isPos(s.hidden) &&
    isPos(s.attention) &&
    isPos(s.ffn)
  );
}

/**
 * The recorded entries; [] when there are none. `problem` says why the file was not used (not
 * ours, too big, not JSON), for one warning; the file is then left as it is.
 */
export function readSpeeds(file = speedsFile()): {
  entries: SpeedEntry[];
  matmul?: Record<string, MatmulTuning>;
  problem?: string;
} {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return { entries: [], problem: `${file}: not a file; left as it is` };
    if (st.size > MAX_BYTES) return { entries: [], problem: `${file}: over ${MAX_BYTES} bytes; left as it is` };
    text = readBounded(file, 'json', MAX_BYTES).toString('utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [] };
    if (isUserError(e)) return { entries: [], problem: `${e.message}; left as it is` };
    return { entries: [], problem: `${file}: not readable (${(e as Error).message.split('\n')[0]})` };
  }
  let o: Partial<SpeedsFile>;
  try {
    o = JSON.parse(text) as Partial<SpeedsFile>;
  } catch {
    return { entries: [], problem: `${file}: not JSON; not bert-pruner's, left as it is` };
  }
  if (!o || o.format !== FORMAT || !Array.isArray(o.entries)) {
    const problem = `${file}: not bert-pruner's backend speeds (no "format": "${FORMAT}"); left as it is`;
    return { entries: [], problem };
  }
  const entries = o.entries.filter(validEntry).slice(-MAX_ENTRIES);
  if (!o.matmul || typeof o.matmul !== 'object') return { entries };
  const matmul: Record<string, MatmulTuning> = {};
  for (const [k, t] of Object.entries(o.matmul).slice(-MAX_ADAPTERS))
    if (validTuning(t)) {
      // a mixed-precision part that is not ours is measured again, not used
      const { mixed, ...rest } = t;
      matmul[k] = mixed === undefined || validMixed(mixed) ? t : rest;
    }
  return { entries, matmul };
}

/**
 * Add measurements (bench's), replacing earlier ones of the same backend, CPU and shape; the
 * oldest go past MAX_ENTRIES. Returns the file written, or why not (a file there that is not ours
 * is never replaced).
 */
export function recordSpeeds(add: SpeedEntry[], file = speedsFile()): { file: string } | { problem: string } {
  const { entries, matmul, problem } = readSpeeds(file);
  if (problem) return { problem };
  const key = (e: SpeedEntry) => JSON.stringify([e.backend, e.cpu, e.shape]);
  const replaced = new Set(add.map(key));
  const next = [...entries.filter((e) => !replaced.has(key(e))), ...add].slice(-MAX_ENTRIES);
  return writeSpeeds(file, { format: FORMAT, version: VERSION, entries: next, matmul });
}

function writeSpeeds(file: string, content: SpeedsFile): { file: string } | { problem: string } {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeJsonAtomic(file, content);
  } catch (e) {
    return { problem: `${file}: not written (${(e as Error).message.split('\n')[0]})` };
  }
  return { file };
}

export interface MeasuredChoice {
  /** The faster backend label. */
  backend: string;
  /** One line: what was compared, for the log. */
  why: string;
}

/**
 * Of `candidates` (backend labels), the one measured faster for a model of `size` at `kind` on
 * this CPU: each candidate's entry on the shape nearest in work per token, within NEAR_FACTOR.
 * null unless every candidate has such an entry.
 */
export function measuredChoice(
  entries: readonly SpeedEntry[],
  candidates: readonly string[],
  size: ModelSize,
  kind: 'train' | 'infer',
  cpu = cpuModel(),
): MeasuredChoice | null {
  const work = workPerToken(size);
  const field = kind === 'train' ? 'train_tokens_per_s' : 'infer_tokens_per_s';
  const picked: SpeedEntry[] = [];
  for (const backend of candidates) {
    let best: SpeedEntry | null = null;
    let bestDist = Math.log(NEAR_FACTOR);
    for (const e of entries) {
      if (e.backend !== backend || e.cpu !== cpu) continue;
      const d = Math.abs(Math.log(workPerToken(e.size) / work));
      // Nearest shape; of equals, the newest measurement.
      if (d < bestDist || (best && d === bestDist && e.measured >= best.measured)) {
        best = e;
        bestDist = d;
      }
    }
    if (!best) return null;
    picked.push(best);
  }
  const winner = picked.reduce((a, b) => (b[field] > a[field] ? b : a));
  const what = picked.map((e) => `${e.backend} ${Math.round(e[field])} tok/s on ${e.shape}`).join(' vs ');
  return {
    backend: winner.backend,
    why: `measured faster for ${kind === 'train' ? 'training' : 'inference'} a model this size by bench (${what})`,
  };
}

/** The matmul choices kept for this adapter at this kernel version, or null. */
export function readMatmulTuning(adapter: string, version: number, file = speedsFile()): MatmulTuning | null {
  const t = readSpeeds(file).matmul?.[adapter];
  return t && t.version === version ? t : null;
}

/** Keep an adapter's matmul choices (replacing its earlier ones); the speed entries stay as they are. */
export function recordMatmulTuning(t: MatmulTuning, file = speedsFile()): { file: string } | { problem: string } {
  const { entries, matmul, problem } = readSpeeds(file);
  if (problem) return { problem };
  const rest = Object.entries(matmul ?? {}).filter(([k]) => k !== t.adapter);
  const next = Object.fromEntries([...rest, [t.adapter, t]].slice(-MAX_ADAPTERS));
  return writeSpeeds(file, { format: FORMAT, version: VERSION, entries, matmul: next });
}

/** A model's size from its config: the mean kept attention width and FFN width over its layers. */
export function sizeOfConfig(cfg: BertConfig): ModelSize {
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return {
    layers: cfg.num_hidden_layers,
    hidden: cfg.hidden_size,
    attention: mean(headsPerLayer(cfg)) * headSize(cfg),
    ffn: mean(ffnPerLayer(cfg)),
  };
}
