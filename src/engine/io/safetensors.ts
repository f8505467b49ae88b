// The HF safetensors format (https://github.com/huggingface/safetensors), read and written in
// plain TypeScript so checkpoints move freely between this engine and PyTorch/transformers.
//
//   bytes 0..8        N, the header length, unsigned 64-bit little-endian
//   bytes 8..8+N      the header: UTF-8 JSON, padded with spaces (0x20) so 8+N is a multiple of 8
//                       { "__metadata__": { str: str },                       (optional)
//                         "<tensor name>": { "dtype": "F32", "shape": [2, 3],
//                                            "data_offsets": [begin, end] }, ... }
//   bytes 8+N..EOF    the byte buffer; data_offsets are relative to its start. Tensors are stored
//                     row-major, little-endian, and must tile the buffer exactly: no overlaps, no
//                     holes, nothing after the last tensor.
//
// We write float32 only, like the reference implementation does it: tensors sorted by name (all have
// the same dtype, whose alignment is the secondary sort key there), compact JSON with
// "__metadata__" first, padded with spaces.

import { UserError } from '../errors';
import { writeFileAtomic } from './atomic';
import { readAt, readBounded, readRangeAsync, withRegularFile } from './read';
import { defaultBudget, spendBudget, type WeightBudget } from './weight-budget';

export interface TensorEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export interface SafetensorsHeader {
  entries: Record<string, TensorEntry>;
  metadata: Record<string, string>;
  /** Absolute file offset of the byte buffer (8 + N). */
  dataStart: number;
  fileSize: number;
}

/** Bytes per element of every dtype the format defines. */
export const DTYPE_SIZES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

/** The reference implementation refuses headers above 100 MB; so do we (a corrupt N is usually huge). */
const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

/**
 * Read and validate the header of a safetensors file without reading the tensor data. Every
 * problem is a UserError `FILE: what is wrong` (with the tensor name where one is involved).
 */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  // A regular file after links (io/read.ts): a FIFO or a device named model.safetensors is refused.
  return withRegularFile(file, (fd, fileSize) => {
    if (fileSize < 8) {
      throw new UserError(`${file}: not a safetensors file (${fileSize} bytes, shorter than the 8-byte header length)`);
    }
    const lenBuf = Buffer.alloc(8);
    readExactly(fd, lenBuf, 0);
    const n = checkHeaderLength(file, lenBuf.readBigUInt64LE(0), fileSize);
    const headerBuf = Buffer.alloc(n);
    readExactly(fd, headerBuf, 8);
    return parseHeader(file, headerBuf, fileSize);
  });
}

/**
 * readSafetensorsHeader with asynchronous reads, for the extension host: its thread is never
 * blocked on the disk (the header is parsed and validated in one linear pass).
 */
export async function readSafetensorsHeaderAsync(file: string): Promise<SafetensorsHeader> {
  const { buf: lenBuf, size: fileSize } = await readRangeAsync(file, 0, 8);
  if (fileSize < 8 || lenBuf.length < 8) {
    throw new UserError(`${file}: not a safetensors file (${fileSize} bytes, shorter than the 8-byte header length)`);
  }
  const n = checkHeaderLength(file, lenBuf.readBigUInt64LE(0), fileSize);
  const { buf: headerBuf } = await readRangeAsync(file, 8, n);
  if (headerBuf.length < n) throw new UserError(`${file}: file changed while being read`);
  return parseHeader(file, headerBuf, fileSize);
}

/** The header length N, checked against the limit and the file size (the same words as the sync reader). */
function checkHeaderLength(file: string, n: bigint, fileSize: number): number {
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new UserError(
      `${file}: header length ${n} is over the ${MAX_HEADER_BYTES}-byte limit` + ' (corrupt file or not safetensors)',
    );
  }
  if (8n + n > BigInt(fileSize)) {
    throw new UserError(
      `${file}: header length ${n} runs past the end of the ${fileSize}-byte file` + ' (truncated or not safetensors)',
    );
  }
  return Number(n);
}

function readExactly(fd: number, buf: Buffer, position: number): void {
  const got = readAt(fd, buf, position);
  if (got < buf.length) throw new UserError(`unexpected end of file at byte ${position + got}`);
}

/** Validate the header JSON against the file size. Exported for tests and for in-memory use. */
export function parseHeader(file: string, headerBuf: Uint8Array, fileSize: number): SafetensorsHeader {
  const bad = (what: string): never => {
    throw new UserError(`${file}: ${what}`);
  };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBuf);
  } catch {
    return bad('header is not valid UTF-8 (corrupt file or not safetensors)');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return bad(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return bad('header is not a JSON object');
  }

  const dataStart = 8 + headerBuf.length;
  const dataSize = fileSize - dataStart;
  // Null-prototype maps: a tensor or metadata key may be any string, "__proto__" included.
  const entries: Record<string, TensorEntry> = Object.create(null);
  let metadata: Record<string, string> = Object.create(null);
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      metadata = checkMetadata(raw, bad);
      continue;
    }
    const t = raw as Partial<TensorEntry> | null;
    if (typeof t !== 'object' || t === null || Array.isArray(t)) bad(`tensor '${name}': entry is not an object`);
    const { dtype, shape, data_offsets: offs } = t!;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_SIZES)) {
      bad(`tensor '${name}': unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_SIZES).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      bad(`tensor '${name}': shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offs[0]! > offs[1]!
    ) {
      bad(`tensor '${name}': data_offsets ${JSON.stringify(offs)} is not [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offs as [number, number];
    const elements = shape!.reduce((a, b) => a * b, 1);
    const expected = elements * DTYPE_SIZES[dtype!]!;
    if (expected !== end - begin) {
      bad(
        `tensor '${name}': ${dtype} shape [${shape!.join(', ')}] needs ${expected} bytes ` +
          `but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    if (end > dataSize) {
      bad(
        `tensor '${name}': data_offsets [${begin}, ${end}] ` +
          `are outside the ${dataSize}-byte data buffer (truncated file?)`,
      );
    }
    entries[name] = { dtype: dtype!, shape: shape!.slice(), data_offsets: [begin, end] };
  }

  // The tensors must tile the data buffer: sorted by offset, each starts where the previous ended.
  const sorted = Object.entries(entries).sort(
    ([, a], [, b]) => a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1],
  );
  let pos = 0;
  let prev = '';
  for (const [name, t] of sorted) {
    const [begin, end] = t.data_offsets;
    if (begin < pos)
      bad(`tensor '${name}': data_offsets [${begin}, ${end}] overlap tensor '${prev}' (which ends at ${pos})`);
    if (begin > pos) {
      bad(
        `tensor '${name}': data_offsets start at ${begin} ` +
          `but ${prev ? `tensor '${prev}' ends` : 'the data buffer starts'} at ${pos}, ` +
          `leaving a ${begin - pos}-byte hole`,
      );
    }
    pos = end;
    prev = name;
  }
  if (pos !== dataSize) {
    bad(
      `the data buffer has ${dataSize - pos} bytes ` +
        `after the last tensor${prev ? ` '${prev}'` : ''} that no tensor uses`,
    );
  }
  return { entries, metadata, dataStart, fileSize };
}

function checkMetadata(raw: unknown, bad: (what: string) => never): Record<string, string> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad(`${METADATA_KEY} is not an object`);
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== 'string') bad(`${METADATA_KEY}['${k}'] is not a string`);
    out[k] = v as string;
  }
  return out;
}

/** Read every tensor of a safetensors file as float32 (other dtypes are converted). */
export function readSafetensors(
  file: string,
  budget: WeightBudget = defaultBudget(),
  skip: (name: string) => boolean = () => false,
): Map<string, { shape: number[]; data: Float32Array }> {
  const header = readSafetensorsHeader(file);
  // Budgeted before anything is read or allocated: each tensor becomes its own float32 array;
  // tensors the caller does not use are neither counted nor converted.
  for (const name of Object.keys(header.entries)) if (skip(name)) delete header.entries[name];
  let elements = 0;
  for (const t of Object.values(header.entries)) elements += t.shape.reduce((a, b) => a * b, 1);
  spendBudget(budget, elements, header.fileSize - header.dataStart, file);
  const bytes = readBounded(file, 'weights');
  if (bytes.length !== header.fileSize) throw new UserError(`${file}: file changed while being read`);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  // Keep the header's order, which is the order the tensors were written in.
  for (const [name, t] of Object.entries(header.entries)) {
    const view = new DataView(
      bytes.buffer,
      bytes.byteOffset + header.dataStart + t.data_offsets[0],
      t.data_offsets[1] - t.data_offsets[0],
    );
    out.set(name, { shape: t.shape, data: toFloat32(view, t.dtype, file, name) });
  }
  return out;
}

// Shared scratch space for bit-casting 32-bit patterns to float32 (BF16 and friends).
const castU32 = new Uint32Array(1);
const castF32 = new Float32Array(castU32.buffer);

function bitsToF32(bits: number): number {
  castU32[0] = bits;
  return castF32[0]!;
}

/** IEEE half precision (1 sign, 5 exponent, 10 mantissa bits) to a JS number. */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero or subnormal
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** float8 e4m3fn (1 sign, 4 exponent bias 7, 3 mantissa; no infinities, 0x7f/0xff are NaN). */
function f8e4m3ToNumber(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const exp = (b >> 3) & 0xf;
  const frac = b & 0x7;
  if (exp === 0xf && frac === 0x7) return NaN;
  if (exp === 0) return sign * frac * 2 ** -9;
  return sign * (1 + frac / 8) * 2 ** (exp - 7);
}

function toFloat32(v: DataView, dtype: string, file: string, name: string): Float32Array {
  const size = DTYPE_SIZES[dtype]!;
  const n = v.byteLength / size;
  const out = new Float32Array(n);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = v.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = v.getFloat64(8 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = f16ToNumber(v.getUint16(2 * i, true));
      break;
    // bfloat16 is the top half of a float32.
    case 'BF16':
      for (let i = 0; i < n; i++) out[i] = bitsToF32(v.getUint16(2 * i, true) << 16);
      break;
    // float8 e5m2 is the top byte of a float16.
    case 'F8_E5M2':
      for (let i = 0; i < n; i++) out[i] = f16ToNumber(v.getUint8(i) << 8);
      break;
    case 'F8_E4M3':
      for (let i = 0; i < n; i++) out[i] = f8e4m3ToNumber(v.getUint8(i));
      break;
    case 'I64':
      for (let i = 0; i < n; i++) out[i] = Number(v.getBigInt64(8 * i, true));
      break;
    case 'U64':
      for (let i = 0; i < n; i++) out[i] = Number(v.getBigUint64(8 * i, true));
      break;
    case 'I32':
      for (let i = 0; i < n; i++) out[i] = v.getInt32(4 * i, true);
      break;
    case 'U32':
      for (let i = 0; i < n; i++) out[i] = v.getUint32(4 * i, true);
      break;
    case 'I16':
      for (let i = 0; i < n; i++) out[i] = v.getInt16(2 * i, true);
      break;
    case 'U16':
      for (let i = 0; i < n; i++) out[i] = v.getUint16(2 * i, true);
      break;
    case 'I8':
      for (let i = 0; i < n; i++) out[i] = v.getInt8(i);
      break;
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < n; i++) out[i] = v.getUint8(i);
      break;
    default:
      throw new UserError(`${file}: tensor '${name}': cannot convert dtype ${dtype} to float32`);
  }
  return out;
}

/** Build the bytes of a float32 safetensors file (what writeSafetensors writes). */
export function encodeSafetensors(
  tensors: { name: string; shape: number[]; data: Float32Array }[],
  metadata: Record<string, string> = {},
): Uint8Array {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // Null-prototype objects, so that a tensor named "__proto__" is a key like any other.
  const meta: Record<string, string> = Object.assign(Object.create(null), { format: 'pt' });
  for (const [k, v] of Object.entries(metadata)) meta[k] = v;
  const header: Record<string, unknown> = Object.create(null);
  header[METADATA_KEY] = meta;
  let offset = 0;
  for (let i = 0; i < sorted.length; i++) {
    const t = sorted[i]!;
    if (t.name === METADATA_KEY || t.name === '') throw new Error(`safetensors: invalid tensor name '${t.name}'`);
    if (i > 0 && sorted[i - 1]!.name === t.name) throw new Error(`safetensors: duplicate tensor name '${t.name}'`);
    const elements = t.shape.reduce((a, b) => a * b, 1);
    if (!t.shape.every((d) => Number.isInteger(d) && d >= 0) || elements !== t.data.length) {
      throw new Error(
        `safetensors: tensor '${t.name}' has ${t.data.length} values, shape [${t.shape.join(', ')}] needs ${elements}`,
      );
    }
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * elements] };
    offset += 4 * elements;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);

  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const t of sorted) {
    for (let i = 0; i < t.data.length; i++, pos += 4) view.setFloat32(pos, t.data[i]!, true);
  }
  return out;
}

/**
 * Write float32 tensors as a safetensors file, atomically. The header carries `metadata` plus
 * {"format": "pt"} (what transformers expects of a PyTorch checkpoint).
 */
export function writeSafetensors(
  file: string,
  tensors: { name: string; shape: number[]; data: Float32Array }[],
  metadata?: Record<string, string>,
): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}
