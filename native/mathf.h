// Branch-free float exp and erf, shared by kernels.c and elementwise.c so that their loops
// vectorize (static inline: each file gets its own copy).
#pragma once
#include <math.h>
#include <stdint.h>

// exp: Cephes' expf (range reduction to [-ln2/2, ln2/2], degree-6 polynomial; about 1 ulp), written
// without branches so that the loop vectorizes. NaN propagates, overflow gives +inf.
static inline float exp_f(float x0) {
  // (Clamps as selects, not fminf / fmaxf, so that the loop has no branches and vectorizes.)
  float x = x0 < -87.33654475f ? -87.33654475f : x0;
  x = x > 88.72283905f ? 88.72283905f : x;
  float fx = floorf(x * 1.44269504088896341f + 0.5f);
  x = x - fx * 0.693359375f + fx * 2.12194440e-4f;
  float z = x * x;
  float y = (((((1.9875691500E-4f * x + 1.3981999507E-3f) * x + 8.3334519073E-3f) * x + 4.1665795894E-2f) * x + 1.6666665459E-1f) * x + 5.0000001201E-1f) * z + x + 1.0f;
  // y * 2^n with n in [-126, 128]; 2^128 is not a float, so that one is 2^127 * 2.
  int32_t n = (int32_t)fx;
  int32_t m = n > 127 ? 127 : n;
  union { int32_t i; float f; } u;
  u.i = (m + 127) << 23;
  float r = y * u.f * (n > 127 ? 2.0f : 1.0f);
  r = x0 > 88.72283905f ? INFINITY : r;
  r = x0 < -87.33654475f ? 0.0f : r;
  return x0 != x0 ? x0 : r;
}

// erf: the rational approximation TensorFlow / Eigen use for float (|error| < 5e-7), branch-free.
static inline float erf_f(float a) {
  float x = a < -4.f ? -4.f : a;
  x = x > 4.f ? 4.f : x;
  const float x2 = x * x;
  float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
  p = x2 * p + -2.10102402082508e-06f;
  p = x2 * p + -5.69250639462346e-05f;
  p = x2 * p + -7.34990630326855e-04f;
  p = x2 * p + -2.95459980854025e-03f;
  p = x2 * p + -1.60960333262415e-02f;
  p = x * p;
  float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
  q = x2 * q + -1.68282697438203e-03f;
  q = x2 * q + -7.37332916720468e-03f;
  q = x2 * q + -1.42647390514189e-02f;
  float r = p / q;
  return a != a ? a : r;
}

