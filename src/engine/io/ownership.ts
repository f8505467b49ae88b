// What bert-pruner may delete or replace: only what it made. Every folder it creates (checkpoints, ONNX exports,
// demo data, scratch folders) carries a marker file, MARKER (`.bert-pruner`, JSON {kind, created,
// by}); a run folder is marked by its run.json. A command re-run onto its own earlier output needs
// no flag; an existing target it did not make is refused before any work starts, with one line
// naming it and the flag that allows it (--force).
//
// Before the marker existed: a folder with our checkpoint layout (config.json holding `max_len`,
// which HF never writes, + model.safetensors + vocab.txt) counts as our checkpoint, a folder whose
// README.md starts like ours as our demo data, so older runs are not locked out.
//
// Single files we write (predictions .jsonl, evaluation .json) have no marker: an existing file is
// replaced only when it is empty or its content parses as one of ours (a predictions line
// {"id", "probs"}; an evaluation {"model", "data", "per_label"}), or with --force.
//
// Writes never follow a symbolic link out of the run: while a command holds a run (holdRun), every
// atomic write under it checks the folders between the run and the file (guardWrite). Reading
// through links is not affected. A run is held by one process at a time: `run.lock` (see holdRun).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../errors';
import { processAlive } from './process';
import { readHead, readTextBounded } from './read';

export const MARKER = '.bert-pruner';
export const LOCK_FILE = 'run.lock';

/** Every name bert-pruner writes into a checkpoint folder; a folder holding anything else is not replaced. */
export const CHECKPOINT_ENTRIES: ReadonlySet<string> = new Set([
  MARKER,
  'config.json',
  'model.safetensors',
  'vocab.txt',
  'token_counts.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.json',
  'train-state.json',
  'optimizer.safetensors',
  'thresholds.json',
  'prune-report.json',
  'pruned-from.json',
]);

export type OwnedKind = 'checkpoint' | 'demo-data' | 'scratch' | 'run' | 'export';
export type OwnedFileKind = 'predictions' | 'evaluation';

/** The command that is running (for the markers' `by`); set by runCommand. */
let command = 'bert-pruner';
export function setCommand(name: string): void {
  command = name;
  forced.clear(); // --force is per command (the extension's engine process runs many)
}

/** Targets the user allowed with --force in this command (resolved paths). */
const forced = new Set<string>();

/** The marker's content for a folder of this kind. */
export function markerFor(kind: OwnedKind): { kind: OwnedKind; created: string; by: string } {
  return { kind, created: new Date().toISOString(), by: command };
}

/** Write the marker into `dir` (it must exist). */
export function markDir(dir: string, kind: OwnedKind): void {
  fs.writeFileSync(path.join(dir, MARKER), JSON.stringify(markerFor(kind)) + '\n');
}

function readMarker(dir: string): { kind?: string } | null {
  try {
    const v = JSON.parse(readTextBounded(path.join(dir, MARKER), 'json'));
    return v && typeof v === 'object' ? v : null;
  } catch {
    return null;
  }
}

/** A checkpoint written before the marker existed: config.json with our `max_len`, weights, vocab. */
function legacyCheckpoint(dir: string): boolean {
  if (!fs.existsSync(path.join(dir, 'model.safetensors')) || !fs.existsSync(path.join(dir, 'vocab.txt'))) return false;
  try {
    const cfg = JSON.parse(readTextBounded(path.join(dir, 'config.json'), 'json'));
    return !!cfg && typeof cfg === 'object' && typeof cfg.max_len === 'number';
  } catch {
    return false;
  }
}

function legacyDemo(dir: string): boolean {
  try {
    return readHead(path.join(dir, 'README.md'), 64).toString('utf8').startsWith('# Synthetic demo data');
  } catch {
    return false;
  }
}

/** Whether `dir` is a folder bert-pruner made as `kind` (marker, run.json, or the older layouts). */
export function isOurs(dir: string, kind: OwnedKind): boolean {
  const m = readMarker(dir);
  if (m) return m.kind === kind;
  if (kind === 'run') return isRunFolder(dir);
  if (kind === 'checkpoint') return legacyCheckpoint(dir);
  if (kind === 'demo-data') return legacyDemo(dir);
  return false;
}

function isRunFolder(dir: string): boolean {
  try {
    const m = JSON.parse(readTextBounded(path.join(dir, 'run.json'), 'json'));
    return !!m && typeof m === 'object' && m.version === 1 && typeof m.stages === 'object';
  } catch {
    return false;
  }
}

const KIND_TEXT: Record<OwnedKind | OwnedFileKind, string> = {
  checkpoint: 'a checkpoint',
  'demo-data': 'demo data',
  scratch: 'a scratch folder',
  run: 'a run folder',
  export: 'an ONNX export',
  predictions: 'a predictions file',
  evaluation: 'an evaluation file',
};

function refuse(target: string, kind: OwnedKind | OwnedFileKind, flag: string | undefined, what = 'replace'): never {
  const other = flag ? `choose another ${flag}, or ` : '';
  const not = `exists and is not ${KIND_TEXT[kind]} made by bert-pruner`;
  throw new UserError(`${target}: ${not}; refusing to ${what} it (${other}pass --force to ${what} it)`);
}

/** Whether a file holds what we write as `kind` (or nothing). */
function fileIsOurs(file: string, kind: OwnedFileKind): boolean {
  let text: string;
  try {
    text = readHead(file, 1 << 16).toString('utf8');
  } catch {
    return false;
  }
  if (text.trim() === '') return true;
  try {
    if (kind === 'predictions') {
      const v = JSON.parse(text.slice(0, text.indexOf('\n') >= 0 ? text.indexOf('\n') : undefined));
      return !!v && typeof v === 'object' && 'id' in v && Array.isArray(v.probs);
    }
    // An evaluation is small: the whole file is read when it is bigger than the first chunk.
    const v = JSON.parse(text.length < 1 << 16 ? text : readTextBounded(file, 'json'));
    return !!v && typeof v === 'object' && 'model' in v && 'data' in v && Array.isArray(v.per_label);
  } catch {
    return false;
  }
}

/** lstat, or undefined when nothing is there (missing, or a parent is a file: the writer says so). */
function lstat(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if (['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw e;
  }
}

export interface ReplaceOptions {
  /** --force was given: replace it anyway. */
  force?: boolean;
  /** The flag that names the target (--out), for the message. */
  flag?: string;
}

/**
 * Refuse (a UserError naming it and --force) to replace `target` unless it is missing, an empty
 * folder, or a folder bert-pruner made as `kind`. With force the target is remembered, so the
 * writer's own last check (assertReplaceable) lets it through. Call it before any work starts.
 */
export function checkReplaceable(target: string, kind: OwnedKind, o: ReplaceOptions = {}): void {
  const st = lstat(target);
  if (!st || forced.has(path.resolve(target))) return;
  if (o.force) {
    forced.add(path.resolve(target));
    return;
  }
  if (st.isDirectory() && fs.readdirSync(target).length === 0) return;
  if (st.isDirectory() && isOurs(target, kind)) {
    // Ours, but replacing it deletes everything in it: refused when the user added files (a model
    // card, a converted pytorch_model.bin), as a folder we did not make is.
    const foreign = kind === 'checkpoint' ? fs.readdirSync(target).filter((n) => !CHECKPOINT_ENTRIES.has(n)) : [];
    if (foreign.length === 0) return;
    const shown = foreign.slice(0, 3).join(', ') + (foreign.length > 3 ? `, ... (${foreign.length} in all)` : '');
    const other = o.flag ? `choose another ${o.flag}, or ` : '';
    throw new UserError(
      `${target}: holds files bert-pruner did not write (${shown}); refusing to replace it ` +
        `(${other}pass --force to replace it)`,
    );
  }
  refuse(target, kind, o.flag);
}

/** The writer's own check, right before it replaces `target` (checkReplaceable already ran, or --force). */
export function assertReplaceable(target: string, kind: OwnedKind): void {
  checkReplaceable(target, kind);
}

/** Refuse to overwrite an existing file that is not one of ours of `kind` (checked before any work). */
export function checkFileReplaceable(file: string, kind: OwnedFileKind, o: ReplaceOptions = {}): void {
  const st = lstat(file);
  if (!st || o.force) return;
  if (st.isDirectory()) throw new UserError(`${file}: is a directory${o.flag ? ` (${o.flag} must name a file)` : ''}`);
  if (st.isFile() && fileIsOurs(file, kind)) return;
  refuse(file, kind, o.flag, 'overwrite');
}

/**
 * A scratch folder of ours (e.g. gradual pruning's rounds): refused when something we did not make
 * is there (unless force), else created fresh with a marker. Returns a function that removes it,
 * and only it, when it still carries our marker.
 */
export function makeScratch(dir: string, o: ReplaceOptions = {}): () => void {
  if (lstat(dir)) {
    if (!o.force && !isOurs(dir, 'scratch')) refuse(dir, 'scratch', undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  fs.mkdirSync(dir, { recursive: true });
  markDir(dir, 'scratch');
  return () => {
    if (isOurs(dir, 'scratch')) fs.rmSync(dir, { recursive: true, force: true });
  };
}

// ---- writes never leave the run through a symbolic link ----

/** The run folders held by this process (resolved, and their real paths). */
const roots: { dir: string; real: string }[] = [];

function inside(parent: string, p: string): boolean {
  const rel = path.relative(parent, p);
  return rel === '' || (!rel.startsWith('..' + path.sep) && rel !== '..' && !path.isAbsolute(rel));
}

/** A symbolic link at `p` whose target lies outside `real` (the run's real path): its real path, else null. */
function linkOut(p: string, real: string): string | null {
  const st = lstat(p);
  if (!st?.isSymbolicLink()) return null;
  let to: string;
  try {
    to = fs.realpathSync(p);
  } catch {
    to = path.resolve(path.dirname(p), fs.readlinkSync(p)); // dangling: where a write would land
  }
  return inside(real, to) ? null : to;
}

function linkError(link: string, to: string, run: string): UserError {
  const why = 'bert-pruner does not write through it (remove the link)';
  return new UserError(`${link}: is a symbolic link to ${to}, outside the run ${run}; ${why}`);
}

/**
 * Refuse a write to `target` when a folder between a held run and `target` (or `target` itself)
 * is a symbolic link that leads out of the run. Targets outside every held run are not checked.
 */
export function guardWrite(target: string): void {
  const abs = path.resolve(target);
  for (const r of roots) {
    if (!inside(r.dir, abs)) continue;
    const parts = path.relative(r.dir, abs).split(path.sep).filter(Boolean);
    let p = r.dir;
    for (const part of parts) {
      p = path.join(p, part);
      const to = linkOut(p, r.real);
      if (to) throw linkError(p, to, r.dir);
    }
  }
}

/** Every symbolic link inside `dir` (not followed) that leads out of it: refused before any work. */
function scanLinks(dir: string, real: string): void {
  const todo = [dir];
  let seen = 0;
  while (todo.length && seen < 20000) {
    const d = todo.pop()!;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      seen++;
      const p = path.join(d, e.name);
      if (e.isSymbolicLink()) {
        const to = linkOut(p, real);
        if (to) throw linkError(p, to, dir);
      } else if (e.isDirectory()) todo.push(p);
    }
  }
}

// ---- one process per run ----

interface LockInfo {
  pid: number;
  host: string;
  started: string;
  command: string;
}

function readLock(file: string): LockInfo | null {
  try {
    return JSON.parse(readTextBounded(file, 'json', 4096)) as LockInfo;
  } catch {
    return null;
  }
}

export interface HeldRun {
  release(): void;
}

/**
 * Take the run folder `dir` for this command, before any work starts:
 *   - an existing folder that is neither empty nor a run (run.json) is refused unless force;
 *   - a symbolic link inside it that leads out of it is refused;
 *   - `run.lock` is created exclusively with {pid, host, started, command}. A lock held by a live
 *     process (or one on another host) is refused, naming the holder; a lock left by a process
 *     that is no longer alive on this host is taken over (warn says so).
 * Writes under `dir` are then checked by guardWrite until release(), which removes the lock (and
 * the folder, when this call created it and it stayed empty).
 */
export function holdRun(dir: string, o: { force?: boolean; warn?: (msg: string) => void } = {}): HeldRun {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    // Missing, or under a file: mkdir below says which, naming the path.
    if (!['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
  }
  if (st && !st.isDirectory()) throw new UserError(`${dir}: exists and is not a folder (choose another --run)`);
  const rest = st ? fs.readdirSync(dir).filter((n) => n !== LOCK_FILE) : [];
  if (st && rest.length > 0 && !o.force && !isOurs(dir, 'run')) {
    throw new UserError(
      `${dir}: exists and is not a run folder made by bert-pruner (no run.json); refusing to write into it ` +
        `(choose another --run, or pass --force)`,
    );
  }
  const created = !st;
  fs.mkdirSync(dir, { recursive: true });
  const real = fs.realpathSync(dir);
  scanLinks(dir, real);
  const file = path.join(dir, LOCK_FILE);
  const me: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), command };
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(me) + '\n', { flag: 'wx' });
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EROFS') throw new UserError(`${file}: cannot write, ${dir} is on a read-only file system`);
      if (code === 'EACCES' || code === 'EPERM') {
        throw new UserError(`${file}: cannot write, ${dir} is not writable (permission denied)`);
      }
      if (code !== 'EEXIST' || attempt > 0) throw e;
      const h = readLock(file);
      const who = h ? `pid ${h.pid} on ${h.host}, '${h.command}' since ${h.started}` : 'an unreadable lock';
      if (h && h.host === os.hostname() && Number.isInteger(h.pid) && h.pid > 0 && !processAlive(h.pid)) {
        o.warn?.(`${file}: taking over a stale lock (${who}; that process is gone)`);
        fs.rmSync(file, { force: true });
        continue;
      }
      throw new UserError(
        `${file}: the run is in use by another bert-pruner process (${who}); wait for it to finish, or remove ` +
          `the file if that process is gone`,
      );
    }
  }
  const root = { dir: path.resolve(dir), real };
  roots.push(root);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    roots.splice(roots.indexOf(root), 1);
    process.removeListener('exit', release);
    const h = readLock(file);
    if (h && h.pid === process.pid && h.started === me.started) fs.rmSync(file, { force: true });
    if (created) {
      try {
        fs.rmdirSync(dir); // only when it stayed empty
      } catch {
        /* it holds the run now */
      }
    }
  };
  process.once('exit', release);
  return { release };
}
