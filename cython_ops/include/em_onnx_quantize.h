/* Quantization kernels that only ONNX models need (onnxruntime's semantics, see shared NUMERICS.md):
 * QuantizeLinear, DequantizeLinear, the uint8 <-> int8 sign-bit flip, Clip on integers, DynamicQuantizeLinear.
 *
 * QuantizeLinear: y = saturate(round_half_to_even(x / scale) + zp), the division in float32 as MLAS
 * does.  uint8 tensors live in the IR as int8 with zero point - 128; the sign-bit flip converts at the
 * graph boundary.  Clip on integers is a clamp (exact: rounding is monotone).
 */
#ifndef EM_ONNX_QUANTIZE_H
#define EM_ONNX_QUANTIZE_H

#include <math.h>
#include <stdint.h>
#include "em_params.h"
#include "em_requant.h"
#include "em_isa.h"

/* QuantizeLinear float -> int8: ptr: input, output; i: n, zp, lo, hi (the output type's range); f: scale */
enum { EM_ONNX_QUANTIZE_P_INPUT, EM_ONNX_QUANTIZE_P_OUTPUT, EM_ONNX_QUANTIZE_P_COUNT };
enum { EM_ONNX_QUANTIZE_I_N, EM_ONNX_QUANTIZE_I_ZP, EM_ONNX_QUANTIZE_I_LO, EM_ONNX_QUANTIZE_I_HI,
       EM_ONNX_QUANTIZE_I_COUNT };
enum { EM_ONNX_QUANTIZE_F_SCALE, EM_ONNX_QUANTIZE_F_COUNT };

static inline void em_onnx_quantize_linear_scalar(const float* x, int8_t* y, int64_t n, float scale, int32_t zp,
                                                  int32_t lo, int32_t hi) {
    for (int64_t k = 0; k < n; k++) {
        float r = x[k] / scale;
        r = r < -1e9f ? -1e9f : (r > 1e9f ? 1e9f : r);
        if (r != r) r = -1e9f;               /* NaN: MLAS's max(x, min) returns the minimum */
        y[k] = (int8_t)em_clamp_i32((int32_t)nearbyintf(r) + zp, lo, hi);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* eight at a time: the same division, clamp and round-to-nearest-even conversion (MXCSR default) */
__attribute__((target("avx2"))) static void em_onnx_quantize_linear_avx2(const float* x, int8_t* y, int64_t n,
                                                                         float scale, int32_t zp, int32_t lo,
                                                                         int32_t hi) {
    const __m256 vs = _mm256_set1_ps(scale), vmin = _mm256_set1_ps(-1e9f), vmax = _mm256_set1_ps(1e9f);
    const __m256i vzp = _mm256_set1_epi32(zp), vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi);
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 r = _mm256_div_ps(_mm256_loadu_ps(x + k), vs);
        r = _mm256_min_ps(_mm256_max_ps(r, vmin), vmax);          /* max(NaN, min) gives min, as above */
        __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(r), vzp);
        q = _mm256_min_epi32(_mm256_max_epi32(q, vlo), vhi);
        int32_t tmp[8];
        _mm256_storeu_si256((__m256i*)tmp, q);
        for (int j = 0; j < 8; j++) y[k + j] = (int8_t)tmp[j];
    }
    em_onnx_quantize_linear_scalar(x + k, y + k, n - k, scale, zp, lo, hi);
}
#endif

static void em_onnx_quantize_linear(const em_params* p) {
    const float* x = (const float*)p->ptr[EM_ONNX_QUANTIZE_P_INPUT];
    int8_t* y = (int8_t*)p->ptr[EM_ONNX_QUANTIZE_P_OUTPUT];
    const int32_t zp = (int32_t)p->i[EM_ONNX_QUANTIZE_I_ZP], lo = (int32_t)p->i[EM_ONNX_QUANTIZE_I_LO];
    const int32_t hi = (int32_t)p->i[EM_ONNX_QUANTIZE_I_HI];
#if defined(__x86_64__) && defined(__GNUC__)
    if (em_isa() >= EM_ISA_AVX2) {
        em_onnx_quantize_linear_avx2(x, y, p->i[EM_ONNX_QUANTIZE_I_N], p->f[EM_ONNX_QUANTIZE_F_SCALE], zp, lo, hi);
        return;
    }
#endif
    em_onnx_quantize_linear_scalar(x, y, p->i[EM_ONNX_QUANTIZE_I_N], p->f[EM_ONNX_QUANTIZE_F_SCALE], zp, lo, hi);
}

/* DequantizeLinear int8 -> float: (x - zp) * scale in float32 (one rounding, the same value LiteRT's
 * double-then-float DEQUANTIZE gives); ptr: input, output; i: n, zp; f: scale */
enum { EM_ONNX_DEQUANTIZE_P_INPUT, EM_ONNX_DEQUANTIZE_P_OUTPUT, EM_ONNX_DEQUANTIZE_P_COUNT };
enum { EM_ONNX_DEQUANTIZE_I_N, EM_ONNX_DEQUANTIZE_I_ZP, EM_ONNX_DEQUANTIZE_I_COUNT };
enum { EM_ONNX_DEQUANTIZE_F_SCALE, EM_ONNX_DEQUANTIZE_F_COUNT };

static inline void em_onnx_dequantize_linear_scalar(const int8_t* x, float* y, int64_t n, int32_t zp, float scale) {
    for (int64_t k = 0; k < n; k++) y[k] = (float)((int32_t)x[k] - zp) * scale;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) static void em_onnx_dequantize_linear_avx2(const int8_t* x, float* y, int64_t n,
                                                                           int32_t zp, float scale) {
    const __m256i vzp = _mm256_set1_epi32(zp);
    const __m256 vs = _mm256_set1_ps(scale);
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(x + k)));
        _mm256_storeu_ps(y + k, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(v, vzp)), vs));
    }
    em_onnx_dequantize_linear_scalar(x + k, y + k, n - k, zp, scale);
}
#endif

static void em_onnx_dequantize_linear(const em_params* p) {
    const int8_t* x = (const int8_t*)p->ptr[EM_ONNX_DEQUANTIZE_P_INPUT];
    float* y = (float*)p->ptr[EM_ONNX_DEQUANTIZE_P_OUTPUT];
#if defined(__x86_64__) && defined(__GNUC__)
    if (em_isa() >= EM_ISA_AVX2) {
        em_onnx_dequantize_linear_avx2(x, y, p->i[EM_ONNX_DEQUANTIZE_I_N], (int32_t)p->i[EM_ONNX_DEQUANTIZE_I_ZP],
                                       p->f[EM_ONNX_DEQUANTIZE_F_SCALE]);
        return;
    }
#endif
    em_onnx_dequantize_linear_scalar(x, y, p->i[EM_ONNX_DEQUANTIZE_I_N], (int32_t)p->i[EM_ONNX_DEQUANTIZE_I_ZP],
                                     p->f[EM_ONNX_DEQUANTIZE_F_SCALE]);
}

/* uint8 <-> int8 with zero point - 128: ptr: input, output; i: n bytes */
enum { EM_ONNX_FLIP_P_INPUT, EM_ONNX_FLIP_P_OUTPUT, EM_ONNX_FLIP_P_COUNT };
enum { EM_ONNX_FLIP_I_N, EM_ONNX_FLIP_I_COUNT };
enum { EM_ONNX_FLIP_F_COUNT = 0 };

/* n and the pointers in locals: a byte store may alias p->i, which would keep the compiler from vectorizing */
static inline void em_flip_sign_bit_scalar(const uint8_t* x, uint8_t* y, int64_t n) {
    for (int64_t k = 0; k < n; k++) y[k] = x[k] ^ 0x80u;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) static void em_flip_sign_bit_avx2(const uint8_t* x, uint8_t* y, int64_t n) {
    const __m256i sign = _mm256_set1_epi8((char)0x80);
    int64_t k = 0;
    for (; k + 64 <= n; k += 64) {
        const __m256i a = _mm256_loadu_si256((const __m256i*)(x + k));
        const __m256i b = _mm256_loadu_si256((const __m256i*)(x + k + 32));
        _mm256_storeu_si256((__m256i*)(y + k), _mm256_xor_si256(a, sign));
        _mm256_storeu_si256((__m256i*)(y + k + 32), _mm256_xor_si256(b, sign));
    }
    for (; k + 32 <= n; k += 32)
        _mm256_storeu_si256((__m256i*)(y + k), _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)(x + k)), sign));
    em_flip_sign_bit_scalar(x + k, y + k, n - k);
}

__attribute__((target("avx512f,avx512bw"))) static void em_flip_sign_bit_avx512(const uint8_t* x, uint8_t* y,
                                                                               int64_t n) {
    const __m512i sign = _mm512_set1_epi8((char)0x80);
    int64_t k = 0;
    for (; k + 128 <= n; k += 128) {
        const __m512i a = _mm512_loadu_si512((const void*)(x + k));
        const __m512i b = _mm512_loadu_si512((const void*)(x + k + 64));
        _mm512_storeu_si512((void*)(y + k), _mm512_xor_si512(a, sign));
        _mm512_storeu_si512((void*)(y + k + 64), _mm512_xor_si512(b, sign));
    }
    for (; k + 64 <= n; k += 64)
        _mm512_storeu_si512((void*)(y + k), _mm512_xor_si512(_mm512_loadu_si512((const void*)(x + k)), sign));
    if (k < n) {       /* the last 1 .. 63 bytes under a mask */
        const __mmask64 m = (__mmask64)((1ULL << (n - k)) - 1);
        _mm512_mask_storeu_epi8(y + k, m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, x + k), sign));
    }
}
#endif

static void em_onnx_flip_sign_bit(const em_params* p) {
    const uint8_t* x = (const uint8_t*)p->ptr[EM_ONNX_FLIP_P_INPUT];
    uint8_t* y = (uint8_t*)p->ptr[EM_ONNX_FLIP_P_OUTPUT];
    const int64_t n = p->i[EM_ONNX_FLIP_I_N];
#if defined(__x86_64__) && defined(__GNUC__)
    if (em_isa() >= EM_ISA_AVX512) { em_flip_sign_bit_avx512(x, y, n); return; }
    if (em_isa() >= EM_ISA_AVX2) { em_flip_sign_bit_avx2(x, y, n); return; }
#endif
    em_flip_sign_bit_scalar(x, y, n);
}

/* Clamp int8: ptr: input, output; i: n, lo, hi */
enum { EM_ONNX_CLAMP_P_INPUT, EM_ONNX_CLAMP_P_OUTPUT, EM_ONNX_CLAMP_P_COUNT };
enum { EM_ONNX_CLAMP_I_N, EM_ONNX_CLAMP_I_LO, EM_ONNX_CLAMP_I_HI, EM_ONNX_CLAMP_I_COUNT };
enum { EM_ONNX_CLAMP_F_COUNT = 0 };

static void em_onnx_clamp_int8(const em_params* p) {
    const int8_t* x = (const int8_t*)p->ptr[EM_ONNX_CLAMP_P_INPUT];
    int8_t* y = (int8_t*)p->ptr[EM_ONNX_CLAMP_P_OUTPUT];
    const int32_t lo = (int32_t)p->i[EM_ONNX_CLAMP_I_LO], hi = (int32_t)p->i[EM_ONNX_CLAMP_I_HI];
    for (int64_t k = 0; k < p->i[EM_ONNX_CLAMP_I_N]; k++) y[k] = (int8_t)em_clamp_i32(x[k], lo, hi);
}

/* DynamicQuantizeLinear float -> uint8 (held as int8, x - 128) with its scale and zero point:
 * range [min(0, min x), max(0, max x)], scale = range / 255, zp = saturate(round(-min / scale)).
 * ptr: input, output, scale (float), zero point (int8 = uint8 - 128); i: n */
enum { EM_ONNX_DYNAMIC_QUANTIZE_P_INPUT, EM_ONNX_DYNAMIC_QUANTIZE_P_OUTPUT, EM_ONNX_DYNAMIC_QUANTIZE_P_SCALE,
       EM_ONNX_DYNAMIC_QUANTIZE_P_ZERO_POINT, EM_ONNX_DYNAMIC_QUANTIZE_P_COUNT };
enum { EM_ONNX_DYNAMIC_QUANTIZE_I_N, EM_ONNX_DYNAMIC_QUANTIZE_I_COUNT };
enum { EM_ONNX_DYNAMIC_QUANTIZE_F_COUNT = 0 };

static void em_onnx_dynamic_quantize_linear(const em_params* p) {
    const float* x = (const float*)p->ptr[EM_ONNX_DYNAMIC_QUANTIZE_P_INPUT];
    int8_t* y = (int8_t*)p->ptr[EM_ONNX_DYNAMIC_QUANTIZE_P_OUTPUT];
    const int64_t n = p->i[EM_ONNX_DYNAMIC_QUANTIZE_I_N];
    float lo = 0.0f, hi = 0.0f;
    for (int64_t k = 0; k < n; k++) { lo = x[k] < lo ? x[k] : lo; hi = x[k] > hi ? x[k] : hi; }
    float scale = (hi - lo) / 255.0f;
    float zpf = scale != 0.0f ? nearbyintf(0.0f - lo / scale) : 0.0f;
    int32_t zp = (int32_t)(zpf < 0.0f ? 0.0f : (zpf > 255.0f ? 255.0f : zpf));
    *(float*)p->ptr[EM_ONNX_DYNAMIC_QUANTIZE_P_SCALE] = scale;
    *(int8_t*)p->ptr[EM_ONNX_DYNAMIC_QUANTIZE_P_ZERO_POINT] = (int8_t)(zp - 128);
    for (int64_t k = 0; k < n; k++) {
        float r = scale != 0.0f ? x[k] / scale : 0.0f;
        r = r < -1e9f ? -1e9f : (r > 1e9f ? 1e9f : r);
        y[k] = (int8_t)(em_clamp_i32((int32_t)nearbyintf(r) + zp, 0, 255) - 128);
    }
}

#endif
