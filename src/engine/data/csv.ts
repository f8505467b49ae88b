// Reader and writer for the GAIIC-2021 track-1 CSV format:
//
//     report_id|,|t1 t2 t3 ... tn|,|l1 l2 ...
//
// one row a line, no header. Tokens are non-negative integers (anonymised word pieces), labels are
// region indices 0..numLabels-1 and the label field may be empty (no finding). Test files have only
// the first two fields. Real files have trailing spaces inside fields, which we tolerate.
//
// Every bad row is a UserError `FILE:LINE: what is wrong`, or, with skipBadRows, an entry in
// `skipped` so the caller can report how many rows it dropped and why.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors';
import { openRegular, readNext } from '../io/read';
import { writeFileAtomic } from '../io/atomic';

export interface Row {
  id: string;
  tokens: number[];
  /** null when the row has no label field (GAIIC test files); [] when the field is empty. */
  labels: number[] | null;
  /** 1-based line number in the source file (0 for rows that did not come from a file). */
  line: number;
  /**
   * Raw text through the tokenizer: `tokens` are ids in the tokenizer's vocabulary, `pieces` the
   * WordPiece strings (encodeRows maps them through the vocabulary it is given, which differs after
   * vocabulary pruning or for a distillation teacher).
   */
  encoded?: boolean;
  pieces?: string[];
  /** The second text of a pair (encoded rows only): ids and WordPiece strings. */
  pair?: number[];
  pairPieces?: string[];
}

export interface ReadOptions {
  skipBadRows?: boolean;
  /** A row without a label field is an error (training and evaluation data). */
  requireLabels?: boolean;
  /** Labels must be in 0..numLabels-1; default 17. */
  numLabels?: number;
}

export interface ReadResult {
  rows: Row[];
  skipped: { line: number; reason: string }[];
}

const SEPARATOR = '|,|';
/** Longer lines are surely not GAIIC rows (real max is ~500 chars); refuse before splitting them. */
const MAX_LINE_CHARS = 100_000;

const UINT = /^\d+$/;

/** Parse one non-blank line into a Row, or return the reason it is bad. */
function parseLine(line: string, lineNo: number, numLabels: number, requireLabels: boolean): Row | string {
  if (line.length > MAX_LINE_CHARS)
    return `line is ${line.length} characters long (limit ${MAX_LINE_CHARS}); is this a GAIIC csv file?`;
  const fields = line.split(SEPARATOR);
  if (fields.length < 2 || fields.length > 3) {
    return (
      `expected 2 or 3 fields separated by '${SEPARATOR}' ` +
      `(id${SEPARATOR}tokens${SEPARATOR}labels), found ${fields.length}`
    );
  }
  const id = fields[0].trim();
  if (id === '') return 'empty id';

  const tokens: number[] = [];
  for (const t of fields[1].trim().split(/\s+/)) {
    if (t === '') continue;
    if (!UINT.test(t)) {
      const why = /^-\d+$/.test(t) ? 'is negative' : 'is not a non-negative integer';
      return `token '${clip(t)}' ${why}`;
    }
    const v = Number(t);
    if (!Number.isSafeInteger(v)) return `token '${clip(t)}' is too large`;
    tokens.push(v);
  }
  if (tokens.length === 0) return 'empty text (no tokens)';

  if (fields.length === 2) {
    if (requireLabels) return `no label field (expected id${SEPARATOR}tokens${SEPARATOR}labels)`;
    return { id, tokens, labels: null, line: lineNo };
  }
  const labels: number[] = [];
  for (const l of fields[2].trim().split(/\s+/)) {
    if (l === '') continue;
    if (!/^-?\d+$/.test(l)) return `label '${clip(l)}' is not an integer`;
    if (!UINT.test(l) || Number(l) >= numLabels) return `label '${clip(l)}' is outside 0..${numLabels - 1}`;
    const v = Number(l);
    if (!labels.includes(v)) labels.push(v); // duplicates carry no information; drop them silently
  }
  return { id, tokens, labels, line: lineNo };
}

/** A value shortened for a message (ids come from the user's file). */
export function clip(s: string): string {
  return s.length > 40 ? s.slice(0, 40) + '...' : s;
}

/**
 * The rows of a data file, whatever its format: a duplicate id or a bad row (given as its reason)
 * stops the read with file:line, or is skipped and reported with --skip-bad-rows.
 */
export class RowSink<T extends { id: string }> {
  readonly rows: T[] = [];
  readonly skipped: { line: number; reason: string }[] = [];
  private readonly firstLineOfId = new Map<string, number>();

  constructor(
    private readonly file: string,
    private readonly skip: boolean,
  ) {}

  add(r: T | string, line: number): void {
    if (typeof r !== 'string') {
      const first = this.firstLineOfId.get(r.id);
      if (first !== undefined) r = `duplicate id '${clip(r.id)}' (first on line ${first})`;
      else this.firstLineOfId.set(r.id, line);
    }
    if (typeof r === 'string') {
      if (!this.skip) throw new UserError(`${this.file}:${line}: ${r}`);
      this.skipped.push({ line, reason: r });
    } else {
      this.rows.push(r);
    }
  }

  finish(): { rows: T[]; skipped: { line: number; reason: string }[] } {
    if (this.rows.length === 0 && this.skipped.length === 0) {
      throw new UserError(`${this.file}: no rows (the file is empty)`);
    }
    if (this.rows.length === 0) {
      const s = this.skipped[0];
      throw new UserError(`${this.file}: no valid rows (${this.skipped.length} skipped; line ${s.line}: ${s.reason})`);
    }
    return { rows: this.rows, skipped: this.skipped };
  }
}

/**
 * GAIIC rows collected line by line: the line parsing shared by parseGaiicCsv (a string) and
 * readGaiicCsv (a file read in chunks).
 */
class RowCollector {
  private readonly sink: RowSink<Row>;
  private readonly numLabels: number;
  private readonly requireLabels: boolean;

  constructor(file: string, opts: ReadOptions) {
    this.sink = new RowSink<Row>(file, opts.skipBadRows ?? false);
    this.numLabels = opts.numLabels ?? 17;
    this.requireLabels = opts.requireLabels ?? false;
  }

  /** One line without its '\n' (a trailing '\r' is CRLF); `overlong`: its length, when it was dropped unread. */
  line(raw: string, lineNo: number, overlong?: number): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (overlong === undefined && line.trim() === '') return; // blank lines (and the final newline) are not rows
    const r: Row | string =
      overlong !== undefined
        ? `line is ${overlong} characters long (limit ${MAX_LINE_CHARS}); is this a GAIIC csv file?`
        : parseLine(line, lineNo, this.numLabels, this.requireLabels);
    this.sink.add(r, lineNo);
  }

  get rows(): readonly Row[] {
    return this.sink.rows;
  }

  finish(): ReadResult {
    return this.sink.finish();
  }
}

export function parseGaiicCsv(text: string, file: string, opts: ReadOptions = {}): ReadResult {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // BOM written by some Windows editors
  const c = new RowCollector(file, opts);
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) c.line(lines[i], i + 1);
  return c.finish();
}

/** Bytes read at a time: files of any size, not only those that fit in one string (~512 MiB). */
export const CSV_CHUNK_BYTES = 8 * 1024 * 1024;
/** A progress line every this many bytes, for files bigger than it. */
const PROGRESS_BYTES = 64 * 1024 * 1024;

/**
 * Read a GAIIC csv file in chunks of `opts.chunkBytes` (decoded as a UTF-8 stream, so a character
 * or a line split across two chunks is whole), so that a file bigger than the longest string V8
 * can hold reads like any other. Big files report progress through `opts.progress`.
 */
export interface StreamOptions extends ReadOptions {
  /** Bytes read at a time (tests use tiny ones); default CSV_CHUNK_BYTES. */
  chunkBytes?: number;
  /** Called with a progress line every `progressBytes` (default 64 MiB) of a file bigger than that. */
  progress?: (message: string) => void;
  progressBytes?: number;
}

export function readGaiicCsv(file: string, opts: StreamOptions = {}): ReadResult {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new UserError(`${file}: file not found`);
  }
  if (st.isDirectory()) throw new UserError(`${file}: is a directory, expected a GAIIC csv file`);
  if (st.size === 0) throw new UserError(`${file}: no rows (the file is empty)`);
  const chunkBytes = Math.max(1, opts.chunkBytes ?? CSV_CHUNK_BYTES);
  const decoder = new TextDecoder('utf-8', { fatal: true }); // strips a leading BOM
  const c = new RowCollector(file, opts);
  const buf = Buffer.alloc(Math.min(chunkBytes, Math.max(1, st.size)));
  const fd = openRegular(file); // a regular file after links (never a FIFO or a device: io/read.ts)
  let offset = 0; // bytes read so far
  let carry = ''; // the start of a line whose end is in a later chunk
  let overlong = -1; // >= 0: the current line passed MAX_LINE_CHARS and is only counted
  let lineNo = 1;
  const every = opts.progressBytes ?? PROGRESS_BYTES;
  let nextProgress = every;
  const mb = (n: number) => (n / 1024 / 1024).toFixed(0);
  const take = (text: string) => {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      if (overlong >= 0) c.line('', lineNo, overlong + nl - start);
      else c.line(carry + text.slice(start, nl), lineNo);
      carry = '';
      overlong = -1;
      lineNo++;
      start = nl + 1;
    }
    const rest = text.length - start;
    if (overlong >= 0) overlong += rest;
    else if (carry.length + rest > MAX_LINE_CHARS + 1) {
      overlong = carry.length + rest;
      carry = '';
    } else carry += text.slice(start);
  };
  try {
    for (;;) {
      const n = readNext(fd, buf);
      if (n === 0) break;
      const chunk = buf.subarray(0, n);
      // A NUL byte or invalid UTF-8 means this is not a text file (a zip, a model, a pickle...).
      const nul = chunk.indexOf(0);
      if (nul >= 0) throw new UserError(`${file}: not a text file (binary data at byte ${offset + nul})`);
      let text: string;
      try {
        text = decoder.decode(chunk, { stream: true });
      } catch {
        throw new UserError(`${file}: not a text file (invalid UTF-8)`);
      }
      offset += n;
      take(text);
      if (opts.progress && offset >= nextProgress && st.size > every) {
        opts.progress(`reading ${file}: ${mb(offset)} of ${mb(st.size)} MB, ${c.rows.length} rows`);
        while (nextProgress <= offset) nextProgress += every;
      }
    }
    let tail: string;
    try {
      tail = decoder.decode(); // a character cut off by the end of the file throws here
    } catch {
      throw new UserError(`${file}: not a text file (invalid UTF-8)`);
    }
    take(tail);
    if (overlong >= 0) c.line('', lineNo, overlong);
    else c.line(carry, lineNo);
  } finally {
    fs.closeSync(fd);
  }
  return c.finish();
}

/** Rows back to text, one `\n`-terminated line each. Throws on rows that would not parse back. */
export function formatGaiicCsv(rows: Row[]): string {
  const out: string[] = [];
  for (const r of rows) {
    if (r.id.trim() !== r.id || r.id === '' || r.id.includes(SEPARATOR) || /[\r\n]/.test(r.id)) {
      throw new Error(`row id ${JSON.stringify(r.id)} cannot be written to a GAIIC csv file`);
    }
    if (r.tokens.length === 0) throw new Error(`row '${r.id}' has no tokens`);
    for (const t of r.tokens) if (!Number.isSafeInteger(t) || t < 0) throw new Error(`row '${r.id}': bad token ${t}`);
    let line = r.id + SEPARATOR + r.tokens.join(' ');
    if (r.labels !== null) {
      for (const l of r.labels) if (!Number.isSafeInteger(l) || l < 0) throw new Error(`row '${r.id}': bad label ${l}`);
      line += SEPARATOR + r.labels.join(' ');
    }
    out.push(line + '\n');
  }
  return out.join('');
}

/** Write rows to file (creating its directory), atomically: temp file in the same dir, then rename. */
export function writeGaiicCsv(file: string, rows: Row[]): void {
  const text = formatGaiicCsv(rows);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, text);
}
