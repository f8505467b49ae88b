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
import { writeFileAtomic } from '../io/atomic';

export interface Row {
  id: string;
  tokens: number[];
  /** null when the row has no label field (GAIIC test files); [] when the field is empty. */
  labels: number[] | null;
  /** 1-based line number in the source file (0 for rows that did not come from a file). */
  line: number;
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
  if (line.length > MAX_LINE_CHARS) return `line is ${line.length} characters long (limit ${MAX_LINE_CHARS}); is this a GAIIC csv file?`;
  const fields = line.split(SEPARATOR);
  if (fields.length < 2 || fields.length > 3) {
    return `expected 2 or 3 fields separated by '${SEPARATOR}' (id${SEPARATOR}tokens${SEPARATOR}labels), found ${fields.length}`;
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

function clip(s: string): string {
  return s.length > 40 ? s.slice(0, 40) + '...' : s;
}

export function parseGaiicCsv(text: string, file: string, opts: ReadOptions = {}): ReadResult {
  const numLabels = opts.numLabels ?? 17;
  const skip = opts.skipBadRows ?? false;
  const requireLabels = opts.requireLabels ?? false;
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // BOM written by some Windows editors

  const rows: Row[] = [];
  const skipped: ReadResult['skipped'] = [];
  const firstLineOfId = new Map<string, number>();
  let nonBlank = 0;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i];
    if (line.endsWith('\r')) line = line.slice(0, -1); // CRLF
    if (line.trim() === '') continue; // blank lines (and the final newline) are not rows
    nonBlank++;
    let r = parseLine(line, lineNo, numLabels, requireLabels);
    if (typeof r !== 'string') {
      const first = firstLineOfId.get(r.id);
      if (first !== undefined) r = `duplicate id '${clip(r.id)}' (first on line ${first})`;
      else firstLineOfId.set(r.id, lineNo);
    }
    if (typeof r === 'string') {
      if (!skip) throw new UserError(`${file}:${lineNo}: ${r}`);
      skipped.push({ line: lineNo, reason: r });
    } else {
      rows.push(r);
    }
  }
  if (nonBlank === 0) throw new UserError(`${file}: no rows (the file is empty)`);
  if (rows.length === 0) {
    throw new UserError(`${file}: no valid rows (${skipped.length} skipped; line ${skipped[0].line}: ${skipped[0].reason})`);
  }
  return { rows, skipped };
}

export function readGaiicCsv(file: string, opts: ReadOptions = {}): ReadResult {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new UserError(`${file}: file not found`);
  }
  if (st.isDirectory()) throw new UserError(`${file}: is a directory, expected a GAIIC csv file`);
  const bytes = fs.readFileSync(file);
  if (bytes.length === 0) throw new UserError(`${file}: no rows (the file is empty)`);
  // A NUL byte or invalid UTF-8 means this is not a text file (a zip, a model, a pickle...).
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw new UserError(`${file}: not a text file (binary data at byte ${nul})`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UserError(`${file}: not a text file (invalid UTF-8)`);
  }
  return parseGaiicCsv(text, file, opts);
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
