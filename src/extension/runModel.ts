// What the Runs tree shows, computed from the files alone: runs are `<runs folder>/<name>/run.json`
// manifests (written by the engine, src/engine/io/run.ts); checkpoints are directories with
// config.json + model.safetensors. Reading never throws: a broken run.json becomes a run with an
// error the tree shows, so one bad file cannot blank the sidebar.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { configShapes, WEIGHT_FILES } from './hfFolder';
import {
  buildParamTree,
  formatCount,
  prunedFromFile,
  prunedFromReport,
  type ParamNode,
  type PrunedFrom,
  type TensorInfo,
  type TreeConfig,
} from './paramTree';
import { isStageName, REGISTRY, RUN_STAGE_KEYS } from '../engine/stages/registry';
import { goneStageError, pidOfThisHost, recordedProcessGone } from '../engine/io/process';
import { jsonDepthExceeded, readBoundedAsync, readTail as readTailBounded, readTextBounded } from '../engine/io/read';

export type StageStatus = 'pending' | 'running' | 'done' | 'failed' | 'cancelled';

export interface StageView {
  key: string; // manifest key, e.g. 'evaluate-pruned'
  status: StageStatus;
  metrics: Record<string, number>;
  seconds?: number;
  error?: string;
  checkpoint?: string; // absolute
  report?: string; // absolute
  started?: string;
  ended?: string;
  /** The process of a stage still 'running' on this host: the Runs tree watches it end. */
  pid?: number;
}

export interface RunView {
  name: string;
  dir: string;
  error?: string; // run.json unreadable
  preset?: string;
  backend?: string;
  updated?: string;
  data?: string;
  /** The pipeline ran in this run: the stage keys it runs, in order (run.json's `pipeline`). */
  pipeline?: string[];
  stages: StageView[];
}

const STATUSES: ReadonlySet<string> = new Set(['pending', 'running', 'done', 'failed', 'cancelled']);
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const str = (x: unknown) => (typeof x === 'string' ? x : undefined);

function numbers(x: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (isObject(x)) for (const [k, v] of Object.entries(x)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return out;
}

/** Turn a parsed run.json into what the tree shows; tolerant of missing or odd fields. */
export function runView(dir: string, manifest: unknown): RunView {
  const name = path.basename(dir);
  if (!isObject(manifest)) return { name, dir, error: 'run.json is not a JSON object', stages: [] };
  const rawStages = isObject(manifest.stages) ? manifest.stages : {};
  const keys = Object.keys(rawStages).sort((a, b) => rank(a) - rank(b));
  const stages: StageView[] = keys.map((key) => {
    const s = isObject(rawStages[key]) ? (rawStages[key] as Record<string, unknown>) : {};
    let status = STATUSES.has(s.status as string) ? (s.status as StageStatus) : 'pending';
    const problems: string[] = [];
    // A 'running' stage whose process is gone (killed, a reboot) shows as failed and resumable, as
    // the engine records it the next time a command opens the run.
    if (status === 'running' && recordedProcessGone(s.pid, s.host, s.started)) {
      status = 'failed';
      problems.push(goneStageError(s.pid, s.host));
    }
    const inside = (field: string) => {
      const rel = str(s[field]);
      if (rel === undefined) return undefined;
      const full = insideRun(dir, rel);
      if (full === undefined) {
        problems.push(`run.json: ${key}.${field} '${rel}' points outside the run folder; not followed`);
      }
      return full;
    };
    const checkpoint = inside('checkpoint');
    const report = inside('report');
    return {
      key,
      status,
      metrics: numbers(s.metrics),
      seconds: typeof s.seconds === 'number' ? s.seconds : undefined,
      error: [str(s.error), ...problems].filter(Boolean).join('\n') || undefined,
      checkpoint,
      report,
      started: str(s.started),
      ended: str(s.ended),
      pid: status === 'running' ? pidOfThisHost(s.pid, s.host) : undefined,
    };
  });
  const data = isObject(manifest.data) ? str(manifest.data.dir) : undefined;
  const steps = isObject(manifest.pipeline) ? manifest.pipeline.steps : undefined;
  const pipeline = Array.isArray(steps) ? steps.filter((k): k is string => typeof k === 'string') : undefined;
  return {
    name: str(manifest.name) ?? name,
    dir,
    preset: str(manifest.preset),
    backend: str(manifest.backend),
    updated: str(manifest.updated),
    data,
    pipeline,
    stages,
  };
}

/**
 * The processes of this host that the shown runs record as running a stage. A process that ends
 * without writing run.json (killed with -9) changes no file the tree watches, so the tree's poll
 * checks these and refreshes once one is gone (its stage then shows failed).
 */
export function runningPids(runs: RunView[]): number[] {
  return [...new Set(runs.flatMap((r) => r.stages.flatMap((s) => (s.pid === undefined ? [] : [s.pid]))))];
}

/** Whether any of `pids` has ended (see runningPids). */
export function anyProcessGone(pids: number[]): boolean {
  return pids.some((pid) => recordedProcessGone(pid, os.hostname()));
}

// ---- the pipeline as one object ---------------------------------------------------------------

/**
 * The stages of a run's pipeline that have not finished, in order: none once its last stage is
 * done (a stage it skips, the evaluation of a test file without labels, is then not owed).
 */
export function pipelineLeft(r: RunView): string[] {
  if (!r.pipeline?.length) return [];
  const status = new Map(r.stages.map((s) => [s.key, s.status]));
  if (status.get(r.pipeline[r.pipeline.length - 1]) === 'done') return [];
  return r.pipeline.filter((k) => status.get(k) !== 'done');
}

/** A pipeline that stopped (cancelled, failed, or killed) before its last stage: Resume continues it whole. */
export function pipelineResumable(r: RunView): boolean {
  return pipelineLeft(r).length > 0 && !r.stages.some((s) => s.status === 'running');
}

/**
 * The stages the tree shows for a run: those run.json records, then the pipeline's stages not yet
 * started, as pending (in the pipeline's order), so the user sees what a resume will still run.
 */
export function stagesShown(r: RunView): StageView[] {
  const left = pipelineLeft(r).filter((k) => !r.stages.some((s) => s.key === k));
  return [...r.stages, ...left.map((key): StageView => ({ key, status: 'pending', metrics: {} }))].sort(
    (a, b) => rank(a.key) - rank(b.key),
  );
}

/**
 * The absolute path of `rel` (a path from run.json) inside run folder `dir`, or undefined when it
 * is absolute or leaves the folder: a run.json from a hostile folder cannot make the tree, the
 * panels or a command open files elsewhere (`"checkpoint": "/home/x"`, `"report": "../../x"`).
 */
export function insideRun(dir: string, rel: string): string | undefined {
  if (rel === '' || path.isAbsolute(rel) || path.win32.isAbsolute(rel) || rel.includes('\0')) return undefined;
  const root = path.resolve(dir);
  const full = path.resolve(root, rel);
  const r = path.relative(root, full);
  if (r === '..' || r.startsWith('..' + path.sep) || path.isAbsolute(r)) return undefined;
  return full;
}

function rank(key: string): number {
  const i = (RUN_STAGE_KEYS as readonly string[]).indexOf(key);
  return i < 0 ? RUN_STAGE_KEYS.length : i;
}

/**
 * The largest run.json the tree reads. Ours stay in the kilobytes; a bigger one (a hostile folder's)
 * would block the extension host while it is read and parsed.
 */
export const MAX_RUN_JSON_BYTES = 8 * 1024 * 1024;

export function readRun(dir: string): RunView {
  const file = path.join(dir, 'run.json');
  let text: string;
  try {
    const size = fs.statSync(file).size;
    if (size > MAX_RUN_JSON_BYTES) {
      const error = `run.json is ${(size / 1048576).toFixed(0)} MB, more than a run.json can be; not read`;
      return { name: path.basename(dir), dir, error, stages: [] };
    }
    text = readTextBounded(file, 'json', MAX_RUN_JSON_BYTES);
  } catch (e) {
    return { name: path.basename(dir), dir, error: `cannot read run.json: ${(e as Error).message}`, stages: [] };
  }
  try {
    return runView(dir, JSON.parse(text));
  } catch (e) {
    return { name: path.basename(dir), dir, error: `run.json: ${(e as Error).message}`, stages: [] };
  }
}

/** Every run (a subdirectory with a run.json) of a runs folder, most recently updated first. */
export function listRuns(runsDir: string): RunView[] {
  let names: string[];
  try {
    names = fs.readdirSync(runsDir);
  } catch {
    return [];
  }
  const runs = names
    .map((n) => path.join(runsDir, n))
    .filter((d) => fs.existsSync(path.join(d, 'run.json')))
    .map(readRun);
  return runs.sort((a, b) => (b.updated ?? '').localeCompare(a.updated ?? '') || a.name.localeCompare(b.name));
}

/** The metric a stage shows first: the task score if there is one, else a loss, else the first. */
const METRIC_PREFERENCE = [
  'score',
  'val_score',
  'auc',
  'macro_auc',
  'f1',
  'mlm_accuracy',
  'accuracy',
  'val_loss',
  'loss',
  'train_loss',
  'params',
];

export function headlineMetric(metrics: Record<string, number>): [string, number] | undefined {
  for (const k of METRIC_PREFERENCE) if (k in metrics) return [k, metrics[k]];
  const first = Object.entries(metrics)[0];
  return first;
}

export function formatNumber(v: number): string {
  if (Number.isInteger(v)) return Math.abs(v) >= 1e4 ? formatCount(v) : String(v);
  return Math.abs(v) >= 1000 || Math.abs(v) < 1e-3 ? v.toExponential(2) : v.toPrecision(4);
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/** The pipeline's evaluations and analyses, and the checkpoint each looks at. */
const SCORED: Record<string, string> = {
  evaluate: 'finetune',
  analyze: 'finetune',
  'evaluate-pruned': 'refinetune',
  'analyze-pruned': 'refinetune',
};

/**
 * The checkpoint a stage made, or for the pipeline's evaluations and analyses the one they looked
 * at (what their next steps act on: Reveal Checkpoint, Copy Loading Snippet).
 */
export function stageCheckpoint(run: RunView, s: StageView): string | undefined {
  if (s.checkpoint) return s.checkpoint;
  const of = SCORED[s.key];
  return of ? run.stages.find((x) => x.key === of && x.status === 'done')?.checkpoint : undefined;
}

/** The stage's tree description: "score 0.8123 · 2 min 3 s", or its status when it has no metric. */
export function stageDescription(s: StageView): string {
  const parts: string[] = [];
  const of = SCORED[s.key];
  if (of) parts.push(`of ${of}`);
  const m = headlineMetric(s.metrics);
  if (m) parts.push(`${m[0]} ${formatNumber(m[1])}`);
  else if (s.status !== 'done') parts.push(s.status);
  if (s.seconds !== undefined && s.status !== 'running') parts.push(formatSeconds(s.seconds));
  return parts.join(' · ');
}

/**
 * The tree item's contextValue, e.g. "stage:prune:done:checkpoint:report:next-nextRefinetune":
 * package.json menus match on it. `resumable` marks a stage of a stopped pipeline too (Resume then
 * continues the whole pipeline); `next` names the next-step commands a finished stage offers.
 */
export function stageContextValue(s: StageView, extra: { resumable?: boolean; next?: string[] } = {}): string {
  return [
    'stage',
    s.key,
    s.status,
    s.checkpoint ? 'checkpoint' : '',
    s.report ? 'report' : '',
    isResumable(s) || extra.resumable ? 'resumable' : '',
    ...(extra.next ?? []).map((c) => `next-${c}`),
  ]
    .filter(Boolean)
    .join(':');
}

/** A cheap fingerprint of the runs under `roots`: each run folder's run.json time and size. */
export function runsSignature(roots: string[]): string {
  const parts: string[] = [];
  for (const root of roots) {
    let names: string[];
    try {
      names = fs.readdirSync(root).sort();
    } catch {
      continue; // no runs folder yet
    }
    for (const name of names) {
      try {
        const st = fs.statSync(path.join(root, name, 'run.json'));
        parts.push(`${root}/${name}:${st.mtimeMs}:${st.size}`);
      } catch {
        // not a run
      }
    }
  }
  return parts.join('|');
}

/** A cancelled or failed stage that `--resume` continues (the registry says which stages resume). */
export function isResumable(s: StageView): boolean {
  const stage = stageOfKey(s.key);
  return (s.status === 'cancelled' || s.status === 'failed') && isStageName(stage) && REGISTRY[stage].resumable;
}

/** The engine stage a manifest key belongs to ('evaluate-pruned' is an evaluate). */
export function stageOfKey(key: string): string {
  return key.replace(/-pruned$/, '');
}

/** A run's tooltip, as plain text (a string tooltip is never rendered as Markdown or HTML). */
export function runTooltip(r: RunView, shownDir: string): string {
  const lines = [
    r.name,
    shownDir,
    r.data ? `data: ${r.data}` : '',
    r.backend ? `backend: ${r.backend}` : '',
    r.error ? `⚠ ${r.error}` : '',
  ];
  return lines.filter(Boolean).join('\n');
}

/** A stage's tooltip, as plain text: status, start, metrics one a line, the error. */
export function stageTooltip(s: StageView): string {
  return [
    `${s.key}: ${s.status}`,
    s.started ? `started ${new Date(s.started).toLocaleString()}` : '',
    ...Object.entries(s.metrics).map(([k, v]) => `${k}: ${v}`),
    s.error ?? '',
  ]
    .filter(Boolean)
    .join('\n');
}

// ---- checkpoints ------------------------------------------------------------------------------

export interface CheckpointView {
  dir: string;
  tree?: ParamNode;
  error?: string;
}

export type HeaderReader = (file: string) => { entries: Record<string, TensorInfo> };
export type AsyncHeaderReader = (file: string) => Promise<{ entries: Record<string, TensorInfo> }>;

/** Parameter tree of a checkpoint directory; `readHeader` reads only the safetensors header. */
export function readCheckpoint(dir: string, readHeader: HeaderReader): CheckpointView {
  const cfgFile = path.join(dir, 'config.json');
  let text: string;
  try {
    text = readTextBounded(cfgFile, 'json');
  } catch (e) {
    return configError(dir, cfgFile, e);
  }
  const from = readFromBeside(dir, (f) => readTextBounded(f, 'json'));
  if (onlyOtherWeights(dir, fs.existsSync))
    return checkpointView(dir, text, () => configShapes(JSON.parse(text)), from);
  return checkpointView(dir, text, () => readHeader(path.join(dir, 'model.safetensors')).entries, from);
}

/**
 * Where a pruned checkpoint came from: the structure of the prune-report.json beside its weights,
 * else (a re-fine-tuned checkpoint carries no report) its pruned-from.json; undefined when it has
 * neither or they cannot be read (the tree then shows the checkpoint alone).
 */
function readFromBeside(dir: string, read: (file: string) => string): PrunedFrom | undefined {
  for (const [name, parse] of FROM_FILES) {
    const file = path.join(dir, name);
    let text: string | undefined;
    try {
      text = fs.existsSync(file) ? read(file) : undefined;
    } catch {
      // unreadable: as if absent
    }
    const from = parse(jsonOf(text));
    if (from) return from;
  }
  return undefined;
}

async function readFromBesideAsync(dir: string): Promise<PrunedFrom | undefined> {
  for (const [name, parse] of FROM_FILES) {
    const file = path.join(dir, name);
    let text: string | undefined;
    try {
      text = fs.existsSync(file) ? (await readBoundedAsync(file, 'json')).toString('utf8') : undefined;
    } catch {
      // unreadable: as if absent
    }
    const from = parse(jsonOf(text));
    if (from) return from;
  }
  return undefined;
}

/** The files that say where a checkpoint came from, the first usable one wins. */
const FROM_FILES: [string, (json: unknown) => PrunedFrom | undefined][] = [
  ['prune-report.json', prunedFromReport],
  ['pruned-from.json', prunedFromFile],
];

/** A JSON text's value; undefined when there is none, or it is not JSON or nested too deep. */
function jsonOf(text: string | undefined): unknown {
  if (text === undefined || jsonDepthExceeded(text) >= 0) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * A HF folder without model.safetensors but with weights the engine reads (pytorch_model.bin, a
 * sharded checkpoint): its tree shows the shapes config.json implies (hfFolder.ts), never the weights.
 */
function onlyOtherWeights(dir: string, exists: (f: string) => boolean): boolean {
  if (exists(path.join(dir, 'model.safetensors'))) return false;
  return WEIGHT_FILES.some((f) => exists(path.join(dir, f)));
}

/**
 * readCheckpoint with asynchronous reads, for the extension host (the Runs tree and the parameters
 * panel): the thread is not blocked on the disk, and the tree is built in one pass (paramTree.ts).
 */
export async function readCheckpointAsync(dir: string, readHeader: AsyncHeaderReader): Promise<CheckpointView> {
  const cfgFile = path.join(dir, 'config.json');
  let text: string;
  try {
    text = (await readBoundedAsync(cfgFile, 'json')).toString('utf8');
  } catch (e) {
    return configError(dir, cfgFile, e);
  }
  const from = await readFromBesideAsync(dir);
  if (onlyOtherWeights(dir, fs.existsSync))
    return checkpointView(dir, text, () => configShapes(JSON.parse(text)), from);
  let entries: Record<string, TensorInfo> | undefined;
  let err: unknown;
  try {
    entries = (await readHeader(path.join(dir, 'model.safetensors'))).entries;
  } catch (e) {
    err = e;
  }
  return checkpointView(
    dir,
    text,
    () => {
      if (err !== undefined) throw err;
      return entries!;
    },
    from,
  );
}

function configError(dir: string, cfgFile: string, e: unknown): CheckpointView {
  const msg = (e as Error).message;
  return { dir, error: msg.includes(cfgFile) ? msg : `${cfgFile}: ${msg}` };
}

function checkpointView(
  dir: string,
  configText: string,
  entries: () => Record<string, TensorInfo>,
  prunedFrom?: PrunedFrom,
): CheckpointView {
  const cfgFile = path.join(dir, 'config.json');
  const weights = path.join(dir, 'model.safetensors');
  let cfg: TreeConfig;
  try {
    cfg = JSON.parse(configText) as TreeConfig;
  } catch (e) {
    return configError(dir, cfgFile, e);
  }
  if (typeof cfg !== 'object' || cfg === null) return { dir, error: `${cfgFile}: not a JSON object` };
  for (const k of ['hidden_size', 'num_hidden_layers', 'num_attention_heads'] as const) {
    if (!(typeof cfg[k] === 'number' && cfg[k] > 0))
      return { dir, error: `${cfgFile}: '${k}' must be a positive number` };
  }
  try {
    return { dir, tree: buildParamTree(cfg, entries(), prunedFrom) };
  } catch (e) {
    const msg = (e as Error).message;
    return { dir, error: msg.includes(weights) ? msg : `${weights}: ${msg}` };
  }
}

/**
 * A text file, or only its last `max` bytes (from the first whole line on) when it is bigger:
 * `cut` is told the file's size in MB.
 */
export function readTail(file: string, max: number, cut: (mb: string) => void): string {
  const { buf, cut: wasCut } = readTailBounded(file, 'historyTail', max);
  const text = buf.toString('utf8');
  if (!wasCut) return text;
  cut((fs.statSync(file).size / 1048576).toFixed(0));
  return text.slice(text.indexOf('\n') + 1);
}
