// Every data file format, behind one reader (readRows):
//
//   GAIIC csv    `id|,|t1 t2 ...|,|l1 l2 ...`: token ids already (data/csv.ts)
//   .jsonl       one JSON object a line: {"id"?: ..., "text": "...", "text_pair"?: "...", "labels"?: [...]}
//   .csv         with a header naming `text` (and `labels`, optionally `id`, `text_pair`) columns, RFC 4180
//                quoting (fields in double quotes may hold commas, newlines and "" for a quote); labels
//                joined by ';'
//
// Labels of raw-text rows are names or integer ids, read against a label set (data/labels.ts).
// Raw text is tokenized with the BertTokenizer of the vocabulary at hand (the checkpoint's or the
// run's vocab.txt) into rows whose tokens are vocabulary ids already (`encoded`), with the second
// text of a pair in `pair`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors';
import { readBounded, readHead, READ_LIMITS } from '../io/read';
import { LabelReader, type FileLabels } from './labels';
import { clip, readGaiicCsv, RowSink, type ReadResult, type Row, type StreamOptions } from './csv';
import { BertTokenizer, readTokenizerOptions, type TextTokenizer } from './tokenizer';
import { checkSameVocab, JsonTokenizer, readTokenizerJson } from './tokenizer-json';
import { readVocab, type Vocab } from './vocab';

export type DataFormat = 'gaiic' | 'jsonl' | 'csv';

/** A raw-text row before tokenization. */
export interface TextRow {
  id: string;
  text: string;
  textPair?: string;
  labels: number[] | null;
  line: number;
}

/** Raw-text files we read whole; a bigger one is refused (GAIIC files are read in chunks, any size). */
export const MAX_TEXT_FILE_BYTES = READ_LIMITS.text;
/** One text (or text_pair) at most this many characters. */
const MAX_TEXT_CHARS = 1_000_000;
/** Bytes looked at to tell the formats apart. */
const SNIFF_BYTES = 64 * 1024;

/** The format of a data file: by extension (.jsonl, .csv), then by content (a header, '|,|', a '{'). */
export function dataFormat(file: string): DataFormat {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  let head: string;
  try {
    head = readHead(file, SNIFF_BYTES).toString('utf8');
  } catch {
    return 'gaiic'; // the GAIIC reader names what is wrong (not found, a directory)
  }
  if (head.charCodeAt(0) === 0xfeff) head = head.slice(1);
  const first = head.split('\n').find((l) => l.trim() !== '') ?? '';
  if (first.includes('|,|')) return 'gaiic';
  if (first.trimStart().startsWith('{')) return 'jsonl';
  try {
    const cols = parseCsvRecords(first, file).records[0]?.fields.map((c) => c.trim().toLowerCase()) ?? [];
    if (cols.includes('text')) return 'csv';
  } catch {
    // not a CSV header: the GAIIC reader says what is wrong with the line
  }
  return 'gaiic';
}

function readTextFile(file: string): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new UserError(`${file}: file not found`);
  }
  if (st.isDirectory()) throw new UserError(`${file}: is a directory, expected a data file`);
  if (st.size > MAX_TEXT_FILE_BYTES)
    throw new UserError(`${file}: ${st.size} bytes; raw-text files are limited to ${MAX_TEXT_FILE_BYTES} bytes`);
  const buf = readBounded(file, 'text'); // a regular file, at most READ_LIMITS.text bytes whatever stat says
  const nul = buf.indexOf(0);
  if (nul >= 0) throw new UserError(`${file}: not a text file (binary data at byte ${nul})`);
  // A line too long to hold a record is refused before the text is decoded (a character is at most
  // 4 bytes, so a line of more bytes than that holds more than MAX_RECORD_CHARS characters).
  for (let start = 0, lineNo = 1; ; lineNo++) {
    const nl = buf.indexOf(0x0a, start);
    const end = nl < 0 ? buf.length : nl;
    if (end - start > MAX_LINE_BYTES)
      throw new UserError(
        `${file}:${lineNo}: a line of more than ${MAX_LINE_BYTES} bytes ` +
          `(a record holds at most ${MAX_RECORD_CHARS} characters); not read`,
      );
    if (nl < 0) break;
    start = nl + 1;
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf); // strips a BOM
  } catch {
    throw new UserError(`${file}: not a text file (invalid UTF-8)`);
  }
  return text;
}

function checkText(v: unknown, key: string, required: boolean): string | undefined | { error: string } {
  if (v === undefined || v === null) return required ? { error: `no "${key}"` } : undefined;
  if (typeof v !== 'string') return { error: `"${key}" is not a string` };
  if (v.length > MAX_TEXT_CHARS) return { error: `"${key}" is ${v.length} characters long (limit ${MAX_TEXT_CHARS})` };
  return v;
}

interface RawOptions {
  requireLabels?: boolean;
  /** The label set labels are read against (data/labels.ts); absent: open (any label, the file decides). */
  labelSet?: readonly string[];
  skipBadRows?: boolean;
}

function jsonlRow(line: string, lineNo: number, o: RawOptions, lr: LabelReader): TextRow | string {
  let j: unknown;
  try {
    j = JSON.parse(line);
  } catch (e) {
    return `not valid JSON (${(e as Error).message})`;
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j))
    return 'expected a JSON object {"text": ..., "labels": [...]}';
  const obj = j as Record<string, unknown>;
  const text = checkText(obj.text, 'text', true);
  if (typeof text === 'object') return text.error;
  const pair = checkText(obj.text_pair, 'text_pair', false);
  if (typeof pair === 'object') return pair.error;
  let id = String(lineNo);
  if (obj.id !== undefined && obj.id !== null) {
    if (typeof obj.id !== 'string' && typeof obj.id !== 'number') return '"id" is not a string or a number';
    id = String(obj.id);
    if (id.trim() === '' || id.length > 1000) return `bad id '${clip(id)}'`;
  }
  let labels: number[] | null = null;
  if (obj.labels === undefined || obj.labels === null) {
    if (o.requireLabels) return 'no "labels" (training and evaluation rows need them; [] for none)';
  } else {
    if (!Array.isArray(obj.labels)) return '"labels" is not a list';
    const l = lr.parseAll(obj.labels);
    if (typeof l === 'string') return l;
    labels = l;
  }
  return { id, text: text!, ...(pair !== undefined ? { textPair: pair } : {}), labels, line: lineNo };
}

export function parseJsonl(text: string, file: string, o: RawOptions = {}) {
  const c = new RowSink<TextRow>(file, o.skipBadRows ?? false);
  const lr = new LabelReader(o.labelSet);
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i];
    if (line.length > MAX_RECORD_CHARS) {
      c.add(`a line of ${line.length} characters (limit ${MAX_RECORD_CHARS})`, i + 1);
      continue;
    }
    if (line.trim() === '') continue;
    c.add(jsonlRow(line, i + 1, o, lr), i + 1);
  }
  return { ...c.finish(), labels: lr.finish() };
}

/** The longest CSV record (a text and a text_pair of MAX_TEXT_CHARS, labels and an id) or .jsonl line. */
export const MAX_RECORD_CHARS = 2 * MAX_TEXT_CHARS + 100_000;
/** A line of more bytes than this cannot be a record (or part of one): refused before decoding. */
const MAX_LINE_BYTES = 4 * MAX_RECORD_CHARS;

/**
 * RFC 4180 records: fields separated by commas, a field in double quotes may hold commas, line
 * breaks and "" (a quote). A linear scan; fields are slices of the text (never built a character at
 * a time), and a record longer than MAX_RECORD_CHARS is refused naming its line. `line`: where each
 * record starts.
 */
export function parseCsvRecords(
  text: string,
  file: string,
  maxRecord = MAX_RECORD_CHARS,
): { records: { fields: string[]; line: number }[] } {
  const records: { fields: string[]; line: number }[] = [];
  const n = text.length;
  let fields: string[] = [];
  let line = 1;
  let start = 1; // the line the current record starts on
  let recStart = 0; // its offset
  let fieldStart = 0; // the current (unquoted) field's offset
  let quoted: string | null = null; // the current field's value when it was quoted
  let any = false; // the current record has content
  const tooLong = (): never => {
    throw new UserError(`${file}:${start}: a record of more than ${maxRecord} characters (the limit); not read`);
  };
  const endField = (end: number) => {
    fields.push(quoted ?? text.slice(fieldStart, end));
    quoted = null;
  };
  const endRecord = (end: number) => {
    endField(end);
    if (any || fields.length > 1 || fields[0] !== '') records.push({ fields, line: start });
    fields = [];
    any = false;
  };
  for (let i = 0; i < n; i++) {
    if (i - recStart > maxRecord) tooLong();
    const ch = text.charCodeAt(i);
    if (ch === 0x22) {
      if (quoted !== null || text.slice(fieldStart, i).trim() !== '')
        throw new UserError(`${file}:${line}: a quote inside an unquoted field (quote the field and double the quote)`);
      let j = i + 1;
      let doubled = false;
      for (;;) {
        if (j >= n) throw new UserError(`${file}:${start}: a quoted field is not closed before the end of the file`);
        if (j - recStart > maxRecord) tooLong();
        const c = text.charCodeAt(j);
        if (c === 0x22) {
          if (text.charCodeAt(j + 1) !== 0x22) break;
          doubled = true;
          j += 2;
          continue;
        }
        if (c === 0x0a) line++;
        j++;
      }
      const raw = text.slice(i + 1, j);
      quoted = doubled ? raw.replaceAll('""', '"') : raw;
      any = true;
      i = j; // the closing quote
    } else if (ch === 0x2c) {
      endField(i);
      fieldStart = i + 1;
      any = true;
    } else if (ch === 0x0a || ch === 0x0d) {
      const end = i;
      if (ch === 0x0d && text.charCodeAt(i + 1) === 0x0a) i++;
      endRecord(end);
      line++;
      start = line;
      fieldStart = recStart = i + 1;
    } else {
      if (quoted !== null && ch !== 0x20 && ch !== 0x09)
        throw new UserError(`${file}:${line}: text after a closing quote (double a quote inside a quoted field)`);
      any = true;
    }
  }
  endRecord(n);
  return { records };
}

export function parseTextCsv(text: string, file: string, o: RawOptions = {}) {
  const { records } = parseCsvRecords(text, file);
  if (records.length === 0) throw new UserError(`${file}: no rows (the file is empty)`);
  const header = records[0].fields.map((h) => h.trim().toLowerCase());
  const col = (name: string) => header.indexOf(name);
  const [iText, iPair, iLabels, iId] = [col('text'), col('text_pair'), col('labels'), col('id')];
  if (iText < 0) throw new UserError(`${file}:${records[0].line}: the header has no 'text' column`);
  if (iLabels < 0 && o.requireLabels)
    throw new UserError(`${file}:${records[0].line}: the header has no 'labels' column (labels joined by ';')`);
  const c = new RowSink<TextRow>(file, o.skipBadRows ?? false);
  const lr = new LabelReader(o.labelSet);
  for (const { fields, line } of records.slice(1)) {
    if (fields.length !== header.length) {
      c.add(`${fields.length} fields, the header has ${header.length}`, line);
      continue;
    }
    const obj: Record<string, unknown> = { text: fields[iText] };
    if (iPair >= 0) obj.text_pair = fields[iPair];
    if (iId >= 0 && fields[iId].trim() !== '') obj.id = fields[iId].trim();
    const err = (() => {
      const t = checkText(obj.text, 'text', true);
      if (typeof t === 'object') return t.error;
      const p = checkText(obj.text_pair, 'text_pair', false);
      if (typeof p === 'object') return p.error;
      return null;
    })();
    if (err) {
      c.add(err, line);
      continue;
    }
    let labels: number[] | null = null;
    if (iLabels >= 0) {
      const parts = fields[iLabels].split(';').filter((s) => s.trim() !== '');
      const l = lr.parseAll(parts);
      if (typeof l === 'string') {
        c.add(l, line);
        continue;
      }
      labels = l;
    }
    const id = (obj.id as string | undefined) ?? String(line);
    const pair = obj.text_pair as string | undefined;
    c.add({ id, text: obj.text as string, ...(pair !== undefined ? { textPair: pair } : {}), labels, line }, line);
  }
  return { ...c.finish(), labels: lr.finish() };
}

/** The raw-text rows of a .jsonl or header .csv file. */
export function readTextRows(file: string, o: RawOptions & { format?: DataFormat } = {}) {
  const format = o.format ?? dataFormat(file);
  const text = readTextFile(file);
  if (format === 'jsonl') return parseJsonl(text, file, o);
  if (format === 'csv') return parseTextCsv(text, file, o);
  throw new UserError(`${file}: a GAIIC csv file, not raw text`);
}

/** Token ids of raw-text rows, from the tokenizer. */
export function tokenizeRows(rows: TextRow[], tok: TextTokenizer): Row[] {
  return rows.map((r) => {
    const pieces = tok.tokenize(r.text);
    const row: Row = { id: r.id, tokens: tok.idsOf(pieces), pieces, encoded: true, labels: r.labels, line: r.line };
    if (r.textPair !== undefined) {
      row.pairPieces = tok.tokenize(r.textPair);
      row.pair = tok.idsOf(row.pairPieces);
    }
    return row;
  });
}

export interface RowsOptions extends StreamOptions, Pick<RawOptions, 'labelSet'> {
  /** The tokenizer of the checkpoint's or the run's vocabulary (or a function making it); raw text needs one. */
  tokenizer?: TextTokenizer | (() => TextTokenizer);
  /** Where the tokenizer would come from, for the error when there is none. */
  vocabHint?: string;
}

/**
 * Rows of any data file: GAIIC csv as it is; raw text (.jsonl, header .csv) tokenized with
 * `opts.tokenizer`.
 */
export function readRows(
  file: string,
  opts: RowsOptions = {},
): ReadResult & { format: DataFormat; labels: FileLabels } {
  const format = dataFormat(file);
  if (format === 'gaiic') {
    const r = readGaiicCsv(file, opts);
    let maxId = -1;
    for (const row of r.rows) for (const l of row.labels ?? []) maxId = Math.max(maxId, l);
    // GAIIC's labels are ids of its 17 labels; against another label set they must fit it
    const n = opts.labelSet?.length;
    if (n !== undefined && maxId >= n) {
      const row = r.rows.find((x) => (x.labels ?? []).some((l) => l >= n))!;
      throw new UserError(
        `${file}:${row.line}: label ${Math.max(...row.labels!)} is outside 0..${n - 1} (the model's labels)`,
      );
    }
    return { ...r, format, labels: { names: null, maxId } };
  }
  if (!opts.tokenizer)
    throw new UserError(
      `${file}: raw text (${format}) needs a vocab.txt to tokenize it${opts.vocabHint ? ` (${opts.vocabHint})` : ''}`,
    );
  const { rows, skipped, labels } = readTextRows(file, { ...opts, format });
  const tok = typeof opts.tokenizer === 'function' ? opts.tokenizer() : opts.tokenizer;
  return { rows: tokenizeRows(rows, tok), skipped, format, labels };
}

/**
 * The tokenizer of a vocabulary: `dir/tokenizer.json` through @huggingface/tokenizers when the folder
 * has one (its WordPiece vocab must be vocab.txt's), else BertTokenizer with the options of
 * `dir/tokenizer_config.json` when there is one.
 */
export function tokenizerOf(vocab: Vocab, dir?: string): TextTokenizer {
  const json = dir ? path.join(dir, 'tokenizer.json') : undefined;
  if (json && fs.existsSync(json)) {
    const j = readTokenizerJson(json);
    checkSameVocab(j, vocab.tokens, json);
    return new JsonTokenizer(j, vocab.index, vocab.special.unk);
  }
  return new BertTokenizer(vocab.index, dir ? readTokenizerOptions(dir) : {});
}

/** The tokenizer of the vocab.txt in `dir` (a checkpoint or a run's vocab/), made when first asked for. */
export function tokenizerIn(dir: string): () => TextTokenizer {
  let tok: TextTokenizer | undefined;
  return () => (tok ??= tokenizerOf(readVocab(dir), dir));
}
