// Global-norm clipping and AdamW on the GPU in a few programs, updating weights and moments in place
// (as PyTorch's fused / foreach AdamW): tfjs's own ops take a dozen programs and several scalar
// uploads per parameter, and reading the norm back to decide on clipping stalls the GPU every step.
//
//   1. sumsq:  sum of g^2 of each gradient into a slot of a norms buffer (one workgroup per
//              gradient, SLOTS gradients a program);
//   2. adamw:  every workgroup first sums the norms buffer (the clip scale, the same for all), then
//              updates SLOTS parameters a program: m, v, w in place. The arithmetic is
//              torch.optim.AdamW's, as in optim.ts.
//
// The weight average (train/ema.ts) is one such pass too: shadow = d shadow + (1 - d) w in place.
import * as tf from '@tensorflow/tfjs';
import {
  dispatchRaw,
  gridGroups,
  ownData,
  pipeline,
  requireWebGpu,
  WebGpuBackendLike,
  WG,
  WORKGROUP_REDUCE,
} from './webgpu-kernels';

/* eslint-disable @typescript-eslint/no-explicit-any -- WebGPU's types are not in our tsconfig */
declare const GPUBufferUsage: { STORAGE: number };

/**
 * items in runs of as many as one program can bind (the device's storage-buffer limit, one binding
 * kept for the norms buffer), each run with the grid-stride dispatch of its largest item.
 */
function programRuns<T extends { size: number }>(
  b: WebGpuBackendLike,
  items: T[],
  buffersPerItem: number,
): { first: number; part: T[]; groups: number }[] {
  const limit = b.device.limits.maxStorageBuffersPerShaderStage ?? 8;
  const k = Math.max(1, Math.min(8, Math.floor((limit - 1) / buffersPerItem)));
  const runs = [];
  for (let first = 0; first < items.length; first += k) {
    const part = items.slice(first, first + k);
    runs.push({ first, part, groups: gridGroups(Math.max(...part.map((it) => it.size)))[0] });
  }
  return runs;
}

function sumsqWgsl(k: number): string {
  const decl = [...Array(k).keys()].map((j) => `@group(0) @binding(${j + 1}) var<storage, read> g${j}: array<f32>;`);
  const cases = [...Array(k).keys()].map(
    (j) => `if (s == ${j}u) { for (var i = li; i < n; i += ${WG}u) { acc += g${j}[i] * g${j}[i]; } }`,
  );
  return `
@group(0) @binding(0) var<storage, read_write> norms: array<f32>;
${decl.join('\n')}
struct U { n: array<vec4<u32>, ${Math.ceil(k / 4)}>, first: u32 };
@group(0) @binding(${k + 1}) var<uniform> u: U;
${WORKGROUP_REDUCE}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let s = wid.x;
  let n = u.n[s / 4u][s % 4u];
  var acc = 0.0;
  ${cases.join('\n  ')}
  let total = wsum(acc, li);
  if (li == 0u) { norms[u.first + s] = total; }
}`;
}

function adamwWgsl(k: number): string {
  const decl: string[] = [];
  const cases: string[] = [];
  for (let j = 0; j < k; j++) {
    const b = 1 + 4 * j;
    decl.push(
      `@group(0) @binding(${b}) var<storage, read_write> w${j}: array<f32>;`,
      `@group(0) @binding(${b + 1}) var<storage, read_write> m${j}: array<f32>;`,
      `@group(0) @binding(${b + 2}) var<storage, read_write> v${j}: array<f32>;`,
      `@group(0) @binding(${b + 3}) var<storage, read> g${j}: array<f32>;`,
    );
    cases.push(`if (s == ${j}u) {
    for (var i = gid; i < p.n; i += stride) {
      let g = g${j}[i] * scale;
      let m = u.b1 * m${j}[i] + (1.0 - u.b1) * g;
      let v = u.b2 * v${j}[i] + (1.0 - u.b2) * g * g;
      m${j}[i] = m;
      v${j}[i] = v;
      w${j}[i] = w${j}[i] * p.keep - p.lr * ((m / u.c1) / (sqrt(v / u.c2) + u.eps));
    }
  }`);
  }
  return `
@group(0) @binding(0) var<storage, read> norms: array<f32>;
${decl.join('\n')}
struct Slot { n: u32, lr: f32, keep: f32, pad: f32 };
struct U {
  b1: f32, b2: f32, eps: f32, c1: f32, c2: f32, maxNorm: f32, nNorms: u32, pad: u32,
  slots: array<Slot, ${k}>,
};
@group(0) @binding(${4 * k + 1}) var<uniform> u: U;
${WORKGROUP_REDUCE}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  var acc = 0.0;
  for (var i = li; i < u.nNorms; i += ${WG}u) { acc += norms[i]; }
  let norm = sqrt(wsum(acc, li));
  var scale = 1.0;
  if (u.maxNorm > 0.0 && norm > u.maxNorm) { scale = u.maxNorm / (norm + 1e-6); }
  let s = wid.y;
  let p = u.slots[s];
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
  /** The learning rate for this parameter (lr x its multiplier). */
  lr: number;
  weightDecay: number;
}

export interface FusedAdamWHyper {
  b1: number;
  b2: number;
  eps: number;
  /** Bias corrections 1 - b^t. */
  c1: number;
  c2: number;
  /** Clip the global gradient norm to this (0: no clipping). */
  maxNorm: number;
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
  const nb = norms(b, live.length);

  // 1. The squared norm of each gradient into its slot of the norms buffer.
  for (const { first, part } of programRuns(b, live, 1)) {
    const k = part.length;
    const u = new Uint32Array(Math.ceil(k / 4) * 4 + 4);
    part.forEach((it, j) => (u[j] = it.size));
    u[Math.ceil(k / 4) * 4] = first;
    const bufs = [nb, ...part.map((it) => ({ tensor: it.g }))];
    dispatchRaw(
      b,
      'FusedSumSq',
      pipeline(b, `bp_sumsq_${k}`, () => sumsqWgsl(k)),
      bufs,
      u.buffer,
      [k, 1, 1],
    );
  }

  // 2. AdamW, reading the clip scale from the norms.
  for (const { part, groups } of programRuns(b, live, 4)) {
    const k = part.length;
    const buf = new ArrayBuffer(32 + 16 * k);
    const f = new Float32Array(buf);
    const i = new Uint32Array(buf);
    f.set([h.b1, h.b2, h.eps, h.c1, h.c2, h.maxNorm]);
    i[6] = live.length;
    part.forEach((it, j) => {
      i[8 + 4 * j] = it.size;
      f[8 + 4 * j + 1] = it.lr;
      f[8 + 4 * j + 2] = 1 - it.lr * it.weightDecay;
    });
    const bufs = part.flatMap((it) => [
      { tensor: it.w, written: true },
      { tensor: it.m, written: true },
      { tensor: it.v, written: true },
      { tensor: it.g },
    ]);
    dispatchRaw(
      b,
      'FusedAdamW',
      pipeline(b, `bp_adamw_${k}`, () => adamwWgsl(k)),
      [nb, ...bufs],
      buf,
      [groups, k, 1],
    );
  }
}

function emaWgsl(k: number): string {
  const decl: string[] = [];
  const cases: string[] = [];
  for (let j = 0; j < k; j++) {
    decl.push(
      `@group(0) @binding(${2 * j}) var<storage, read_write> s${j}: array<f32>;`,
      `@group(0) @binding(${2 * j + 1}) var<storage, read> w${j}: array<f32>;`,
    );
    const upd = `s${j}[i] = u.d * s${j}[i] + (1.0 - u.d) * w${j}[i];`;
    cases.push(`if (s == ${j}u) { for (var i = gid; i < u.n[${j}].x; i += stride) { ${upd} } }`);
  }
  return `
${decl.join('\n')}
struct U { d: f32, p0: f32, p1: f32, p2: f32, n: array<vec4<u32>, ${k}> };
@group(0) @binding(${2 * k}) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let s = wid.y;
  let gid = wid.x * ${WG}u + li;
  let stride = nwg.x * ${WG}u;
  ${cases.join('\n  ')}
}`;
}

/** shadow <- d shadow + (1 - d) w for every pair, in place. */
export function fusedEma(pairs: { shadow: tf.Variable; w: tf.Tensor }[], d: number): void {
  const b = requireWebGpu('fusedEma');
  const live = pairs
    .filter((p) => p.w.size > 0)
    .map((p) => ({ ...p, size: p.w.size }))
    .sort((x, y) => x.size - y.size);
  for (const p of live) ownData(b, p.shadow);
  for (const { part, groups } of programRuns(b, live, 2)) {
    const k = part.length;
    const u = new ArrayBuffer(16 + 16 * k);
    new Float32Array(u)[0] = d;
    part.forEach((p, j) => (new Uint32Array(u)[4 + 4 * j] = p.size));
    const bufs = part.flatMap((p) => [{ tensor: p.shadow, written: true }, { tensor: p.w }]);
    dispatchRaw(
      b,
      'FusedEma',
      pipeline(b, `bp_ema_${k}`, () => emaWgsl(k)),
      bufs,
      u,
      [groups, k, 1],
    );
  }
}
