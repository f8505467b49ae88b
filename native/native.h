// Shared by matmul.c and kernels.c: N-API helpers and the OpenBLAS symbols we use. We declare
// those instead of including cblas.h: Debian keeps that header in a per-variant folder
// (openblas-pthread / openblas-openmp), the library itself is always -lopenblas.
#pragma once
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { CblasRowMajor = 101 };
enum { CblasNoTrans = 111, CblasTrans = 112 };
void cblas_sgemm(int order, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);
void cblas_sgemv(int order, int trans, int M, int N, float alpha, const float *A, int lda, const float *x, int incx, float beta,
                 float *y, int incy);
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
char *openblas_get_config(void);

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      napi_throw_error(env, NULL, "bert_native: N-API call failed: " #call);                      \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

/** A typed array argument of the expected type: its data and element count; 0 when it is not one. */
int typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len);
int32_t int_arg(napi_env env, napi_value v);
