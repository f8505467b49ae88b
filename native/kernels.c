// The other native kernels for the wasm backend, each one that a training step's profile showed
// slow on wasm (src/engine/backend/wasm-kernels.ts registers them):
//   reduceSum   Sum over one block of axes (bias / LayerNorm gradients reduce [B*T, n] over rows,
//               which wasm does by transposing first): out[p, c] = sum_r x[p, r, c], as sgemv.
//   gatherRows  embedding lookups: out[i, :] = x[idx[i], :]
//   segmentSum  their gradient: out[s, :] = sum of x[i, :] with ids[i] == s
//   unary       exp and erf over a whole tensor (wasm calls scalar libm: ~15 ns a value)
// Like sgemm they read and write Float32Array views of the wasm heap in place.
#include "native.h"
#include "mathf.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// A vector of ones for sgemv sums; grows as needed (the engine calls us from one thread).
static float *ones = NULL;
static size_t ones_len = 0;

static const float *ones_of(size_t n) {
  if (n > ones_len) {
    float *p = realloc(ones, n * sizeof(float));
    if (!p) return NULL;
    ones = p;
    for (size_t i = ones_len; i < n; i++) ones[i] = 1.0f;
    ones_len = n;
  }
  return ones;
}

// reduceSum(x, out, P, R, C): x [P, R, C] -> out [P, C].
napi_value reduce_sum(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *x, *out;
  size_t nx, nout;
  if (argc != 5 || !typed(env, argv[0], napi_float32_array, (void **)&x, &nx) || !typed(env, argv[1], napi_float32_array, (void **)&out, &nout)) {
    napi_throw_type_error(env, NULL, "bert_native.reduceSum(x: Float32Array, out: Float32Array, P, R, C)");
    return NULL;
  }
  const int64_t P = int_arg(env, argv[2]), R = int_arg(env, argv[3]), C = int_arg(env, argv[4]);
  if (P < 0 || R < 0 || C < 0 || (size_t)(P * R * C) != nx || (size_t)(P * C) != nout) {
    napi_throw_range_error(env, NULL, "bert_native.reduceSum: P, R, C do not match the arrays");
    return NULL;
  }
  if (nout == 0) return NULL;
  if (R == 0) {
    memset(out, 0, nout * sizeof(float));
    return NULL;
  }
  const float *o = ones_of((size_t)R);
  if (!o) {
    napi_throw_error(env, NULL, "bert_native.reduceSum: out of memory");
    return NULL;
  }
  if (C == 1) {
    // out[p] = x[p, :] . 1
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)P, (int)R, 1.0f, x, (int)R, o, 1, 0.0f, out, 1);
  } else {
    // out[p, :] = x[p]^T 1, x[p] being [R, C]
    for (int64_t p = 0; p < P; p++) cblas_sgemv(CblasRowMajor, CblasTrans, (int)R, (int)C, 1.0f, x + p * R * C, (int)C, o, 1, 0.0f, out + p * C, 1);
  }
  return NULL;
}

// gatherRows(x, idx, out, inner): x [rows, inner], idx Int32Array [n] -> out [n, inner].
napi_value gather_rows(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *x, *out;
  int32_t *idx;
  size_t nx, ni, nout;
  if (argc != 4 || !typed(env, argv[0], napi_float32_array, (void **)&x, &nx) || !typed(env, argv[1], napi_int32_array, (void **)&idx, &ni) ||
      !typed(env, argv[2], napi_float32_array, (void **)&out, &nout)) {
    napi_throw_type_error(env, NULL, "bert_native.gatherRows(x: Float32Array, idx: Int32Array, out: Float32Array, inner)");
    return NULL;
  }
  const int64_t inner = int_arg(env, argv[3]);
  if (inner <= 0 || nx % inner != 0 || (size_t)(ni * inner) != nout) {
    napi_throw_range_error(env, NULL, "bert_native.gatherRows: inner does not match the arrays");
    return NULL;
  }
  const int64_t rows = (int64_t)nx / inner;
  for (size_t i = 0; i < ni; i++) {
    if (idx[i] < 0 || idx[i] >= rows) {
      napi_throw_range_error(env, NULL, "bert_native.gatherRows: an index is outside the gathered tensor");
      return NULL;
    }
    memcpy(out + i * inner, x + (int64_t)idx[i] * inner, inner * sizeof(float));
  }
  return NULL;
}

// segmentSum(x, ids, out, inner): x [n, inner], ids Int32Array [n] -> out [segments, inner];
// ids outside [0, segments) are dropped (as TensorFlow does).
napi_value segment_sum(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *x, *out;
  int32_t *ids;
  size_t nx, ni, nout;
  if (argc != 4 || !typed(env, argv[0], napi_float32_array, (void **)&x, &nx) || !typed(env, argv[1], napi_int32_array, (void **)&ids, &ni) ||
      !typed(env, argv[2], napi_float32_array, (void **)&out, &nout)) {
    napi_throw_type_error(env, NULL, "bert_native.segmentSum(x: Float32Array, ids: Int32Array, out: Float32Array, inner)");
    return NULL;
  }
  const int64_t inner = int_arg(env, argv[3]);
  if (inner <= 0 || (size_t)(ni * inner) != nx || nout % inner != 0) {
    napi_throw_range_error(env, NULL, "bert_native.segmentSum: inner does not match the arrays");
    return NULL;
  }
  const int64_t segments = (int64_t)nout / inner;
  memset(out, 0, nout * sizeof(float));
  for (size_t i = 0; i < ni; i++) {
    if (ids[i] < 0 || ids[i] >= segments) continue;
    float *dst = out + (int64_t)ids[i] * inner;
    const float *src = x + i * inner;
    for (int64_t j = 0; j < inner; j++) dst[j] += src[j];
  }
  return NULL;
}

// One body per instruction set, picked at load time (the addon is built where it runs, but a
// container image may move).
__attribute__((target_clones("avx2", "default"))) static void exp_loop(const float *restrict x, float *restrict out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = exp_f(x[i]);
}

__attribute__((target_clones("avx2", "default"))) static void erf_loop(const float *restrict x, float *restrict out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = erf_f(x[i]);
}

// unary(op, x, out): op 0 = exp, 1 = erf.
napi_value unary(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *x, *out;
  size_t nx, nout;
  if (argc != 3 || !typed(env, argv[1], napi_float32_array, (void **)&x, &nx) || !typed(env, argv[2], napi_float32_array, (void **)&out, &nout) || nx != nout) {
    napi_throw_type_error(env, NULL, "bert_native.unary(op, x: Float32Array, out: Float32Array of the same length)");
    return NULL;
  }
  switch (int_arg(env, argv[0])) {
    case 0: exp_loop(x, out, nx); break;
    case 1: erf_loop(x, out, nx); break;
    default: napi_throw_range_error(env, NULL, "bert_native.unary: op must be 0 (exp) or 1 (erf)");
  }
  return NULL;
}
