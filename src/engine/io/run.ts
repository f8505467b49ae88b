// The run manifest: `<run dir>/run.json`, one per run, the single source of truth about what a run
// has done. Stages update it as they go; the VS Code extension reads (and watches) it to draw the
// run tree, so its layout is versioned and documented here field by field.
//
// run.json, version 1:
//   version    1. Bumped on any incompatible change; readers refuse other versions.
//   name       display name of the run (by default the run directory's base name).
//   created    ISO-8601 time the run was first opened.
//   updated    ISO-8601 time of the last write (every save sets it).
//   backend    tfjs backend of the latest stage that ran ('wasm', 'cpu', 'tensorflow', ...).
//   preset     name of the settings preset the run was started with ('quick', 'gaiic', 'tiny').
//   settings   the resolved Settings (config/settings.ts) the run was started with.
//   data       where the data came from: dir (data directory), train / test (CSV files),
//              testSplit (fraction held out when no test file was given), seed (split seed).
//   pipeline   present when the pipeline command ran in this run: steps (the stage keys it runs, in
//              order) and started (ISO-8601 time of its latest start). `pipeline --resume` and the
//              editor's Resume continue the whole pipeline from it.
//   stages     one StageRecord per stage name ('pretrain', 'finetune', 'prune', 'refinetune', ...):
//     status       'pending' | 'running' | 'done' | 'failed' | 'cancelled'.
//     started      ISO-8601 start time of the latest attempt.
//     ended        ISO-8601 end time of the latest attempt (absent while running).
//     seconds      wall-clock duration of the latest attempt.
//     metrics      final numbers of the stage (e.g. {"loss": 0.31, "auc": 0.93}); updates merge.
//     checkpoint   checkpoint directory the stage produced, relative to the run directory.
//     report       JSON report the stage wrote (curves, pruning summary), relative to the run dir.
//     settings     the settings this stage actually used (after its own overrides).
//     error        the error message when status is 'failed'.
//     backend      tfjs backend this stage ran on.
//     precision    'fp32' | 'mixed': the precision it ran in (f16 matmul inputs, f32 accumulation:
//                  webgpu only; absent in runs made before it was recorded: fp32).
//     epochsDone   completed epochs (for resuming and for progress display).
//     pid, host    the process id and host name of the process that ran the latest attempt. A
//                  'running' stage whose process is gone (killed, out of memory) is marked
//                  'failed' by the next command that opens the run on that host (reapDeadStages).
// Paths inside run.json are always relative to the run directory and use '/' so a run directory can
// be moved or copied to another machine. Writes are atomic (io/atomic.ts).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../errors';
import { readJson, writeJsonAtomic } from './atomic';
import { goneStageError, recordedProcessGone } from './process';

export const RUN_MANIFEST = 'run.json';
const RUN_VERSION = 1;
/** Where a plain run name given to --run lives, relative to the working directory. */
const RUNS_ROOT = 'runs';

export type StageStatus = 'pending' | 'running' | 'done' | 'failed' | 'cancelled';

export interface StageRecord {
  status: StageStatus;
  started?: string;
  ended?: string;
  seconds?: number;
  metrics?: Record<string, number>;
  checkpoint?: string; // relative to the run dir
  report?: string; // relative path of a report json
  settings?: unknown;
  error?: string;
  backend?: string;
  precision?: 'fp32' | 'mixed';
  epochsDone?: number;
  /** Classifier stages: the label set trained for and where its names and problem type came from. */
  labels?: { names: string[]; problem_type: string; names_from: string; problem_from: string };
  pid?: number;
  host?: string;
}

export interface RunManifest {
  version: 1;
  name: string;
  created: string;
  updated: string;
  backend?: string;
  preset?: string;
  settings?: unknown;
  data?: { dir?: string; train?: string; test?: string; testSplit?: number; seed?: number };
  /** The pipeline command ran in this run: the stage keys it runs, in order. */
  pipeline?: { steps: string[]; started: string };
  stages: Record<string, StageRecord>;
}

/** The run directory for a path: identity apart from normalisation (use safeRunPath for --run). */
export function runDir(runsRootOrPath: string): string {
  return path.normalize(runsRootOrPath);
}

/**
 * Resolve a --run argument. A plain name ('quick') means `runs/quick` under the working directory; a
 * value with a path separator ('out/run1', '/tmp/r', '.\\r') is taken as the path it is. Empty
 * values and '..' segments are refused, so a run name cannot point outside where the user expects.
 */
export function safeRunPath(run: string): string {
  const value = run.trim();
  if (value === '') throw new UserError(`--run: empty run name`);
  const segments = value.split(/[\\/]+/);
  if (segments.includes('..')) {
    throw new UserError(`--run '${run}': '..' is not allowed in a run name or path (give an absolute path instead)`);
  }
  const isPath = /[\\/]/.test(value) || path.isAbsolute(value);
  if (!isPath) {
    if (value === '.') throw new UserError(`--run '.': not a valid run name`);
    return path.join(RUNS_ROOT, value);
  }
  return path.normalize(value);
}

function manifestPath(dir: string): string {
  return path.join(dir, RUN_MANIFEST);
}

/** Load `<dir>/run.json`. A missing file, another version or a malformed manifest is a UserError. */
export function loadRun(dir: string): RunManifest {
  const file = manifestPath(dir);
  if (!fs.existsSync(file)) {
    throw new UserError(`${file}: not found (${dir} is not a run directory; run a stage with --run ${dir} first)`);
  }
  const m = readJson<RunManifest>(file);
  if (typeof m !== 'object' || m === null || Array.isArray(m))
    throw new UserError(`${file}: not a run manifest (expected a JSON object)`);
  if (m.version !== RUN_VERSION) {
    throw new UserError(
      `${file}: run.json version ${JSON.stringify(m.version)} is not supported ` +
        `(this engine reads version ${RUN_VERSION})`,
    );
  }
  if (typeof m.stages !== 'object' || m.stages === null || Array.isArray(m.stages)) {
    throw new UserError(`${file}: 'stages' must be an object`);
  }
  for (const [key, s] of Object.entries(m.stages)) checkStageRecord(file, key, s);
  return m;
}

const STATUSES: readonly string[] = ['pending', 'running', 'done', 'failed', 'cancelled'];
const RECORD_TYPES: Readonly<Record<string, string>> = {
  started: 'string',
  ended: 'string',
  seconds: 'number',
  checkpoint: 'string',
  report: 'string',
  error: 'string',
  backend: 'string',
  precision: 'string',
  epochsDone: 'number',
  pid: 'number',
  host: 'string',
  metrics: 'object',
  labels: 'object',
};

/** A stage record's fields the engine reads, typed; one line naming the JSON path otherwise. */
function checkStageRecord(file: string, key: string, s: unknown): void {
  const at = `/stages/${key}`;
  if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new UserError(`${file}: ${at}: must be an object`);
  const r = s as Record<string, unknown>;
  if (!STATUSES.includes(r.status as string))
    throw new UserError(
      `${file}: ${at}/status: must be one of ${STATUSES.join(', ')}, got ${JSON.stringify(r.status)}`,
    );
  for (const [k, type] of Object.entries(RECORD_TYPES)) {
    const v = r[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== type || (type === 'object' && Array.isArray(v)))
      throw new UserError(`${file}: ${at}/${k}: must be a ${type}, got ${JSON.stringify(v).slice(0, 40)}`);
  }
}

/**
 * Load the run in `dir`, or create it (and the directory) when there is none. Fields given in
 * `init` overwrite the loaded ones (the latest invocation's preset, data, backend win); stage
 * records in `init.stages` replace those of the same name. The result is written back.
 */
export function openRun(dir: string, init: Partial<RunManifest> = {}): RunManifest {
  let m: RunManifest;
  if (fs.existsSync(manifestPath(dir))) {
    m = loadRun(dir);
    reapDeadStages(m);
  } else {
    fs.mkdirSync(dir, { recursive: true });
    const now = new Date().toISOString();
    m = { version: RUN_VERSION, name: path.basename(path.resolve(dir)), created: now, updated: now, stages: {} };
  }
  const { version: _v, created: _c, updated: _u, stages, ...rest } = init;
  for (const [k, v] of Object.entries(rest)) {
    if (v !== undefined) (m as unknown as Record<string, unknown>)[k] = v;
  }
  if (stages) Object.assign(m.stages, stages);
  saveRun(dir, m);
  return m;
}

/** Write the manifest atomically, stamping `updated` (on `m` too). */
export function saveRun(dir: string, m: RunManifest): void {
  m.updated = new Date().toISOString();
  writeJsonAtomic(manifestPath(dir), m);
}

/**
 * Load, patch one stage record, save. Fields in `patch` replace the record's (a field set to
 * undefined is removed); `metrics` are merged key by key. A stage not yet in the manifest starts
 * as {status: 'pending'}; a run directory without run.json is created.
 */
export function updateStage(dir: string, stage: string, patch: Partial<StageRecord>): RunManifest {
  const m = fs.existsSync(manifestPath(dir)) ? loadRun(dir) : openRun(dir);
  reapDeadStages(m);
  const old: StageRecord = m.stages[stage] ?? { status: 'pending' };
  const next: StageRecord = { ...old, ...patch };
  // Who runs it: a stage left 'running' by a process that is gone can then be told apart.
  if (patch.status === 'running') Object.assign(next, { pid: process.pid, host: os.hostname() });
  if (patch.metrics) next.metrics = { ...old.metrics, ...patch.metrics };
  for (const k of Object.keys(next) as (keyof StageRecord)[]) {
    if (next[k] === undefined) delete next[k];
  }
  m.stages[stage] = next;
  saveRun(dir, m);
  return m;
}

/**
 * The absolute-or-relative path of `rel` inside run directory `dir` (as stored in run.json). Paths
 * that would leave the run directory (absolute, or through '..') are refused with a UserError.
 */
export function runFile(dir: string, rel: string): string {
  if (rel === '' || path.isAbsolute(rel) || /^[a-zA-Z]:/.test(rel)) {
    throw new UserError(`${manifestPath(dir)}: path '${rel}' must be relative to the run directory`);
  }
  const full = path.join(dir, rel);
  const inside = path.relative(path.resolve(dir), path.resolve(full));
  if (inside === '..' || inside.startsWith('..' + path.sep) || path.isAbsolute(inside)) {
    throw new UserError(`${manifestPath(dir)}: path '${rel}' points outside the run directory`);
  }
  return full;
}

/**
 * Mark 'failed' every stage of `m` recorded as 'running' by a process of this host that no longer
 * exists (killed with -9, by the kernel for memory, or a crash of the engine): without this it would
 * show as running forever. Stages of other hosts, of live processes and records without a pid (older
 * manifests) are left alone. `--resume` continues a reaped stage like any failed one. Returns the
 * keys marked; the caller saves the manifest.
 */
export function reapDeadStages(m: RunManifest): string[] {
  const reaped: string[] = [];
  for (const [key, s] of Object.entries(m.stages)) {
    if (s?.status !== 'running' || !recordedProcessGone(s.pid, s.host, s.started)) continue;
    const ended = new Date().toISOString();
    const seconds = s.started ? Math.max(0, (Date.parse(ended) - Date.parse(s.started)) / 1000) : undefined;
    m.stages[key] = {
      ...s,
      status: 'failed',
      ended,
      ...(seconds !== undefined && Number.isFinite(seconds) ? { seconds } : {}),
      error: goneStageError(s.pid, s.host),
    };
    reaped.push(key);
  }
  return reaped;
}
/**
 * Record in run.json that `epochs` epochs of a training stage are complete (and in its `-last`
 * checkpoint), so that after a crash or kill -9 the manifest says how far the stage got.
 */
export function noteEpochsDone(runDir: string, key: string, epochs: number): void {
  if (fs.existsSync(path.join(runDir, RUN_MANIFEST))) updateStage(runDir, key, { epochsDone: epochs });
}
