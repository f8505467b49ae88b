// The matmul on subgroup matrices (tensor cores through Vulkan's cooperative matrices, Dawn's
// `chromium-experimental-subgroup-matrix`), for precision mixed: f16 operands, f32 accumulation.
//
// A workgroup is 2 x 2 subgroups; each subgroup computes WM x WN result fragments of the adapter's
// configuration (M0 x N0, K0 deep: 16 x 16 x 16 on NVIDIA), so a workgroup's output tile is
// BM = 2 WM M0 by BN = 2 WN N0. K goes in steps of BK = 2 K0 through workgroup memory, loaded by
// the register-blocked kernel's tile loads and k loop (webgpu-matmul.ts: bounds-checked, strided
// views, rounded to f16 with an overflow noted) into As (k-major: A(r, k) at k BM + r, so a left
// fragment is column-major with stride BM) and Bs (B(k, c) at k BN + c: a right fragment is
// row-major, stride BN). A `-v4db` tile reads global memory in vec4 where the product allows and is
// double-buffered in steps of BK = K0: the next step's loads are issued into registers before this
// step's multiply-accumulates (their latency hidden behind the tensor cores' work), one barrier a
// step, in the workgroup memory of one buffer of 2 K0. The result fragments leave one at a time
// through a small workgroup buffer (one fragment per subgroup), from which every thread writes its
// share with the bounds, alpha, bias and the overflow's NaN, as the register-blocked kernel does.
//
// Two dialects of the same kernel text:
//   - 'device': Dawn's builtins. Dawn's WGSL has two spellings (majorness as a template argument,
//     and the older bool argument), and a subgroup's index may come from @builtin(subgroup_id) or
//     the invocation's index over the subgroup size; SG_FORMS lists them in the order tried. The
//     offsets depend on the subgroup, which Tint's uniformity analysis (workgroup scope) cannot
//     prove uniform, so its chromium.subgroup_matrix_uniformity diagnostic is turned off, as
//     ONNX Runtime's and llama.cpp's WebGPU kernels do.
//   - 'emulated': the same loads, multiply-accumulates and stores written in plain WGSL over the
//     same workgroup memory, with the builtins' documented semantics (Dawn's subgroup_matrix.md:
//     row-major [r, c] at offset + stride r + c, column-major at offset + stride c + r); each lane
//     of a 32-invocation "subgroup" holds the result elements e = lane + 32 q of a fragment. It
//     runs on any adapter with shader-f16 (lavapipe), so that the tiling, the offsets, the strides,
//     the bounds and the epilogue are tested where no adapter offers subgroup matrices; only the
//     builtins' spelling and speed need a GPU (the measurement checks each candidate's output
//     against the f16 register-blocked kernel's before timing it, webgpu-matmul.ts).

/** One of the adapter's subgroup-matrix configurations (f16 operands, f32 result): M0 x N0, K0 deep. */
export interface SgConfig {
  M: number;
  N: number;
  K: number;
}

/** A tile: WM x WN fragments a subgroup (2 x 2 subgroups a workgroup). */
export interface SgTile {
  WM: number;
  WN: number;
  /** Global loads as vec4 where the product's sizes and strides allow (else scalar), as Tile.V4. */
  V4?: boolean;
  /** Double-buffered, k steps of K0 (else single, steps of 2 K0), as Tile.DB. */
  DB?: boolean;
}

/** The tiles tried per configuration (their names end in -WMxWN). */
export const SG_TILES: Record<string, SgTile> = {
  '2x2': { WM: 2, WN: 2 },
  '4x2': { WM: 4, WN: 2 },
  '4x4': { WM: 4, WN: 4 },
  '4x2-v4db': { WM: 4, WN: 2, V4: true, DB: true },
  '4x4-v4db': { WM: 4, WN: 4, V4: true, DB: true },
};

/** Subgroups a workgroup: SGM x SGN. */
const SGM = 2;
const SGN = 2;

/** How the device dialect spells the builtins and finds a subgroup's index. */
export interface SgForm {
  /** Majorness as a template argument (Dawn's current form), else as a bool argument. */
  templated: boolean;
  /** @builtin(subgroup_id), else the invocation's index over the subgroup size. */
  subgroupId: boolean;
}

/** The device forms, in the order the measurement tries them (the first that compiles and agrees). */
export const SG_FORMS: SgForm[] = [
  { templated: true, subgroupId: true },
  { templated: true, subgroupId: false },
  { templated: false, subgroupId: true },
];

export type SgDialect = { kind: 'device'; form: SgForm } | { kind: 'emulated' };

/** A candidate's name: sg:M0xN0xK0-WMxWN. */
export function sgName(cfg: SgConfig, tile: string): string {
  return `sg:${cfg.M}x${cfg.N}x${cfg.K}-${tile}`;
}

/** sg:M0xN0xK0-WMxWN back to its configuration and tile, or null. */
export function parseSgName(name: string): { cfg: SgConfig; tile: SgTile; tileName: string } | null {
  const m = /^sg:(\d+)x(\d+)x(\d+)-(\d+x\d+(?:-[a-z0-9]+)?)$/.exec(name);
  if (!m || !SG_TILES[m[4]]) return null;
  return { cfg: { M: +m[1], N: +m[2], K: +m[3] }, tile: SG_TILES[m[4]], tileName: m[4] };
}

/** A tile's sizes: the output tile BM x BN, the k step BK, the threads, the workgroup bytes. */
export function sgShape(cfg: SgConfig, tile: SgTile, subgroupSize: number) {
  const BM = SGM * tile.WM * cfg.M;
  const BN = SGN * tile.WN * cfg.N;
  const BK = tile.DB ? cfg.K : 2 * cfg.K;
  const threads = SGM * SGN * subgroupSize;
  // As and Bs in f16 (two of each where double-buffered), one f32 fragment a subgroup
  const bytes = 2 * BK * (BM + BN) * (tile.DB ? 2 : 1) + 4 * SGM * SGN * cfg.M * cfg.N;
  return { BM, BN, BK, threads, bytes };
}

/**
 * Whether the kernel's loops divide evenly, the tile loads (BM BK and BN BK elements over the
 * threads; with V4, groups of 4 along either dimension, fewer groups than threads or a multiple of
 * them) and the epilogue (a fragment's elements over a subgroup's invocations), and the tile fits
 * the device's limits.
 */
export function sgFits(cfg: SgConfig, tile: SgTile, subgroupSize: number, limits: SgLimits): boolean {
  const s = sgShape(cfg, tile, subgroupSize);
  const groups = (n: number) => n % 4 === 0 && (n / 4 < s.threads || (n / 4) % s.threads === 0);
  const v4 =
    !tile.V4 || (s.BM % 4 === 0 && s.BN % 4 === 0 && s.BK % 4 === 0 && groups(s.BM * s.BK) && groups(s.BN * s.BK));
  return (
    v4 &&
    (s.BM * s.BK) % s.threads === 0 &&
    (s.BN * s.BK) % s.threads === 0 &&
    (cfg.M * cfg.N) % subgroupSize === 0 &&
    s.bytes <= limits.maxBytes &&
    s.threads <= limits.maxThreads
  );
}

/** The device's limits a tile must fit: workgroup memory bytes and invocations a workgroup. */
export interface SgLimits {
  maxBytes: number;
  maxThreads: number;
}

/** The emulated dialect's subgroup size. */
export const EMULATED_SUBGROUP = 32;

/**
 * The kernel's WGSL. From the register-blocked kernel (webgpu-matmul.ts): `kLoop`, its k loop with
 * the tile loads into As and Bs around a k step's math (which reads the tiles at ra, rb where
 * double-buffered); `bases`, its start (batch, operand bases, row0, col0, alast, blast); `head`, its
 * f16 helpers (h(), ovf, wovf); `bindings`: A, B, bias, out, u.
 */
export function sgWgsl(o: {
  cfg: SgConfig;
  tile: SgTile;
  subgroupSize: number;
  dialect: SgDialect;
  kLoop: (math: string) => string;
  bases: string;
  head: string;
  bindings: string;
  bias: boolean;
}): string {
  const { cfg, tile, dialect } = o;
  const S = o.subgroupSize;
  const { BM, BN, BK, threads } = sgShape(cfg, tile, S);
  const { WM, WN } = tile;
  const buffers = tile.DB ? 2 : 1;
  const frag = cfg.M * cfg.N;
  const dev = dialect.kind === 'device' ? dialect.form : null;
  // the builtins, or their emulation
  // a left fragment: column-major in As (stride BM); a right one: row-major in Bs (stride BN)
  // double-buffered: this step's buffer starts at ra, rb
  const [ra, rb] = tile.DB ? ['ra + ', 'rb + '] : ['', ''];
  const load = (side: 'L' | 'R', off: string) => {
    const [from, colMajor, stride] = side === 'L' ? ['As', true, BM] : ['Bs', false, BN];
    if (!dev) return `vec2<u32>(${off}, ${stride}u)`;
    return dev.templated
      ? `subgroupMatrixLoad<Sg${side}, ${colMajor ? 'col_major' : 'row_major'}>(&${from}, ${off}, ${stride}u)`
      : `subgroupMatrixLoad<Sg${side}>(&${from}, ${off}, ${colMajor}, ${stride}u)`;
  };
  const mma = (a: string, b: string, c: string) =>
    dev ? `subgroupMatrixMultiplyAccumulate(${a}, ${b}, ${c})` : `emuMma(${a}, ${b}, ${c})`;
  const store = (off: string, c: string) =>
    dev
      ? dev.templated
        ? `subgroupMatrixStore<row_major>(&Cs, ${off}, ${c}, ${cfg.N}u);`
        : `subgroupMatrixStore(&Cs, ${off}, ${c}, false, ${cfg.N}u);`
      : `emuStore(${off}, ${c});`;
  const types = dev
    ? `alias SgL = subgroup_matrix_left<f16, ${cfg.K}, ${cfg.M}>;
alias SgR = subgroup_matrix_right<f16, ${cfg.N}, ${cfg.K}>;
alias SgC = subgroup_matrix_result<f32, ${cfg.N}, ${cfg.M}>;`
    : `// a left or right fragment: (offset, stride) into As (column-major) or Bs (row-major)
alias SgL = vec2<u32>;
alias SgR = vec2<u32>;
// a lane's share of a result fragment: elements e = lane + ${S} q (row-major in the fragment)
struct SgC { v: array<f32, ${frag / S}> }
var<private> emuLane: u32;
// 1, in a way the compiler cannot know: loops over it stay loops (lavapipe's LLVM took minutes
// unrolling the ${WM * WN} fragments' fully)
var<private> emuOne: u32;
fn emuMma(a: SgL, b: SgR, c: SgC) -> SgC {
  var r = c;
  for (var q = 0u; q < ${frag / S}u * emuOne; q++) {
    let e = emuLane + ${S}u * q;
    let row = e / ${cfg.N}u;
    let col = e % ${cfg.N}u;
    var s = 0.0;
    for (var k = 0u; k < ${cfg.K}u * emuOne; k++) {
      s = fma(f32(As[a.x + row + a.y * k]), f32(Bs[b.x + b.y * k + col]), s);
    }
    r.v[q] += s;
  }
  return r;
}
fn emuStore(off: u32, c: SgC) {
  for (var q = 0u; q < ${frag / S}u * emuOne; q++) {
    let e = emuLane + ${S}u * q;
    Cs[off + (e / ${cfg.N}u) * ${cfg.N}u + e % ${cfg.N}u] = c.v[q];
  }
}`;
  const enables = dev
    ? `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
diagnostic(off, subgroup_uniformity);`
    : 'enable f16;';
  const sgIndex = dev?.subgroupId ? 'sgid' : `tid / ${S}u`;
  // named fragments (an array of them is avoided: some compilers spill it)
  const a = (i: number) => `a${i}`;
  const b = (j: number) => `b${j}`;
  const c = (i: number, j: number) => `c${i}_${j}`;
  const decl: string[] = [];
  for (let i = 0; i < WM; i++) decl.push(`  var ${a(i)}: SgL;`);
  for (let j = 0; j < WN; j++) decl.push(`  var ${b(j)}: SgR;`);
  for (let i = 0; i < WM; i++) for (let j = 0; j < WN; j++) decl.push(`  var ${c(i, j)}: SgC;`);
  let inner = `for (var kk = 0u; kk < ${BK}u; kk += ${cfg.K}u) {\n`;
  for (let i = 0; i < WM; i++) inner += `      ${a(i)} = ${load('L', `${ra}kk * ${BM}u + arow + ${i * cfg.M}u`)};\n`;
  for (let j = 0; j < WN; j++) inner += `      ${b(j)} = ${load('R', `${rb}kk * ${BN}u + bcol + ${j * cfg.N}u`)};\n`;
  for (let i = 0; i < WM; i++)
    for (let j = 0; j < WN; j++) inner += `      ${c(i, j)} = ${mma(a(i), b(j), c(i, j))};\n`;
  inner += '    }';
  let epilogue = '';
  for (let i = 0; i < WM; i++)
    for (let j = 0; j < WN; j++)
      epilogue += `
  ${store(`sg * ${frag}u`, c(i, j))}
  workgroupBarrier();
  for (var q = 0u; q < ${frag / S}u; q++) {
    let e = tid + q * ${threads}u;
    let f = e / ${frag}u;
    let p = e % ${frag}u;
    let r = row0 + ((f % ${SGM}u) * ${WM}u + ${i}u) * ${cfg.M}u + p / ${cfg.N}u;
    let cc = col0 + ((f / ${SGM}u) * ${WN}u + ${j}u) * ${cfg.N}u + p % ${cfg.N}u;
    if (r < u.M && cc < u.N) {
      let y = u.alpha * Cs[e]${o.bias ? ' + bias[cc]' : ''};
      out[obase + r * u.osr + cc * u.osc] = select(y, u.poison, bad);
    }
  }
  workgroupBarrier();`;
  return `${enables}
${o.head}
${o.bindings}
var<workgroup> As: array<f16, ${BK * BM * buffers}>;
var<workgroup> Bs: array<f16, ${BK * BN * buffers}>;
var<workgroup> Cs: array<f32, ${SGM * SGN * frag}>;
${types}
@compute @workgroup_size(${threads})
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>${
    dev?.subgroupId ? ', @builtin(subgroup_id) sgid: u32' : ''
  }) {
  ${
    dev
      ? ''
      : `emuLane = tid % ${S}u;
  emuOne = select(1u, 2u, u.K == 0xffffffffu);`
  }
  let sg = ${sgIndex};
  // this subgroup's fragments: rows (sg % ${SGM}) ${WM} M0 .., columns (sg / ${SGM}) ${WN} N0 ..
  let arow = (sg % ${SGM}u) * ${WM * cfg.M}u;
  let bcol = (sg / ${SGM}u) * ${WN * cfg.N}u;
${o.bases}
${decl.join('\n')}
  ${o.kLoop(inner)}
  let obase = bo * u.osb + bi * u.osi;
  // an operand beyond f16's range anywhere in this workgroup's tiles: its outputs are NaN
  if (ovf) { atomicStore(&wovf, 1u); }
  workgroupBarrier();
  let bad = atomicLoad(&wovf) != 0u;${epilogue}
}`;
}
