// BERT's layers as a few WebGPU programs each, forward and backward (tf.customGrad), for the webgpu
// backend only: tfjs composes a LayerNorm of ~8 programs and its gradient of ~20, every JS number
// is a scalar upload, dropout draws its mask on the CPU and uploads it, and the attention's head
// layout costs four transposes each way. ops/webgpu.ts installs these for the webgpu backend, beside
// ops/host.ts (tfjs's composed ops); test/webgpu-ops.test.ts compares values and gradients of each with
// the cpu backend.
//
//   dense      y = x W^T + b: the matmul webgpu-matmul.ts chose (tfjs's or ours, bias inside);
//              backward 2 matmuls + a column sum
//   layerNorm  1 program; backward 2 (row stats with dx, dgamma with dbeta)
//   biasGelu   gelu(h + b) in 1; backward 2 (dh, db)
//   dropout    a counter-based hash of (seed, index) decides, on the GPU: 1 program each way
//   attention  softmax(Q K^T / sqrt(D) + mask) V read and written in the [B*T, A*D] layout of the
//              dense layers (strided batched matmuls, no transposes), its dropout drawn in the
//              softmax's programs: 3 programs; backward 5
//   selfAttention  the attention with its q, k, v projections: the three weights stacked and
//              projected by one matmul, q, k, v read in place from its output: 2 + 3 programs;
//              backward 5 + 5 (the three dense layers composed took 3 and 9, and 2 adds of dx)
//   embeddings word + position + type rows in 1; backward 2 (the tables' sums, then the word rows)
//   losses     BCE with logits 1, backward 1; softmax cross-entropy 2, backward 1
//
// LayerNorm reads x + residual itself where the block's residual is given (no program adds them),
// and draws the block's dropout on x itself where there is one (no dropout program either way).
//
// Kernels are plain WGSL dispatched in tfjs's command stream (webgpu-kernels.ts dispatchRaw); each
// makes a new output tensor, nothing is written in place.
import * as tf from '@tensorflow/tfjs';
import type { AttentionDims, Dense, DropSpec, Ops } from '../ops/types';
import { customOp } from './custom-op';
import {
  dispatchRaw,
  gridGroups,
  outputInfo,
  pipeline,
  requireWebGpu,
  uniformBlock,
  UniformField,
  rowLanes,
  shapeDetail,
  WG,
  workgroupReduce,
  WORKGROUP_REDUCE,
} from './webgpu-kernels';
import { markScalarsRead, seedSlot, stepScalarsBuffer } from './webgpu-record';
import {
  choiceFor,
  Choice,
  matMul2dOn,
  matmulMode,
  matmulPrecision,
  mixedChoice,
  OutView,
  runStrided,
  Strided,
  stridedUniforms,
} from './webgpu-matmul';

type Field = UniformField;

/** A kernel's input: a tensor (its elements f32, or i32 where `i32`) or a raw buffer of f32, by name. */
type KernelInput = { name: string; t: tf.Tensor; i32?: boolean } | { name: string; buf: unknown };

/** A kernel's output: a new f32 tensor, by name and shape. */
interface KernelOutput {
  name: string;
  shape: number[];
}

/**
 * Run one kernel: inputs bound read-only at 0..n-1 under the names given, the outputs (new tensors,
 * returned in order) read-write after them, the uniforms `u` last. body is the WGSL after the
 * bindings. key names the program (its counter, profiles); key + variant its pipeline, where the
 * WGSL of one key varies (a row kernel's lanes).
 */
function runKernel(
  key: string,
  inputs: KernelInput[],
  outputs: KernelOutput[],
  fields: Field[],
  groups: [number, number, number],
  body: string,
  variant = '',
): tf.Tensor[] {
  const b = requireWebGpu('webgpu-ops');
  const elem = (x: KernelInput) => ('i32' in x && x.i32 ? 'i32' : 'f32');
  const n = inputs.length;
  const decl = [
    ...inputs.map((x, i) => `@group(0) @binding(${i}) var<storage, read> ${x.name}: array<${elem(x)}>;`),
    ...outputs.map((o, i) => `@group(0) @binding(${n + i}) var<storage, read_write> ${o.name}: array<f32>;`),
  ];
  const m = n + outputs.length;
  const wgsl = () =>
    [...decl, uniformBlock(fields).wgsl, `@group(0) @binding(${m}) var<uniform> u: U;`, body].join('\n');
  const infos = outputs.map((o) => outputInfo(b, o.shape));
  dispatchRaw(
    b,
    key,
    pipeline(b, `bp_${key}${variant}`, wgsl),
    [
      ...inputs.map((x) => ('t' in x ? { tensor: x.t } : x.buf)),
      ...infos.map((info) => ({ tensor: info, written: true })),
    ],
    uniformBlock(fields).data,
    groups,
    shapeDetail(outputs[0].shape),
  );
  return infos.map((info) => tf.engine().makeTensorFromTensorInfo(info));
}

/** Run one kernel writing one new tensor, `out` (runKernel). */
function launch(
  key: string,
  inputs: KernelInput[],
  outShape: number[],
  fields: Field[],
  groups: [number, number, number],
  body: string,
): tf.Tensor {
  return runKernel(key, inputs, [{ name: 'out', shape: outShape }], fields, groups, body)[0];
}

const MAIN_FLAT = `@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>)`;

/** WGSL: a row kernel's loop over its lane's elements of the row (none for a row past the last). */
const EACH_J = 'for (var j = lane; j < rowH; j += LANES)';
/** WGSL: the condition of a row kernel's writes of one value a row (by its first lane, live rows only). */
const FIRST_LANE = 'lane == 0u && live';

/**
 * A kernel of rows (of width H) of its first input: rowLanes(H) threads a row, WG / that rows a
 * workgroup, grid-strided. body runs for each row with `row`, its offset `o`, the thread's `lane`
 * in it, wsum / wmax over the row's threads at hand; its loops over the row are EACH_J, its
 * one-value writes under FIRST_LANE. The threads of a row past the last (`live` false) take part
 * in the reductions (every thread must) with nothing to sum: rowH is 0 for them and `row` the
 * last row, for the reads outside loops. It writes `outs` (new tensors, by name and shape).
 */
function rowKernelN(
  key: string,
  inputs: KernelInput[],
  outs: KernelOutput[],
  H: number,
  extra: Field[],
  body: string,
  prelude = '',
): tf.Tensor[] {
  const rows = (inputs[0] as { t: tf.Tensor }).t.size / H;
  const lanes = rowLanes(H);
  const per = WG / lanes;
  return runKernel(
    key,
    inputs,
    outs,
    [['rows', 'u32', rows], ['H', 'u32', H], ...extra],
    gridGroups(Math.ceil(rows / per), 1),
    `${prelude}
const LANES = ${lanes}u;
${workgroupReduce(lanes)}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let lane = li % LANES;
  for (var rowGroup = wid.x; rowGroup * ${per}u < u.rows; rowGroup += nwg.x) {
    let rowFirst = rowGroup * ${per}u + li / LANES;
    let live = rowFirst < u.rows;
    let row = min(rowFirst, u.rows - 1u);
    let o = row * u.H;
    let rowH = select(0u, u.H, live);
    ${body}
  }
}`,
    `_l${lanes}`,
  );
}

/** rowKernelN writing one new tensor, `out`. */
function rowKernel(
  key: string,
  inputs: KernelInput[],
  outShape: number[],
  H: number,
  extra: Field[],
  body: string,
  prelude = '',
): tf.Tensor {
  return rowKernelN(key, inputs, [{ name: 'out', shape: outShape }], H, extra, body, prelude)[0];
}

// ---------------------------------------------------------------------------------------------
// dropout

const HASH = `
fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}`;

/**
 * WGSL of the dropout mask, for the dropout kernel and LayerNorm's (which draws it in place):
 * dropKey() hashes the seed in slot u.slot of the step's scalars buffer `sc` (webgpu-record.ts: a
 * recorded step draws new masks on every replay); dropAt(i, key, v) is v at element i dropped out
 * with probability u.drate, else scaled by u.dscale. What a kernel binds and sets for it: dropParts.
 */
const DROP = `${HASH}
fn dropKey() -> u32 { return pcg(bitcast<u32>(sc[u.slot])); }
fn dropAt(i: u32, key: u32, v: f32) -> f32 {
  let r = f32(pcg(i ^ key) >> 8u) / 16777216.0;
  return select(0.0, v * u.dscale, r >= u.drate);
}`;
/** A dropout to draw in a kernel: its rate and the seed slot of its mask. */
type DropSlot = { rate: number; slot: number };

/** drop's seed given its slot of the step's scalars now (seedSlot), or null without a dropout. */
function dropSlot(drop: DropSpec | null | undefined, op: string): DropSlot | null {
  return drop ? { rate: drop.rate, slot: seedSlot(requireWebGpu(op), drop.seed) } : null;
}

/**
 * What a kernel drawing drop's mask binds (the scalars buffer `sc`), sets (DROP's uniforms),
 * declares (DROP) and adds to its key, and `read`, to call after its dispatch (the slot is read:
 * webgpu-record.ts); nothing without a dropout.
 */
const dropParts = (drop: DropSlot | null | undefined) =>
  drop
    ? {
        inputs: [{ name: 'sc', buf: stepScalarsBuffer(requireWebGpu('dropout')) }] as KernelInput[],
        fields: [
          ['slot', 'u32', drop.slot],
          ['drate', 'f32', drop.rate],
          ['dscale', 'f32', 1 / (1 - drop.rate)],
        ] as Field[],
        prelude: DROP,
        key: '_drop',
        read: () => markScalarsRead(drop.slot),
      }
    : { inputs: [] as KernelInput[], fields: [] as Field[], prelude: '', key: '', read: () => {} };

/** x dropped out by the mask of the seed in slot `slot` (DROP). */
function dropoutKernel(x: tf.Tensor, rate: number, slot: number): tf.Tensor {
  const n = x.size;
  const d = dropParts({ rate, slot });
  const out = launch(
    'dropout',
    [{ name: 'x', t: x }, ...d.inputs],
    x.shape,
    [['n', 'u32', n], ...d.fields],
    gridGroups(n),
    `${DROP}
${MAIN_FLAT} {
  let key = dropKey();
  for (var i = gid.x; i < u.n; i += nwg.x * ${WG}u) { out[i] = dropAt(i, key, x[i]); }
}`,
  );
  d.read(); // after: the dispatch may have submitted what came before
  return out;
}

/** Inverted dropout with a mask drawn on the GPU from seed (the same seed, the same mask). */
export function dropout<T extends tf.Tensor>(x: T, rate: number, seed: number): T {
  const slot = seedSlot(requireWebGpu('dropout'), seed);
  const f = customOp(1, ([a]) => ({
    value: dropoutKernel(a, rate, slot),
    gradFunc: (dy: tf.Tensor) => dropoutKernel(dy, rate, slot),
  }));
  return f(x) as T;
}

// ---------------------------------------------------------------------------------------------
// column sums (bias gradients, LayerNorm's dgamma / dbeta)

/**
 * The column sums' layout: COLS columns a workgroup, WG / COLS lanes of rows each. 8 columns are
 * one 32-byte read a row for a GPU's memory; more lanes give more workgroups and shorter walks down
 * the rows (a [4096, 128] gradient: 16 workgroups of 128 rows a lane, where 32 columns gave 4 of 512).
 */
const COLS = 8;
const LANES = WG / COLS;

/** WGSL: COLS columns a workgroup (`col`), LANES lanes (`lane`) of rows each, the lanes' sums in `part`. */
const COLUMNS = `@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let col = wid.x * ${COLS}u + li % ${COLS}u;
  let lane = li / ${COLS}u;`;
const colFields = (dy: tf.Tensor, C: number): Field[] => [
  ['rows', 'u32', dy.size / C],
  ['C', 'u32', C],
];

/** [rows, C] -> [C]: the sum over rows of dy (a bias's gradient). */
function columnSum(dy: tf.Tensor): tf.Tensor {
  const C = dy.shape[dy.shape.length - 1];
  return launch(
    'colsum',
    [{ name: 'dy', t: dy }],
    [C],
    colFields(dy, C),
    [Math.ceil(C / COLS), 1, 1],
    `
var<workgroup> part: array<f32, ${WG}>;
${COLUMNS}
  var acc = 0.0;
  if (col < u.C) {
    for (var row = lane; row < u.rows; row += ${LANES}u) { acc += dy[row * u.C + col]; }
  }
  part[li] = acc;
  workgroupBarrier();
  if (lane == 0u && col < u.C) {
    var s = 0.0;
    for (var k = 0u; k < ${LANES}u; k++) { s += part[k * ${COLS}u + li]; }
    out[col] = s;
  }
}`,
  );
}

/**
 * LayerNorm's dgamma and dbeta in one kernel: the sums over rows of dy * xhat (xhat from its input v
 * and the row stats [mean, rstd]) and of dy.
 */
function layerNormParamGrads(dy: tf.Tensor, v: LnInput, stats: tf.Tensor): [tf.Tensor, tf.Tensor] {
  const d = dropParts(v.drop);
  const C = dy.shape[dy.shape.length - 1];
  const [dg, db] = runKernel(
    lnKey('layernorm_dgb', v),
    [{ name: 'dy', t: dy }, ...lnIns(v), { name: 'st', t: stats }],
    [
      { name: 'dg', shape: [C] },
      { name: 'db', shape: [C] },
    ],
    [...colFields(dy, C), ...d.fields],
    [Math.ceil(C / COLS), 1, 1],
    `${d.prelude}
var<workgroup> pg: array<f32, ${WG}>;
var<workgroup> pb: array<f32, ${WG}>;
${COLUMNS}
  var ag = 0.0;
  var ab = 0.0;
  if (col < u.C) {
    for (var row = lane; row < u.rows; row += ${LANES}u) {
      let i = row * u.C + col;
      ag += dy[i] * (${lnAt(v)('i')} - st[2u * row]) * st[2u * row + 1u];
      ab += dy[i];
    }
  }
  pg[li] = ag;
  pb[li] = ab;
  workgroupBarrier();
  if (lane == 0u && col < u.C) {
    var sg = 0.0;
    var sb = 0.0;
    for (var k = 0u; k < ${LANES}u; k++) { sg += pg[k * ${COLS}u + li]; sb += pb[k * ${COLS}u + li]; }
    dg[col] = sg;
    db[col] = sb;
  }
}`,
  );
  d.read();
  return [dg, db];
}

// ---------------------------------------------------------------------------------------------
// dense

/**
 * op(a) @ op(b) (+ bias) on what webgpu-matmul.ts chose for this product and size: tfjs's matmul
 * (its fused matmul where there is a bias), our register-blocked kernel, or that with K split.
 */
function mm(a: tf.Tensor2D, b: tf.Tensor2D, ta: boolean, tb: boolean, bias?: tf.Tensor1D): tf.Tensor2D {
  const M = ta ? a.shape[1] : a.shape[0];
  const N = tb ? b.shape[0] : b.shape[1];
  const product = ta ? 'TN' : tb ? 'NT' : 'NN';
  // mixed precision: the f16 variant of our kernel or subgroup matrices, whatever the fp32 choice
  const mixed = matmulPrecision() === 'mixed';
  return matMul2dOn(a, b, ta, tb, mixed ? mixedChoice(product, M * N) : choiceFor(product, M * N), bias);
}

/**
 * y = x W^T (+ b), W [out, in] (PyTorch layout); backward: dx = dy W, dW = dy^T x, db = column sums
 * of dy. With tfjs's matmul everywhere (BERT_PRUNER_WEBGPU_MATMUL=tfjs) and no bias, tfjs's own
 * gradient does the same.
 */
function linear(x: tf.Tensor2D, w: tf.Tensor2D, bias: tf.Tensor1D | null): tf.Tensor2D {
  if (!bias && matmulMode().kind === 'tfjs' && matmulPrecision() === 'fp32') return tf.matMul(x, w, false, true);
  const f = customOp(bias ? 3 : 2, ([a, wt, bt], save) => {
    save([a, wt]);
    return {
      value: mm(a as tf.Tensor2D, wt as tf.Tensor2D, false, true, bt as tf.Tensor1D | undefined),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sw] = saved as tf.Tensor2D[];
        const d = dy as tf.Tensor2D;
        const grads = [mm(d, sw, false, false), mm(d, sa, true, false)];
        return bias ? [...grads, columnSum(d)] : grads;
      },
    };
  });
  return (bias ? f(x, w, bias) : f(x, w)) as tf.Tensor2D;
}

/** y = x W^T + b, W [out, in] (PyTorch layout). */
export function dense(x: tf.Tensor2D, w: tf.Tensor2D, bias: tf.Tensor1D): tf.Tensor2D {
  return linear(x, w, bias);
}

/** x W^T without bias (the FFN's first matmul, whose bias goes with the GELU). */
export function matMulT(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  return linear(x, w, null);
}

// ---------------------------------------------------------------------------------------------
// LayerNorm over the last axis

/**
 * LayerNorm's input: x alone, or x + r where a residual r is fused in (its kernels read both and
 * add them, so that the sum is never written), x dropped out first where `drop` is given (the mask
 * the dropout kernel draws from the same seed slot, read in place: `dropAt`). lnAt(v)(i): the WGSL
 * of element i; lnIns: what a kernel reading it binds (dropParts(v.drop): what else its dropout needs).
 */
interface LnInput {
  x: tf.Tensor;
  r?: tf.Tensor;
  drop?: DropSlot | null;
}
const lnIns = (v: LnInput): KernelInput[] => [
  { name: 'x', t: v.x },
  ...(v.r ? [{ name: 'r', t: v.r }] : []),
  ...dropParts(v.drop).inputs,
];
const lnAt = (v: LnInput) => (i: string) => {
  const x = v.drop ? `dropAt(${i}, dropKey(), x[${i}])` : `x[${i}]`;
  return v.r ? `(${x} + r[${i}])` : x;
};
const lnKey = (key: string, v: LnInput) => `${key}${v.r ? '_res' : ''}${dropParts(v.drop).key}`;

/** WGSL: mean and rstd = 1/sqrt(var + eps) of row at(o .. o + H), by the row's threads. */
const rowStats = (at: (i: string) => string) => `var s = 0.0;
    ${EACH_J} { s += ${at('o + j')}; }
    let mean = wsum(s, li) / f32(u.H);
    var q = 0.0;
    ${EACH_J} { let d = ${at('o + j')} - mean; q += d * d; }
    let rstd = inverseSqrt(wsum(q, li) / f32(u.H) + u.eps);`;

function layerNormForward(v: LnInput, g: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const d = dropParts(v.drop);
  const at = lnAt(v);
  const y = rowKernel(
    lnKey('layernorm', v),
    [...lnIns(v), { name: 'g', t: g }, { name: 'b', t: beta }],
    v.x.shape,
    v.x.shape[v.x.shape.length - 1],
    [['eps', 'f32', eps], ...d.fields],
    `${rowStats(at)}
    ${EACH_J} { out[o + j] = (${at('o + j')} - mean) * rstd * g[j] + b[j]; }`,
    d.prelude,
  );
  d.read();
  return y;
}

/**
 * dx of LayerNorm, rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) with dxhat = dy g, and the
 * row stats [mean, 1/sqrt(var + eps)] ([rows, 2]) for dgamma, in one kernel; where v's x is
 * dropped out, x's gradient too (dx through the same mask).
 */
function layerNormDx(dy: tf.Tensor, v: LnInput, g: tf.Tensor, eps: number): tf.Tensor[] {
  const d = dropParts(v.drop);
  const at = lnAt(v);
  const H = v.x.shape[v.x.shape.length - 1];
  const grads = rowKernelN(
    lnKey('layernorm_dx', v),
    [...lnIns(v), { name: 'dy', t: dy }, { name: 'g', t: g }],
    [
      { name: 'out', shape: v.x.shape },
      { name: 'st', shape: [v.x.size / H, 2] },
      ...(v.drop ? [{ name: 'dxd', shape: v.x.shape }] : []),
    ],
    H,
    [['eps', 'f32', eps], ...d.fields],
    `${rowStats(at)}
    var a = 0.0;
    var c = 0.0;
    ${EACH_J} {
      let dxh = dy[o + j] * g[j];
      a += dxh;
      c += dxh * (${at('o + j')} - mean) * rstd;
    }
    let ma = wsum(a, li) / f32(u.H);
    let mc = wsum(c, li) / f32(u.H);
    ${EACH_J} {
      let xh = (${at('o + j')} - mean) * rstd;
      let d = rstd * (dy[o + j] * g[j] - ma - xh * mc);
      out[o + j] = d;${v.drop ? '\n      dxd[o + j] = dropAt(o + j, dropKey(), d);' : ''}
    }
    if (${FIRST_LANE}) { st[2u * row] = mean; st[2u * row + 1u] = rstd; }`,
    d.prelude,
  );
  d.read();
  return grads;
}

/**
 * LayerNorm over the last axis with weight g and bias beta, of x + residual where one is given
 * (fused: no program adds them, forward or backward; both get the same gradient), x dropped out
 * first where `drop` is given (fused with a residual: the mask is drawn inside LayerNorm's
 * programs, as dropout() draws it from the same seed, and x's gradient goes through it there).
 */
export function layerNorm<T extends tf.Tensor>(
  x: T,
  g: tf.Tensor1D,
  beta: tf.Tensor1D,
  eps: number,
  residual?: tf.Tensor,
  drop?: DropSpec,
): T {
  if (drop && !residual) return layerNorm(dropout(x, drop.rate, drop.seed), g, beta, eps);
  const dr = dropSlot(drop, 'layerNorm');
  const backward = (dy: tf.Tensor, v: LnInput, sg: tf.Tensor) => {
    const [dx, stats, dxd] = layerNormDx(dy, v, sg, eps);
    // x's gradient (through the dropout's mask where there is one), then the residual's
    const dxs = v.r ? [dxd ?? tf.clone(dx), dx] : [dx];
    const out = [...dxs, ...layerNormParamGrads(dy, v, stats)];
    stats.dispose();
    return out;
  };
  if (residual) {
    const f = customOp(4, ([a, r, gt, bt], save) => {
      save([a, r, gt]);
      return {
        value: layerNormForward({ x: a, r, drop: dr }, gt, bt, eps),
        gradFunc: (dy: tf.Tensor, [sa, sr, sg]: tf.Tensor[]) => backward(dy, { x: sa, r: sr, drop: dr }, sg),
      };
    });
    return f(x, residual, g, beta) as T;
  }
  const f = customOp(3, ([a, gt, bt], save) => {
    save([a, gt]);
    return {
      value: layerNormForward({ x: a }, gt, bt, eps),
      gradFunc: (dy: tf.Tensor, [sa, sg]: tf.Tensor[]) => backward(dy, { x: sa }, sg),
    };
  });
  return f(x, g, beta) as T;
}

// ---------------------------------------------------------------------------------------------
// bias + GELU (exact, erf-based, as HF's "gelu")

// erf: Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), as tfjs-webgpu's own Erf.
const GELU = `
fn erf_(x: f32) -> f32 {
  let p = 0.3275911;
  let a1 = 0.254829592; let a2 = -0.284496736; let a3 = 1.421413741; let a4 = -1.453152027; let a5 = 1.061405429;
  let s = sign(x);
  let z = abs(x);
  let t = 1.0 / (1.0 + p * z);
  return s * (1.0 - (((((a5 * t + a4) * t) + a3) * t + a2) * t + a1) * t * exp(-z * z));
}
fn cdf(z: f32) -> f32 { return 0.5 * (1.0 + erf_(z * 0.70710678118654752)); }
fn pdf(z: f32) -> f32 { return 0.39894228040143268 * exp(-0.5 * z * z); }`;

function biasGeluKernel(h: tf.Tensor, bias: tf.Tensor, dy: tf.Tensor | null): tf.Tensor {
  const I = bias.size;
  const n = h.size;
  const inputs = [
    { name: 'h', t: h },
    { name: 'bias', t: bias },
  ];
  if (dy) inputs.push({ name: 'dy', t: dy });
  const value = dy ? 'dy[i] * (cdf(z) + z * pdf(z))' : 'z * cdf(z)';
  return launch(
    dy ? 'bias_gelu_grad' : 'bias_gelu',
    inputs,
    h.shape,
    [
      ['n', 'u32', n],
      ['I', 'u32', I],
    ],
    gridGroups(n),
    `${GELU}
${MAIN_FLAT} {
  for (var i = gid.x; i < u.n; i += nwg.x * ${WG}u) {
    let z = h[i] + bias[i % u.I];
    out[i] = ${value};
  }
}`,
  );
}

/** gelu(h + b), b broadcast over the last axis. */
export function biasGelu<T extends tf.Tensor>(h: T, bias: tf.Tensor1D): T {
  const f = customOp(2, ([a, bt], save) => {
    save([a, bt]);
    return {
      value: biasGeluKernel(a, bt, null),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const dh = biasGeluKernel(saved[0], saved[1], dy);
        return [dh, columnSum(dh)];
      },
    };
  });
  return f(h, bias) as T;
}

// ---------------------------------------------------------------------------------------------
// attention

/**
 * out[z][i][j] = alpha * sum_k A(z, i, k) B(z, k, j) for z = bo * inner + bi, where every operand is
 * addressed by strides (Strided, webgpu-matmul.ts). 16 x 16 tiles, one output a thread: the
 * fallback of the attention's products.
 */
const TILE = 16;

function stridedMatMul(
  key: string,
  a: Strided,
  b: Strided,
  out: OutView,
  dims: { M: number; N: number; K: number; outer: number; inner: number; alpha: number },
): tf.Tensor {
  const f = stridedUniforms(dims, a, b, out);
  return launch(
    key,
    [
      { name: 'A', t: a.t },
      { name: 'B', t: b.t },
    ],
    out.shape,
    f,
    [Math.ceil(dims.N / TILE), Math.ceil(dims.M / TILE), dims.outer * dims.inner],
    `
var<workgroup> ta: array<array<f32, ${TILE}>, ${TILE}>;
var<workgroup> tb: array<array<f32, ${TILE}>, ${TILE}>;
@compute @workgroup_size(${TILE}, ${TILE})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let z = wid.z;
  let bo = z / u.inner;
  let bi = z % u.inner;
  let row = wid.y * ${TILE}u + lid.y;
  let col = wid.x * ${TILE}u + lid.x;
  let abase = u.aoff + bo * u.asb + bi * u.asi;
  let bbase = u.boff + bo * u.bsb + bi * u.bsi;
  var acc = 0.0;
  for (var k0 = 0u; k0 < u.K; k0 += ${TILE}u) {
    let ka = k0 + lid.x;
    let kb = k0 + lid.y;
    ta[lid.y][lid.x] = select(0.0, A[abase + row * u.asr + ka * u.asc], row < u.M && ka < u.K);
    tb[lid.y][lid.x] = select(0.0, B[bbase + kb * u.bsr + col * u.bsc], kb < u.K && col < u.N);
    workgroupBarrier();
    for (var k = 0u; k < ${TILE}u; k++) { acc += ta[lid.y][k] * tb[k][lid.x]; }
    workgroupBarrier();
  }
  if (row < u.M && col < u.N) {
    out[bo * u.osb + bi * u.osi + row * u.osr + col * u.osc] = u.alpha * acc;
  }
}`,
  );
}

/**
 * One of the attention's batched products on what webgpu-matmul.ts chose for its size (in mixed
 * precision: the f16 variant of our kernel).
 */
function attnProduct(
  key: string,
  a: Strided,
  b: Strided,
  out: OutView,
  dims: { M: number; N: number; K: number; outer: number; inner: number; alpha: number },
  choice?: Choice,
): tf.Tensor {
  const outputs = dims.M * dims.N * dims.outer * dims.inner;
  // (an explicit choice: a measurement's)
  const mixed = matmulPrecision() === 'mixed';
  const c = choice ?? (mixed ? mixedChoice('attn', outputs) : choiceFor('attn', outputs));
  return c === 'simple' ? stridedMatMul(key, a, b, out, dims) : runStrided(c, a, b, out, dims);
}

/**
 * The attention's two forward products alone, on choice c (for webgpu-matmul.ts's measurement):
 * scores = x y^T per head (x, y [B*T, A*D]), or context = x y (x the probabilities [B*A*T, T],
 * y [B*T, A*D]).
 */
export function attentionProduct(
  c: Choice,
  which: 'scores' | 'context',
  x: tf.Tensor2D,
  y: tf.Tensor2D,
  dims: { B: number; A: number; T: number; D: number },
): tf.Tensor {
  const { B, A, T, D } = dims;
  const AD = A * D;
  const tok = (t: tf.Tensor, tr: boolean): Strided =>
    tr ? { t, sb: T * AD, si: D, sr: 1, sc: AD } : { t, sb: T * AD, si: D, sr: AD, sc: 1 };
  const d = { outer: B, inner: A, alpha: 1 };
  if (which === 'scores') {
    const out = { shape: [B, A, T, T], sb: A * T * T, si: T * T, sr: T, sc: 1 };
    return attnProduct('attn_scores', tok(x, false), tok(y, true), out, { M: T, N: T, K: D, ...d }, c);
  }
  const p: Strided = { t: x, sb: A * T * T, si: T * T, sr: T, sc: 1 };
  const out = { shape: [B * T, AD], sb: T * AD, si: D, sr: AD, sc: 1 };
  return attnProduct('attn_context', p, tok(y, false), out, { M: T, N: D, K: T, ...d }, c);
}

/** An attention's dropout, or null. */
type AttnDrop = DropSlot | null;

/**
 * Row softmax of scores [B, A, T, T] + (1 - mask[b, key]) * -1e9 (mask [B, T], 1 = token): the
 * probabilities, and where drop is given the same program writes them dropped out too (the mask the
 * dropout kernel draws from the same slot), for the product with v.
 */
function maskedSoftmax(
  scores: tf.Tensor,
  mask: tf.Tensor,
  A: number,
  T: number,
  drop: AttnDrop,
): { probs: tf.Tensor; dropped: tf.Tensor } {
  const inputs = [
    { name: 's', t: scores },
    { name: 'mask', t: mask },
  ];
  const d = dropParts(drop);
  const z = '(s[o + j] + (1.0 - mask[mo + j]) * -1e9)';
  const outs = [{ name: 'out', shape: scores.shape }, ...(drop ? [{ name: 'dropped', shape: scores.shape }] : [])];
  const write = drop
    ? `let pj = exp(${z} - mx) * inv; out[o + j] = pj; dropped[o + j] = dropAt(o + j, key, pj);`
    : `out[o + j] = exp(${z} - mx) * inv;`;
  const [probs, dropped] = rowKernelN(
    `masked_softmax${d.key}`,
    [...inputs, ...d.inputs],
    outs,
    T,
    [['AT', 'u32', A * T], ...d.fields],
    `let mo = (row / u.AT) * u.H;
    ${drop ? 'let key = dropKey();' : ''}
    var m = -3.4e38;
    ${EACH_J} { m = max(m, ${z}); }
    let mx = wmax(m, li);
    var e = 0.0;
    ${EACH_J} { e += exp(${z} - mx); }
    let inv = 1.0 / wsum(e, li);
    ${EACH_J} { ${write} }`,
    d.prelude,
  );
  d.read();
  return { probs, dropped: dropped ?? probs };
}

/**
 * ds = alpha * p * (dp - sum_j dp p) per row, where dp is the gradient of the probabilities: the
 * dropped ones' gradient dpd through drop's mask where there is a dropout (read in place), else dpd.
 */
function softmaxGrad(dpd: tf.Tensor, p: tf.Tensor, T: number, alpha: number, drop: AttnDrop): tf.Tensor {
  const inputs = [
    { name: 'dp', t: dpd },
    { name: 'p', t: p },
  ];
  const d = dropParts(drop);
  const dp = (i: string) => (drop ? `dropAt(${i}, key, dp[${i}])` : `dp[${i}]`);
  const ds = rowKernel(
    `softmax_grad${d.key}`,
    [...inputs, ...d.inputs],
    p.shape,
    T,
    [['alpha', 'f32', alpha], ...d.fields],
    `${drop ? 'let key = dropKey();' : ''}
    var s = 0.0;
    ${EACH_J} { s += ${dp('o + j')} * p[o + j]; }
    let d = wsum(s, li);
    ${EACH_J} { out[o + j] = u.alpha * p[o + j] * (${dp('o + j')} - d); }`,
    d.prelude,
  );
  d.read();
  return ds;
}

/**
 * Where one of q, k, v [B*T, A*D] lies: columns off..off + A*D of t, whose rows are `row` wide (A*D
 * for q, k, v apart; 3 A*D for the packed projection of selfAttention).
 */
interface HeadsIn {
  t: tf.Tensor;
  off: number;
  row: number;
}

/** The attention's views and batched products for dims (see attend). */
function attentionViews(dims: AttentionDims) {
  const { B, T, A, D } = dims;
  const AD = A * D;
  // Operand views. In [B*T, row] from column off: (b, a, t, d) at off + b*T*row + a*D + t*row + d.
  // In [B, A, T, T]: (b, a, i, j) at b*A*T*T + a*T*T + i*T + j.
  const tok = (h: HeadsIn, transposed: boolean): Strided =>
    transposed
      ? { t: h.t, off: h.off, sb: T * h.row, si: D, sr: 1, sc: h.row }
      : { t: h.t, off: h.off, sb: T * h.row, si: D, sr: h.row, sc: 1 };
  const sq = (t: tf.Tensor, transposed: boolean): Strided =>
    transposed ? { t, sb: A * T * T, si: T * T, sr: 1, sc: T } : { t, sb: A * T * T, si: T * T, sr: T, sc: 1 };
  const sqOut = { shape: [B, A, T, T], sb: A * T * T, si: T * T, sr: T, sc: 1 };
  const tokOut = { shape: [B * T, AD], sb: T * AD, si: D, sr: AD, sc: 1 };
  const bmm = (key: string, a: Strided, b: Strided, out: OutView, M: number, N: number, K: number, alpha = 1) =>
    attnProduct(key, a, b, out, { M, N, K, outer: B, inner: A, alpha });
  const own = (t: tf.Tensor): HeadsIn => ({ t, off: 0, row: AD });
  return { tok, sq, sqOut, tokOut, bmm, own };
}

/**
 * softmax(q k^T / sqrt(D) + mask) with dropout (drop: its rate and seed slot), @ v: the context
 * [B*T, A*D] and what the backward pass needs (the probabilities before and after dropout).
 */
function attend(
  q: HeadsIn,
  k: HeadsIn,
  v: HeadsIn,
  mask: tf.Tensor,
  dims: AttentionDims,
  drop: AttnDrop,
): { ctx: tf.Tensor; probs: tf.Tensor; dropped: tf.Tensor } {
  const { T, A, D } = dims;
  const { tok, sq, sqOut, tokOut, bmm } = attentionViews(dims);
  const scores = bmm('attn_scores', tok(q, false), tok(k, true), sqOut, T, T, D, 1 / Math.sqrt(D));
  const { probs, dropped } = maskedSoftmax(scores, mask, A, T, drop);
  scores.dispose();
  const ctx = bmm('attn_context', sq(dropped, false), tok(v, false), tokOut, T, D, T);
  return { ctx, probs, dropped };
}

/** attend's gradients: dq, dk, dv [B*T, A*D] from dctx (5 programs, with dropout or without). */
function attendGrad(
  dctx: tf.Tensor,
  q: HeadsIn,
  k: HeadsIn,
  v: HeadsIn,
  probs: tf.Tensor,
  dropped: tf.Tensor,
  dims: AttentionDims,
  drop: AttnDrop,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const { T, D } = dims;
  const { tok, sq, sqOut, tokOut, bmm, own } = attentionViews(dims);
  const dc = own(dctx);
  // d(dropped) = dctx v^T; dv = dropped^T dctx
  const dpd = bmm('attn_dprobs', tok(dc, false), tok(v, true), sqOut, T, T, D);
  const dv = bmm('attn_dv', sq(dropped, true), tok(dc, false), tokOut, T, D, T);
  const ds = softmaxGrad(dpd, probs, T, 1 / Math.sqrt(D), drop);
  dpd.dispose();
  const dq = bmm('attn_dq', sq(ds, false), tok(k, false), tokOut, T, D, T);
  const dk = bmm('attn_dk', sq(ds, true), tok(q, false), tokOut, T, D, T);
  ds.dispose();
  return [dq, dk, dv];
}

/**
 * Multi-head self-attention on q, k, v [B*T, A*D] (the dense layers' layout; head a is columns
 * a*D..a*D+D), mask [B, T]: softmax(q k^T / sqrt(D) + mask) with dropout, @ v, back in
 * [B*T, A*D]. drop null: no dropout.
 */
export function attention(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  mask: tf.Tensor2D,
  dims: AttentionDims,
  drop: DropSpec | null,
): tf.Tensor2D {
  const d = dropSlot(drop, 'attention');
  const { own } = attentionViews(dims);
  const f = customOp(3, ([qt, kt, vt], save) => {
    const { ctx, probs, dropped } = attend(own(qt), own(kt), own(vt), mask, dims, d);
    save([qt, kt, vt, probs, dropped]);
    return {
      value: ctx,
      gradFunc: (dctx: tf.Tensor, saved: tf.Tensor[]) => {
        const [sq, sk, sv, p, pd] = saved;
        return attendGrad(dctx, own(sq), own(sk), own(sv), p, pd, dims, d);
      },
    };
  });
  return f(q, k, v) as tf.Tensor2D;
}

/**
 * A kernel's walk over the stacked projections, [W_q; W_k; W_v] [3 A*D, H] then [b_q; b_k; b_v]
 * [3 A*D] (n = 3 A*D H weights): the WGSL statement `weight` for stacked weight i, `bias` for stacked
 * bias c, each with its part s (0 q, 1 k, 2 v) and its index j within that part; and the uniforms
 * and grid.
 */
function stackedWalk(AD: number, H: number, weight: string, bias: string) {
  const n = 3 * AD * H;
  const fields: Field[] = [
    ['n', 'u32', n],
    ['part', 'u32', AD * H],
    ['AD', 'u32', AD],
  ];
  const body = `${MAIN_FLAT} {
  let stride = nwg.x * ${WG}u;
  for (var i = gid.x; i < u.n + 3u * u.AD; i += stride) {
    if (i < u.n) {
      let j = i % u.part;
      let s = i / u.part;
      ${weight}
    } else {
      let c = i - u.n;
      let j = c % u.AD;
      let s = c / u.AD;
      ${bias}
    }
  }
}`;
  return { fields, groups: gridGroups(n + 3 * AD), body };
}

/** WGSL: the value of part s (0, 1, 2) at j, of the three arrays X0, X1, X2. */
const ofPart = (X: string) => `select(select(${X}2[j], ${X}1[j], s == 1u), ${X}0[j], s == 0u)`;

/**
 * [W_q; W_k; W_v] [3 A*D, H] and [b_q; b_k; b_v] [3 A*D] in one program (the projections stacked,
 * so that one matmul makes q, k and v side by side).
 */
function stackProjections(ws: tf.Tensor[], bs: tf.Tensor[]): [tf.Tensor, tf.Tensor] {
  const [AD, H] = ws[0].shape;
  const walk = stackedWalk(AD, H, `w[i] = ${ofPart('w')};`, `b[c] = ${ofPart('b')};`);
  const [w, b] = runKernel(
    'qkv_stack',
    [...ws.map((t, i) => ({ name: `w${i}`, t })), ...bs.map((t, i) => ({ name: `b${i}`, t }))],
    [
      { name: 'w', shape: [3 * AD, H] },
      { name: 'b', shape: [3 * AD] },
    ],
    walk.fields,
    walk.groups,
    walk.body,
  );
  return [w, b];
}

/** q, k, v's gradients [M, A*D] side by side, [M, 3 A*D] (the packed projection's). */
function packColumns(ds: tf.Tensor[]): tf.Tensor {
  const [M, AD] = ds[0].shape;
  return launch(
    'qkv_pack',
    ds.map((t, i) => ({ name: `d${i}`, t })),
    [M, 3 * AD],
    [
      ['n', 'u32', 3 * M * AD],
      ['AD', 'u32', AD],
    ],
    gridGroups(3 * M * AD),
    `${MAIN_FLAT} {
  let stride = nwg.x * ${WG}u;
  for (var i = gid.x; i < u.n; i += stride) {
    let c = i % (3u * u.AD);
    let j = (i / (3u * u.AD)) * u.AD + c % u.AD;
    let s = c / u.AD;
    out[i] = ${ofPart('d')};
  }
}`,
  );
}

/** stackProjections' inverse for the gradients: dW [3 A*D, H], db [3 A*D] -> dW_q, db_q, dW_k, ... */
function unstackGrads(dw: tf.Tensor, db: tf.Tensor): tf.Tensor[] {
  const [AD3, H] = dw.shape;
  const AD = AD3 / 3;
  const toPart = (X: string, v: string) =>
    `if (s == 0u) { ${X}0[j] = ${v}; } else if (s == 1u) { ${X}1[j] = ${v}; } else { ${X}2[j] = ${v}; }`;
  const walk = stackedWalk(AD, H, toPart('w', 'dw[i]'), toPart('b', 'db[c]'));
  return runKernel(
    'qkv_unstack',
    [
      { name: 'dw', t: dw },
      { name: 'db', t: db },
    ],
    [0, 1, 2].flatMap((i) => [
      { name: `w${i}`, shape: [AD, H] },
      { name: `b${i}`, shape: [AD] },
    ]),
    walk.fields,
    walk.groups,
    walk.body,
  );
}

/**
 * Self-attention with its projections: attention(x W_q^T + b_q, x W_k^T + b_k, x W_v^T + b_v).
 * The three weights are stacked (1 program) and projected by one matmul into q, k, v side by side
 * [B*T, 3 A*D], which the attention reads in place. Backward: the attention's, q, k and v's
 * gradients packed side by side (1 program), then one matmul each for dx and the stacked dW, one
 * column sum for the stacked db, and 1 program unstacking them. 2 programs forward and 5 backward
 * besides the attention's, where the three dense layers took 3 and 9, and 2 adds of their dx.
 */
export function selfAttention(
  x: tf.Tensor2D,
  q: Dense,
  k: Dense,
  v: Dense,
  mask: tf.Tensor2D,
  dims: AttentionDims,
  drop: DropSpec | null,
): tf.Tensor2D {
  const d = dropSlot(drop, 'attention');
  const AD = dims.A * dims.D;
  const at = (t: tf.Tensor, i: number): HeadsIn => ({ t, off: i * AD, row: 3 * AD });
  const f = customOp(7, ([xt, wq, bq, wk, bk, wv, bv], save) => {
    const [w, b] = stackProjections([wq, wk, wv], [bq, bk, bv]);
    const qkv = mm(xt as tf.Tensor2D, w as tf.Tensor2D, false, true, b as tf.Tensor1D);
    b.dispose();
    const { ctx, probs, dropped } = attend(at(qkv, 0), at(qkv, 1), at(qkv, 2), mask, dims, d);
    save([xt, w, qkv, probs, dropped]);
    return {
      value: ctx,
      gradFunc: (dctx: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw, sqkv, p, pd] = saved as tf.Tensor2D[];
        const ds = attendGrad(dctx, at(sqkv, 0), at(sqkv, 1), at(sqkv, 2), p, pd, dims, d);
        const dqkv = packColumns(ds) as tf.Tensor2D;
        tf.dispose(ds);
        const dx = mm(dqkv, sw, false, false);
        const dw = mm(dqkv, sx, true, false);
        const db = columnSum(dqkv);
        dqkv.dispose();
        const grads = unstackGrads(dw, db);
        tf.dispose([dw, db]);
        return [dx, ...grads];
      },
    };
  });
  return f(x, q.w, q.b, k.w, k.b, v.w, v.b) as tf.Tensor2D;
}

// ---------------------------------------------------------------------------------------------
// embeddings

/**
 * The word table's gradient (embeddings): about EMBED_OWNERS invocations own its entries, in at
 * most EMBED_BUCKETS buckets of words (each invocation reads every id: more buckets, more reads;
 * fewer, more rows added one after another by one invocation).
 */
const EMBED_OWNERS = 16384;
const EMBED_BUCKETS = 64;

/**
 * BERT's embedding sum [N, H]: words[ids[n]] + pos[n mod T] + type[types[n], or 0 where types is
 * null]; an id or type outside its table adds 0. One program forward; backward two: the position
 * and type tables' gradients (sums over the batch, over each type's tokens), then the word table's.
 * Each of the word table's entries (v, h) has one owner invocation, (v mod NB, h): it zeroes its
 * entries, then walks the tokens in order and adds the rows of its words, so the gradient is the
 * same from run to run (an atomic scatter is not: the order of the additions into a repeated word
 * would follow the GPU's scheduling, and AdamW turns such rounding noise in a gradient that is
 * zero in exact arithmetic, as the key bias's, into a step). NB: EMBED_OWNERS / H, at most
 * EMBED_BUCKETS. ids and types are constants.
 */
export const embeddings: Ops['embeddings'] = (words, pos, type, ids, types, T) => {
  const [V, H] = words.shape;
  const N = ids.shape[0];
  const [P, Ty] = [pos.shape[0], type.shape[0]];
  const tv = types ? 'tv' : '';
  const typeOf = (n: string) => (types ? `tyid[${n}]` : '0');
  const fields: Field[] = [
    ['N', 'u32', N],
    ['H', 'u32', H],
    ['T', 'u32', T],
    ['V', 'u32', V],
    ['P', 'u32', P],
    ['Ty', 'u32', Ty],
  ];
  const idIns = [{ name: 'ids', t: ids, i32: true }, ...(types ? [{ name: 'tyid', t: types, i32: true }] : [])];
  const f = customOp(3, ([W, Pt, Y], save) => {
    save([ids, ...(types ? [types] : [])]);
    const value = launch(
      `embed${tv}`,
      [{ name: 'W', t: W }, { name: 'Pt', t: Pt }, { name: 'Y', t: Y }, ...idIns],
      [N, H],
      fields,
      gridGroups(N * H),
      `${MAIN_FLAT} {
  for (var i = gid.x; i < u.N * u.H; i += nwg.x * ${WG}u) {
    let n = i / u.H;
    let h = i % u.H;
    let id = ids[n];
    let k = ${typeOf('n')};
    var v = Pt[(n % u.T) * u.H + h];
    if (id >= 0 && u32(id) < u.V) { v = W[u32(id) * u.H + h] + v; }
    if (k >= 0 && u32(k) < u.Ty) { v += Y[u32(k) * u.H + h]; }
    out[i] = v;
  }
}`,
    );
    return {
      value,
      gradFunc: (dy: tf.Tensor, [sids, stypes]: tf.Tensor[]) => {
        const tyIn = types ? [{ name: 'tyid', t: stypes, i32: true }] : [];
        // 1: dP[t]: the sum of dy at position t over the batch (0 past T); dY[k]: of type k's tokens
        const total = Math.max(P, Ty) * H;
        const [dP, dY] = runKernel(
          `embed_grad_tables${tv}`,
          [{ name: 'dy', t: dy }, ...tyIn],
          [
            { name: 'dP', shape: [P, H] },
            { name: 'dY', shape: [Ty, H] },
          ],
          [...fields, ['total', 'u32', total]],
          gridGroups(total),
          `${MAIN_FLAT} {
  for (var i = gid.x; i < u.total; i += nwg.x * ${WG}u) {
    let r = i / u.H;
    let h = i % u.H;
    if (r < u.P) {
      var s = 0.0;
      if (r < u.T) { for (var n = r; n < u.N; n += u.T) { s += dy[n * u.H + h]; } }
      dP[i] = s;
    }
    if (r < u.Ty) {
      var s = 0.0;
      for (var n = 0u; n < u.N; n++) { if (${typeOf('n')} == i32(r)) { s += dy[n * u.H + h]; } }
      dY[i] = s;
    }
  }
}`,
        );
        // 2: the word table, each entry by its owner (v mod NB, h), the tokens in order
        const NB = Math.max(1, Math.min(V, EMBED_BUCKETS, Math.ceil(EMBED_OWNERS / H)));
        const [dW] = runKernel(
          'embed_grad_words',
          [
            { name: 'dy', t: dy },
            { name: 'ids', t: sids, i32: true },
          ],
          [{ name: 'dW', shape: [V, H] }],
          [...fields, ['NB', 'u32', NB]],
          gridGroups(NB * H),
          `${MAIN_FLAT} {
  for (var t = gid.x; t < u.NB * u.H; t += nwg.x * ${WG}u) {
    let h = t % u.H;
    let b = t / u.H;
    for (var v = b; v < u.V; v += u.NB) { dW[v * u.H + h] = 0.0; }
    for (var n = 0u; n < u.N; n++) {
      let id = ids[n];
      if (id >= 0 && u32(id) < u.V && u32(id) % u.NB == b) { dW[u32(id) * u.H + h] += dy[n * u.H + h]; }
    }
  }
}`,
        );
        return [dW, dP, dY];
      },
    };
  });
  return f(words, pos, type) as tf.Tensor2D;
};

// ---------------------------------------------------------------------------------------------
// losses: the mean over a batch in one or two programs and its gradient in one (tfjs composes
// about ten programs each way, each on the whole logits). The targets (and weights) are constants:
// no gradient flows to them, as none is asked for in training.

/** WGSL: the whole reduction in one workgroup (`li` its lane), wsum at hand. */
const MAIN_ONE = `${WORKGROUP_REDUCE}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32)`;

/** WGSL: log(1 + exp(-|v|)) without losing the small values (log1p). */
const SOFTPLUS_NEG_ABS = `fn softplusNegAbs(v: f32) -> f32 {
  let e = exp(-abs(v));
  return select(log(1.0 + e), e * (1.0 - 0.5 * e), e < 1e-4);
}`;

/**
 * Mean binary cross-entropy with logits over every element: max(x, 0) - x y + log(1 + exp(-|x|)).
 * Backward: dx = dy (sigmoid(x) - y) / n.
 */
export function bceWithLogits(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  const n = logits.size;
  const fields: Field[] = [
    ['n', 'u32', n],
    ['invn', 'f32', 1 / n],
  ];
  const f = customOp(1, ([x], save) => {
    save([x, targets]);
    const value = launch(
      'bce_logits',
      [
        { name: 'x', t: x },
        { name: 'y', t: targets },
      ],
      [],
      fields,
      [1, 1, 1],
      `${SOFTPLUS_NEG_ABS}
${MAIN_ONE} {
  var s = 0.0;
  for (var i = li; i < u.n; i += ${WG}u) { let v = x[i]; s += max(v, 0.0) - v * y[i] + softplusNegAbs(v); }
  let total = wsum(s, li);
  if (li == 0u) { out[0] = total * u.invn; }
}`,
    );
    return {
      value,
      gradFunc: (dy: tf.Tensor, [sx, sy]: tf.Tensor[]) =>
        launch(
          'bce_logits_grad',
          [
            { name: 'dy', t: dy },
            { name: 'x', t: sx },
            { name: 'y', t: sy },
          ],
          sx.shape,
          fields,
          gridGroups(n),
          `${MAIN_FLAT} {
  let g = dy[0] * u.invn;
  for (var i = gid.x; i < u.n; i += nwg.x * ${WG}u) {
    let e = exp(-abs(x[i]));
    let sig = select(e / (1.0 + e), 1.0 / (1.0 + e), x[i] >= 0.0);
    out[i] = g * (sig - y[i]);
  }
}`,
        ),
    };
  });
  return f(logits) as tf.Scalar;
}

/**
 * Mean softmax cross-entropy of logits [n, V] against int targets [n], weighted by weights [n]
 * where given (sum(w (lse - x[t])) / sum(w)); a target outside 0..V-1 counts 0, as tfjs's oneHot
 * makes it. Forward: per row (its term, its log-sum-exp), then the sum and sum(w); backward: one
 * program, dx = dy w / sum(w) (softmax(x) - onehot(t)).
 */
export function softmaxCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights?: tf.Tensor1D): tf.Scalar {
  const [n, V] = logits.shape;
  const w = weights ? 'w' : '';
  // the weights' sum (or n) by the whole workgroup (once, in the sum's program), and row r's weight
  const denom = weights
    ? `var ws = 0.0;
    for (var i = li; i < u.n; i += ${WG}u) { ws += wt[i]; }
    let den = wsum(ws, li);`
    : 'let den = f32(u.n);';
  const wOf = (r: string) => (weights ? `wt[${r}]` : '1.0');
  const rowIns = (x: tf.Tensor, t: tf.Tensor, wts?: tf.Tensor) => [
    { name: 'x', t: x },
    { name: 'tg', t, i32: true },
    ...(wts ? [{ name: 'wt', t: wts }] : []),
  ];
  const fields: Field[] = [['n', 'u32', n]];
  const f = customOp(1, ([x], save) => {
    // per row: [w (lse - x[t]) (0 for a target out of range), lse]
    const stats = rowKernel(
      `xent_rows${w}`,
      rowIns(x, targets, weights),
      [n, 2],
      V,
      [],
      `let t = tg[row];
    var m = -3.4e38;
    ${EACH_J} { m = max(m, x[o + j]); }
    let mx = wmax(m, li);
    var e = 0.0;
    ${EACH_J} { e += exp(x[o + j] - mx); }
    let lse = mx + log(wsum(e, li));
    if (${FIRST_LANE}) {
      let valid = t >= 0 && u32(t) < u.H;
      out[2u * row] = select(0.0, ${wOf('row')} * (lse - x[o + u32(max(t, 0))]), valid);
      out[2u * row + 1u] = lse;
    }`,
    );
    // the loss, and its denominator for the backward pass
    const [value, den] = runKernel(
      `xent_sum${w}`,
      [{ name: 'st', t: stats }, ...(weights ? [{ name: 'wt', t: weights }] : [])],
      [
        { name: 'out', shape: [] },
        { name: 'dn', shape: [1] },
      ],
      fields,
      [1, 1, 1],
      `${MAIN_ONE} {
  var s = 0.0;
  for (var i = li; i < u.n; i += ${WG}u) { s += st[2u * i]; }
  let total = wsum(s, li);
  ${denom}
  if (li == 0u) {
    out[0] = total / den;
    dn[0] = den;
  }
}`,
    );
    save([x, stats, den, targets, ...(weights ? [weights] : [])]);
    tf.dispose([stats, den]); // their saved copies hold the data
    return {
      value,
      gradFunc: (dy: tf.Tensor, [sx, sst, sden, st, sw]: tf.Tensor[]) => {
        return rowKernel(
          `xent_grad${w}`,
          [...rowIns(sx, st, sw), { name: 'dy', t: dy }, { name: 'ss', t: sst }, { name: 'dn', t: sden }],
          sx.shape,
          V,
          [],
          `let t = tg[row];
    let valid = t >= 0 && u32(t) < u.H;
    let g = select(0.0, dy[0] * ${wOf('row')} / dn[0], valid);
    let lse = ss[2u * row + 1u];
    ${EACH_J} {
      out[o + j] = g * (exp(x[o + j] - lse) - select(0.0, 1.0, i32(j) == t));
    }`,
        );
      },
    };
  });
  return f(logits) as tf.Scalar;
}
