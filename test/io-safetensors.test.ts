import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/engine/errors';
import {
  encodeSafetensors,
  f16ToNumber,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from '../src/engine/io/safetensors';
import { userError } from './helpers/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'io-safetensors-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let counter = 0;
function tmpFile(): string {
  return path.join(tmp, `t${counter++}.safetensors`);
}

/** A safetensors file from a literal header text and data bytes, built the way the spec says. */
function rawFile(headerText: string, data: number[] | Uint8Array, n?: bigint): string {
  const header = Buffer.from(headerText, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(n ?? BigInt(header.length));
  const f = tmpFile();
  fs.writeFileSync(f, Buffer.concat([len, header, Buffer.from(data)]));
  return f;
}

/** Little-endian bytes of float32 values. */
function f32le(...xs: number[]): number[] {
  const b = Buffer.alloc(4 * xs.length);
  xs.forEach((x, i) => b.writeFloatLE(x, 4 * i));
  return [...b];
}

describe('writeSafetensors: the bytes on disk', () => {
  it('matches a file built by hand from the spec, byte for byte', () => {
    const f = tmpFile();
    // Given out of order on purpose: the header and the data are sorted by name.
    writeSafetensors(f, [
      { name: 'b', shape: [2], data: new Float32Array([1, -2]) },
      { name: 'a', shape: [], data: new Float32Array([0.5]) },
    ]);
    const header =
      '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},' +
      '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}';
    expect(header.length).toBe(138); // -> 6 spaces of padding to 144
    const expected = [
      144,
      0,
      0,
      0,
      0,
      0,
      0,
      0, // u64 little-endian header length, padding included
      ...Buffer.from(header + '      '),
      0x00,
      0x00,
      0x00,
      0x3f, // a = 0.5f
      0x00,
      0x00,
      0x80,
      0x3f, // b[0] = 1.0f
      0x00,
      0x00,
      0x00,
      0xc0, // b[1] = -2.0f
    ];
    expect([...fs.readFileSync(f)]).toEqual(expected);
  });

  it('adds user metadata after format "pt" and needs no padding when the header fits exactly', () => {
    const bytes = encodeSafetensors([], { step: '7' });
    const text = Buffer.from(bytes.subarray(8)).toString('utf8');
    // {"__metadata__":{"format":"pt","step":"7"}} is 43 bytes -> 5 spaces
    expect(text).toBe('{"__metadata__":{"format":"pt","step":"7"}}     ');
    expect(Buffer.from(bytes).readBigUInt64LE(0)).toBe(48n);
  });

  it('rejects tensors whose data does not fit the shape, duplicate names and the reserved name', () => {
    expect(() => encodeSafetensors([{ name: 'x', shape: [2, 2], data: new Float32Array(3) }])).toThrow(/needs 4/);
    expect(() =>
      encodeSafetensors([
        { name: 'x', shape: [1], data: new Float32Array(1) },
        { name: 'x', shape: [1], data: new Float32Array(1) },
      ]),
    ).toThrow(/duplicate/);
    expect(() => encodeSafetensors([{ name: '__metadata__', shape: [1], data: new Float32Array(1) }])).toThrow(
      /invalid tensor name/,
    );
  });
});

describe('readSafetensors', () => {
  it('reads a file as Python would write it: several dtypes, data not in name order', () => {
    // What safetensors' save_file writes for {"h": f16, "bf": bf16, "i": int64, "d": f64, "e": empty}:
    // no __metadata__, compact JSON padded with spaces, the buffer ordered by alignment.
    const data = [
      ...[0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0x3f], // d: F64 0.1
      ...[0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x07, 0, 0, 0, 0, 0, 0, 0], // i: I64 [-3, 7]
      ...[0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00], // h: F16 [1, -2, 65504, 2^-24]
      ...[0x80, 0x3f, 0x00, 0xbf], // bf: BF16 [1, -0.5]
    ];
    let header =
      '{"d":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"i":{"dtype":"I64","shape":[2,1],"data_offsets":[8,24]},' +
      '"h":{"dtype":"F16","shape":[2,2],"data_offsets":[24,32]},' +
      '"bf":{"dtype":"BF16","shape":[2],"data_offsets":[32,36]},' +
      '"e":{"dtype":"F32","shape":[0,3],"data_offsets":[36,36]}}';
    header += ' '.repeat((8 - (header.length % 8)) % 8);
    const f = rawFile(header, data);
    const h = readSafetensorsHeader(f);
    expect(h.dataStart).toBe(8 + header.length);
    expect(h.metadata).toEqual({});
    const t = readSafetensors(f);
    expect([...t.keys()]).toEqual(['d', 'i', 'h', 'bf', 'e']);
    expect(t.get('d')!.data[0]).toBeCloseTo(0.1, 7);
    expect(t.get('i')).toEqual({ shape: [2, 1], data: new Float32Array([-3, 7]) });
    expect(t.get('h')).toEqual({ shape: [2, 2], data: new Float32Array([1, -2, 65504, 2 ** -24]) });
    expect(t.get('bf')).toEqual({ shape: [2], data: new Float32Array([1, -0.5]) });
    expect(t.get('e')).toEqual({ shape: [0, 3], data: new Float32Array(0) });
  });

  it('converts half precision specials', () => {
    expect(f16ToNumber(0x7c00)).toBe(Infinity);
    expect(f16ToNumber(0xfc00)).toBe(-Infinity);
    expect(f16ToNumber(0x7e00)).toBeNaN();
    expect(Object.is(f16ToNumber(0x8000), -0)).toBe(true);
    expect(f16ToNumber(0x3555)).toBeCloseTo(1 / 3, 3);
  });

  it('reads only the header: works on a 3 GB (sparse) file that could not be read whole', () => {
    let header = '{"big":{"dtype":"F32","shape":[750000000],"data_offsets":[0,3000000000]}}';
    header += ' '.repeat((8 - (header.length % 8)) % 8);
    const f = rawFile(header, []);
    fs.truncateSync(f, 8 + header.length + 3_000_000_000);
    const h = readSafetensorsHeader(f);
    expect(h.entries.big).toEqual({ dtype: 'F32', shape: [750000000], data_offsets: [0, 3000000000] });
    expect(h.fileSize).toBe(8 + header.length + 3_000_000_000);
    fs.rmSync(f);
  });
});

describe('corrupt files: one UserError per kind of damage, naming file and tensor', () => {
  const ok = (name: string, dtype: string, shape: number[], offs: [number, number]) =>
    `"${name}":{"dtype":"${dtype}","shape":${JSON.stringify(shape)},"data_offsets":${JSON.stringify(offs)}}`;

  const cases: { what: string; make: () => string; msg: RegExp }[] = [
    {
      what: 'shorter than 8 bytes',
      make: () => {
        const f = tmpFile();
        fs.writeFileSync(f, Buffer.from([1, 2, 3]));
        return f;
      },
      msg: /not a safetensors file \(3 bytes/,
    },
    {
      what: 'header length past the end',
      make: () => rawFile('{}', [], 1000n),
      msg: /header length 1000 runs past the end of the 10-byte file/,
    },
    {
      what: 'header length over 100 MB',
      make: () => rawFile('{}', [], 1n << 40n),
      msg: /over the 100000000-byte limit/,
    },
    { what: 'header not JSON', make: () => rawFile('{"a": nope}', []), msg: /header is not valid JSON/ },
    { what: 'header not an object', make: () => rawFile('[1, 2]  ', []), msg: /header is not a JSON object/ },
    {
      what: 'unknown dtype',
      make: () => rawFile(`{${ok('w', 'F17', [1], [0, 4])}}`, f32le(1)),
      msg: /tensor 'w': unknown dtype "F17"/,
    },
    {
      what: 'size mismatch',
      make: () => rawFile(`{${ok('w', 'F32', [3], [0, 8])}}`, f32le(1, 2)),
      msg: /tensor 'w': F32 shape \[3\] needs 12 bytes but data_offsets \[0, 8\] span 8/,
    },
    {
      what: 'outside the buffer',
      make: () => rawFile(`{${ok('w', 'F32', [3], [0, 12])}}`, f32le(1, 2)),
      msg: /tensor 'w': data_offsets \[0, 12\] are outside the 8-byte data buffer/,
    },
    {
      what: 'overlap',
      make: () => rawFile(`{${ok('a', 'F32', [2], [0, 8])},${ok('b', 'F32', [2], [4, 12])}}`, f32le(1, 2, 3)),
      msg: /tensor 'b': data_offsets \[4, 12\] overlap tensor 'a'/,
    },
    {
      what: 'hole',
      make: () => rawFile(`{${ok('a', 'F32', [1], [0, 4])},${ok('b', 'F32', [1], [8, 12])}}`, f32le(1, 2, 3)),
      msg: /tensor 'b': .*'a' ends at 4, leaving a 4-byte hole/,
    },
    {
      what: 'hole at the start',
      make: () => rawFile(`{${ok('b', 'F32', [1], [4, 8])}}`, f32le(1, 2)),
      msg: /tensor 'b': .*the data buffer starts at 0/,
    },
    {
      what: 'trailing bytes',
      make: () => rawFile(`{${ok('a', 'F32', [1], [0, 4])}}`, f32le(1, 2)),
      msg: /4 bytes after the last tensor 'a'/,
    },
    {
      what: 'bad shape',
      make: () => rawFile(`{${ok('a', 'F32', [-1], [0, 4])}}`, f32le(1)),
      msg: /tensor 'a': shape \[-1\] is not a list of non-negative integers/,
    },
    {
      what: 'bad offsets',
      make: () => rawFile(`{${ok('a', 'F32', [1], [4, 0] as [number, number])}}`, f32le(1)),
      msg: /tensor 'a': data_offsets \[4,0\] is not \[begin, end\]/,
    },
    { what: 'entry not an object', make: () => rawFile('{"a": 5}', []), msg: /tensor 'a': entry is not an object/ },
    {
      what: 'metadata not strings',
      make: () => rawFile('{"__metadata__":{"k":1}}', []),
      msg: /__metadata__\['k'\] is not a string/,
    },
    { what: 'missing file', make: () => path.join(tmp, 'absent.safetensors'), msg: /file not found/ },
  ];
  for (const c of cases) {
    it(c.what, () => {
      const f = c.make();
      const msg = userError(() => readSafetensorsHeader(f));
      expect(msg.startsWith(`${f}: `)).toBe(true);
      expect(msg).toMatch(c.msg);
      // readSafetensors validates the same way
      expect(userError(() => readSafetensors(f))).toBe(msg);
    });
  }

  it('invalid UTF-8 in the header is reported as such', () => {
    const f = tmpFile();
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(4n);
    fs.writeFileSync(f, Buffer.concat([len, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])]));
    expect(userError(() => readSafetensorsHeader(f))).toMatch(/not valid UTF-8/);
  });
});

describe('properties', () => {
  const tensorArb = fc.record({
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
    seed: fc.array(fc.float(), { minLength: 1, maxLength: 64 }),
  });
  const tensorsArb = fc
    .uniqueArray(
      fc.tuple(
        fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s !== '__metadata__'),
        tensorArb,
      ),
      {
        selector: ([name]) => name,
        maxLength: 6,
      },
    )
    .map((list) =>
      list.map(([name, { shape, seed }]) => {
        const n = shape.reduce((a, b) => a * b, 1);
        return { name, shape, data: Float32Array.from({ length: n }, (_, i) => seed[i % seed.length]!) };
      }),
    );
  const metaArb = fc.dictionary(
    fc.string({ maxLength: 8 }).filter((k) => k !== 'format'),
    fc.string({ maxLength: 8 }),
    { maxKeys: 3 },
  );

  it('tensor and metadata names that are Object.prototype names round-trip ("__proto__" included)', () => {
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const f = tmpFile();
      writeSafetensors(f, [{ name, shape: [1], data: new Float32Array([1]) }], { [name]: 'x' });
      expect([...readSafetensors(f).keys()], name).toEqual([name]);
      expect(readSafetensorsHeader(f).metadata[name]).toBe('x');
    }
  });

  it('write then read returns every tensor bit for bit (NaN, -0, Inf included)', () => {
    fc.assert(
      fc.property(tensorsArb, metaArb, (tensors, meta) => {
        const f = tmpFile();
        writeSafetensors(f, tensors, meta);
        const h = readSafetensorsHeader(f);
        expect(h.dataStart % 8).toBe(0);
        expect(h.metadata).toEqual({ format: 'pt', ...meta });
        const back = readSafetensors(f);
        expect([...back.keys()].sort()).toEqual(tensors.map((t) => t.name).sort());
        for (const t of tensors) {
          const b = back.get(t.name)!;
          expect(b.shape).toEqual(t.shape);
          expect(b.data.length).toBe(t.data.length);
          for (let i = 0; i < t.data.length; i++) expect(Object.is(b.data[i], t.data[i])).toBe(true);
        }
        fs.rmSync(f);
      }),
      { numRuns: 100 },
    );
  });

  it('a damaged file (truncated or one byte changed) reads or fails with a UserError, nothing else', () => {
    const base = encodeSafetensors([
      { name: 'emb', shape: [3, 2], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
      { name: 'bias', shape: [2], data: new Float32Array([7, 8]) },
    ]);
    const f = tmpFile();
    fc.assert(
      fc.property(
        fc.nat({ max: base.length - 1 }),
        fc.integer({ min: 0, max: 255 }),
        fc.boolean(),
        (at, byte, truncate) => {
          const bytes = truncate ? base.slice(0, at) : Uint8Array.from(base, (b, i) => (i === at ? byte : b));
          fs.writeFileSync(f, bytes);
          try {
            readSafetensors(f);
          } catch (e) {
            expect(e).toBeInstanceOf(UserError);
            expect((e as Error).message.startsWith(`${f}: `)).toBe(true);
          }
          if (truncate) expect(() => readSafetensors(f)).toThrow(UserError);
        },
      ),
      { numRuns: 300 },
    );
  });
});
