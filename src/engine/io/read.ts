// The one way bert-pruner reads a file that is not part of its own package (engine and extension):
// configs, run records, tokenizer files, vocabularies, data, weights. A hostile folder can make any
// name point anywhere (a link to /dev/zero, a FIFO that never ends, /proc/self/mem), and stat's size
// is 0 for special files, so every read here
//   - requires a regular file after links are resolved (stat before opening, fstat of the opened
//     handle after; the open is non-blocking, so a FIFO cannot hang it);
//   - reads at most limit + 1 bytes from the open handle, whatever stat said, and refuses a file over
//     the limit of its kind in one line naming it;
//   - takes its limit from READ_LIMITS below: every kind of file and its limit, in one place.
// The lint rule in eslint.config.mjs bans raw fs reads (readFileSync, readSync, createReadStream,
// fs.promises.readFile ...) everywhere in src/ except this file.
import * as fs from 'node:fs';
import { UserError } from '../errors';

const MiB = 1024 * 1024;

/** Every kind of file we read, with the most bytes we read of it. */
export const READ_LIMITS = {
  /** config.json, run.json, tokenizer_config.json, special_tokens_map.json, settings and prune configs,
   * thresholds.json, the backend speeds file, a sharded index, an evaluation: a few KB to a few MB. */
  json: 16 * MiB,
  /** token_counts.json: one count per vocabulary token. */
  tokenCounts: 64 * MiB,
  /** tokenizer.json: a 250k-token vocabulary with merges fits in ~20 MB. */
  tokenizerJson: 64 * MiB,
  /** vocab.txt: 250k tokens of at most a few hundred bytes. */
  vocab: 64 * MiB,
  /** A masks file for pruning (a list of 0/1 per head and neuron). */
  masks: 64 * MiB,
  /** Raw-text data (.jsonl, header .csv) read whole; GAIIC csv is streamed (any size). */
  text: 512 * MiB,
  /** history.jsonl, whole (the extension reads only its tail, historyTail). */
  history: 256 * MiB,
  /** The tail of a history the Runs view shows. */
  historyTail: 32 * MiB,
  /** A weights file read whole (model.safetensors, pytorch_model.bin, a shard): BERT-large in fp32 is
   * 1.3 GB; Node's Buffer holds at most 4 GiB - 1. */
  weights: 2 ** 32 - 1,
  /** The first bytes of a file looked at to recognise it (a data format, our own output). */
  head: 64 * 1024,
} as const;

export type ReadKind = keyof typeof READ_LIMITS;

/** The deepest JSON nesting we parse (configs are 3-4 levels deep; tokenizer.json about 6). */
export const MAX_JSON_DEPTH = 256;

const CHUNK = 8 * MiB;

function openError(e: unknown, file: string): never {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') throw new UserError(`${file}: file not found`);
  if (code === 'EISDIR') throw new UserError(`${file}: is a directory, expected a file`);
  if (code === 'EACCES' || code === 'EPERM') throw new UserError(`${file}: not readable (permission denied)`);
  if (code === 'ELOOP') throw new UserError(`${file}: too many levels of symbolic links`);
  if (code === 'ENOTDIR') throw new UserError(`${file}: a part of the path is a file, not a directory`);
  throw e;
}

function notRegular(file: string, st: fs.Stats): never {
  const what = st.isDirectory()
    ? 'is a directory'
    : st.isFIFO()
      ? 'is a named pipe (FIFO)'
      : st.isCharacterDevice() || st.isBlockDevice()
        ? 'is a device'
        : st.isSocket()
          ? 'is a socket'
          : 'is not a regular file';
  throw new UserError(`${file}: ${what}, expected a regular file; not read`);
}

const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);

/** Open `file` for reading, refusing anything but a regular file (links resolved). Caller closes. */
export function openRegular(file: string): number {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    return openError(e, file);
  }
  if (!st.isFile()) notRegular(file, st);
  let fd: number;
  try {
    fd = fs.openSync(file, OPEN_FLAGS);
  } catch (e) {
    return openError(e, file);
  }
  const st2 = fs.fstatSync(fd); // the thing opened, not the name (it may have been swapped)
  if (!st2.isFile()) {
    fs.closeSync(fd);
    notRegular(file, st2);
  }
  return fd;
}

function tooBig(file: string, kind: ReadKind, limit: number): never {
  throw new UserError(`${file}: over the ${limit}-byte limit for a ${kind} file; not read`);
}

/** Read up to `n` bytes at `position` (fewer only at the end of the file). */
export function readAt(fd: number, buf: Buffer, position: number, n = buf.length): number {
  let got = 0;
  while (got < n) {
    const k = fs.readSync(fd, buf, got, n - got, position + got);
    if (k === 0) break;
    got += k;
  }
  return got;
}

/** The whole of an open regular file, at most `limit` bytes (limit + 1 read means: too big). */
function readAllFd(fd: number, file: string, kind: ReadKind, limit: number): Buffer {
  const size = fs.fstatSync(fd).size;
  // stat's size is a hint for the first buffer, never the bound (it is 0 for special files).
  const parts: Buffer[] = [];
  let total = 0;
  let cap = Math.min(limit + 1, Math.max(size + 1, 4096));
  for (;;) {
    const buf = Buffer.allocUnsafe(cap);
    const n = readAt(fd, buf, total);
    if (n > 0) parts.push(n === buf.length ? buf : buf.subarray(0, n));
    total += n;
    if (total > limit) tooBig(file, kind, limit);
    if (n < buf.length) break;
    cap = Math.min(CHUNK, limit + 1 - total);
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
}

/** The bytes of a regular file of `kind`, bounded by its limit (or a smaller `limit`). */
export function readBounded(file: string, kind: ReadKind, limit: number = READ_LIMITS[kind]): Buffer {
  const fd = openRegular(file);
  try {
    return readAllFd(fd, file, kind, Math.min(limit, READ_LIMITS[kind]));
  } finally {
    fs.closeSync(fd);
  }
}

/** A regular text file of `kind` as UTF-8 (a BOM is kept; callers that care strip it). */
export function readTextBounded(file: string, kind: ReadKind, limit: number = READ_LIMITS[kind]): string {
  return readBounded(file, kind, limit).toString('utf8');
}

/** The first `n` bytes (at most READ_LIMITS.head) of a regular file. */
export function readHead(file: string, n: number = READ_LIMITS.head): Buffer {
  const fd = openRegular(file);
  try {
    const buf = Buffer.alloc(Math.min(n, READ_LIMITS.head));
    return buf.subarray(0, readAt(fd, buf, 0));
  } finally {
    fs.closeSync(fd);
  }
}

/** The last `n` bytes (at most the kind's limit) of a regular file, and whether it was cut. */
export function readTail(file: string, kind: ReadKind, n: number = READ_LIMITS[kind]): { buf: Buffer; cut: boolean } {
  const fd = openRegular(file);
  try {
    const size = fs.fstatSync(fd).size;
    const max = Math.min(n, READ_LIMITS[kind]);
    const start = Math.max(0, size - max);
    const buf = Buffer.alloc(Math.min(max, size));
    return { buf: buf.subarray(0, readAt(fd, buf, start)), cut: start > 0 };
  } finally {
    fs.closeSync(fd);
  }
}

/** Run `f` on an open regular file (a streamed reader: GAIIC csv, a safetensors header). */
export function withRegularFile<T>(file: string, f: (fd: number, size: number) => T): T {
  const fd = openRegular(file);
  try {
    return f(fd, fs.fstatSync(fd).size);
  } finally {
    fs.closeSync(fd);
  }
}

/** Sequential chunks of an open file (fills `buf` from the current position); 0 at the end. */
export function readNext(fd: number, buf: Buffer): number {
  return fs.readSync(fd, buf, 0, buf.length, null);
}

// ---- asynchronous, for the extension host (its thread never waits on the disk) -----------------

async function openRegularAsync(file: string): Promise<fs.promises.FileHandle> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch (e) {
    return openError(e, file);
  }
  if (!st.isFile()) notRegular(file, st);
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, OPEN_FLAGS);
  } catch (e) {
    return openError(e, file);
  }
  const st2 = await fh.stat();
  if (!st2.isFile()) {
    await fh.close();
    notRegular(file, st2);
  }
  return fh;
}

/** readBounded with asynchronous reads. */
export async function readBoundedAsync(
  file: string,
  kind: ReadKind,
  limit: number = READ_LIMITS[kind],
): Promise<Buffer> {
  const fh = await openRegularAsync(file);
  try {
    const max = Math.min(limit, READ_LIMITS[kind]);
    const parts: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, max + 1 - total));
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, total + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got > 0) parts.push(buf.subarray(0, got));
      total += got;
      if (total > max) tooBig(file, kind, max);
      if (got < buf.length) break;
    }
    return Buffer.concat(parts, total);
  } finally {
    await fh.close();
  }
}

/** Bytes [position, position + n) of a regular file, asynchronously (a safetensors header). */
export async function readRangeAsync(
  file: string,
  position: number,
  n: number,
): Promise<{ buf: Buffer; size: number }> {
  const fh = await openRegularAsync(file);
  try {
    const size = (await fh.stat()).size;
    const buf = Buffer.alloc(Math.max(0, Math.min(n, size - position)));
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return { buf: buf.subarray(0, got), size };
  } finally {
    await fh.close();
  }
}

// ---- JSON ---------------------------------------------------------------------------------------

/** 1-based line and column of character `offset` in `text`. */
export function lineCol(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(Math.max(offset, 0), text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, col: end - lineStart + 1 };
}

/**
 * The offset where JSON text nests deeper than `max` arrays/objects, or -1. One linear pass that
 * skips strings; run before JSON.parse and before any error locator, so neither ever recurses
 * deeper than `max` on the input's account.
 */
export function jsonDepthExceeded(text: string, max = MAX_JSON_DEPTH): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // a string: skip to its closing quote
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return i;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return -1;
}

/**
 * Parse JSON text read from `file`: a nesting-depth check first, then JSON.parse. Errors are one line
 * `FILE:LINE:COL: invalid JSON: reason`. `locate` finds the position of an error V8 does not report.
 */
export function parseJsonText<T = unknown>(text: string, file: string, locate?: (text: string) => number): T {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // editors on Windows like to add a BOM
  const deep = jsonDepthExceeded(text);
  if (deep >= 0) {
    const { line, col } = lineCol(text, deep);
    throw new UserError(`${file}:${line}:${col}: JSON nested deeper than ${MAX_JSON_DEPTH} levels; not read`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    const raw = (e as Error).message;
    // V8 says "... in JSON at position 12" for most errors but not all; when it does not, find the
    // offending character ourselves.
    const m = /at position (\d+)/.exec(raw);
    const offset = m ? Number(m[1]) : locate ? locate(text) : text.length;
    const { line, col } = lineCol(text, offset);
    const reason = raw
      .replace(/,? *"(?:[^"\\]|\\.)*"? is not valid JSON$/s, '') // V8 quotes the (whole) input here
      .replace(/ in JSON at position \d+.*$/s, '')
      .replace(/ at position \d+.*$/s, '')
      .trim();
    throw new UserError(`${file}:${line}:${col}: invalid JSON: ${reason || 'syntax error'}`);
  }
}

/** Read (bounded) and parse a JSON file of `kind`. */
export function readJsonBounded<T = unknown>(
  file: string,
  kind: ReadKind = 'json',
  locate?: (text: string) => number,
): T {
  return parseJsonText<T>(readTextBounded(file, kind), file, locate);
}
