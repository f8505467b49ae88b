// Elementwise kernels for the wasm backend, the ones a training step's profile showed slowest
// after the matmuls (src/engine/backend/native-kernels.ts registers them; 4 layers, hidden 128,
// batch 32 x 48: Multiply, Add, Sub and RealDiv were 80 of 205 ms a step, AdamW's share included):
//   binary   out = a op b for op in add, sub, mul, div, over [rows, cols], each operand either a
//            full [rows, cols] block, a row vector [cols] repeated on every row, or one value per
//            row [rows] (a column): the broadcasts a BERT step makes (biases, LayerNorm's
//            statistics, scalars as a 1 x 1 column). Anything else stays with wasm.
//   adamw    one fused, in-place AdamW update of a parameter and its two moments.
//   sumSquares  sum of x^2 in double precision (the global gradient norm).
//   biasGelu, geluGrad, dropout, layerNorm, layerNormGrad: the fused layers of native-ops.ts.
// Like the others they read and write Float32Array views of the wasm heap in place. Plain loops
// over restrict pointers: the compiler vectorizes them (avx2 and the baseline, picked at load).
#include "native.h"
#include "mathf.h"
#include <math.h>

enum { ADD = 0, SUB = 1, MUL = 2, DIV = 3 };
// How an operand spans the output's [rows, cols]: every value, a row vector, a value per row.
enum { FULL = 0, ROW = 1, COL = 2 };

#define LOOP(EXPR)                                                   \
  switch (op) {                                                      \
    case ADD: { for (int64_t j = 0; j < n; j++) { EXPR(+) } } break; \
    case SUB: { for (int64_t j = 0; j < n; j++) { EXPR(-) } } break; \
    case MUL: { for (int64_t j = 0; j < n; j++) { EXPR(*) } } break; \
    default: { for (int64_t j = 0; j < n; j++) { EXPR(/) } } break;  \
  }

__attribute__((target_clones("avx2", "default"))) static void vv(int op, const float *restrict a, const float *restrict b, float *restrict out, int64_t n) {
#define E(OP) out[j] = a[j] OP b[j];
  LOOP(E)
#undef E
}

__attribute__((target_clones("avx2", "default"))) static void vs(int op, const float *restrict a, float s, float *restrict out, int64_t n) {
#define E(OP) out[j] = a[j] OP s;
  LOOP(E)
#undef E
}

__attribute__((target_clones("avx2", "default"))) static void sv(int op, float s, const float *restrict b, float *restrict out, int64_t n) {
#define E(OP) out[j] = s OP b[j];
  LOOP(E)
#undef E
}

// The operand's values for output row i: a vector of cols values, or one value (*scalar).
static const float *row_of(const float *x, int mode, int64_t i, int64_t cols, float *scalar) {
  if (mode == FULL) return x + i * cols;
  if (mode == ROW) return x;
  *scalar = x[i];
  return NULL;
}

// binary(op, a, aMode, b, bMode, out, rows, cols)
napi_value binary(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *a, *b, *out;
  size_t na, nb, nout;
  if (argc != 8 || !typed(env, argv[1], napi_float32_array, (void **)&a, &na) || !typed(env, argv[3], napi_float32_array, (void **)&b, &nb) ||
      !typed(env, argv[5], napi_float32_array, (void **)&out, &nout)) {
    napi_throw_type_error(env, NULL, "bert_native.binary(op, a: Float32Array, aMode, b: Float32Array, bMode, out: Float32Array, rows, cols)");
    return NULL;
  }
  const int op = int_arg(env, argv[0]), am = int_arg(env, argv[2]), bm = int_arg(env, argv[4]);
  const int64_t rows = int_arg(env, argv[6]), cols = int_arg(env, argv[7]);
  const size_t want[3] = {(size_t)(rows * cols), (size_t)cols, (size_t)rows};
  if (op < ADD || op > DIV || am < FULL || am > COL || bm < FULL || bm > COL || rows < 0 || cols < 0 || nout != want[0] || na != want[am] ||
      nb != want[bm]) {
    napi_throw_range_error(env, NULL, "bert_native.binary: op, modes, rows and cols do not match the arrays");
    return NULL;
  }
  if (am == FULL && bm == FULL) {
    vv(op, a, b, out, rows * cols);
    return NULL;
  }
  for (int64_t i = 0; i < rows; i++) {
    float sa = 0, sb = 0;
    const float *ra = row_of(a, am, i, cols, &sa), *rb = row_of(b, bm, i, cols, &sb);
    float *ro = out + i * cols;
    if (ra && rb) vv(op, ra, rb, ro, cols);
    else if (ra) vs(op, ra, sb, ro, cols);
    else if (rb) sv(op, sa, rb, ro, cols);
    else {
      const int64_t n = cols;
      float *restrict o = ro;
#define E(OP) o[j] = sa OP sb;
      LOOP(E)
#undef E
    }
  }
  return NULL;
}

__attribute__((target_clones("avx2", "default"))) static void adamw_loop(float *restrict w, const float *restrict g, float *restrict m, float *restrict v, int64_t n,
                                                                      const float *restrict k) {
  const float gscale = k[0], b1 = k[1], one_b1 = k[2], b2 = k[3], one_b2 = k[4], c1 = k[5], c2 = k[6], eps = k[7], lr = k[8], decay = k[9];
  for (int64_t i = 0; i < n; i++) {
    const float gi = g[i] * gscale;
    const float mi = m[i] * b1 + gi * one_b1;
    const float vi = v[i] * b2 + (gi * gi) * one_b2;
    m[i] = mi;
    v[i] = vi;
    const float update = (mi / c1) / (sqrtf(vi / c2) + eps);
    w[i] = w[i] * decay - update * lr;
  }
}

// adamw(w, g, m, v, [gscale, beta1, 1 - beta1, beta2, 1 - beta2, c1, c2, eps, lr, 1 - lr wd]): in
// place on w, m, v. torch's AdamW: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// w = w (1 - lr wd) - lr (m / c1) / (sqrt(v / c2) + eps), with g the (clipped) gradient g * gscale.
// Each constant is rounded to float once, from the double the caller worked out, and every
// operation is the host ops' in their order (ops/host.ts), so the two give the same bits.
napi_value adamw(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *w, *g, *m, *v;
  double *h;
  size_t nw, ng, nm, nv, nh;
  if (argc != 5 || !typed(env, argv[0], napi_float32_array, (void **)&w, &nw) || !typed(env, argv[1], napi_float32_array, (void **)&g, &ng) ||
      !typed(env, argv[2], napi_float32_array, (void **)&m, &nm) || !typed(env, argv[3], napi_float32_array, (void **)&v, &nv) ||
      !typed(env, argv[4], napi_float64_array, (void **)&h, &nh) || nh != 10) {
    napi_throw_type_error(env, NULL, "bert_native.adamw(w, g, m, v: Float32Array, hyper: Float64Array(10))");
    return NULL;
  }
  if (ng != nw || nm != nw || nv != nw) {
    napi_throw_range_error(env, NULL, "bert_native.adamw: w, g, m and v differ in length");
    return NULL;
  }
  float k[10];
  for (int i = 0; i < 10; i++) k[i] = (float)h[i];
  adamw_loop(w, g, m, v, (int64_t)nw, k);
  return NULL;
}

__attribute__((target_clones("avx2", "default"))) static double sumsq_loop(const float *restrict x, int64_t n) {
  // Blocks of float sums added up in double: vectorizes, and stays accurate for large tensors.
  double total = 0;
  for (int64_t s = 0; s < n; s += 4096) {
    const int64_t e = s + 4096 < n ? s + 4096 : n;
    float acc = 0;
    for (int64_t i = s; i < e; i++) acc += x[i] * x[i];
    total += acc;
  }
  return total;
}

// sumSquares(x): sum of x[i]^2 as a double.
napi_value sum_squares(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *x;
  size_t n;
  if (argc != 1 || !typed(env, argv[0], napi_float32_array, (void **)&x, &n)) {
    napi_throw_type_error(env, NULL, "bert_native.sumSquares(x: Float32Array)");
    return NULL;
  }
  napi_value r;
  CHECK(napi_create_double(env, sumsq_loop(x, (int64_t)n), &r));
  return r;
}

// GELU for the FFN, fused with its bias (ops().linearGelu on wasm):
//   biasGelu(y, b, pre, act, rows, cols): pre = y + b (b a row vector), act = gelu(pre)
//   geluGrad(pre, dy, dpre):              dpre = dy gelu'(pre)
// gelu(x) = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); gelu'(x) = Phi(x) + x phi(x).

__attribute__((target_clones("avx2", "default"))) static void bias_gelu_row(const float *restrict y, const float *restrict b, float *restrict pre,
                                                                         float *restrict act, int64_t n) {
  for (int64_t j = 0; j < n; j++) {
    const float x = y[j] + b[j];
    pre[j] = x;
    act[j] = (x * 0.5f) * (1.0f + erf_f(x * 0.70710678118654752f));
  }
}

__attribute__((target_clones("avx2", "default"))) static void gelu_grad_loop(const float *restrict pre, const float *restrict dy, float *restrict dx,
                                                                          int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float x = pre[i];
    const float cdf = 0.5f * (1.0f + erf_f(x * 0.70710678118654752f));
    const float pdf = 0.39894228040143268f * exp_f(-0.5f * x * x);
    dx[i] = dy[i] * (cdf + x * pdf);
  }
}

napi_value bias_gelu(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *y, *b, *pre, *act;
  size_t ny, nb, np, na;
  if (argc != 6 || !typed(env, argv[0], napi_float32_array, (void **)&y, &ny) || !typed(env, argv[1], napi_float32_array, (void **)&b, &nb) ||
      !typed(env, argv[2], napi_float32_array, (void **)&pre, &np) || !typed(env, argv[3], napi_float32_array, (void **)&act, &na)) {
    napi_throw_type_error(env, NULL, "bert_native.biasGelu(y, b, pre, act: Float32Array, rows, cols)");
    return NULL;
  }
  const int64_t rows = int_arg(env, argv[4]), cols = int_arg(env, argv[5]);
  if (rows < 0 || cols < 0 || ny != (size_t)(rows * cols) || np != ny || na != ny || nb != (size_t)cols) {
    napi_throw_range_error(env, NULL, "bert_native.biasGelu: rows and cols do not match the arrays");
    return NULL;
  }
  for (int64_t i = 0; i < rows; i++) bias_gelu_row(y + i * cols, b, pre + i * cols, act + i * cols, cols);
  return NULL;
}

napi_value gelu_grad(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *pre, *dy, *dx;
  size_t np, nd, nx;
  if (argc != 3 || !typed(env, argv[0], napi_float32_array, (void **)&pre, &np) || !typed(env, argv[1], napi_float32_array, (void **)&dy, &nd) ||
      !typed(env, argv[2], napi_float32_array, (void **)&dx, &nx) || nd != np || nx != np) {
    napi_throw_type_error(env, NULL, "bert_native.geluGrad(pre, dy, dx: Float32Array of one length)");
    return NULL;
  }
  gelu_grad_loop(pre, dy, dx, (int64_t)np);
  return NULL;
}

// Inverted dropout with a counter-based generator: the mask of value i depends only on (seed, i),
// so a seed gives one mask whatever the order of work.
//   dropout(x, y, mask, rate, seed): mask[i] = u(seed, i) >= rate ? 1 / (1 - rate) : 0; y = x mask.
// u: the top 24 bits of murmur3's 32-bit finalizer of seed * golden + i, in [0, 1).
static inline uint32_t mix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

__attribute__((target_clones("avx2", "default"))) static void dropout_loop(const float *restrict x, float *restrict y, float *restrict mask, int64_t n,
                                                                        uint32_t base, uint32_t threshold, float scale) {
  for (int64_t i = 0; i < n; i++) {
    const uint32_t u = mix32(base + (uint32_t)i) >> 8;
    const float m = u >= threshold ? scale : 0.0f;
    mask[i] = m;
    y[i] = x[i] * m;
  }
}

napi_value dropout(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *x, *y, *mask;
  size_t nx, ny, nm;
  double rate = 0;
  uint32_t seed = 0;
  if (argc != 5 || !typed(env, argv[0], napi_float32_array, (void **)&x, &nx) || !typed(env, argv[1], napi_float32_array, (void **)&y, &ny) ||
      !typed(env, argv[2], napi_float32_array, (void **)&mask, &nm) || ny != nx || nm != nx || napi_get_value_double(env, argv[3], &rate) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &seed) != napi_ok) {
    napi_throw_type_error(env, NULL, "bert_native.dropout(x, y, mask: Float32Array of one length, rate, seed: uint32)");
    return NULL;
  }
  if (!(rate >= 0 && rate < 1)) {
    napi_throw_range_error(env, NULL, "bert_native.dropout: rate must be in [0, 1)");
    return NULL;
  }
  const uint32_t threshold = (uint32_t)(rate * 16777216.0);
  dropout_loop(x, y, mask, (int64_t)nx, seed * 0x9e3779b9u, threshold, (float)(1.0 / (1.0 - rate)));
  return NULL;
}

// LayerNorm over the last dimension of [rows, cols] (ops().layerNorm on wasm), the host's formula
// (ops/host.ts): per row mean, biased variance, rstd = 1 / sqrt(var + eps), xhat = (x - mean) rstd,
// y = xhat g + b; backward with gx = dy g:
//   dx = rstd (gx - mean(gx) - xhat mean(gx xhat)),  dg = sum_rows(dy xhat),  db = sum_rows(dy).
//   layerNorm(x, r, g, b, y, xhat, rstd, rows, cols, eps)    of x + r (r empty: of x alone);
//                                                            y, xhat [rows * cols], rstd [rows]
//   layerNormGrad(dy, xhat, rstd, g, dx, dg, db, rows, cols)  dg and db overwritten
// Row sums in double, so that a wide row loses nothing to the float rounding of its sum, kept in
// LANES independent partial sums: one running double sum is a chain of dependent adds the compiler
// may not reorder, 8 partial sums are vector adds (LayerNorm took 3 of a pruned model's 15 ms per
// inference batch before).
#define LANES 8
#define LANE_SUM(total, n, TERM)                                  \
  do {                                                            \
    double part_[LANES] = {0};                                    \
    int64_t j = 0;                                                \
    for (; j + LANES <= (n); j += LANES)                          \
      for (int k_ = 0; k_ < LANES; k_++) part_[k_] += TERM(j + k_); \
    for (; j < (n); j++) part_[0] += TERM(j);                     \
    total = 0;                                                    \
    for (int k_ = 0; k_ < LANES; k_++) total += part_[k_];        \
  } while (0)

// One row's LayerNorm of VAL(j), its j-th input: x[j], or x[j] + r[j] with a residual.
#define LN_X(i) ((double)VAL(i))
#define LN_SQ(i) ((double)(VAL(i) - mean) * (double)(VAL(i) - mean))
#define LN_ROW(VAL)                                          \
  double s, q;                                               \
  LANE_SUM(s, n, LN_X);                                      \
  const float mean = (float)(s / (double)n);                 \
  LANE_SUM(q, n, LN_SQ);                                     \
  const float rs = (float)(1.0 / sqrt(q / (double)n + eps)); \
  *rstd = rs;                                                \
  for (int64_t j = 0; j < n; j++) {                          \
    const float h = (VAL(j) - mean) * rs;                    \
    xhat[j] = h;                                             \
    y[j] = h * g[j] + b[j];                                  \
  }

__attribute__((target_clones("avx2", "default"))) static void ln_row(const float *restrict x, const float *restrict g, const float *restrict b,
                                                                  float *restrict y, float *restrict xhat, float *restrict rstd, int64_t n, float eps) {
#define VAL(i) x[i]
  LN_ROW(VAL)
#undef VAL
}

__attribute__((target_clones("avx2", "default"))) static void ln_res_row(const float *restrict x, const float *restrict r, const float *restrict g,
                                                                      const float *restrict b, float *restrict y, float *restrict xhat,
                                                                      float *restrict rstd, int64_t n, float eps) {
#define VAL(i) (x[i] + r[i])
  LN_ROW(VAL)
#undef VAL
}

__attribute__((target_clones("avx2", "default"))) static void ln_grad_row(const float *restrict dy, const float *restrict xhat, float rstd,
                                                                       const float *restrict g, float *restrict dx, float *restrict dg,
                                                                       float *restrict db, int64_t n) {
  double sg, sgx;
  for (int64_t j = 0; j < n; j++) {
    dg[j] += dy[j] * xhat[j];
    db[j] += dy[j];
  }
#define GX(i) (double)(dy[i] * g[i])
#define GXH(i) ((double)(dy[i] * g[i]) * xhat[i])
  LANE_SUM(sg, n, GX);
  LANE_SUM(sgx, n, GXH);
#undef GX
#undef GXH
  const float mg = (float)(sg / (double)n), mgx = (float)(sgx / (double)n);
  for (int64_t j = 0; j < n; j++) dx[j] = rstd * (dy[j] * g[j] - mg - xhat[j] * mgx);
}

napi_value layer_norm(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *x, *r, *g, *b, *y, *xhat, *rstd;
  size_t nx, nres, ng, nb, ny, nh, nr;
  double eps = 0;
  if (argc != 10 || !typed(env, argv[0], napi_float32_array, (void **)&x, &nx) || !typed(env, argv[1], napi_float32_array, (void **)&r, &nres) ||
      !typed(env, argv[2], napi_float32_array, (void **)&g, &ng) || !typed(env, argv[3], napi_float32_array, (void **)&b, &nb) ||
      !typed(env, argv[4], napi_float32_array, (void **)&y, &ny) || !typed(env, argv[5], napi_float32_array, (void **)&xhat, &nh) ||
      !typed(env, argv[6], napi_float32_array, (void **)&rstd, &nr) || napi_get_value_double(env, argv[9], &eps) != napi_ok) {
    napi_throw_type_error(env, NULL, "bert_native.layerNorm(x, r, g, b, y, xhat, rstd: Float32Array, rows, cols, eps)");
    return NULL;
  }
  const int64_t rows = int_arg(env, argv[7]), cols = int_arg(env, argv[8]);
  if (rows < 0 || cols < 1 || nx != (size_t)(rows * cols) || (nres != 0 && nres != nx) || ny != nx || nh != nx || nr != (size_t)rows ||
      ng != (size_t)cols || nb != (size_t)cols) {
    napi_throw_range_error(env, NULL, "bert_native.layerNorm: rows and cols do not match the arrays");
    return NULL;
  }
  for (int64_t i = 0; i < rows; i++) {
    if (nres) ln_res_row(x + i * cols, r + i * cols, g, b, y + i * cols, xhat + i * cols, rstd + i, cols, (float)eps);
    else ln_row(x + i * cols, g, b, y + i * cols, xhat + i * cols, rstd + i, cols, (float)eps);
  }
  return NULL;
}

napi_value layer_norm_grad(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *dy, *xhat, *rstd, *g, *dx, *dg, *db;
  size_t nd, nh, nr, ng, nx, ndg, ndb;
  if (argc != 9 || !typed(env, argv[0], napi_float32_array, (void **)&dy, &nd) || !typed(env, argv[1], napi_float32_array, (void **)&xhat, &nh) ||
      !typed(env, argv[2], napi_float32_array, (void **)&rstd, &nr) || !typed(env, argv[3], napi_float32_array, (void **)&g, &ng) ||
      !typed(env, argv[4], napi_float32_array, (void **)&dx, &nx) || !typed(env, argv[5], napi_float32_array, (void **)&dg, &ndg) ||
      !typed(env, argv[6], napi_float32_array, (void **)&db, &ndb)) {
    napi_throw_type_error(env, NULL, "bert_native.layerNormGrad(dy, xhat, rstd, g, dx, dg, db: Float32Array, rows, cols)");
    return NULL;
  }
  const int64_t rows = int_arg(env, argv[7]), cols = int_arg(env, argv[8]);
  if (rows < 0 || cols < 1 || nd != (size_t)(rows * cols) || nh != nd || nx != nd || nr != (size_t)rows || ng != (size_t)cols ||
      ndg != (size_t)cols || ndb != (size_t)cols) {
    napi_throw_range_error(env, NULL, "bert_native.layerNormGrad: rows and cols do not match the arrays");
    return NULL;
  }
  for (int64_t j = 0; j < cols; j++) dg[j] = db[j] = 0;
  for (int64_t i = 0; i < rows; i++) ln_grad_row(dy + i * cols, xhat + i * cols, rstd[i], g, dx + i * cols, dg, db, cols);
  return NULL;
}
