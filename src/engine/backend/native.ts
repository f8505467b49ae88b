// The optional native matmul: native/ builds an N-API addon over OpenBLAS's cblas_sgemm
// (scripts/build-native.mjs, run by `npm run build`). When it is built and loads, the wasm
// backend's BatchMatMul runs on it (wasm-kernels.ts); when not, tfjs's own wasm matmul runs.
//
//   BERT_PRUNER_NATIVE=0            do not load the addon (pure wasm, e.g. to compare)
//   BERT_PRUNER_NATIVE=/path.node   load this file instead of native/build/Release/bert_native.node
//                                   (an absolute path; a relative one is refused with a warning)
//   BERT_PRUNER_BLAS_THREADS=n      OpenBLAS threads (default: all cores, at most 8)
//
// The addon is loaded only from the engine's own package folder or from that variable, never from
// the current folder or its parents (trusted-paths.ts).
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { trustedCodePath } from './trusted-paths';

/** What the C addon exports (native/matmul.c). */
export interface NativeAddon {
  /** out[i] = op(a[aIndex[i]]) @ op(b[bIndex[i]]); a [*, M, K] (or [*, K, M] with transA), etc. */
  sgemm(
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    aIndex: Int32Array,
    bIndex: Int32Array,
    M: number,
    N: number,
    K: number,
    transA: boolean,
    transB: boolean,
  ): void;
  /** x [P, R, C] -> out [P, C], summing over R. */
  reduceSum(x: Float32Array, out: Float32Array, P: number, R: number, C: number): void;
  /** out[i, :] = x[idx[i], :] (rows of `inner` values); throws on an index outside x. */
  gatherRows(x: Float32Array, idx: Int32Array, out: Float32Array, inner: number): void;
  /** out[s, :] = sum of x[i, :] with ids[i] == s; ids outside out's rows are dropped. */
  segmentSum(x: Float32Array, ids: Int32Array, out: Float32Array, inner: number): void;
  /** out = exp(x) (op 0) or erf(x) (op 1), vectorized. */
  unary(op: 0 | 1, x: Float32Array, out: Float32Array): void;
  /**
   * out = a op b (op 0 add, 1 sub, 2 mul, 3 div) over [rows, cols]; each operand's mode says how it
   * spans that: 0 every value, 1 a row vector [cols] on every row, 2 one value per row [rows].
   */
  binary(
    op: number,
    a: Float32Array,
    aMode: number,
    b: Float32Array,
    bMode: number,
    out: Float32Array,
    rows: number,
    cols: number,
  ): void;
  /** One AdamW update in place; hyper = [gscale, b1, 1 - b1, b2, 1 - b2, c1, c2, eps, lr, 1 - lr wd]. */
  adamw(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, hyper: Float64Array): void;
  /** Sum of x[i]^2, accumulated in double. */
  sumSquares(x: Float32Array): number;
  /** pre = y + b (b a row vector of cols values), act = exact gelu(pre); over [rows, cols]. */
  biasGelu(y: Float32Array, b: Float32Array, pre: Float32Array, act: Float32Array, rows: number, cols: number): void;
  /** dx = dy gelu'(pre). */
  geluGrad(pre: Float32Array, dy: Float32Array, dx: Float32Array): void;
  /** Inverted dropout: mask from (seed, index) alone, 0 or 1 / (1 - rate); y = x mask. */
  dropout(x: Float32Array, y: Float32Array, mask: Float32Array, rate: number, seed: number): void;
  /** out [M, N] = x [M, K] w [N, K]^T + bias [N]. */
  linear(
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array,
    out: Float32Array,
    M: number,
    N: number,
    K: number,
  ): void;
  /**
   * LayerNorm of [rows, cols] per row, of x + r (r empty: of x): y = xhat g + b, with xhat and rstd
   * [rows] kept for the gradient.
   */
  layerNorm(
    x: Float32Array,
    r: Float32Array,
    g: Float32Array,
    b: Float32Array,
    y: Float32Array,
    xhat: Float32Array,
    rstd: Float32Array,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  /** LayerNorm's gradient from dy and the saved xhat and rstd: dx, and dg, db (overwritten). */
  layerNormGrad(
    dy: Float32Array,
    xhat: Float32Array,
    rstd: Float32Array,
    g: Float32Array,
    dx: Float32Array,
    dg: Float32Array,
    db: Float32Array,
    rows: number,
    cols: number,
  ): void;
  setThreads(n: number): void;
  getThreads(): number;
  /** OpenBLAS's build description, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64". */
  config(): string;
}

export interface NativeStatus {
  loaded: boolean;
  /** Where the addon was (or was looked for), or why it was not loaded. */
  detail: string;
  threads?: number;
  blas?: string;
}

const ADDON = path.join('native', 'build', 'Release', 'bert_native.node');
let addon: NativeAddon | null | undefined;
let status: NativeStatus = { loaded: false, detail: 'not tried' };

/**
 * All cores (at most 8) unless BERT_PRUNER_BLAS_THREADS says otherwise. The addon itself runs small
 * matmuls on one thread (native/matmul.c, MT_MIN_MACS): measured here, a second thread slowed the
 * small models' matmuls (a pruned quick model: 18 ms per batch with 2 threads, 12 ms with 1) and
 * sped up the large ones (L4-H256 training 1.03x -> 1.19x PyTorch).
 */
function defaultThreads(): number {
  const env = Number(process.env.BERT_PRUNER_BLAS_THREADS);
  if (Number.isInteger(env) && env >= 1) return env;
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(8, cores));
}

/** The addon, loaded once; null (with nativeStatus().detail saying why) when it is absent or broken. */
export function loadNative(): NativeAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  const where = trustedCodePath(ADDON, { envName: 'BERT_PRUNER_NATIVE', envValue: process.env.BERT_PRUNER_NATIVE });
  if (where.file === null) {
    if (where.warning) process.stderr.write(`bert-pruner: warning: ${where.warning}\n`);
    const built = where.expected ? `${ADDON} is not built (npm run build:native; needs libopenblas-dev)` : where.reason;
    status = { loaded: false, detail: built };
    return null;
  }
  const file = where.file;
  try {
    const req = createRequire(typeof __filename === 'string' ? __filename : path.join(process.cwd(), 'x.js'));
    const a = req(file) as NativeAddon;
    a.setThreads(defaultThreads());
    addon = a;
    status = { loaded: true, detail: file, threads: a.getThreads(), blas: a.config() };
  } catch (e) {
    // e.g. libopenblas.so.0 removed after the build: fall back, say why.
    status = { loaded: false, detail: `${file} did not load: ${(e as Error).message.split('\n')[0]}` };
  }
  return addon;
}

export function nativeStatus(): NativeStatus {
  return status;
}

/** Change OpenBLAS's thread count at run time (benchmarks compare 1 and 2). */
export function setBlasThreads(n: number): void {
  const a = loadNative();
  if (!a) return;
  a.setThreads(n);
  status = { ...status, threads: a.getThreads() };
}
