// Global-norm clipping and AdamW on the GPU in a few programs, updating weights and moments in place
// (as PyTorch's fused / foreach AdamW): tfjs's own ops take a dozen programs and several scalar
// uploads per parameter, and reading the norm back to decide on clipping stalls the GPU every step.
//
//   1. sumsq:  sum of g^2 of each gradient, in parts of SUMSQ_CHUNK elements a workgroup (so that
//              a large gradient is spread over the GPU), into the norms buffer, several gradients
//              a program; then one workgroup sums the parts into the squared global norm;
//   2. adamw:  every workgroup reads that total (the clip scale, the same for all), then updates
//              several parameters a program: m, v, w in place. The arithmetic is
//              torch.optim.AdamW's, as in optim.ts.
//
// The weight average (train/ema.ts) is one such pass too: shadow = d shadow + (1 - d) w in place.
// The numbers that change from step to step (learning rate, bias corrections, the EMA's decay) are
// read from the step's scalars buffer (webgpu-record.ts), so a recorded step replays with new ones;
// the uniforms hold only what is fixed for a model (sizes, lr multipliers, weight decay), packed as
// every kernel's (webgpu-kernels.ts uniformBlock).
// FGM's perturbation of the embeddings and the EMA's swap are in place too (addScaledInPlace,
// swapInPlace): no variable changes its buffer in a training step.
//
// Mixed precision (h.lossScale, train/loss-scale.ts): the gradients are S times the true ones.
// The adamw program divides by S (read from the scale variable) and returns without writing where
// the squared norm is inf or NaN (a bit test, which no fast-math assumption removes); then one
// small program updates the scale and its counts in place from the same total.
import * as tf from '@tensorflow/tfjs';
import {
  dispatchRaw,
  gridGroups,
  ownData,
  pipeline,
  requireWebGpu,
  uniformBlock,
  UniformField,
  WebGpuBackendLike,
  WG,
  WORKGROUP_REDUCE,
} from './webgpu-kernels';
import { markScalarsRead, setScalar, SLOT, stepScalarsBuffer } from './webgpu-record';

/* eslint-disable @typescript-eslint/no-explicit-any -- WebGPU's types are not in our tsconfig */
declare const GPUBufferUsage: { STORAGE: number };

/** A fused program's detail for profiles: its tensors and their values ('14 tensors, 98560 values'). */
const valuesOf = (part: { size: number }[]) => `${part.length} tensors, ${part.reduce((a, p) => a + p.size, 0)} values`;

/**
 * items in runs of as many as one program can bind (the device's storage-buffer limit, two bindings
 * kept for the norms and scalars buffers), each run with the grid-stride dispatch of its largest item.
 */
function programRuns<T extends { size: number }>(
  b: WebGpuBackendLike,
  items: T[],
  buffersPerItem: number,
): { first: number; part: T[]; groups: number }[] {
  const limit = b.device.limits.maxStorageBuffersPerShaderStage ?? 8;
  const k = Math.max(1, Math.min(MAX_ITEMS, Math.floor((limit - 2) / buffersPerItem)));
  const runs = [];
  for (let first = 0; first < items.length; first += k) {
    const part = items.slice(first, first + k);
    runs.push({ first, part, groups: gridGroups(Math.max(...part.map((it) => it.size)))[0] });
  }
  return runs;
}

/** The most items one program takes (its uniform records; the device's storage-buffer limit first). */
const MAX_ITEMS = 16;

/**
 * A gradient's sum of squares is summed in parts, a workgroup each, so that a large gradient (a word
 * table) is spread over the GPU instead of one workgroup walking all of it: ceil(n / SUMSQ_CHUNK)
 * parts, at most SUMSQ_PARTS.
 */
const SUMSQ_CHUNK = 64 * WG;
const SUMSQ_PARTS = 1024;
const sumsqParts = (n: number) => Math.min(SUMSQ_PARTS, Math.max(1, Math.ceil(n / SUMSQ_CHUNK)));

function sumsqWgsl(k: number, struct: string): string {
  const decl = [...Array(k).keys()].map((j) => `@group(0) @binding(${j + 1}) var<storage, read> g${j}: array<f32>;`);
  const cases = [...Array(k).keys()].map(
    (j) => `if (s == ${j}u) { for (var i = c * ${WG}u + li; i < p.n; i += step) { acc += g${j}[i] * g${j}[i]; } }`,
  );
  return `
@group(0) @binding(0) var<storage, read_write> norms: array<f32>;
${decl.join('\n')}
${struct}
@group(0) @binding(${k + 1}) var<uniform> u: U;
${WORKGROUP_REDUCE}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let s = wid.y;
  let c = wid.x;
  let p = u.slots[s];
  if (c >= p.parts) { return; }
  let step = p.parts * ${WG}u;
  var acc = 0.0;
  ${cases.join('\n  ')}
  let total = wsum(acc, li);
  if (li == 0u) { norms[p.base + c] = total; }
}`;
}

/** One workgroup: the parts' sum, the squared global norm, into norms[u.nNorms] (after the parts). */
function normTotal(b: WebGpuBackendLike, nb: any, nParts: number): void {
  const u = uniformBlock([['nNorms', 'u32', nParts]]);
  const wgsl = () => `
@group(0) @binding(0) var<storage, read_write> norms: array<f32>;
${u.wgsl}
@group(0) @binding(1) var<uniform> u: U;
${WORKGROUP_REDUCE}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32) {
  var acc = 0.0;
  for (var i = li; i < u.nNorms; i += ${WG}u) { acc += norms[i]; }
  let total = wsum(acc, li);
  if (li == 0u) { norms[u.nNorms] = total; }
}`;
  dispatchRaw(b, 'NormTotal', pipeline(b, 'bp_norm_total', wgsl), [nb], u.data, [1, 1, 1], `${nParts} parts`);
}

/** WGSL: x is neither inf nor NaN (its exponent bits not all set). */
const FINITE = `fn finite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }`;

function adamwWgsl(k: number, struct: string, ls: boolean): string {
  const decl: string[] = [];
  const cases: string[] = [];
  for (let j = 0; j < k; j++) {
    const b = 2 + 4 * j;
    decl.push(
      `@group(0) @binding(${b}) var<storage, read_write> w${j}: array<f32>;`,
      `@group(0) @binding(${b + 1}) var<storage, read_write> m${j}: array<f32>;`,
      `@group(0) @binding(${b + 2}) var<storage, read_write> v${j}: array<f32>;`,
      `@group(0) @binding(${b + 3}) var<storage, read> g${j}: array<f32>;`,
    );
    cases.push(`if (s == ${j}u) {
    for (var i = gid; i < p.n; i += stride) {
      let g = g${j}[i] * ${ls ? 'gs' : 'scale'};
      let m = u.b1 * m${j}[i] + (1.0 - u.b1) * g;
      let v = u.b2 * v${j}[i] + (1.0 - u.b2) * g * g;
      m${j}[i] = m;
      v${j}[i] = v;
      w${j}[i] = w${j}[i] * keep - lr * ((m / c1) / (sqrt(v / c2) + u.eps));
    }
  }`);
  }
  return `
@group(0) @binding(0) var<storage, read> norms: array<f32>;
@group(0) @binding(1) var<storage, read> sc: array<f32>;
${decl.join('\n')}
${struct}
${ls ? `@group(0) @binding(${4 * k + 2}) var<storage, read> ls: array<f32>;\n${FINITE}` : ''}
@group(0) @binding(${4 * k + (ls ? 3 : 2)}) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let total = norms[u.nNorms];
${
  ls
    ? `  // an inf or NaN gradient anywhere: the step is skipped (the scale program halves the scale)
  if (!finite(total)) { return; }
  let inv = 1.0 / ls[0];
  let norm = sqrt(total) * inv;`
    : `  let norm = sqrt(total);`
}
  var scale = 1.0;
  if (u.maxNorm > 0.0 && norm > u.maxNorm) { scale = u.maxNorm / (norm + 1e-6); }${
    ls ? '\n  let gs = scale * inv;' : ''
  }
  let s = wid.y;
  let p = u.slots[s];
  let lr = sc[${SLOT.lr}] * p.mult;
  let keep = 1.0 - lr * p.wd;
  let c1 = sc[${SLOT.c1}];
  let c2 = sc[${SLOT.c2}];
  let gid = wid.x * ${WG}u + li;
  let stride = nwg.x * ${WG}u;
  ${cases.join('\n  ')}
}`;
}

let normsBuf: { buffer: any; size: number } | null = null;

function norms(b: WebGpuBackendLike, n: number): any {
  if (!normsBuf || normsBuf.size < n) {
    normsBuf?.buffer.destroy();
    const size = Math.max(64, n);
    normsBuf = {
      size,
      buffer: b.device.createBuffer({ size: size * 4, usage: GPUBufferUsage.STORAGE }),
    };
  }
  return normsBuf.buffer;
}

export interface FusedAdamWItem {
  w: tf.Variable;
  m: tf.Variable;
  v: tf.Variable;
  g: tf.Tensor;
  /** This parameter's learning-rate multiplier (its lr: the step's lr times this). */
  lrMult: number;
  weightDecay: number;
}

export interface FusedAdamWHyper {
  /** The step's learning rate (before the multipliers). */
  lr: number;
  b1: number;
  b2: number;
  eps: number;
  /** Bias corrections 1 - b^t. */
  c1: number;
  c2: number;
  /** Clip the global gradient norm to this (0: no clipping). */
  maxNorm: number;
  /** Mixed precision: the loss scale the gradients carry, updated here (see the head of this file). */
  lossScale?: {
    scale: tf.Variable;
    stats: tf.Variable;
    growthInterval: number;
    minScale: number;
    maxScale: number;
  };
}

/** Clip and update every item in place: a sumsq and an adamw program per run of items. */
export function fusedAdamW(items: FusedAdamWItem[], h: FusedAdamWHyper): void {
  const b = requireWebGpu('fusedAdamW');
  // Sorted by size, so that the workgroups of a program do similar work.
  const live = items
    .filter((it) => it.w.size > 0)
    .map((it) => ({ ...it, size: it.w.size }))
    .sort((x, y) => x.size - y.size);
  for (const it of live) for (const t of [it.w, it.m, it.v]) ownData(b, t);
  // each gradient's parts (sumsqParts) from its base in the norms buffer, their total after them
  const parts = live.map((it) => sumsqParts(it.size));
  const bases: number[] = [];
  let nParts = 0;
  for (const n of parts) {
    bases.push(nParts);
    nParts += n;
  }
  const nb = norms(b, nParts + 1);

  // 1. The squared norm of each gradient, in parts, into the norms buffer; then their total.
  for (const { first, part } of programRuns(b, live, 1)) {
    const k = part.length;
    const u = uniformBlock(
      [],
      part.map((it, j): UniformField[] => [
        ['n', 'u32', it.size],
        ['base', 'u32', bases[first + j]],
        ['parts', 'u32', parts[first + j]],
      ]),
    );
    const bufs = [nb, ...part.map((it) => ({ tensor: it.g }))];
    dispatchRaw(
      b,
      'FusedSumSq',
      pipeline(b, `bp_sumsq3_${k}`, () => sumsqWgsl(k, u.wgsl)),
      bufs,
      u.data,
      [Math.max(...parts.slice(first, first + k)), k, 1],
      valuesOf(part),
    );
  }
  normTotal(b, nb, nParts);

  // 2. AdamW, reading the clip scale from the norms and lr, c1, c2 from the step's scalars.
  setScalar(b, SLOT.lr, h.lr, 'f32');
  setScalar(b, SLOT.c1, h.c1, 'f32');
  setScalar(b, SLOT.c2, h.c2, 'f32');
  const sc = stepScalarsBuffer(b);
  const ls = h.lossScale;
  if (ls) for (const t of [ls.scale, ls.stats]) ownData(b, t);
  for (const { part, groups } of programRuns(b, live, 4)) {
    const k = part.length;
    const u = uniformBlock(
      [
        ['b1', 'f32', h.b1],
        ['b2', 'f32', h.b2],
        ['eps', 'f32', h.eps],
        ['maxNorm', 'f32', h.maxNorm],
        ['nNorms', 'u32', nParts],
      ],
      part.map((it): UniformField[] => [
        ['n', 'u32', it.size],
        ['mult', 'f32', it.lrMult],
        ['wd', 'f32', it.weightDecay],
      ]),
    );
    const bufs = part.flatMap((it) => [
      { tensor: it.w, written: true },
      { tensor: it.m, written: true },
      { tensor: it.v, written: true },
      { tensor: it.g },
    ]);
    dispatchRaw(
      b,
      'FusedAdamW',
      pipeline(b, `bp_adamw3_${k}${ls ? '_ls' : ''}`, () => adamwWgsl(k, u.wgsl, !!ls)),
      [nb, sc, ...bufs, ...(ls ? [{ tensor: ls.scale }] : [])],
      u.data,
      [groups, k, 1],
      valuesOf(part),
    );
  }
  markScalarsRead(SLOT.lr, SLOT.c1, SLOT.c2);
  if (ls) lossScaleUpdate(b, nb, nParts, ls);
}

/** The loss scale after a step: halved where the norms are not finite, doubled after enough good steps. */
function lossScaleUpdate(
  b: WebGpuBackendLike,
  nb: any,
  nNorms: number,
  ls: NonNullable<FusedAdamWHyper['lossScale']>,
): void {
  const u = uniformBlock([
    ['nNorms', 'u32', nNorms],
    ['interval', 'f32', ls.growthInterval],
    ['minScale', 'f32', ls.minScale],
    ['maxScale', 'f32', ls.maxScale],
  ]);
  const wgsl = () => `
@group(0) @binding(0) var<storage, read> norms: array<f32>;
@group(0) @binding(1) var<storage, read_write> ls: array<f32>;
@group(0) @binding(2) var<storage, read_write> st: array<f32>;
${u.wgsl}
@group(0) @binding(3) var<uniform> u: U;
${FINITE}
@compute @workgroup_size(1)
fn main() {
  if (finite(norms[u.nNorms])) {
    st[0] = st[0] + 1.0;
    st[2] = 0.0;
    if (st[0] >= u.interval) { ls[0] = min(ls[0] * 2.0, u.maxScale); st[0] = 0.0; }
  } else {
    ls[0] = max(ls[0] * 0.5, u.minScale);
    st[0] = 0.0;
    st[1] = st[1] + 1.0;
    st[2] = 1.0;
  }
}`;
  dispatchRaw(
    b,
    'LossScaleUpdate',
    pipeline(b, 'bp_lossscale', wgsl),
    [nb, { tensor: ls.scale, written: true }, { tensor: ls.stats, written: true }],
    u.data,
    [1, 1, 1],
    'scalar',
  );
}

function emaWgsl(k: number, struct: string): string {
  const decl: string[] = [];
  const cases: string[] = [];
  for (let j = 0; j < k; j++) {
    decl.push(
      `@group(0) @binding(${2 * j + 1}) var<storage, read_write> s${j}: array<f32>;`,
      `@group(0) @binding(${2 * j + 2}) var<storage, read> w${j}: array<f32>;`,
    );
    const upd = `s${j}[i] = d * s${j}[i] + (1.0 - d) * w${j}[i];`;
    cases.push(`if (s == ${j}u) { for (var i = gid; i < u.slots[${j}].n; i += stride) { ${upd} } }`);
  }
  return `
@group(0) @binding(0) var<storage, read> sc: array<f32>;
${decl.join('\n')}
${struct}
@group(0) @binding(${2 * k + 1}) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let s = wid.y;
  let d = sc[${SLOT.emaDecay}];
  let gid = wid.x * ${WG}u + li;
  let stride = nwg.x * ${WG}u;
  ${cases.join('\n  ')}
}`;
}

/** Pairs sorted by size, live ones only, for a pass over two tensors each. */
function livePairs<P extends { w: tf.Tensor }>(pairs: P[]): (P & { size: number })[] {
  return pairs
    .filter((p) => p.w.size > 0)
    .map((p) => ({ ...p, size: p.w.size }))
    .sort((x, y) => x.size - y.size);
}

/** shadow <- d shadow + (1 - d) w for every pair, in place (d through the step's scalars). */
export function fusedEma(pairs: { shadow: tf.Variable; w: tf.Tensor }[], d: number): void {
  const b = requireWebGpu('fusedEma');
  const live = livePairs(pairs);
  for (const p of live) ownData(b, p.shadow);
  setScalar(b, SLOT.emaDecay, d, 'f32');
  const sc = stepScalarsBuffer(b);
  for (const { part, groups } of programRuns(b, live, 2)) {
    const k = part.length;
    const u = uniformBlock(
      [],
      part.map((p): UniformField[] => [['n', 'u32', p.size]]),
    );
    const bufs = part.flatMap((p) => [{ tensor: p.shadow, written: true }, { tensor: p.w }]);
    dispatchRaw(
      b,
      'FusedEma',
      pipeline(b, `bp_ema3_${k}`, () => emaWgsl(k, u.wgsl)),
      [sc, ...bufs],
      u.data,
      [groups, k, 1],
      valuesOf(part),
    );
  }
  markScalarsRead(SLOT.emaDecay);
}

/** One program over pairs (a, b) of equal size: body per element i, with a0/b0.. bound, in place. */
function pairPass(
  name: string,
  key: string,
  pairs: { a: tf.Variable; b: tf.Tensor; aWritten: boolean; bWritten: boolean }[],
  body: (j: number) => string,
  extra: number,
): void {
  const be = requireWebGpu(name);
  const live = pairs
    .filter((p) => p.a.size > 0)
    .map((p) => ({ ...p, size: p.a.size }))
    .sort((x, y) => x.size - y.size);
  for (const { part, groups } of programRuns(be, live, 2)) {
    const k = part.length;
    const decl: string[] = [];
    const cases: string[] = [];
    part.forEach((p, j) => {
      decl.push(
        `@group(0) @binding(${2 * j}) var<storage, ${p.aWritten ? 'read_write' : 'read'}> a${j}: array<f32>;`,
        `@group(0) @binding(${2 * j + 1}) var<storage, ${p.bWritten ? 'read_write' : 'read'}> b${j}: array<f32>;`,
      );
      cases.push(`if (s == ${j}u) { for (var i = gid; i < u.slots[${j}].n; i += stride) { ${body(j)} } }`);
    });
    const u = uniformBlock(
      [['x', 'f32', extra]],
      part.map((p): UniformField[] => [['n', 'u32', p.size]]),
    );
    const wgsl = () => `
${decl.join('\n')}
${u.wgsl}
@group(0) @binding(${2 * k}) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let s = wid.y;
  let gid = wid.x * ${WG}u + li;
  let stride = nwg.x * ${WG}u;
  ${cases.join('\n  ')}
}`;
    const flags = part.map((p) => `${+p.aWritten}${+p.bWritten}`).join('');
    const bufs = part.flatMap((p) => [
      { tensor: p.a, written: p.aWritten },
      { tensor: p.b, written: p.bWritten },
    ]);
    dispatchRaw(be, name, pipeline(be, `bp_${key}_${k}_${flags}`, wgsl), bufs, u.data, [groups, k, 1], valuesOf(part));
  }
}

/** v <- v + s r, in place (FGM's perturbation of the embeddings and its undoing). */
export function addScaledInPlace(v: tf.Variable, r: tf.Tensor, s: number): void {
  const b = requireWebGpu('addScaledInPlace');
  ownData(b, v);
  pairPass(
    'AddScaled',
    'axpy',
    [{ a: v, b: r, aWritten: true, bWritten: false }],
    (j) => `a${j}[i] += u.x * b${j}[i];`,
    s,
  );
}

/** Exchange the contents of each pair, in place (the EMA's swap): neither changes its buffer. */
export function swapInPlace(pairs: { a: tf.Variable; b: tf.Variable }[]): void {
  const be = requireWebGpu('swapInPlace');
  for (const p of pairs) {
    ownData(be, p.a);
    ownData(be, p.b);
  }
  pairPass(
    'Swap',
    'swap',
    pairs.map((p) => ({ a: p.a, b: p.b, aWritten: true, bWritten: true })),
    (j) => `let t = a${j}[i]; a${j}[i] = b${j}[i]; b${j}[i] = t;`,
    0,
  );
}
