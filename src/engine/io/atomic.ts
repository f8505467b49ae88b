// Crash-safe file writes and friendly JSON reads.
//
// Every file the engine writes (run.json, reports, checkpoints) goes through writeFileAtomic: the
// bytes go to a temporary sibling, are fsync'ed, and only then renamed over the target. A rename
// inside one directory is atomic, so a reader (the VS Code extension polling run.json, or the next
// stage) sees either the old complete file or the new complete file, never half of one, even if the
// process is killed or the disk fills up mid-write.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { UserError } from '../errors';
import { guardWrite, isOurs } from './ownership';
import { readJsonBounded, type ReadKind } from './read';

function randomSuffix(): string {
  return crypto.randomBytes(4).toString('hex');
}

/** Turn an OS error about `file` into a UserError the user can act on; other errors pass through. */
function explainFsError(e: unknown, file: string): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const dir = path.dirname(file);
  switch (code) {
    case 'ENOSPC':
      return new UserError(`${file}: cannot write, disk full`);
    case 'EDQUOT':
      return new UserError(`${file}: cannot write, disk quota exceeded`);
    case 'EFBIG':
      return new UserError(`${file}: cannot write, file too large (file system limit, or the ulimit -f of this shell)`);
    case 'EACCES':
    case 'EPERM':
      return new UserError(`${file}: cannot write, ${dir} is not writable (permission denied)`);
    case 'EROFS':
      return new UserError(`${file}: cannot write, ${dir} is on a read-only file system`);
    case 'ENOENT':
      return new UserError(`${file}: cannot write, directory ${dir} does not exist`);
    case 'ENOTDIR':
      return new UserError(`${file}: cannot write, a parent of ${file} is a file, not a directory`);
    case 'EISDIR':
      return new UserError(`${file}: cannot write, it is a directory`);
    default:
      return e;
  }
}

/**
 * Write `data` to `file` atomically: write `file.tmp-<pid>-<rand>` in the same directory, fsync it,
 * rename it over `file`. On failure the temporary file is removed, the previous `file` (if any) is
 * left untouched, and disk-full / permission / missing-directory problems become UserErrors.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  guardWrite(file); // never through a symbolic link out of a held run
  const tmp = `${file}.tmp-${process.pid}-${randomSuffix()}`;
  let fd: number | undefined;
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    fd = fs.openSync(tmp, 'w');
    let written = 0;
    while (written < bytes.byteLength) {
      written += fs.writeSync(fd, bytes, written, bytes.byteLength - written);
    }
    fs.fsyncSync(fd); // the data must be on disk before the rename makes it visible
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already failing; keep the first error */
      }
    }
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      /* nothing more we can do */
    }
    throw explainFsError(e, file);
  }
  syncDir(path.dirname(file));
}

/** fsync a directory so a rename in it survives a power cut. Not possible on Windows; best effort. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Windows cannot open directories; some file systems refuse fsync on them. The rename is done.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Write `value` as pretty JSON (2-space indent, trailing newline), atomically. */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

export { lineCol } from './read';

/**
 * Read and parse a JSON file (bounded: io/read.ts). A missing file or invalid JSON is a UserError
 * naming the place: `config.json:3:14: invalid JSON: Expected ',' or '}' after property value`.
 * Nesting deeper than MAX_JSON_DEPTH is refused before parsing, so jsonErrorOffset's recursion is
 * bounded.
 */
export function readJson<T = unknown>(file: string, kind: ReadKind = 'json'): T {
  return readJsonBounded<T>(file, kind, jsonErrorOffset);
}

/**
 * Offset of the first syntax error in `text` (text.length when the input just ends early). Only
 * used for error messages when JSON.parse does not report a position, so it is a plain scanner that
 * knows JSON's grammar and nothing more.
 */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  class Stop {
    constructor(readonly at: number) {}
  }
  const fail = (at: number): never => {
    throw new Stop(at);
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const str = () => {
    i++; // opening quote
    while (i < text.length && text[i] !== '"') {
      const c = text.charCodeAt(i);
      if (c < 0x20) fail(i);
      if (text[i] === '\\') {
        i++;
        if (i >= text.length) fail(i);
        if (text[i] === 'u') {
          for (let k = 1; k <= 4; k++) if (!/[0-9a-fA-F]/.test(text[i + k] ?? '')) fail(i + k);
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i]!)) fail(i);
      }
      i++;
    }
    if (i >= text.length) fail(i);
    i++; // closing quote
  };
  const value = (): void => {
    ws();
    if (i >= text.length) fail(i);
    const c = text[i]!;
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail(i);
        str();
        ws();
        if (text[i] !== ':') fail(i);
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail(i);
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail(i);
      }
    }
    if (c === '"') return str();
    for (const lit of ['true', 'false', 'null']) {
      if (c === lit[0]) {
        for (let k = 1; k < lit.length; k++) if (text[i + k] !== lit[k]) fail(i + k);
        i += lit.length;
        return;
      }
    }
    // number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    const digit = () => /[0-9]/.test(text[i] ?? '');
    const digits = () => {
      if (!digit()) fail(i);
      while (digit()) i++;
    };
    if (text[i] === '-') i++;
    if (text[i] === '0') i++;
    else digits();
    if (text[i] === '.') {
      i++;
      digits();
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      digits();
    }
  };
  try {
    value();
    ws();
    return i < text.length ? i : text.length;
  } catch (e) {
    if (e instanceof Stop) return e.at;
    throw e;
  }
}

/**
 * Replace directory `finalDir` by `tmpDir` (a complete directory the caller wrote next to it), e.g.
 * a checkpoint. The old directory is moved aside to `finalDir.old-<rand>`, `tmpDir` is renamed into
 * place, then the old one is deleted. If the swap fails the old directory is put back, so there is
 * always one complete `finalDir` (or, at worst for a moment, `finalDir.old-*` next to it).
 */
export function replaceDirAtomic(tmpDir: string, finalDir: string): void {
  if (!fs.statSync(tmpDir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`replaceDirAtomic: ${tmpDir} is not a directory`);
  }
  guardWrite(finalDir);
  const hadOld = fs.existsSync(finalDir);
  const oldDir = `${finalDir}.old-${randomSuffix()}`;
  if (hadOld) {
    try {
      fs.renameSync(finalDir, oldDir);
    } catch (e) {
      throw explainFsError(e, finalDir);
    }
  }
  try {
    fs.renameSync(tmpDir, finalDir);
  } catch (e) {
    if (hadOld) {
      try {
        fs.renameSync(oldDir, finalDir);
      } catch {
        /* leave oldDir; the error below says why */
      }
    }
    throw explainFsError(e, finalDir);
  }
  if (hadOld) {
    // The new directory is in place; a leftover old copy only wastes space, so don't fail on it.
    try {
      fs.rmSync(oldDir, { recursive: true, force: true });
    } catch {
      /* ignore */
    }
  }
  syncDir(path.dirname(finalDir));
}

/**
 * After a crash between the two renames of replaceDirAtomic, `finalDir` is missing and its previous
 * complete version sits next to it as `finalDir.old-<rand>`. Put that back (the newest, if there are
 * several) and return true; return false when `finalDir` exists or there is nothing to recover.
 * Only a folder bearing our marker (a checkpoint bert-pruner wrote) is moved, and only commands that
 * write call this (a resumed stage, a command holding its run): a read never renames anything.
 */
export function recoverDir(finalDir: string): boolean {
  if (fs.existsSync(finalDir)) return false;
  const parent = path.dirname(finalDir);
  const prefix = `${path.basename(finalDir)}.old-`;
  let names: string[];
  try {
    names = fs.readdirSync(parent).filter((n) => n.startsWith(prefix) && /^[0-9a-f]{8}$/.test(n.slice(prefix.length)));
  } catch {
    return false;
  }
  const dirs = names
    .map((n) => ({ p: path.join(parent, n), st: fs.statSync(path.join(parent, n), { throwIfNoEntry: false }) }))
    .filter((d) => d.st?.isDirectory() && isOurs(d.p, 'checkpoint'))
    .sort((a, b) => b.st!.mtimeMs - a.st!.mtimeMs);
  if (dirs.length === 0) return false;
  fs.renameSync(dirs[0].p, finalDir);
  return true;
}

/**
 * recoverDir for every folder of a run a crash left aside (`X.old-<rand>` with `X` missing), for a
 * command that holds the run to write into it. Says what it put back through `warn`.
 */
export function recoverRun(runDir: string, warn: (message: string) => void): void {
  let names: string[];
  try {
    names = fs.readdirSync(runDir);
  } catch {
    return;
  }
  const have = new Set(names);
  const missing = new Set<string>();
  for (const n of names) {
    const m = /^(.+)\.old-[0-9a-f]{8}$/.exec(n);
    if (m && !have.has(m[1]!)) missing.add(m[1]!);
  }
  for (const n of missing) {
    const dir = path.join(runDir, n);
    if (recoverDir(dir)) warn(`${dir}: put back the previous version a crash had left aside`);
  }
}
