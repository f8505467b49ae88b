// bert_native: OpenBLAS sgemm for the tfjs wasm backend's BatchMatMul, through N-API, and the few
// other kernels a training step's profile showed slow on wasm (see kernels.c).
//
// The JavaScript side (src/engine/backend/native.ts) hands us Float32Array views straight into the
// wasm heap (inputs and the already allocated output), so nothing is copied: we compute
//   out[i] = op(a[aIndex[i]]) @ op(b[bIndex[i]])     for every output batch i,
// where op() is the optional transpose of the last two dimensions. The transposes are CBLAS
// flags (free), and batch broadcasting is the index arrays, worked out in JavaScript.
#include "native.h"
#include <pthread.h>
#include <string.h>

int typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type t;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &t, len, data, &ab, &off) != napi_ok) return 0;
  return t == want;
}

int32_t int_arg(napi_env env, napi_value v) {
  int32_t x = 0;
  napi_get_value_int32(env, v, &x);
  return x;
}

// The thread count asked for with setThreads (OpenBLAS's own count is set to 1 during batched calls).
#define MAX_THREADS 64
static int threads = 1;
// Below this many multiply-adds a call runs on one thread: a few milliseconds of work, where waking
// a second thread costs more than it saves. Measured here: the quick preset's models (largest GEMM
// [2048 x 64] x [64 x 256] = 34M) ran faster on one thread; the L4-H256 shapes (1G per FFN GEMM)
// gain from two.
#define MT_MIN_MACS (64.0 * 1024 * 1024)

// One share of a batched matmul: output matrices [from, to).
typedef struct {
  const float *a, *b;
  float *out;
  const int32_t *ai, *bi;
  int64_t M, N, K;
  int lda, ldb, opA, opB;
  int64_t from, to;
} Batch;

static void run_batch(const Batch *j) {
  for (int64_t i = j->from; i < j->to; i++) {
    cblas_sgemm(CblasRowMajor, j->opA, j->opB, (int)j->M, (int)j->N, (int)j->K, 1.0f, j->a + (int64_t)j->ai[i] * j->M * j->K, j->lda,
                j->b + (int64_t)j->bi[i] * j->K * j->N, j->ldb, 0.0f, j->out + i * j->M * j->N, (int)j->N);
  }
}

static void *run_batch_thread(void *p) {
  run_batch((const Batch *)p);
  return NULL;
}

// sgemm(a, b, out, aIndex, bIndex, M, N, K, transA, transB)
//   a: Float32Array [batchA, M, K] ([batchA, K, M] when transA), b likewise [batchB, K, N] / [.., N, K]
//   out: Float32Array [batch, M, N]; aIndex, bIndex: Int32Array [batch], which a / b batch to use.
static napi_value sgemm(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 10) {
    napi_throw_type_error(env, NULL, "bert_native.sgemm: expected 10 arguments");
    return NULL;
  }
  float *a, *b, *out;
  int32_t *ai, *bi;
  size_t na, nb, nout, nai, nbi;
  if (!typed(env, argv[0], napi_float32_array, (void **)&a, &na) || !typed(env, argv[1], napi_float32_array, (void **)&b, &nb) ||
      !typed(env, argv[2], napi_float32_array, (void **)&out, &nout) || !typed(env, argv[3], napi_int32_array, (void **)&ai, &nai) ||
      !typed(env, argv[4], napi_int32_array, (void **)&bi, &nbi)) {
    napi_throw_type_error(env, NULL, "bert_native.sgemm: a, b, out must be Float32Arrays and aIndex, bIndex Int32Arrays");
    return NULL;
  }
  const int64_t M = int_arg(env, argv[5]), N = int_arg(env, argv[6]), K = int_arg(env, argv[7]);
  bool ta = false, tb = false;
  napi_get_value_bool(env, argv[8], &ta);
  napi_get_value_bool(env, argv[9], &tb);
  const int64_t batch = (int64_t)nai;
  // Bounds: every index must address a whole matrix inside its array (a bad call must not scribble
  // over the wasm heap).
  if (M < 0 || N < 0 || K < 0 || nbi != nai || (size_t)(batch * M * N) > nout) {
    napi_throw_range_error(env, NULL, "bert_native.sgemm: shapes do not match the arrays");
    return NULL;
  }
  for (int64_t i = 0; i < batch; i++) {
    if (ai[i] < 0 || bi[i] < 0 || (size_t)((ai[i] + 1) * M * K) > na || (size_t)((bi[i] + 1) * K * N) > nb) {
      napi_throw_range_error(env, NULL, "bert_native.sgemm: a batch index is out of range");
      return NULL;
    }
  }
  if (M == 0 || N == 0) return NULL;
  if (K == 0) {
    memset(out, 0, sizeof(float) * batch * M * N);
    return NULL;
  }
  const int lda = ta ? (int)M : (int)K;
  const int ldb = tb ? (int)K : (int)N;
  const int opA = ta ? CblasTrans : CblasNoTrans, opB = tb ? CblasTrans : CblasNoTrans;

  // One shared right operand and consecutive, untransposed left operands ([batch*M, K] @ [K, N]):
  // a single large GEMM runs much better than many small ones.
  // Small work runs on one thread: waking a second one costs more than it saves (measured: the
  // quick preset's models ran 1.5x slower with 2 threads, most under load), big GEMMs use them all.
  const int small = (double)batch * M * N * K < MT_MIN_MACS;
  int fold = batch > 1 && !ta;
  for (int64_t i = 0; fold && i < batch; i++) fold = ai[i] == i && bi[i] == bi[0];
  if (fold || batch == 1) {
    if (small && threads > 1) openblas_set_num_threads(1);
    cblas_sgemm(CblasRowMajor, opA, opB, (int)(batch * M), (int)N, (int)K, 1.0f, fold ? a : a + (int64_t)ai[0] * M * K, lda, b + (int64_t)bi[0] * K * N, ldb, 0.0f, out, (int)N);
    if (small && threads > 1) openblas_set_num_threads(threads);
    return NULL;
  }
  Batch job = {a, b, out, ai, bi, M, N, K, lda, ldb, opA, opB, 0, batch};
  if (threads <= 1 || batch < 2 * threads || small) {
    if (threads > 1) openblas_set_num_threads(1);
    run_batch(&job);
    if (threads > 1) openblas_set_num_threads(threads);
    return NULL;
  }
  // Many small matrices (attention: B*A of [T, D] x [D, T]): OpenBLAS would wake its threads for
  // each one, which costs more than it gains. Instead each of our threads takes a share of the
  // batch and runs single-threaded sgemms.
  Batch jobs[MAX_THREADS];
  pthread_t tids[MAX_THREADS];
  int started[MAX_THREADS] = {0};
  openblas_set_num_threads(1);
  for (int t = 0; t < threads; t++) {
    jobs[t] = job;
    jobs[t].from = batch * t / threads;
    jobs[t].to = batch * (t + 1) / threads;
    if (t > 0) started[t] = pthread_create(&tids[t], NULL, run_batch_thread, &jobs[t]) == 0;
  }
  run_batch(&jobs[0]);
  for (int t = 1; t < threads; t++) {
    if (started[t]) pthread_join(tids[t], NULL);
    else run_batch(&jobs[t]); // could not start a thread: do its share here
  }
  openblas_set_num_threads(threads);
  return NULL;
}

// linear(x, w, bias, out, M, N, K): out [M, N] = x [M, K] @ w [N, K]^T + bias [N], the bias written
// first and the product accumulated onto it (beta 1): one call where tfjs runs a matmul and an Add.
static napi_value linear(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *x, *w, *bias, *out;
  size_t nx, nw, nb, nout;
  if (argc != 7 || !typed(env, argv[0], napi_float32_array, (void **)&x, &nx) || !typed(env, argv[1], napi_float32_array, (void **)&w, &nw) ||
      !typed(env, argv[2], napi_float32_array, (void **)&bias, &nb) || !typed(env, argv[3], napi_float32_array, (void **)&out, &nout)) {
    napi_throw_type_error(env, NULL, "bert_native.linear(x, w, bias, out: Float32Array, M, N, K)");
    return NULL;
  }
  const int64_t M = int_arg(env, argv[4]), N = int_arg(env, argv[5]), K = int_arg(env, argv[6]);
  if (M < 0 || N < 0 || K < 0 || nx != (size_t)(M * K) || nw != (size_t)(N * K) || nb != (size_t)N || nout != (size_t)(M * N)) {
    napi_throw_range_error(env, NULL, "bert_native.linear: shapes do not match the arrays");
    return NULL;
  }
  for (int64_t i = 0; i < M; i++) memcpy(out + i * N, bias, sizeof(float) * N);
  if (M == 0 || N == 0 || K == 0) return NULL;
  const int small = (double)M * N * K < MT_MIN_MACS;
  if (small && threads > 1) openblas_set_num_threads(1);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, x, (int)K, w, (int)K, 1.0f, out, (int)N);
  if (small && threads > 1) openblas_set_num_threads(threads);
  return NULL;
}

// setThreads(n): OpenBLAS's thread count (n >= 1). getThreads(): the current one.
static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int n = argc ? int_arg(env, argv[0]) : 1;
  threads = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
  openblas_set_num_threads(threads);
  return NULL;
}

static napi_value get_threads(napi_env env, napi_callback_info info) {
  napi_value r;
  CHECK(napi_create_int32(env, threads, &r));
  return r;
}

static napi_value get_config(napi_env env, napi_callback_info info) {
  napi_value r;
  CHECK(napi_create_string_utf8(env, openblas_get_config(), NAPI_AUTO_LENGTH, &r));
  return r;
}

// kernels.c
napi_value reduce_sum(napi_env env, napi_callback_info info);
napi_value gather_rows(napi_env env, napi_callback_info info);
napi_value segment_sum(napi_env env, napi_callback_info info);
napi_value unary(napi_env env, napi_callback_info info);
// elementwise.c
napi_value binary(napi_env env, napi_callback_info info);
napi_value adamw(napi_env env, napi_callback_info info);
napi_value sum_squares(napi_env env, napi_callback_info info);
napi_value bias_gelu(napi_env env, napi_callback_info info);
napi_value gelu_grad(napi_env env, napi_callback_info info);
napi_value dropout(napi_env env, napi_callback_info info);
napi_value layer_norm(napi_env env, napi_callback_info info);
napi_value layer_norm_grad(napi_env env, napi_callback_info info);

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sgemm", NULL, sgemm, NULL, NULL, NULL, napi_default, NULL},
      {"linear", NULL, linear, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_default, NULL},
      {"getThreads", NULL, get_threads, NULL, NULL, NULL, napi_default, NULL},
      {"config", NULL, get_config, NULL, NULL, NULL, napi_default, NULL},
      {"reduceSum", NULL, reduce_sum, NULL, NULL, NULL, napi_default, NULL},
      {"gatherRows", NULL, gather_rows, NULL, NULL, NULL, napi_default, NULL},
      {"segmentSum", NULL, segment_sum, NULL, NULL, NULL, napi_default, NULL},
      {"unary", NULL, unary, NULL, NULL, NULL, napi_default, NULL},
      {"binary", NULL, binary, NULL, NULL, NULL, napi_default, NULL},
      {"adamw", NULL, adamw, NULL, NULL, NULL, napi_default, NULL},
      {"sumSquares", NULL, sum_squares, NULL, NULL, NULL, napi_default, NULL},
      {"biasGelu", NULL, bias_gelu, NULL, NULL, NULL, napi_default, NULL},
      {"geluGrad", NULL, gelu_grad, NULL, NULL, NULL, napi_default, NULL},
      {"dropout", NULL, dropout, NULL, NULL, NULL, napi_default, NULL},
      {"layerNorm", NULL, layer_norm, NULL, NULL, NULL, napi_default, NULL},
      {"layerNormGrad", NULL, layer_norm_grad, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
