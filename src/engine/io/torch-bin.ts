// PyTorch's `torch.save` format (the zip one, torch >= 1.6), read without executing anything.
//
//   <name>/data.pkl     a pickle of the state dict: tensor records pointing at storages by key
//   <name>/data/<key>   each storage's raw bytes, little-endian
//   <name>/version, <name>/byteorder, ...   (ignored)
//
// A pickle is a program for a stack machine that can call any Python function; loading one with
// Python's pickle module runs whatever it names. Ours is not that machine: it knows only the
// opcodes torch.save emits for a dict of tensors, and the only "functions" it accepts are the
// tensor record (torch._utils._rebuild_tensor_v2), an OrderedDict, and storage types, which it
// turns into plain records. Anything else is refused with one line before any data is read.
// Sizes are bounded before anything is allocated: the zip's entries (a "zip bomb" claims a huge
// uncompressed size), the pickle, and every tensor against its storage.
import * as zlib from 'node:zlib';
import { UserError } from '../errors';
import { readBounded } from './read';
import { defaultBudget, spendBudget, type WeightBudget } from './weight-budget';
import { f16ToNumber } from './safetensors';

/** The largest zip entry we inflate or copy (a storage of a 500M-parameter float32 matrix fits). */
export const MAX_ENTRY_BYTES = 2 ** 31 - 1;
/** data.pkl of a state dict is a few hundred bytes per tensor. */
export const MAX_PICKLE_BYTES = 64 * 2 ** 20;
/** Deflate cannot compress by more than ~1032:1; a larger claimed ratio is a lie. */
const MAX_DEFLATE_RATIO = 1100;

interface ZipEntry {
  name: string;
  method: number; // 0 stored, 8 deflate
  compressed: number;
  size: number;
  localOffset: number;
}

/** The zip's central directory (no zip64: entries and files over 4 GB are refused). */
export function readZipDirectory(buf: Buffer, file: string): Map<string, ZipEntry> {
  const bad = (what: string): never => {
    throw new UserError(`${file}: ${what}`);
  };
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) bad('not a zip archive (no end of central directory)');
  const count = buf.readUInt16LE(eocd + 10);
  const cdSize = buf.readUInt32LE(eocd + 12);
  const cdOffset = buf.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdOffset === 0xffffffff) bad('zip64 archives (over 4 GB) are not supported yet');
  if (cdOffset + cdSize > eocd) bad('corrupt zip (central directory outside the file)');
  const out = new Map<string, ZipEntry>();
  let p = cdOffset;
  for (let k = 0; k < count; k++) {
    if (p + 46 > eocd || buf.readUInt32LE(p) !== 0x02014b50) bad('corrupt zip central directory');
    const flags = buf.readUInt16LE(p + 8);
    const method = buf.readUInt16LE(p + 10);
    const compressed = buf.readUInt32LE(p + 20);
    const size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const localOffset = buf.readUInt32LE(p + 42);
    if (p + 46 + nameLen > eocd) bad('corrupt zip central directory');
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    if (flags & 1) bad(`zip entry '${name}' is encrypted`);
    if (compressed === 0xffffffff || size === 0xffffffff || localOffset === 0xffffffff)
      bad(`zip entry '${name}': zip64 sizes are not supported yet`);
    if (method !== 0 && method !== 8) bad(`zip entry '${name}': compression method ${method} is not supported`);
    if (size > MAX_ENTRY_BYTES) bad(`zip entry '${name}' claims ${size} bytes (more than ${MAX_ENTRY_BYTES})`);
    if (method === 0 && size !== compressed) bad(`zip entry '${name}': stored entry with two different sizes`);
    if (method === 8 && size > Math.max(1024, compressed * MAX_DEFLATE_RATIO))
      bad(`zip entry '${name}' claims ${size} bytes from ${compressed} compressed (a zip bomb?)`);
    out.set(name, { name, method, compressed, size, localOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

/** One entry's bytes, bounded by its declared size (and `max`). */
export function readZipEntry(buf: Buffer, e: ZipEntry, file: string, max = MAX_ENTRY_BYTES): Buffer {
  const bad = (what: string): never => {
    throw new UserError(`${file}: zip entry '${e.name}': ${what}`);
  };
  if (e.size > max) bad(`${e.size} bytes is more than the ${max} accepted`);
  const h = e.localOffset;
  if (h + 30 > buf.length || buf.readUInt32LE(h) !== 0x04034b50) bad('corrupt local header');
  const start = h + 30 + buf.readUInt16LE(h + 26) + buf.readUInt16LE(h + 28);
  if (start + e.compressed > buf.length) bad('data outside the file (truncated?)');
  const raw = buf.subarray(start, start + e.compressed);
  if (e.method === 0) return raw;
  let out: Buffer;
  try {
    out = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
  } catch (err) {
    return bad(`cannot inflate (${(err as Error).message})`);
  }
  if (out.length !== e.size) bad(`inflates to ${out.length} bytes, not the ${e.size} declared`);
  return out;
}

// ---- the pickle subset -------------------------------------------------------------------------

/** Storage types torch.save names, with their element size and how to read one element. */
const STORAGES: Record<string, { bytes: number; read: (b: Buffer, i: number) => number }> = {
  FloatStorage: { bytes: 4, read: (b, i) => b.readFloatLE(i * 4) },
  DoubleStorage: { bytes: 8, read: (b, i) => b.readDoubleLE(i * 8) },
  HalfStorage: { bytes: 2, read: (b, i) => f16ToNumber(b.readUInt16LE(i * 2)) },
  BFloat16Storage: { bytes: 2, read: (b, i) => bf16(b.readUInt16LE(i * 2)) },
  LongStorage: { bytes: 8, read: (b, i) => Number(b.readBigInt64LE(i * 8)) },
  IntStorage: { bytes: 4, read: (b, i) => b.readInt32LE(i * 4) },
  ShortStorage: { bytes: 2, read: (b, i) => b.readInt16LE(i * 2) },
  CharStorage: { bytes: 1, read: (b, i) => b.readInt8(i) },
  ByteStorage: { bytes: 1, read: (b, i) => b.readUInt8(i) },
  BoolStorage: { bytes: 1, read: (b, i) => b.readUInt8(i) },
};

const bf16Buf = new DataView(new ArrayBuffer(4));
function bf16(bits: number): number {
  bf16Buf.setUint32(0, bits << 16);
  return bf16Buf.getFloat32(0);
}

class Mark {}
const MARK = new Mark();
class Global {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
}
interface StorageRef {
  kind: 'storage';
  type: string;
  key: string;
  numel: number;
}
export interface TensorRecord {
  kind: 'tensor';
  storage: StorageRef;
  offset: number;
  shape: number[];
}
class Dict {
  readonly map = new Map<unknown, unknown>();
}
type Value = unknown;

const ALLOWED_GLOBALS = new Set(['torch._utils._rebuild_tensor_v2', 'collections.OrderedDict']);

const OPNAMES: Record<number, string> = {
  0x28: 'MARK',
  0x2e: 'STOP',
  0x4a: 'BININT',
  0x4b: 'BININT1',
  0x4d: 'BININT2',
  0x4e: 'NONE',
  0x51: 'BINPERSID',
  0x52: 'REDUCE',
  0x58: 'BINUNICODE',
  0x5d: 'EMPTY_LIST',
  0x63: 'GLOBAL',
  0x68: 'BINGET',
  0x6a: 'LONG_BINGET',
  0x71: 'BINPUT',
  0x72: 'LONG_BINPUT',
  0x73: 'SETITEM',
  0x74: 'TUPLE',
  0x75: 'SETITEMS',
  0x7d: 'EMPTY_DICT',
  0x29: 'EMPTY_TUPLE',
  0x62: 'BUILD',
  0x80: 'PROTO',
  0x85: 'TUPLE1',
  0x86: 'TUPLE2',
  0x87: 'TUPLE3',
  0x88: 'NEWTRUE',
  0x89: 'NEWFALSE',
  0x8a: 'LONG1',
  0x8c: 'SHORT_BINUNICODE',
  0x94: 'MEMOIZE',
  0x95: 'FRAME',
};

/**
 * Run the pickle of a state dict on our small machine: returns name -> tensor record. `what` names
 * the file in errors. Nothing the pickle names is ever imported or called.
 */
export function readStateDictPickle(pkl: Buffer, what: string): Map<string, TensorRecord> {
  const refuse = (why: string): never => {
    throw new UserError(`${what}: ${why} (only tensor state dicts are read)`);
  };
  const stack: Value[] = [];
  const memo = new Map<number, Value>();
  let p = 0;
  const need = (n: number) => {
    if (p + n > pkl.length) refuse('truncated pickle');
  };
  const u8 = () => (need(1), pkl[p++]);
  const u16 = () => (need(2), (p += 2), pkl.readUInt16LE(p - 2));
  const u32 = () => (need(4), (p += 4), pkl.readUInt32LE(p - 4));
  const str = (n: number) => (need(n), (p += n), pkl.toString('utf8', p - n, p));
  const line = () => {
    const end = pkl.indexOf(0x0a, p);
    if (end < 0 || end - p > 256) refuse('bad GLOBAL');
    const s = pkl.toString('utf8', p, end);
    p = end + 1;
    return s;
  };
  const pop = (): Value => (stack.length === 0 ? refuse('stack underflow') : stack.pop());
  const popMark = (): Value[] => {
    let i = stack.length - 1;
    while (i >= 0 && stack[i] !== MARK) i--;
    if (i < 0) refuse('MARK missing');
    const items = stack.splice(i);
    items.shift();
    return items;
  };
  const setItem = (d: Value, k: Value, v: Value) => {
    if (!(d instanceof Dict)) refuse('SETITEM on something that is not a dict');
    (d as Dict).map.set(k, v);
  };
  const int = (v: Value, field: string): number =>
    Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : refuse(`tensor record: bad ${field}`);

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) refuse('unknown pickle protocol');
        break;
      case 0x95: // FRAME: an 8-byte length, framing only
        need(8);
        p += 8;
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Dict());
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x58: // BINUNICODE
        stack.push(str(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(str(u8()));
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x4a: // BININT
        need(4);
        p += 4;
        stack.push(pkl.readInt32LE(p - 4));
        break;
      case 0x8a: {
        // LONG1: a little-endian two's complement integer of n <= 8 bytes
        const n = u8();
        if (n > 8) refuse('integer too large');
        need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(pkl[p + i]);
        if (n > 0 && pkl[p + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        p += n;
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) refuse('integer too large');
        stack.push(Number(v));
        break;
      }
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: {
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), stack[stack.length - 1]);
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), stack[stack.length - 1]);
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, stack[stack.length - 1]);
        break;
      case 0x68: // BINGET
      case 0x6a: {
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) refuse('BINGET of an unknown memo entry');
        stack.push(memo.get(k));
        break;
      }
      case 0x63: {
        // GLOBAL: only the names a tensor state dict needs; nothing is imported
        const module = line();
        const name = line();
        const full = `${module}.${name}`;
        const storage = module === 'torch' && name in STORAGES;
        if (!ALLOWED_GLOBALS.has(full) && !storage) refuse(`refused GLOBAL ${module} ${name}`);
        stack.push(new Global(module, name));
        break;
      }
      case 0x51: {
        // BINPERSID: ('storage', <storage type>, key, location, numel)
        const pid = pop();
        if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') refuse('unknown persistent id');
        const [, type, key, , numel] = pid as Value[];
        if (!(type instanceof Global) || !(type.name in STORAGES)) refuse('persistent id is not a storage');
        if (typeof key !== 'string' || !/^\w{1,64}$/.test(key)) refuse('bad storage key');
        stack.push({ kind: 'storage', type: (type as Global).name, key, numel: int(numel, 'storage size') });
        break;
      }
      case 0x52: {
        // REDUCE: only the tensor record and an empty OrderedDict
        const args = pop();
        const fn = pop();
        if (!(fn instanceof Global) || !Array.isArray(args)) refuse('REDUCE of something that is not a tensor');
        const g = fn as Global;
        const a = args as Value[];
        if (g.module === 'collections' && g.name === 'OrderedDict' && a.length === 0) stack.push(new Dict());
        else if (g.name === '_rebuild_tensor_v2' && a.length >= 4) stack.push(tensorRecord(a, refuse, int));
        else refuse(`REDUCE of ${g.module}.${g.name} refused`);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItem(stack[stack.length - 1], k, v);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2) refuse('SETITEMS with an odd number of items');
        for (let i = 0; i < items.length; i += 2) setItem(stack[stack.length - 1], items[i], items[i + 1]);
        break;
      }
      case 0x62: {
        // BUILD: a state dict's OrderedDict carries `_metadata` (versions); ignored
        const state = pop();
        const obj = stack[stack.length - 1];
        if (!(obj instanceof Dict) || !(state === null || state instanceof Dict)) refuse('BUILD of a non-dict');
        break;
      }
      case 0x2e: {
        // STOP
        const top = pop();
        if (!(top instanceof Dict)) refuse('the pickle is not a dict');
        const out = new Map<string, TensorRecord>();
        for (const [k, v] of (top as Dict).map) {
          if (typeof k !== 'string') refuse('a key is not a string');
          if (!v || (v as TensorRecord).kind !== 'tensor') refuse(`'${k}' is not a tensor`);
          out.set(k as string, v as TensorRecord);
        }
        return out;
      }
      default:
        return refuse(`unsupported pickle opcode ${OPNAMES[op] ?? `0x${op.toString(16)}`}`);
    }
  }
}

function tensorRecord(
  a: Value[],
  refuse: (why: string) => never,
  int: (v: Value, field: string) => number,
): TensorRecord {
  const [storage, offset, size, stride] = a;
  if (!storage || (storage as StorageRef).kind !== 'storage') refuse('tensor record without a storage');
  if (!Array.isArray(size) || !Array.isArray(stride) || size.length !== stride.length) refuse('bad tensor shape');
  const shape = (size as Value[]).map((d) => int(d, 'size'));
  const strides = (stride as Value[]).map((d) => int(d, 'stride'));
  let expect = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && strides[i] !== expect) refuse('a tensor is not contiguous (strided views are not read)');
    expect *= shape[i];
  }
  const s = storage as StorageRef;
  const off = int(offset, 'storage offset');
  if (off + expect > s.numel) refuse(`tensor of ${expect} elements at ${off} is outside its storage of ${s.numel}`);
  return { kind: 'tensor', storage: s, offset: off, shape };
}

/**
 * Read a torch.save zip of a state dict: every tensor as float32 (fp16/bf16/double/int
 * converted). `file` names the file in every error.
 */
export function readTorchBin(
  file: string,
  budget: WeightBudget = defaultBudget(),
  skip: (name: string) => boolean = () => false,
): Map<string, { shape: number[]; data: Float32Array }> {
  const buf = readBounded(file, 'weights');
  if (buf.length >= 2 && buf[0] === 0x80 && buf[1] <= 5) {
    throw new UserError(
      `${file}: the legacy (pre-1.6, non-zip) torch.save format is not supported; ` +
        're-save it with a newer torch or convert it to model.safetensors',
    );
  }
  if (buf.length < 4 || buf.readUInt32LE(0) !== 0x04034b50)
    throw new UserError(`${file}: not a PyTorch checkpoint (expected the zip format torch.save writes)`);
  const entries = readZipDirectory(buf, file);
  const pklName = [...entries.keys()].find((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
  if (!pklName) throw new UserError(`${file}: no data.pkl in the archive (not a torch.save checkpoint)`);
  const prefix = pklName.slice(0, pklName.length - 'data.pkl'.length);
  const records = readStateDictPickle(readZipEntry(buf, entries.get(pklName)!, file, MAX_PICKLE_BYTES), file);
  // Tensors the caller does not use (a tied MLM decoder, position_ids) are never read, nor are
  // their storages inflated unless a used tensor shares them.
  for (const name of [...records.keys()]) if (skip(name)) records.delete(name);
  // Everything is checked and budgeted before any storage is inflated or any tensor allocated:
  //   - each storage key has one type and one size, whichever records use it, and its zip entry
  //     holds exactly those bytes;
  //   - the float32 arrays of all tensors (a storage shared by many views counted once per view,
  //     since each becomes its own array) and the inflated bytes of the storages they use fit the
  //     budget. Entries no tensor uses (a hub checkpoint's MLM head, or anything else) are never
  //     inflated, nor is a storage only empty tensors use.
  const keys = new Map<string, { type: string; numel: number; by: string }>();
  const used = new Set<string>();
  let elements = 0;
  let storageBytes = 0;
  for (const [name, r] of records) {
    const k = keys.get(r.storage.key);
    if (k && (k.type !== r.storage.type || k.numel !== r.storage.numel))
      throw new UserError(
        `${file}: storage '${r.storage.key}' is a ${k.type} of ${k.numel} elements for '${k.by}' ` +
          `but a ${r.storage.type} of ${r.storage.numel} for '${name}'`,
      );
    const n = r.shape.reduce((x, y) => x * y, 1);
    elements += n;
    if (n > 0) used.add(r.storage.key);
    if (!k) {
      const e = entries.get(`${prefix}data/${r.storage.key}`);
      if (!e) throw new UserError(`${file}: storage '${r.storage.key}' of tensor '${name}' is missing`);
      if (e.size !== r.storage.numel * STORAGES[r.storage.type].bytes)
        throw new UserError(`${file}: storage '${r.storage.key}' has ${e.size} bytes, not ${r.storage.numel} elements`);
      keys.set(r.storage.key, { type: r.storage.type, numel: r.storage.numel, by: name });
    }
  }
  for (const key of used) storageBytes += keys.get(key)!.numel * STORAGES[keys.get(key)!.type].bytes;
  spendBudget(budget, elements, storageBytes, file);
  const storages = new Map<string, Buffer>();
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, r] of records) {
    const st = STORAGES[r.storage.type];
    const n = r.shape.reduce((x, y) => x * y, 1);
    if (n === 0) {
      out.set(name, { shape: r.shape, data: new Float32Array(0) });
      continue;
    }
    let bytes = storages.get(r.storage.key);
    if (!bytes) {
      bytes = readZipEntry(buf, entries.get(`${prefix}data/${r.storage.key}`)!, file);
      storages.set(r.storage.key, bytes);
    }
    const data = new Float32Array(n);
    if (st.bytes === 4 && r.storage.type === 'FloatStorage') {
      // a byte copy: the bytes need not be 4-aligned in the zip (little-endian host assumed, as tfjs does)
      new Uint8Array(data.buffer).set(bytes.subarray(r.offset * 4, (r.offset + n) * 4));
    } else {
      for (let i = 0; i < n; i++) data[i] = st.read(bytes, r.offset + i);
    }
    out.set(name, { shape: r.shape, data });
  }
  return out;
}
