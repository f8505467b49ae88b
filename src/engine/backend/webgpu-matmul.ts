// The webgpu backend's matmuls: every dense layer (x W^T + b, and its backward dY W and dY^T X) and
// both attention products (Q K^T and P V, and their four backward products), on either
//   - tfjs's matmul (dense) or our 16 x 16 strided kernel (attention, webgpu-ops.ts): the fallback;
//   - our register-blocked kernel (this file): an output tile of BM x BN per workgroup, TM x TN
//     outputs per thread held in registers, K in steps of BK through workgroup memory, the tile
//     loads laid out so that neighbouring threads read neighbouring addresses whichever operand
//     is transposed (scripts/matmul-probe.mjs measured the variants on the H200: 128 x 128 with
//     8 x 8 per thread reached 19.6-31.8 TFLOP/s at BERT-base's shapes against tfjs's 6.7-14.8);
//     tile variants: -v4 loads vec4 along each operand's contiguous dimension where sizes and
//     strides are multiples of 4 (else scalars); -w4 keeps the workgroup tiles as vec4 and gives
//     each thread runs of 4 adjacent rows and columns (vector reads, vec4 accumulators); -db
//     double-buffers them (the next k step's loads issued before this step's math);
// Every operand is a strided view (batch, row, column strides in the uniforms), so one kernel
// serves the dense layers and the attention's per-head products in the [B*T, A*D] layout; every
// size is bounds-checked (pruned models have widths like 77 or 240). fp32 throughout.
//
// Which one runs is chosen per adapter by a short measurement the first time the backend starts
// on it (tuneMatmul, from backend/index.ts), per product (NT, NN, TN, attention) and size class,
// and kept in the speeds file bench keeps (speeds.ts, `matmul`; index.ts passes it as the
// TuningStore); the fastest candidate, tfjs's included, wins. BERT_PRUNER_WEBGPU_MATMUL overrides:
//   auto (default)  the measured choice (measured once per adapter and kernel version)
//   tfjs            tfjs's matmul for the dense layers, the 16 x 16 kernel for attention (as before)
//   ours[:TILE]     our kernel everywhere, tile TILE (e.g. ours:64x64x16-4x4; default 128x128x8-8x8)
//   tiled           ours:64x64x16-4x4 (the earlier experiment's tile)
// The kernels go through dispatchRaw like the other fused ops, so a recorded step captures them.
//
// Precision mixed (setMatmulPrecision, from backend/index.ts; the device has shader-f16): every
// product runs on the f16 variant of the register-blocked kernel, whatever the fp32 choice: the
// operands are rounded to f16 as they enter workgroup memory and registers, each product of two
// f16 values is taken exactly in f32, and the sums are kept in f32 (as tensor cores do). An
// operand beyond f16's range (|x| > 65504, inf, NaN) makes the outputs of its workgroup NaN, so
// that the loss scaler (train/loss-scale.ts) sees the overflow and skips the step. The tile is the
// measured fp32 choice where that is a tile of ours, else DEFAULT_TILE. Where the device offers
// subgroup matrices (tensor cores), tuneMixed measures that f16 kernel against the subgroup-matrix
// kernel (webgpu-sgmat.ts: same rounding, NaN and epilogue) per product and size class, after
// checking that each candidate compiles (in Dawn's error scopes) and agrees with the f16 kernel,
// and keeps the faster beside the fp32 choices.
import * as tf from '@tensorflow/tfjs';
import {
  dispatchRaw,
  dropPipeline,
  gridGroups,
  outputInfo,
  pipeline,
  requireWebGpu,
  resetGpuCounters,
  uniformBlock,
  UniformField,
  WG,
} from './webgpu-kernels';
import { webgpuFeatures, type Precision } from './webgpu';
import {
  EMULATED_SUBGROUP,
  parseSgName,
  SG_FORMS,
  SG_TILES,
  sgFits,
  sgName,
  sgShape,
  sgWgsl,
  type SgConfig,
  type SgDialect,
  type SgForm,
  type SgLimits,
} from './webgpu-sgmat';
import { UserError } from '../errors';

/** Which matmul runs each product and size class on one adapter, as measured. */
export interface MatmulTuning {
  adapter: string;
  /** The kernels' version measured: another version measures again. */
  version: number;
  measured: string;
  /** `NT:large` -> 'tfjs' | 'simple' | a tile name. */
  choices: Record<string, string>;
  /** ms per call of every candidate, per product and size class. */
  ms: Record<string, Record<string, number>>;
  /** Tiles left out, and why (a compile error, a difference from the fallback's output). */
  rejected?: Record<string, string>;
  /** Precision mixed where subgroup matrices are offered: the f16 kernel against them (tuneMixed). */
  mixed?: MixedTuning;
}

/** Precision mixed's measured choices: 'f16:TILE' (the register-blocked f16 kernel) or 'sg:...'. */
export interface MixedTuning {
  /** What was offered (dialect, configurations, subgroup size): another offer measures again. */
  offer: string;
  /** The device form that compiled and agreed, or 'emulated'; null: none did. */
  form: SgForm | 'emulated' | null;
  choices: Record<string, string>;
  ms: Record<string, Record<string, number>>;
  /** Candidates left out, and why (a compile error, a difference from the f16 kernel). */
  rejected: Record<string, string>;
}

/** Where the measured choices are kept (backend/index.ts passes speeds.ts's file). */
export interface TuningStore {
  read(adapter: string, version: number): MatmulTuning | null;
  write(t: MatmulTuning): { file: string } | { problem: string };
}

/** Output tile BM x BN a workgroup, K step BK, TM x TN outputs a thread. */
export interface Tile {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
  /** Global loads as vec4 along each operand's contiguous dimension, where sizes and strides allow (else scalar). */
  V4?: boolean;
  /**
   * Workgroup tiles read as vec4 (TM and TN multiples of 4): a thread's rows come in groups of 4
   * adjacent ones, groups 4 x BM / TM apart (columns alike), so that its registers fill with TM / 4 +
   * TN / 4 vector reads a k step instead of TM + TN scalar ones, and it accumulates in vec4.
   */
  W4?: boolean;
  /**
   * Double-buffered (TM and TN multiples of 4 with W4): the next k step's global loads are issued
   * into registers before this step's math and stored into a second workgroup buffer after it, so
   * that their latency hides behind the math, with one barrier a step instead of two.
   */
  DB?: boolean;
}

export const TILES: Record<string, Tile> = {
  '64x64x16-4x4': { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4 },
  '128x64x16-8x4': { BM: 128, BN: 64, BK: 16, TM: 8, TN: 4 },
  '128x128x8-8x8': { BM: 128, BN: 128, BK: 8, TM: 8, TN: 8 },
  '128x128x16-8x8': { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8 },
  '128x128x8-8x8-v4': { BM: 128, BN: 128, BK: 8, TM: 8, TN: 8, V4: true },
  '128x128x16-8x8-v4w4': { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8, V4: true, W4: true },
  '64x64x16-4x4-w4': { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4, W4: true },
  '128x128x8-8x8-v4w4db': { BM: 128, BN: 128, BK: 8, TM: 8, TN: 8, V4: true, W4: true, DB: true },
};

/** Bytes of workgroup memory a tile takes (4 a value, 2 in f16; twice where double-buffered). */
export function tileBytes(t: Tile, f16 = false): number {
  return t.BK * (t.BM + t.BN) * (f16 ? 2 : 4) * (t.DB ? 2 : 1);
}
/** The probe's best on the H200's forward products. */
export const DEFAULT_TILE = '128x128x8-8x8';
/** Bump when a kernel changes: measurements of an older version are taken again. */
export const KERNEL_VERSION = 5;

/**
 * A matrix view: X(z, r, c) = X[off + bo * sb + bi * si + r * sr + c * sc], z = bo * inner + bi
 * (off: where the view starts, 0 where not given; e.g. the keys' columns of a packed q, k, v).
 */
export interface Strided {
  t: tf.Tensor;
  sb: number;
  si: number;
  sr: number;
  sc: number;
  off?: number;
}
export interface OutView {
  shape: number[];
  sb: number;
  si: number;
  sr: number;
  sc: number;
}
export interface MatDims {
  M: number;
  N: number;
  K: number;
  outer: number;
  inner: number;
  alpha: number;
}

/**
 * How one operand's tile is loaded at a k step: `n` loads a thread (element or vec4 group e = tid +
 * l * threads; `guard` where fewer groups than threads x n), `idx` the tile position of e, `pre` and
 * `value` the global load at k step `kb` (a name), `store` the statements writing `v` (that value)
 * into the workgroup tile at element offset `off` (a prefix: '' or 'NAME + ').
 */
interface OperandLoad {
  n: number;
  guard: string | null;
  idx: string;
  pre: (kb: string) => string;
  value: string;
  /** The register type of one load (f32, or vec4<f32>). */
  reg: string;
  store: (off: string) => string;
}

/** A kernel's tile loads: its tile, which operand dimensions are contiguous, vec4 or scalar, its threads, f16. */
interface LoadLayout {
  tile: Tile;
  aKContig: boolean;
  bNContig: boolean;
  v4: boolean;
  threads: number;
  f16: boolean;
}

/**
 * The two operands' loads. Scalar: element e of the tile, consecutive e consecutive in memory where
 * a stride is 1. vec4 (v4): group e of 4 elements along the contiguous dimension (its length a
 * multiple of 4, checked at dispatch, so a group is wholly in or out of bounds).
 */
function operandLoads(l: LoadLayout): [OperandLoad, OperandLoad] {
  const { tile, aKContig, bNContig, v4, threads, f16 } = l;
  const { BM, BN, BK } = tile;
  // f16: every element stored through h() (f16, noting an overflow)
  const st = (x: string) => (f16 ? `h(${x})` : x);
  const op = f16 ? 'f16' : 'f32';
  // element idx of tile X: X[idx], or its component in a vec4 tile (W4; the same layout)
  const put = (X: string, idx: string, v: string) =>
    tile.W4 ? `${X}[(${idx}) / 4u][(${idx}) % 4u] = ${v};` : `${X}[${idx}] = ${v};`;
  // v[0..3] at idx .. idx + 3 (idx a multiple of 4): one vec4 store in a W4 tile
  const put4 = (X: string, idx: string) =>
    tile.W4
      ? `${X}[(${idx}) / 4u] = vec4<${op}>(${[0, 1, 2, 3].map((c) => st(`v[${c}]`)).join(', ')});`
      : `for (var c = 0u; c < 4u; c++) { ${X}[${idx} + c] = ${st('v[c]')}; }`;
  // v[0..3] at idx + c * stride: along the tile's other dimension
  const putT = (X: string, idx: (c: string) => string) =>
    `for (var c = 0u; c < 4u; c++) { ${put(X, idx('c'), st('v[c]'))} }`;
  if (!v4) {
    const scalar = (X: 'A' | 'B', len: number, idx: string, at: (kb: string) => string): OperandLoad => {
      const [o, g, sz, ss] = X === 'A' ? ['a', 'gi', 'M', 'r'] : ['b', 'gj', 'N', 'c'];
      return {
        n: (len * BK) / threads,
        guard: null,
        idx,
        pre: (kb) => `let ${g} = ${X === 'A' ? 'row0' : 'col0'} + ${ss}; let gk = ${kb} + kk;`,
        value: `select(0.0, ${X}[min(${at('gk')}, ${o}last)], ${g} < u.${sz} && gk < u.K)`,
        reg: 'f32',
        store: (off) => put(`${X}s`, `${off}kk * ${len}u + ${ss}`, st('v')),
      };
    };
    return [
      scalar(
        'A',
        BM,
        aKContig ? `let kk = e % ${BK}u; let r = e / ${BK}u;` : `let r = e % ${BM}u; let kk = e / ${BM}u;`,
        (gk) => `abase + gi * u.asr + ${gk} * u.asc`,
      ),
      scalar(
        'B',
        BN,
        bNContig ? `let c = e % ${BN}u; let kk = e / ${BN}u;` : `let kk = e % ${BK}u; let c = e / ${BK}u;`,
        (gk) => `bbase + ${gk} * u.bsr + gj * u.bsc`,
      ),
    ];
  }
  const z = 'vec4<f32>(0.0)';
  const vec = (len: number, rest: Omit<OperandLoad, 'n' | 'guard' | 'reg'>): OperandLoad => ({
    n: Math.max(1, (len * BK) / 4 / threads),
    guard: (len * BK) / 4 < threads * Math.max(1, (len * BK) / 4 / threads) ? `e < ${(len * BK) / 4}u` : null,
    reg: 'vec4<f32>',
    ...rest,
  });
  // A: along k (r fixed, kk = 4q .. 4q+3) or along m (kk fixed, r = 4q .. 4q+3)
  const a = aKContig
    ? vec(BM, {
        idx: `let q = e % ${BK / 4}u; let r = e / ${BK / 4}u;`,
        pre: (kb) => `let gi = row0 + r; let gk = ${kb} + 4u * q;`,
        value: `select(${z}, A[min((abase + gi * u.asr + gk) / 4u, alast)], gi < u.M && gk < u.K)`,
        store: (off) => putT('As', (c) => `${off}(4u * q + ${c}) * ${BM}u + r`),
      })
    : vec(BM, {
        idx: `let q = e % ${BM / 4}u; let kk = e / ${BM / 4}u;`,
        pre: (kb) => `let gi = row0 + 4u * q; let gk = ${kb} + kk;`,
        value: `select(${z}, A[min((abase + gi + gk * u.asc) / 4u, alast)], gi < u.M && gk < u.K)`,
        store: (off) => put4('As', `${off}kk * ${BM}u + 4u * q`),
      });
  const b = bNContig
    ? vec(BN, {
        idx: `let q = e % ${BN / 4}u; let kk = e / ${BN / 4}u;`,
        pre: (kb) => `let gj = col0 + 4u * q; let gk = ${kb} + kk;`,
        value: `select(${z}, B[min((bbase + gk * u.bsr + gj) / 4u, blast)], gj < u.N && gk < u.K)`,
        store: (off) => put4('Bs', `${off}kk * ${BN}u + 4u * q`),
      })
    : vec(BN, {
        idx: `let q = e % ${BK / 4}u; let cc = e / ${BK / 4}u;`,
        pre: (kb) => `let gj = col0 + cc; let gk = ${kb} + 4u * q;`,
        value: `select(${z}, B[min((bbase + gk + gj * u.bsc) / 4u, blast)], gj < u.N && gk < u.K)`,
        store: (off) => putT('Bs', (c) => `${off}(4u * q + ${c}) * ${BN}u + cc`),
      });
  return [a, b];
}

/** For each of an operand's loads l of this thread: `body` (e and the tile position known). */
function eachLoad(o: OperandLoad, threads: number, body: string): string {
  const inner = o.guard ? `if (${o.guard}) {\n        ${o.idx}\n        ${body}\n      }` : `${o.idx}\n      ${body}`;
  return `
    for (var l = 0u; l < ${o.n}u; l++) {
      let e = tid + l * ${threads}u;
      ${inner}
    }`;
}

/** The tile loads of one k step (k0), straight into the workgroup tiles. */
function tileLoads(l: LoadLayout): string {
  return operandLoads(l)
    .map((o) => eachLoad(o, l.threads, `${o.pre('k0')} let v = ${o.value}; ${o.store('')}`))
    .join('');
}

/**
 * A double-buffered tile's loads (DB): `fetch(kb)` loads k step kb into registers (pa, pb), `store`
 * writes them into the workgroup buffer at element offsets aoff, boff; `regs` declares the registers.
 */
function prefetchLoads(l: LoadLayout) {
  const ops = operandLoads(l);
  const threads = l.threads;
  const names = ['pa', 'pb'];
  return {
    regs: ops.map((o, i) => `var ${names[i]}: array<${o.reg}, ${o.n}>;`).join('\n  '),
    fetch: (kb: string) =>
      ops.map((o, i) => eachLoad(o, threads, `${o.pre(kb)} ${names[i]}[l] = ${o.value};`)).join(''),
    store: ops
      .map((o, i) => eachLoad(o, threads, `let v = ${names[i]}[l]; ${o.store(['aoff + ', 'boff + '][i])}`))
      .join(''),
  };
}

/** The f16 variants' helpers: h() rounds to f16 and notes a value beyond its range (or NaN) in ovf. */
const F16_HELPERS = `var<private> ovf: bool;
var<workgroup> wovf: atomic<u32>;
// to f16, noting a value beyond its range (or NaN) in ovf
fn h(x: f32) -> f16 {
  if (!(abs(x) <= 65504.0)) { ovf = true; }
  return f16(clamp(x, -65504.0, 65504.0));
}`;

/** A strided matmul's bindings: A, B (elements el), the bias where there is one, out, the uniforms u. */
function bindingsWgsl(el: string, bias: boolean, uniforms: string): string {
  const o = bias ? 3 : 2;
  return `@group(0) @binding(0) var<storage, read> A: array<${el}>;
@group(0) @binding(1) var<storage, read> B: array<${el}>;
${bias ? '@group(0) @binding(2) var<storage, read> bias: array<f32>;' : ''}
@group(0) @binding(${o}) var<storage, read_write> out: array<f32>;
${uniforms}
@group(0) @binding(${o + 1}) var<uniform> u: U;`;
}

/**
 * A strided matmul's start: this workgroup's batch (bo, bi), each operand's base, its output tile's
 * first row and column, and the operands' last elements (the loads clamp to them).
 */
function viewBases(BM: number, BN: number): string {
  return `  let bo = wid.z / u.inner;
  let bi = wid.z % u.inner;
  let abase = u.aoff + bo * u.asb + bi * u.asi;
  let bbase = u.boff + bo * u.bsb + bi * u.bsi;
  let row0 = wid.y * ${BM}u;
  let col0 = wid.x * ${BN}u;
  let alast = arrayLength(&A) - 1u;
  let blast = arrayLength(&B) - 1u;`;
}

function kernelWgsl(
  tile: Tile,
  aKContig: boolean,
  bNContig: boolean,
  v4: boolean,
  bias: boolean,
  uniforms: string,
  f16 = false,
): string {
  const { BM, BN, BK, TM, TN } = tile;
  const tx = BN / TN;
  const ty = BM / TM;
  const threads = tx * ty;
  const el = v4 ? 'vec4<f32>' : 'f32';
  // f16: operands in f16 (workgroup tiles and registers), products and sums in f32
  const op = f16 ? 'f16' : 'f32';
  const head = f16 ? `enable f16;\n${F16_HELPERS}` : '';
  const fma = f16 ? 'fma(f32(a[i]), f32(b[j]), acc[i][j])' : 'fma(a[i], b[j], acc[i][j])';
  // W4: tiles of vec4, a thread's rows (columns) in groups of 4 adjacent ones, accumulators in vec4
  const w4 = !!tile.W4;
  const v = (t: string) => (w4 ? `vec4<${t}>` : t);
  const [tm, tn] = w4 ? [TM / 4, TN / 4] : [TM, TN];
  // DB: this step's buffer starts at ra, rb (in the tiles' units)
  const [ra, rb] = tile.DB ? ['ra + ', 'rb + '] : ['', ''];
  const step = w4
    ? `for (var i = 0u; i < ${tm}u; i++) { a[i] = As[${ra}kk * ${BM / 4}u + lid.y + i * ${ty}u]; }
      for (var j = 0u; j < ${tn}u; j++) { b[j] = Bs[${rb}kk * ${BN / 4}u + lid.x + j * ${tx}u]; }
      for (var i = 0u; i < ${TM}u; i++) {
        let ai = vec4<f32>(${f16 ? 'f32(a[i / 4u][i % 4u])' : 'a[i / 4u][i % 4u]'});
        for (var j = 0u; j < ${tn}u; j++) { acc[i][j] = fma(ai, ${f16 ? 'vec4<f32>(b[j])' : 'b[j]'}, acc[i][j]); }
      }`
    : `for (var i = 0u; i < ${TM}u; i++) { a[i] = As[${ra}kk * ${BM}u + lid.y + i * ${ty}u]; }
      for (var j = 0u; j < ${TN}u; j++) { b[j] = Bs[${rb}kk * ${BN}u + lid.x + j * ${tx}u]; }
      for (var i = 0u; i < ${TM}u; i++) {
        for (var j = 0u; j < ${TN}u; j++) { acc[i][j] = ${fma}; }
      }`;
  // output (i, j) of this thread: its row and column, and its accumulator
  const rowOf = w4 ? `4u * (lid.y + (i / 4u) * ${ty}u) + i % 4u` : `lid.y + i * ${ty}u`;
  const colOf = w4 ? `4u * (lid.x + (j / 4u) * ${tx}u) + j % 4u` : `lid.x + j * ${tx}u`;
  const accOf = w4 ? 'acc[i][j / 4u][j % 4u]' : 'acc[i][j]';
  const layout: LoadLayout = { tile, aKContig, bNContig, v4, threads, f16 };
  const buffers = tile.DB ? 2 : 1;
  const loop = kLoop(
    layout,
    `for (var kk = 0u; kk < ${BK}u; kk++) {
      ${step}
    }`,
  );
  return `${head}
${bindingsWgsl(el, bias, uniforms)}
var<workgroup> As: array<${v(op)}, ${(buffers * BK * BM) / (w4 ? 4 : 1)}>;
var<workgroup> Bs: array<${v(op)}, ${(buffers * BK * BN) / (w4 ? 4 : 1)}>;
@compute @workgroup_size(${tx}, ${ty})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let tid = lid.y * ${tx}u + lid.x;
${viewBases(BM, BN)}
  var acc: array<array<${v('f32')}, ${tn}>, ${TM}>;
  var a: array<${v(op)}, ${tm}>;
  var b: array<${v(op)}, ${tn}>;
  ${loop}
  let obase = bo * u.osb + bi * u.osi;${
    f16
      ? `
  // an operand beyond f16's range anywhere in this workgroup's tiles: its outputs are NaN
  if (ovf) { atomicStore(&wovf, 1u); }
  workgroupBarrier();
  let bad = atomicLoad(&wovf) != 0u;`
      : ''
  }
  for (var i = 0u; i < ${TM}u; i++) {
    let r = row0 + ${rowOf};
    for (var j = 0u; j < ${TN}u; j++) {
      let c = col0 + ${colOf};
      if (r < u.M && c < u.N) {
        ${f16 ? 'let y' : 'out[obase + r * u.osr + c * u.osc]'} = u.alpha * ${accOf}${bias ? ' + bias[c]' : ''};${
          f16 ? '\n        out[obase + r * u.osr + c * u.osc] = select(y, u.poison, bad);' : ''
        }
      }
    }
  }
}`;
}

/**
 * The k loop over a tile's workgroup buffers: `math` (a k step's products, from the tiles at ra, rb
 * where double-buffered) after each step's tile loads. Also the sg kernel's (webgpu-sgmat.ts).
 */
function kLoop(l: LoadLayout, math: string): string {
  if (l.tile.DB) return doubleBufferedLoop(l.tile, prefetchLoads(l), math);
  return `for (var k0 = 0u; k0 < u.K; k0 += ${l.tile.BK}u) {${tileLoads(l)}
    workgroupBarrier();
    ${math}
    workgroupBarrier();
  }`;
}

/**
 * A double-buffered tile's k loop: k step 0 loaded, then each step issues the next step's global
 * loads into registers, runs its math on buffer cur (at ra, rb, in the tiles' units), stores the
 * registers into buffer 1 - cur, and meets the others at one barrier.
 */
function doubleBufferedLoop(tile: Tile, p: ReturnType<typeof prefetchLoads>, math: string): string {
  const { BM, BN, BK } = tile;
  const u4 = tile.W4 ? 4 : 1;
  return `${p.regs}
  var cur = 0u;
  {
    let aoff = 0u;
    let boff = 0u;${p.fetch('0u')}${p.store}
  }
  workgroupBarrier();
  for (var k0 = 0u; k0 < u.K; k0 += ${BK}u) {
    let more = k0 + ${BK}u < u.K;
    if (more) {${p.fetch(`(k0 + ${BK}u)`)}
    }
    let ra = cur * ${(BK * BM) / u4}u;
    let rb = cur * ${(BK * BN) / u4}u;
    ${math}
    if (more) {
      let aoff = (1u - cur) * ${BK * BM}u;
      let boff = (1u - cur) * ${BK * BN}u;${p.store}
    }
    workgroupBarrier();
    cur = 1u - cur;
  }`;
}

/** The uniforms of a strided matmul (this kernel's, and the attention's 16x16 one): sizes, then each
 * operand's strides, then the operands' offsets. */
export function stridedUniforms(
  dims: Pick<MatDims, 'M' | 'N' | 'K' | 'inner' | 'alpha'>,
  a: Strided,
  b: Strided,
  out: OutView,
): UniformField[] {
  const f: UniformField[] = [
    ['M', 'u32', dims.M],
    ['N', 'u32', dims.N],
    ['K', 'u32', dims.K],
    ['inner', 'u32', dims.inner],
    ['alpha', 'f32', dims.alpha],
  ];
  for (const [p, s] of [
    ['a', a],
    ['b', b],
    ['o', out],
  ] as const)
    f.push([`${p}sb`, 'u32', s.sb], [`${p}si`, 'u32', s.si], [`${p}sr`, 'u32', s.sr], [`${p}sc`, 'u32', s.sc]);
  f.push(['aoff', 'u32', a.off ?? 0], ['boff', 'u32', b.off ?? 0]);
  return f;
}

/**
 * out(z, i, j) = alpha * sum_k A(z, i, k) B(z, k, j) (+ bias[j]) on our register-blocked kernel,
 * tile `tileName`, for z over outer x inner. The output is a new tensor of out.shape. f16: the f16
 * variant (operands rounded to f16, f32 products and sums; the device needs shader-f16).
 */
export function blockedMatMul(
  a: Strided,
  b: Strided,
  out: OutView,
  dims: MatDims,
  tileName: string,
  bias?: tf.Tensor,
  f16 = false,
): tf.Tensor {
  const tile = TILES[tileName];
  if (!tile) throw new Error(`blockedMatMul: no tile '${tileName}' (one of ${Object.keys(TILES).join(', ')})`);
  const gb = requireWebGpu('blockedMatMul');
  if (f16 && !webgpuFeatures().f16) throw new Error('blockedMatMul: f16 needs a device made with shader-f16');
  const f = f16 ? f16Uniforms(dims, a, b, out) : stridedUniforms(dims, a, b, out);
  const { aK, bN } = contiguity(a, b, dims);
  const v4 = !!tile.V4 && vec4Loads(a, b, dims);
  const block = uniformBlock(f);
  const variant = `${v4 ? '_v4' : ''}${bias ? '_bias' : ''}${f16 ? '_f16' : ''}`;
  const key = `bp_mm_${tileName}_${aK ? 'k' : 'm'}${bN ? 'n' : 'k'}${variant}`;
  const pipe = pipeline(gb, key, () => kernelWgsl(tile, aK, bN, v4, !!bias, block.wgsl, f16));
  // the program's name says where a vec4 tile fell back to scalar loads (bench's profiles, the tests)
  const name = `matmul_${tileName}${tile.V4 && !v4 ? '_scalar' : ''}${f16 ? '_f16' : ''}`;
  return dispatchStrided(gb, name, pipe, { a, b, out, dims, bias }, block.data, tile);
}

/**
 * Whether a V4 tile's loads can be vec4 here: along each operand's contiguous dimension (stride 1),
 * its length, every other stride and the offsets a multiple of 4 (so groups of 4 are aligned and
 * wholly in or out of bounds); else the tile's scalar variant runs.
 */
function vec4Loads(a: Strided, b: Strided, dims: MatDims): boolean {
  const { aK, bN } = contiguity(a, b, dims);
  const m4 = (...xs: number[]) => xs.every((x) => x % 4 === 0);
  return (
    (aK ? m4(dims.K, a.sr, a.sb, a.si) : a.sr === 1 && m4(dims.M, a.sc, a.sb, a.si)) &&
    (bN ? m4(dims.N, b.sr, b.sb, b.si) : b.sr === 1 && m4(dims.K, b.sc, b.sb, b.si)) &&
    m4(a.off ?? 0, b.off ?? 0)
  );
}

/** Which loads coalesce, decided when compiling: A's K stride 1, B's N stride 1 (else the other). */
function contiguity(a: Strided, b: Strided, dims: MatDims): { aK: boolean; bN: boolean } {
  return { aK: a.sc === 1 && dims.K > 1, bN: b.sc === 1 && dims.N > 1 };
}

/** Dispatch a strided matmul's pipeline over BM x BN output tiles (and the batch): its new output. */
function dispatchStrided(
  gb: ReturnType<typeof requireWebGpu>,
  name: string,
  pipe: ReturnType<typeof pipeline>,
  p: { a: Strided; b: Strided; out: OutView; dims: MatDims; bias?: tf.Tensor },
  uniforms: ArrayBuffer,
  tile: { BM: number; BN: number },
): tf.Tensor {
  const info = outputInfo(gb, p.out.shape);
  const groups: [number, number, number] = [
    Math.ceil(p.dims.N / tile.BN),
    Math.ceil(p.dims.M / tile.BM),
    p.dims.outer * p.dims.inner,
  ];
  const bias = p.bias ? [{ tensor: p.bias }] : [];
  const bufs = [{ tensor: p.a.t }, { tensor: p.b.t }, ...bias, { tensor: info, written: true }];
  const { M, N, K, outer, inner } = p.dims;
  const batch = outer * inner > 1 ? ` x${outer * inner}` : '';
  dispatchRaw(gb, name, pipe, bufs, uniforms, groups, `${M}x${N}x${K}${batch}`, 2 * M * N * K * outer * inner);
  return tf.engine().makeTensorFromTensorInfo(info);
}

/** op(a) [M, K] @ op(b) [K, N] (+ bias [N]) on our kernel: transA a is [K, M], transB b is [N, K]. */
export function blockedMatMul2d(
  a: tf.Tensor2D,
  b: tf.Tensor2D,
  transA: boolean,
  transB: boolean,
  tileName: string,
  bias?: tf.Tensor1D,
  f16 = false,
): tf.Tensor2D {
  const v = views2d(a, b, transA, transB);
  return blockedMatMul(v.a, v.b, v.out, v.dims, tileName, bias, f16) as tf.Tensor2D;
}

// ---------------------------------------------------------------------------------------------
// split-K: a product of few output tiles and a long K (a dense layer's dW = dY^T X of a small
// model: 1 to 8 tiles of 128 x 128, K = the batch's 4096 tokens) leaves most of a GPU idle while
// each of its few workgroups walks K. Cut K into S slices: S partial products as one batched
// dispatch of the same kernel, then one program sums them (in slice order: deterministic) and adds
// the bias. Choices `split:TILE`, measured beside the rest.

/** A choice's prefix for TILE with K split (splitKMatMul2d). */
export const SPLIT = 'split:';
/** The tiles split-K is measured on: one small, one large (every tile would double the measurement). */
export const SPLIT_TILES = ['64x64x16-4x4-w4', '128x128x8-8x8-v4w4db'];
/** The workgroups a split product aims at (about a large GPU's cores, twice over). */
const SPLIT_TARGET = 256;
/** The fewest k a slice gets. */
const SPLIT_MIN_K = 128;

/**
 * How many slices K is cut into for `tiles` output tiles: the largest power of two S (at most 64)
 * with S tiles <= SPLIT_TARGET, K a multiple of S and K / S >= SPLIT_MIN_K; 1 where none (no split).
 */
export function splitCount(tiles: number, K: number): number {
  let s = 1;
  const ok = (n: number) => n <= 64 && n * tiles <= SPLIT_TARGET && K % n === 0 && K / n >= SPLIT_MIN_K;
  while (ok(s * 2)) s *= 2;
  return s;
}

/** The tile a choice runs on: TILE for 'split:TILE', else the choice itself. */
export function tileOf(c: Choice): string {
  return c.startsWith(SPLIT) ? c.slice(SPLIT.length) : c;
}

/**
 * op(a) @ op(b) (+ bias) on `tile` with K cut into splitCount slices: the slices' products as one
 * batched dispatch (slice s reads A's columns and B's rows s K/S..), then one program sums them and
 * adds the bias. Where K is not cut (S = 1), the tile alone.
 */
export function splitKMatMul2d(
  a: tf.Tensor2D,
  b: tf.Tensor2D,
  transA: boolean,
  transB: boolean,
  tileName: string,
  bias?: tf.Tensor1D,
): tf.Tensor2D {
  const v = views2d(a, b, transA, transB);
  const { M, N, K } = v.dims;
  const t = TILES[tileName];
  if (!t) throw new Error(`splitKMatMul2d: no tile '${tileName}'`);
  const S = splitCount(Math.ceil(M / t.BM) * Math.ceil(N / t.BN), K);
  if (S === 1) return blockedMatMul(v.a, v.b, v.out, v.dims, tileName, bias) as tf.Tensor2D;
  const Kc = K / S;
  // slice s starts Kc k-steps in: along A's k stride (its columns) and B's (its rows)
  const parts = blockedMatMul(
    { ...v.a, sb: Kc * v.a.sc },
    { ...v.b, sb: Kc * v.b.sr },
    { shape: [S, M, N], sb: M * N, si: 0, sr: N, sc: 1 },
    { M, N, K: Kc, outer: S, inner: 1, alpha: 1 },
    tileName,
  );
  const y = sumSlices(parts, S, M * N, N, bias);
  parts.dispose();
  return y as tf.Tensor2D;
}

/** [S, M, N] -> [M, N]: the sum over the first axis, in order, plus bias[j] where given. */
function sumSlices(parts: tf.Tensor, S: number, MN: number, N: number, bias?: tf.Tensor1D): tf.Tensor {
  const gb = requireWebGpu('splitKMatMul2d');
  const u = uniformBlock([
    ['S', 'u32', S],
    ['MN', 'u32', MN],
    ['N', 'u32', N],
  ]);
  const key = `bp_split_sum${bias ? '_bias' : ''}`;
  const wgsl = () => `@group(0) @binding(0) var<storage, read> parts: array<f32>;
${bias ? '@group(0) @binding(1) var<storage, read> bias: array<f32>;' : ''}
@group(0) @binding(${bias ? 2 : 1}) var<storage, read_write> out: array<f32>;
${u.wgsl}
@group(0) @binding(${bias ? 3 : 2}) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < u.MN; i += nwg.x * ${WG}u) {
    var acc = ${bias ? 'bias[i % u.N]' : '0.0'};
    for (var s = 0u; s < u.S; s++) { acc += parts[s * u.MN + i]; }
    out[i] = acc;
  }
}`;
  const info = outputInfo(gb, [MN / N, N]);
  const bufs = [{ tensor: parts }, ...(bias ? [{ tensor: bias }] : []), { tensor: info, written: true }];
  dispatchRaw(gb, 'split_sum', pipeline(gb, key, wgsl), bufs, u.data, gridGroups(MN), `${MN / N}x${N} of ${S}`);
  return tf.engine().makeTensorFromTensorInfo(info);
}

/** op(a) [M, K] and op(b) [K, N] as strided views, and their product's [M, N]. */
function views2d(a: tf.Tensor2D, b: tf.Tensor2D, transA: boolean, transB: boolean) {
  const [M, K] = transA ? [a.shape[1], a.shape[0]] : a.shape;
  const N = transB ? b.shape[0] : b.shape[1];
  const kb = transB ? b.shape[1] : b.shape[0];
  if (kb !== K) throw new Error(`matmul: inner dimensions ${K} and ${kb} differ`);
  const av: Strided = transA ? { t: a, sb: 0, si: 0, sr: 1, sc: M } : { t: a, sb: 0, si: 0, sr: K, sc: 1 };
  const bv: Strided = transB ? { t: b, sb: 0, si: 0, sr: 1, sc: K } : { t: b, sb: 0, si: 0, sr: N, sc: 1 };
  const out: OutView = { shape: [M, N], sb: 0, si: 0, sr: N, sc: 1 };
  return { a: av, b: bv, out, dims: { M, N, K, outer: 1, inner: 1, alpha: 1 } };
}

// ---------------------------------------------------------------------------------------------
// subgroup matrices (webgpu-sgmat.ts)

/**
 * For tests: these subgroup-matrix configurations offered, in the emulated dialect (webgpu-sgmat.ts),
 * or 'device': in Dawn's (which an adapter without the feature refuses to compile); null: the device's.
 */
let sgPretend: { configs: SgConfig[]; spelling: 'emulated' | 'device' } | null = null;
/** How the sg kernels are spelled on this device: set by tuneMixed (or its kept record), else null. */
let sgDialect: SgDialect | null = null;
/** For tests: the choice every product runs in precision mixed (null: the measured ones). */
let mixedForced: Choice | null = null;

/** For tests: offer these configurations (see sgPretend); null: what the device offers. */
export function emulateSubgroupMatrix(configs: SgConfig[] | null, spelling: 'emulated' | 'device' = 'emulated'): void {
  sgPretend = configs ? { configs, spelling } : null;
  sgDialect = configs && spelling === 'emulated' ? { kind: 'emulated' } : null;
}

/** For tests: run `c` ('f16:TILE' or 'sg:...') for every product in precision mixed; null: as measured. */
export function forceMixedChoice(c: Choice | null): void {
  mixedForced = c;
}

/** What the device offers for the sg kernels: configurations, subgroup size, limits; null: nothing. */
function sgOffer(): { configs: SgConfig[]; S: number; emulated: boolean; limits: SgLimits } | null {
  if (subgroupMatrixOff()) return null;
  const lim = requireWebGpu('subgroup matrices').device.limits as Record<string, number>;
  const limits = { maxBytes: lim.maxComputeWorkgroupStorageSize, maxThreads: lim.maxComputeInvocationsPerWorkgroup };
  const S = subgroupSizeInUse();
  if (sgPretend) return { configs: sgPretend.configs, S, emulated: sgPretend.spelling === 'emulated', limits };
  const f = webgpuFeatures();
  if (!f.subgroupMatrix || !f.sgConfigs.length || !S) return null;
  return { configs: f.sgConfigs, S, emulated: false, limits };
}

/** The subgroup size the sg kernels are laid out for: the device's (0: not fixed), or the emulation's. */
function subgroupSizeInUse(): number {
  return sgPretend ? EMULATED_SUBGROUP : webgpuFeatures().subgroupSize;
}

/** BERT_PRUNER_WEBGPU_SUBGROUP_MATRIX=off: the sg kernels are neither measured nor run. */
function subgroupMatrixOff(): boolean {
  const v = (process.env.BERT_PRUNER_WEBGPU_SUBGROUP_MATRIX ?? '').trim();
  if (v === '' || v === 'auto') return false;
  if (v === 'off') return true;
  throw new UserError(`BERT_PRUNER_WEBGPU_SUBGROUP_MATRIX='${v}': one of auto, off`);
}

/** The sg candidates that fit this device: every configuration x tile whose loops divide evenly. */
function sgCandidates(o: NonNullable<ReturnType<typeof sgOffer>>): string[] {
  const out: string[] = [];
  for (const cfg of o.configs)
    for (const [tn, tile] of Object.entries(SG_TILES)) if (sgFits(cfg, tile, o.S, o.limits)) out.push(sgName(cfg, tn));
  return out;
}

/** The sg candidates this device (or a test's emulation) offers and fits. */
export function subgroupMatrixCandidates(): string[] {
  const o = sgOffer();
  return o ? sgCandidates(o) : [];
}

/**
 * The pipeline of sg candidate `name` for one operand layout (A's K / B's N contiguous), its loads
 * (vec4 where the tile has V4 and the product allows them, `vec4Ok`; else scalar) and bias.
 */
function sgPipeline(
  name: string,
  aK: boolean,
  bN: boolean,
  vec4Ok: boolean,
  bias: boolean,
  dialect: SgDialect,
  block: string,
) {
  const p = parseSgName(name);
  if (!p) throw new Error(`sgMatMul: '${name}' names no subgroup-matrix kernel`);
  const v4 = !!p.tile.V4 && vec4Ok;
  const gb = requireWebGpu('sgMatMul');
  const S = subgroupSizeInUse();
  const sh = sgShape(p.cfg, p.tile, S);
  const form = dialect.kind === 'emulated' ? 'emu' : `${+dialect.form.templated}${+dialect.form.subgroupId}`;
  const key = `bp_sg_${name}_${aK ? 'k' : 'm'}${bN ? 'n' : 'k'}${v4 ? '_v4' : ''}${bias ? '_bias' : ''}_${form}`;
  // the workgroup tiles as the register-blocked kernel loads them (scalar f16 arrays, k-major)
  const loadTile: Tile = { BM: sh.BM, BN: sh.BN, BK: sh.BK, TM: 1, TN: 1, DB: p.tile.DB };
  const layout: LoadLayout = { tile: loadTile, aKContig: aK, bNContig: bN, v4, threads: sh.threads, f16: true };
  const wgsl = () =>
    sgWgsl({
      cfg: p.cfg,
      tile: p.tile,
      subgroupSize: S,
      dialect,
      kLoop: (math) => kLoop(layout, math),
      bases: viewBases(sh.BM, sh.BN),
      head: F16_HELPERS,
      bindings: bindingsWgsl(v4 ? 'vec4<f32>' : 'f32', bias, block),
      bias,
    });
  // the program's name says where a vec4 tile fell back to scalar loads, as blockedMatMul's
  const program = `matmul_${name}${p.tile.V4 && !v4 ? '_scalar' : ''}`;
  return { key, pipe: () => pipeline(gb, key, wgsl), sh, gb, program };
}

/** The uniforms of an f16 / sg product (the strided ones, and the NaN an overflow writes). */
function f16Uniforms(dims: MatDims, a: Strided, b: Strided, out: OutView): UniformField[] {
  return [...stridedUniforms(dims, a, b, out), ['poison', 'f32', NaN]];
}

/**
 * out(z, i, j) = alpha * sum_k A(z, i, k) B(z, k, j) (+ bias[j]) on subgroup matrices (candidate
 * `name`, sg:M0xN0xK0-WMxWN): f16 operands, f32 accumulation, an overflow's outputs NaN, as the f16
 * register-blocked kernel. Needs a dialect (tuneMixed's, or emulateSubgroupMatrix).
 */
export function sgMatMul(
  a: Strided,
  b: Strided,
  out: OutView,
  dims: MatDims,
  name: string,
  bias?: tf.Tensor,
): tf.Tensor {
  if (!sgDialect) throw new Error('sgMatMul: subgroup matrices were not measured on this device');
  const block = uniformBlock(f16Uniforms(dims, a, b, out));
  const { aK, bN } = contiguity(a, b, dims);
  const { pipe, sh, gb, program } = sgPipeline(name, aK, bN, vec4Loads(a, b, dims), !!bias, sgDialect, block.wgsl);
  return dispatchStrided(gb, program, pipe(), { a, b, out, dims, bias }, block.data, sh);
}

/** One strided product on choice c: a tile of ours (fp32), 'f16:TILE' (its f16 variant) or 'sg:...'. */
export function runStrided(c: Choice, a: Strided, b: Strided, out: OutView, dims: MatDims, bias?: tf.Tensor) {
  if (c.startsWith('sg:')) return sgMatMul(a, b, out, dims, c, bias);
  if (c.startsWith('f16:')) return blockedMatMul(a, b, out, dims, c.slice(4), bias, true);
  return blockedMatMul(a, b, out, dims, c, bias);
}

/** op(a) @ op(b) (+ bias) on choice c: 'tfjs', a tile of ours, 'f16:TILE' or 'sg:...'. */
export function matMul2dOn(
  a: tf.Tensor2D,
  b: tf.Tensor2D,
  ta: boolean,
  tb: boolean,
  c: Choice,
  bias?: tf.Tensor1D,
): tf.Tensor2D {
  if (c === 'tfjs')
    return bias
      ? (tf.fused.matMul({ a, b, transposeA: ta, transposeB: tb, bias }) as tf.Tensor2D)
      : tf.matMul(a, b, ta, tb);
  if (c.startsWith(SPLIT)) return splitKMatMul2d(a, b, ta, tb, c.slice(SPLIT.length), bias);
  const v = views2d(a, b, ta, tb);
  return runStrided(c, v.a, v.b, v.out, v.dims, bias) as tf.Tensor2D;
}

// ---------------------------------------------------------------------------------------------
// the choice

/** The dense layers' three products (x W^T, dY W, dY^T X) and the attention's batched ones. */
export type Product = 'NT' | 'NN' | 'TN' | 'attn';
/** A product's size class: outputs (M x N x batch) under 2^21 are small. */
export type SizeClass = 'small' | 'large';
const LARGE = 1 << 21;

export function sizeClass(outputs: number): SizeClass {
  return outputs >= LARGE ? 'large' : 'small';
}

/** What runs a product: 'tfjs' (dense), 'simple' (attention's 16 x 16 kernel) or a tile of ours. */
export type Choice = string;

type Mode = { kind: 'auto' } | { kind: 'tfjs' } | { kind: 'ours'; tile: string };

/** BERT_PRUNER_WEBGPU_MATMUL, read at every call (tests switch it). */
export function matmulMode(): Mode {
  const v = (process.env.BERT_PRUNER_WEBGPU_MATMUL ?? '').trim();
  if (v === '' || v === 'auto') return { kind: 'auto' };
  if (v === 'tfjs') return { kind: 'tfjs' };
  if (v === 'tiled') return { kind: 'ours', tile: '64x64x16-4x4' };
  const m = /^ours(?::(.+))?$/.exec(v);
  if (m && (!m[1] || TILES[m[1]])) return { kind: 'ours', tile: m[1] ?? DEFAULT_TILE };
  const tiles = Object.keys(TILES).join(', ');
  throw new UserError(
    `BERT_PRUNER_WEBGPU_MATMUL='${v}': one of auto, tfjs, tiled, ours, ours:TILE (TILE one of ${tiles})`,
  );
}

/** The measured choices of this process's adapter (tuneMatmul), or null before / without one. */
let tuned: MatmulTuning | null = null;

/** What runs `product` at this size now. */
export function choiceFor(product: Product, outputs: number): Choice {
  const mode = matmulMode();
  const fallback = product === 'attn' ? 'simple' : 'tfjs';
  if (mode.kind === 'tfjs') return fallback;
  if (mode.kind === 'ours') return mode.tile;
  const c = tuned?.choices[`${product}:${sizeClass(outputs)}`];
  // a choice from the file that names no kernel of ours (edited, another version) falls back; split-K
  // only for the dense layers
  const ours = c && (TILES[c] || (product !== 'attn' && c.startsWith(SPLIT) && TILES[tileOf(c)]));
  return c && (c === fallback || ours) ? c : fallback;
}

let precision: Precision = 'fp32';

/** The matmuls' precision from now on (backend/index.ts, once it knows the device can). */
export function setMatmulPrecision(p: Precision): void {
  if (p === 'mixed' && !webgpuFeatures().f16) throw new Error('setMatmulPrecision: the device has no shader-f16');
  precision = p;
}

export function matmulPrecision(): Precision {
  return precision;
}

/** The tile of ours the f16 variant runs `product` at this size on: the fp32 choice where a tile, else DEFAULT_TILE. */
export function mixedTile(product: Product, outputs: number): string {
  const c = tileOf(choiceFor(product, outputs));
  return TILES[c] ? c : usableTile();
}

/** DEFAULT_TILE, or where the fp32 measurement left it out here (no compile, no agreement) another tile. */
function usableTile(): string {
  return [DEFAULT_TILE, ...Object.keys(TILES)].find((t) => !tuned?.rejected?.[t]) ?? DEFAULT_TILE;
}

/**
 * What runs `product` at this size in precision mixed: where subgroup matrices were measured, the
 * faster of them and the f16 register-blocked kernel; else 'f16:' + mixedTile.
 */
export function mixedChoice(product: Product, outputs: number): Choice {
  if (mixedForced) return mixedForced;
  const c = tuned?.mixed?.choices[`${product}:${sizeClass(outputs)}`];
  if (c && sgDialect && parseSgName(c)) return c;
  if (c && c.startsWith('f16:') && TILES[c.slice(4)]) return c;
  return `f16:${mixedTile(product, outputs)}`;
}

/** Measured choices for a log line: "NT:small TILE, ...". */
function listChoices(choices: Record<string, string>): string {
  return Object.entries(choices)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

/** For bench and run logs: the mode, and the measured choices where auto. */
export function matmulSummary(): string {
  if (precision === 'mixed') {
    const m = tuned?.mixed;
    const sg = m?.form ? `; ${listChoices(m.choices)}` : '';
    return `mixed: f16 inputs, f32 accumulation (${fp32Summary()} tiles${sg})`;
  }
  return fp32Summary();
}

function fp32Summary(): string {
  const mode = matmulMode();
  if (mode.kind === 'tfjs') return 'tfjs';
  if (mode.kind === 'ours') return `ours ${mode.tile}`;
  if (!tuned) return 'auto (not measured: tfjs)';
  return `auto: ${listChoices(tuned.choices)}`;
}

/** For tests: forget the measured choices (the next tuneMatmul reads the file or measures). */
export function resetMatmulTuning(): void {
  tuned = null;
  sgDialect = sgPretend?.spelling === 'emulated' ? { kind: 'emulated' } : null;
}

// ---------------------------------------------------------------------------------------------
// the measurement

interface Case {
  product: Product;
  cls: SizeClass;
  /** One or two products measured together (attention: the scores and the context). */
  runs: ((c: Choice) => tf.Tensor)[];
}

/**
 * Time each candidate on each case: `reps` calls, then one element read back (a device sync);
 * the best of 3, after one such set (warm; else the caller's check ran the case). ms per call set.
 */
async function timeCandidate(c: Choice, f: Case, reps: number, warm = true): Promise<number> {
  const once = () => {
    let last: tf.Tensor | null = null;
    for (let r = 0; r < reps; r++)
      for (const run of f.runs) {
        last?.dispose();
        last = run(c);
      }
    return last!;
  };
  const sync = async (t: tf.Tensor) => {
    const one = tf.slice(
      t,
      t.shape.map(() => 0),
      t.shape.map(() => 1),
    );
    await one.data();
    tf.dispose([one, t]);
  };
  if (warm) await sync(once()); // compiles the pipeline, warms tfjs's (else a check's run did)
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await sync(once());
    best = Math.min(best, (performance.now() - t0) / reps);
  }
  return best;
}

/** op(a) @ op(b) as a function of the choice that runs it (the measurement's and bench's products). */
const productOn =
  (a: tf.Tensor2D, b: tf.Tensor2D, ta: boolean, tb: boolean) =>
  (c: Choice): tf.Tensor =>
    matMul2dOn(a, b, ta, tb, c);

/** timeCandidate, as the speeds file keeps it (ms to 4 decimals). */
async function msPerCall(c: Choice, f: Case, reps: number, warm = true): Promise<number> {
  return Math.round((await timeCandidate(c, f, reps, warm)) * 1e4) / 1e4;
}

/** The candidate of least ms in a row (of those `ok` keeps). */
function fastest(row: Record<string, number>, ok: (c: string) => boolean = () => true): string {
  return Object.entries(row)
    .filter(([c]) => ok(c))
    .reduce((x, y) => (y[1] < x[1] ? y : x))[0];
}

/** Where a TuningStore write went, for a log line. */
function keptWhere(w: ReturnType<TuningStore['write']>): string {
  return 'file' in w ? `kept in ${w.file}` : `not kept: ${w.problem}`;
}

/**
 * The shapes measured: BERT-base's on a GPU. On a software adapter (tests and CI) the small class
 * at the tests' tiny models (hidden 32 to 64), the large one at the benches' (hidden 128, FFN 512,
 * 2 heads of 64: a 128 x 128 tile wins there and loses on the tiny ones); `tiny`: both small (the
 * mixed measurement, which runs on a software adapter only where tests emulate subgroup matrices).
 */
function cases(
  software: boolean,
  attnSimple: AttnSimple,
  tiny = false,
): { cases: Case[]; reps: number; made: tf.Tensor[] } {
  const made: tf.Tensor[] = [];
  const rnd = (shape: number[]) => {
    const t = tf.randomUniform(shape, -1, 1, 'float32', 7);
    made.push(t);
    return t as tf.Tensor2D;
  };
  const out: Case[] = [];
  const dense = tiny
    ? { small: [256, 64, 64], large: [512, 128, 256] }
    : software
      ? { small: [256, 64, 64], large: [1024, 128, 512] }
      : { small: [4096, 256, 256], large: [4096, 768, 768] };
  for (const cls of ['small', 'large'] as const) {
    const [M, K, N] = dense[cls];
    const x = rnd([M, K]);
    const w = rnd([N, K]);
    const dy = rnd([M, N]);
    const mm = productOn;
    out.push({ product: 'NT', cls, runs: [mm(x, w, false, true)] });
    out.push({ product: 'NN', cls, runs: [mm(dy, w, false, false)] });
    out.push({ product: 'TN', cls, runs: [mm(dy, x, true, false)] });
  }
  // attention: batch B x heads A, T tokens, head size D
  const attn = tiny
    ? { small: [2, 2, 32, 16], large: [4, 4, 64, 32] }
    : software
      ? { small: [2, 2, 32, 16], large: [4, 2, 128, 64] }
      : { small: [8, 12, 128, 64], large: [32, 12, 128, 64] };
  for (const cls of ['small', 'large'] as const) {
    const [B, A, T, D] = attn[cls];
    const q = rnd([B * T, A * D]);
    const k = rnd([B * T, A * D]);
    const p = rnd([B * A * T, T]);
    out.push({
      product: 'attn',
      cls,
      runs: [
        (c) => attnSimple(c, 'scores', q, k, { B, A, T, D }),
        (c) => attnSimple(c, 'context', p, k, { B, A, T, D }),
      ],
    });
  }
  return { cases: out, reps: software ? 1 : 10, made };
}

/** The attention's two forward products on choice c (webgpu-ops.ts passes its own, to keep one layout). */
export type AttnSimple = (
  c: Choice,
  which: 'scores' | 'context',
  x: tf.Tensor2D,
  y: tf.Tensor2D,
  dims: { B: number; A: number; T: number; D: number },
) => tf.Tensor;

/**
 * Choose the matmuls for this adapter: the choices kept in the speeds file for it (this kernel
 * version), else a short measurement of every candidate on every product and size class, kept
 * there. Only in mode auto. `log` gets one line when it measures.
 */
export async function tuneMatmul(
  adapter: { name: string; software: boolean },
  attnSimple: AttnSimple,
  store: TuningStore,
  log: (m: string) => void = () => {},
): Promise<MatmulTuning | null> {
  if (matmulMode().kind !== 'auto') return null;
  const kept = store.read(adapter.name, KERNEL_VERSION);
  if (kept) {
    tuned = kept;
    return kept;
  }
  const t0 = performance.now();
  const lim = requireWebGpu('tuneMatmul').device.limits as Record<string, number>;
  const tiles = Object.keys(TILES).filter((n) => {
    const t = TILES[n];
    return (
      (t.BM / t.TM) * (t.BN / t.TN) <= lim.maxComputeInvocationsPerWorkgroup &&
      tileBytes(t) <= lim.maxComputeWorkgroupStorageSize
    );
  });
  const { cases: cs, reps, made } = cases(adapter.software, attnSimple);
  const choices: Record<string, Choice> = {};
  const ms: Record<string, Record<string, number>> = {};
  const rejected: Record<string, string> = {};
  try {
    // a tile that does not compile, or computes wrongly, on this adapter is left out, not chosen
    const fallback = (c: Case) => (c.product === 'attn' ? 'simple' : 'tfjs');
    // split-K on the dense layers' products only
    const splits = SPLIT_TILES.filter((t) => tiles.includes(t)).map((t) => SPLIT + t);
    const applies = (cand: Choice, c: Case) => c.product !== 'attn' || !cand.startsWith(SPLIT);
    await measureChecked(cs, fallback, [...tiles, ...splits], reps, FP32_AGREE, { ms, choices, rejected }, applies);
  } finally {
    tf.dispose(made);
    // the measurement's programs and uploads are not the stage's
    resetGpuCounters();
  }
  const measured = new Date().toISOString();
  tuned = { adapter: adapter.name, version: KERNEL_VERSION, measured, choices, ms, rejected };
  const where = keptWhere(store.write(tuned));
  log(
    `webgpu matmul measured on ${adapter.name} in ${((performance.now() - t0) / 1000).toFixed(1)} s: ` +
      `${listChoices(choices)}${leftOut(rejected)} (${where})`,
  );
  return tuned;
}

// ---------------------------------------------------------------------------------------------
// precision mixed: the f16 kernel against subgroup matrices

/** MixedTuning.rejected's key for a measurement that did not finish, and what its log line says. */
const UNFINISHED = '*';
const UNFINISHED_WHY =
  'an earlier measurement of them did not finish (its process ended or the device was lost); ' +
  "to measure again, delete this adapter's matmul entry in the speeds file";

/**
 * How far an fp32 tile's output may lie from the fallback's (tfjs's matmul, the 16 x 16 attention
 * kernel): max |difference| / max |fallback's|. The same sums in another order differ by about 1e-6
 * at K = 768; a kernel that reads or writes a wrong element, by about 1.
 */
export const FP32_AGREE = 1e-4;

/** How far an sg candidate's output may lie from the f16 kernel's: max |difference| / max |f16's|. */
export const SG_AGREE = 1e-3;

/** A reference as the reasons name it: tfjs's matmul, the 16 x 16 attention kernel, the f16 kernel. */
function refLabel(ref: Choice): string {
  if (ref === 'tfjs') return "tfjs's matmul";
  if (ref === 'simple') return 'the 16 x 16 attention kernel';
  return 'the f16 kernel';
}

/**
 * Per case: the reference's output and ms, then each candidate not yet left out: its output checked
 * against the reference's (disagreement; its run is its timing's warm-up) and, where it agrees,
 * timed. One that differs anywhere goes into `rejected` with the case, and is not timed or chosen
 * after; the choice per case is the fastest of the rest. Fills o's records.
 */
async function measureChecked(
  cs: Case[],
  refOf: (c: Case) => Choice,
  cands: Choice[],
  reps: number,
  tol: number,
  o: { ms: Record<string, Record<string, number>>; choices: Record<string, Choice>; rejected: Record<string, string> },
  applies: (cand: Choice, c: Case) => boolean = () => true,
): Promise<void> {
  for (const c of cs) {
    const key = `${c.product}:${c.cls}`;
    const ref = refOf(c);
    const want = await referenceOutputs(ref, c);
    o.ms[key] = { [ref]: await msPerCall(ref, c, reps) };
    for (const cand of cands) {
      if (o.rejected[cand] || !applies(cand, c)) continue;
      const no = await disagreement(cand, want, c, tol, refLabel(ref));
      if (no) o.rejected[cand] = `${no} (${key})`;
      else o.ms[key][cand] = await msPerCall(cand, c, reps, false);
    }
  }
  // a candidate left out at a later case is not chosen anywhere
  for (const [key, row] of Object.entries(o.ms)) o.choices[key] = fastest(row, (c) => !o.rejected[c]);
}

/** What a measurement's log line says of the candidates it left out: '' where none. */
function leftOut(rejected: Record<string, string>): string {
  const left = Object.entries(rejected).map(([c, why]) => `${c} ${why}`);
  return left.length ? `; left out: ${left.join('; ')}` : '';
}

/** max |x - ref| / max |ref|; Infinity where one is NaN and the other not. */
export function relDiff(x: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (x.length !== ref.length) return Infinity;
  let d = 0;
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(x[i]) !== Number.isNaN(ref[i])) return Infinity;
    if (Number.isNaN(x[i])) continue;
    d = Math.max(d, Math.abs(x[i] - ref[i]));
    m = Math.max(m, Math.abs(ref[i]));
  }
  return d / (m || 1);
}

/**
 * A case's products on choice c, each read back whole, in Dawn's error scopes (its pipelines compile
 * here first where they are new): the values, or why not (a compile or validation error).
 */
async function caseOutputs(c: Choice, f: Case): Promise<{ out: Float32Array[] } | { why: string }> {
  const out: Float32Array[] = [];
  const e = await inErrorScopes(async () => {
    for (const run of f.runs) {
      const x = run(c);
      try {
        out.push((await x.data()) as Float32Array);
      } finally {
        x.dispose();
      }
    }
  });
  return e ? { why: `did not compile: ${e}` } : { out };
}

/** A reference's outputs on a case (the candidates are compared with them); it must run. */
async function referenceOutputs(ref: Choice, f: Case): Promise<Float32Array[]> {
  const r = await caseOutputs(ref, f);
  if ('why' in r) throw new Error(`matmul measurement: the reference ${ref} failed on ${f.product}:${f.cls}: ${r.why}`);
  return r.out;
}

/**
 * Candidate c against a reference's outputs on a case (`of` names it), in Dawn's error scopes: why
 * it is left out (a compile error, a difference over `tol`: max |difference| / max |reference|), or
 * null. Its run compiles its pipelines and warms tfjs's, as a timing's warm-up would.
 */
async function disagreement(c: Choice, ref: Float32Array[], f: Case, tol: number, of: string): Promise<string | null> {
  const got = await caseOutputs(c, f);
  if ('why' in got) return got.why;
  const worst = Math.max(...got.out.map((x, i) => relDiff(x, ref[i])));
  return worst <= tol ? null : `differs from ${of} by ${worst.toExponential(1)}`;
}

/** Run fn in Dawn's validation and internal error scopes: the first error's lines, or null. */
async function inErrorScopes(fn: () => unknown): Promise<string | null> {
  const dev = requireWebGpu('tuneMixed').device;
  dev.pushErrorScope('validation');
  dev.pushErrorScope('internal');
  let thrown: string | null = null;
  try {
    await fn();
  } catch (e) {
    thrown = (e as Error).message;
  }
  const errs = [await dev.popErrorScope(), await dev.popErrorScope()].filter(Boolean) as { message: string }[];
  if (!errs.length && !thrown) return null;
  return errorLines(errs[0]?.message ?? thrown ?? '');
}

/** A compile error's first lines that say what is wrong (Dawn may put a deprecation warning first). */
function errorLines(message: string): string {
  const lines = message.split('\n').map((l) => l.trim());
  const errs = lines.filter((l) => /error/i.test(l) && !/^Error while parsing WGSL/.test(l));
  return (errs.length ? errs : lines).slice(0, 2).join(' | ').slice(0, 300);
}

/**
 * Compile sg candidate `name`'s pipeline (x W^T with a bias) in Dawn's error scopes, so that a
 * refusal is an answer, not an uncaptured error that ends the stage: null, or the first error (the
 * pipeline is forgotten). Its other operand layouts compile as the measurement's cases first run
 * them, in error scopes too (disagreement).
 */
async function sgCompiles(name: string, dialect: SgDialect): Promise<string | null> {
  const view = { t: null as unknown as tf.Tensor, sb: 0, si: 0, sr: 0, sc: 0 };
  const dims = { M: 1, N: 1, K: 1, outer: 1, inner: 1, alpha: 1 };
  const block = uniformBlock(f16Uniforms(dims, view, view, { ...view, shape: [1, 1] })).wgsl;
  const p = sgPipeline(name, true, false, true, true, dialect, block);
  const e = await inErrorScopes(() => p.pipe());
  if (e) dropPipeline(p.key);
  return e;
}

function dialectOf(form: MixedTuning['form']): SgDialect | null {
  return form === null ? null : form === 'emulated' ? { kind: 'emulated' } : { kind: 'device', form };
}

function formLabel(form: MixedTuning['form']): string {
  if (form === null) return 'none';
  if (form === 'emulated') return 'emulated';
  return `${form.templated ? 'templated' : 'bool'} majorness, ${form.subgroupId ? 'subgroup_id' : 'invocation index'}`;
}

/**
 * Precision mixed, where the device offers subgroup matrices (or tests emulate them): measure the
 * f16 register-blocked kernel against every sg candidate that fits, per product and size class, and
 * keep the faster. A candidate runs only after its pipelines compiled in an error scope and its
 * output agreed with the f16 kernel's (SG_AGREE) on every case; the device's spellings (SG_FORMS)
 * are tried in turn until one does. Kept in the speeds file beside the fp32 choices (per offer);
 * one log line says what was chosen and what was left out, and why. Only in mode auto.
 */
export async function tuneMixed(
  adapter: { name: string; software: boolean },
  attnSimple: AttnSimple,
  store: TuningStore,
  log: (m: string) => void = () => {},
): Promise<MixedTuning | null> {
  if (precision !== 'mixed' || matmulMode().kind !== 'auto' || !tuned) return null;
  const o = sgOffer();
  if (!o) return null;
  const cands = sgCandidates(o);
  const cfgs = o.configs.map((c) => `${c.M}x${c.N}x${c.K}`).join(',');
  const offer = `${o.emulated ? 'emulated' : 'device'} subgroup ${o.S} f16->f32 ${cfgs}`;
  if (tuned.mixed?.offer === offer) {
    sgDialect = dialectOf(tuned.mixed.form);
    const unfinished = tuned.mixed.rejected[UNFINISHED];
    if (unfinished) log(`webgpu subgroup matrices left out on ${adapter.name}: ${unfinished}`);
    return tuned.mixed;
  }
  // kept first as unfinished: a measurement that takes the process or the device down is not
  // tried again by the next process (whose stage then runs on the f16 kernel)
  tuned.mixed = { offer, form: null, choices: {}, ms: {}, rejected: { [UNFINISHED]: UNFINISHED_WHY } };
  store.write(tuned);
  const t0 = performance.now();
  const { cases: cs, reps, made } = cases(adapter.software, attnSimple, adapter.software);
  const refOf = (c: Case) => `f16:${mixedTile(c.product, c.cls === 'large' ? LARGE : 0)}`;
  const rejected: Record<string, string> = {};
  const choices: Record<string, Choice> = {};
  const ms: Record<string, Record<string, number>> = {};
  let form: MixedTuning['form'] = null;
  let live: string[] = [];
  try {
    // the first spelling in which a candidate compiles and agrees on the first case
    const forms: SgDialect[] = o.emulated
      ? [{ kind: 'emulated' }]
      : SG_FORMS.map((f) => ({ kind: 'device' as const, form: f }));
    let firstWhy: Record<string, string> | null = null;
    const ref0 = await referenceOutputs(refOf(cs[0]), cs[0]);
    for (const d of forms) {
      const why: Record<string, string> = {};
      for (const c of cands) {
        const e = await sgCompiles(c, d);
        if (e) why[c] = `did not compile: ${e}`;
      }
      sgDialect = d;
      for (const c of cands.filter((x) => !why[x])) {
        const no = await disagreement(c, ref0, cs[0], SG_AGREE, refLabel(refOf(cs[0])));
        if (no) why[c] = no;
      }
      live = cands.filter((x) => !why[x]);
      firstWhy ??= why;
      if (live.length) {
        form = d.kind === 'emulated' ? 'emulated' : d.form;
        Object.assign(rejected, why);
        break;
      }
    }
    if (!form) {
      sgDialect = null;
      Object.assign(rejected, firstWhy ?? {});
    }
    await measureChecked(cs, refOf, live, reps, SG_AGREE, { ms, choices, rejected });
  } finally {
    tf.dispose(made);
    resetGpuCounters();
  }
  tuned.mixed = { offer, form, choices, ms, rejected };
  const where = keptWhere(store.write(tuned));
  log(
    `webgpu mixed matmul measured on ${adapter.name} in ${((performance.now() - t0) / 1000).toFixed(1)} s ` +
      `(subgroup matrices ${offer}; ${formLabel(form)}): ` +
      `${listChoices(choices)}${leftOut(rejected)} (${where})`,
  );
  return tuned.mixed;
}

// ---------------------------------------------------------------------------------------------
// the matmul alone (bench --matmul)

export interface MatmulBenchRow {
  /** e.g. "ffn-up 4096x768x3072" (M x K x N). */
  shape: string;
  product: 'NT' | 'NN' | 'TN';
  /** TFLOP/s of each candidate: 'tfjs' and every tile. */
  tflops: Record<string, number>;
  /** What auto runs there (the measured choice of this adapter), where measured. */
  auto: string | null;
}

/** bench --matmul's columns: tfjs's, every tile of ours, and in precision mixed the f16 variant on DEFAULT_TILE. */
function benchCandidates(): string[] {
  // the tiles the measurement left out (they did not compile or agree here) are not timed
  const tiles = Object.keys(TILES).filter((t) => !tuned?.rejected?.[t]);
  const splits = SPLIT_TILES.filter((t) => tiles.includes(t) && !tuned?.rejected?.[SPLIT + t]).map((t) => SPLIT + t);
  if (precision !== 'mixed') return ['tfjs', ...tiles, ...splits];
  // and every sg candidate the mixed measurement kept (compiled, agreed with the f16 kernel)
  const m = tuned?.mixed;
  const timed = Object.keys(Object.values(m?.ms ?? {})[0] ?? {});
  const sg = m?.form && sgDialect ? timed.filter((c) => c.startsWith('sg:') && !m.rejected[c]) : [];
  return ['tfjs', ...tiles, `f16:${usableTile()}`, ...sg];
}

/**
 * The dense layers' three products at BERT-base's three shapes (batch 32 x 128 = 4096 tokens; on
 * a software adapter each dimension an eighth), on tfjs's matmul and every tile of ours: TFLOP/s,
 * from the same timing as the measurement (calls through the op path, one value read back).
 */
export async function benchMatmul(software: boolean): Promise<MatmulBenchRow[]> {
  requireWebGpu('bench --matmul');
  const f = software ? 8 : 1;
  const shapes = [
    ['qkv/out', 4096, 768, 768],
    ['ffn-up', 4096, 768, 3072],
    ['ffn-down', 4096, 3072, 768],
  ] as const;
  const rows: MatmulBenchRow[] = [];
  for (const [name, M0, K0, N0] of shapes) {
    const [M, K, N] = [M0 / f, K0 / f, N0 / f];
    const made = [tf.randomUniform([M, K], -1, 1), tf.randomUniform([N, K], -1, 1), tf.randomUniform([M, N], -1, 1)];
    const [x, w, dy] = made as tf.Tensor2D[];
    // 'f16:TILE': the f16 variant, 'sg:...': subgroup matrices (precision mixed)
    const mm = productOn;
    const products: [MatmulBenchRow['product'], Case['runs'][number], number][] = [
      ['NT', mm(x, w, false, true), M * N * K],
      ['NN', mm(dy, w, false, false), M * K * N],
      ['TN', mm(dy, x, true, false), N * K * M],
    ];
    try {
      for (const [product, run, madds] of products) {
        const tflops: Record<string, number> = {};
        for (const c of benchCandidates()) {
          const ms = await timeCandidate(c, { product, cls: 'large', runs: [run] }, software ? 2 : 10);
          tflops[c] = (2 * madds) / (ms * 1e-3) / 1e12;
        }
        // dY W: out [M, K]; dY^T X: out [N, K]
        const outputs = product === 'NT' ? M * N : product === 'NN' ? M * K : N * K;
        rows.push({
          shape: `${name} ${M}x${K}x${N}`,
          product,
          tflops,
          auto: tuned ? choiceForTuned(product, outputs) : null,
        });
      }
    } finally {
      tf.dispose(made);
    }
  }
  resetGpuCounters();
  return rows;
}

/** The measured choice, whatever mode is set. */
function choiceForTuned(product: Product, outputs: number): string | null {
  return tuned?.choices[`${product}:${sizeClass(outputs)}`] ?? null;
}

/** The bench --matmul table. */
export function formatMatmulBench(rows: MatmulBenchRow[], adapter: string): string {
  const cands = rows.length ? Object.keys(rows[0].tflops) : benchCandidates();
  const f16 = cands.some((c) => c.startsWith('f16:'));
  const head = ['shape (M x K x N)', 'product', ...cands, 'auto runs'];
  const body = rows.map((r) => [r.shape, r.product, ...cands.map((c) => r.tflops[c].toPrecision(3)), r.auto ?? '-']);
  const w = head.map((_, i) => Math.max(...[head, ...body].map((x) => x[i].length)));
  const line = (x: string[]) => x.map((v, i) => (i < 2 ? v.padEnd(w[i]) : v.padStart(w[i]))).join('  ');
  return [
    `matmul alone on ${adapter}, TFLOP/s (fp32${f16 ? '; f16:TILE f16 inputs, f32 accumulation' : ''}; ` +
      '2 M N K flop a call; NT x W^T, NN dY W, TN dY^T X)',
    line(head),
    ...body.map(line),
  ].join('\n');
}
