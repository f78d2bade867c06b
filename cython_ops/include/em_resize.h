/* RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR on NHWC tensors, as LiteRT's reference kernels compute them.
 * Each output row's and column's source pixels and weights are computed once at load
 * (edgeml/runtime/ops/resize.py); the kernels only interpolate or copy.
 *
 * Bilinear, layout EM_RESIZE:
 * ptr: input, output, y_index (int32 [out_h][2]: y0, y1), x_index (int32 [out_w][2]: x0, x1),
 *      y_weight, x_weight (float [n]: the fraction input_y - y0 for the float kernels; int32 [n]: the 10-bit
 *      fraction input_y - 1024 * y0 for the integer kernel)
 * i:   batch, in_h, in_w, depth, out_h, out_w, element type (EM_DT_*), rounding mode
 * The uint8 kernel also reads and writes uint8 held as int8 (q - 128, converters/tflite_uint8.py): element type
 * EM_DT_I8 there flips each byte's sign bit on load and on store, so no separate FLIP_SIGN_BIT pass is needed. */
#ifndef EM_RESIZE_H
#define EM_RESIZE_H
#include <string.h>
#include "em_dtype.h"
#include "em_params.h"
#include "em_requant.h"
#include "em_isa.h"

enum { EM_RESIZE_P_INPUT, EM_RESIZE_P_OUTPUT, EM_RESIZE_P_Y_INDEX, EM_RESIZE_P_X_INDEX, EM_RESIZE_P_Y_WEIGHT,
       EM_RESIZE_P_X_WEIGHT, EM_RESIZE_P_COUNT };
enum { EM_RESIZE_I_BATCH, EM_RESIZE_I_IN_H, EM_RESIZE_I_IN_W, EM_RESIZE_I_DEPTH, EM_RESIZE_I_OUT_H, EM_RESIZE_I_OUT_W,
       EM_RESIZE_I_DTYPE, EM_RESIZE_I_MODE, EM_RESIZE_I_COUNT };
enum { EM_RESIZE_F_COUNT = 0 };

/* The four source pixels of output (b, y, x): T* p00 (y0, x0), p10 (y1, x0), p01 (y0, x1), p11 (y1, x1). */
#define EM_RESIZE_LOOP(T, ...)                                                                            \
    {                                                                                                      \
        const int64_t* d = p->i;                                                                           \
        const int64_t ih = d[EM_RESIZE_I_IN_H], iw = d[EM_RESIZE_I_IN_W], c = d[EM_RESIZE_I_DEPTH];        \
        const int64_t oh = d[EM_RESIZE_I_OUT_H], ow = d[EM_RESIZE_I_OUT_W];                                \
        const int32_t* yi = (const int32_t*)p->ptr[EM_RESIZE_P_Y_INDEX];                                   \
        const int32_t* xi = (const int32_t*)p->ptr[EM_RESIZE_P_X_INDEX];                                   \
        const T* in = (const T*)p->ptr[EM_RESIZE_P_INPUT];                                                 \
        T* out = (T*)p->ptr[EM_RESIZE_P_OUTPUT];                                                           \
        for (int64_t b = 0; b < d[EM_RESIZE_I_BATCH]; b++) {                                               \
            const T* image = in + b * ih * iw * c;                                                         \
            for (int64_t y = 0; y < oh; y++) {                                                             \
                const T* row0 = image + yi[2 * y] * iw * c;                                                \
                const T* row1 = image + yi[2 * y + 1] * iw * c;                                            \
                for (int64_t x = 0; x < ow; x++, out += c) {                                               \
                    const T* p00 = row0 + xi[2 * x] * c;                                                   \
                    const T* p01 = row0 + xi[2 * x + 1] * c;                                               \
                    const T* p10 = row1 + xi[2 * x] * c;                                                   \
                    const T* p11 = row1 + xi[2 * x + 1] * c;                                               \
                    __VA_ARGS__                                                                            \
                }                                                                                          \
            }                                                                                              \
        }                                                                                                  \
    }

/* float32: a * (1 - dy) * (1 - dx) + b * dy * (1 - dx) + c * (1 - dy) * dx + d * dy * dx, left to right */
static void em_resize_bilinear_f32(const em_params* p) {
    const float* wy = (const float*)p->ptr[EM_RESIZE_P_Y_WEIGHT];
    const float* wx = (const float*)p->ptr[EM_RESIZE_P_X_WEIGHT];
    EM_RESIZE_LOOP(float, {
        const float dy = wy[y], dx = wx[x];
        for (int64_t k = 0; k < c; k++)
            out[k] = p00[k] * (1.0f - dy) * (1.0f - dx) + p10[k] * dy * (1.0f - dx) +
                     p01[k] * (1.0f - dy) * dx + p11[k] * dy * dx;
    })
}

/* uint8: LiteRT's reference takes the float template for uint8 (the integer one serves int8 / int16 only):
 * the same float sum plus 0.5, truncated */
static inline uint8_t em_resize_flip(const em_params* p) {
    return p->i[EM_RESIZE_I_DTYPE] == EM_DT_I8 ? 0x80 : 0;
}

static void em_resize_bilinear_u8_scalar(const em_params* p) {
    const float* wy = (const float*)p->ptr[EM_RESIZE_P_Y_WEIGHT];
    const float* wx = (const float*)p->ptr[EM_RESIZE_P_X_WEIGHT];
    const uint8_t f = em_resize_flip(p);
    EM_RESIZE_LOOP(uint8_t, {
        const float dy = wy[y], dx = wx[x];
        for (int64_t k = 0; k < c; k++)
            out[k] = f ^ (uint8_t)((float)(p00[k] ^ f) * (1.0f - dy) * (1.0f - dx) +
                                   (float)(p10[k] ^ f) * dy * (1.0f - dx) + (float)(p01[k] ^ f) * (1.0f - dy) * dx +
                                   (float)(p11[k] ^ f) * dy * dx + 0.5f);
    })
}

/* int8 / int16 / uint16 (ResizeBilinearInteger): weights in 1/1024, the 2^-20 sum rounded half away from zero
 * (double rounding builds) or half up (single rounding) */
#define EM_RESIZE_INTEGER_BODY                                                                             \
    {                                                                                                      \
        const int64_t fy = wy[y], fx = wx[x];                                                              \
        for (int64_t k = 0; k < c; k++) {                                                                  \
            const int64_t s = (int64_t)p00[k] * (1024 - fy) * (1024 - fx) + (int64_t)p10[k] * fy * (1024 - fx) \
                              + (int64_t)p01[k] * (1024 - fy) * fx + (int64_t)p11[k] * fy * fx;            \
            out[k] = single ? (T)((s + (1 << 19)) >> 20) : (T)((s + (s > 0 ? (1 << 19) : -(1 << 19))) / (1 << 20)); \
        }                                                                                                  \
    }

static void em_resize_bilinear_int_scalar(const em_params* p) {
    const int32_t* wy = (const int32_t*)p->ptr[EM_RESIZE_P_Y_WEIGHT];
    const int32_t* wx = (const int32_t*)p->ptr[EM_RESIZE_P_X_WEIGHT];
    const int single = p->i[EM_RESIZE_I_MODE] == EM_ROUND_SINGLE;
    switch (p->i[EM_RESIZE_I_DTYPE]) {
    case EM_DT_I8: { typedef int8_t T; EM_RESIZE_LOOP(T, EM_RESIZE_INTEGER_BODY) } break;
    case EM_DT_I16: { typedef int16_t T; EM_RESIZE_LOOP(T, EM_RESIZE_INTEGER_BODY) } break;
    case EM_DT_U16: { typedef uint16_t T; EM_RESIZE_LOOP(T, EM_RESIZE_INTEGER_BODY) } break;
    }
}

/* ---------------------------------------------------------------------------------------------------------------
 * Vector bodies for uint8 (the float sum, operation for operation: the same products and additions in the same
 * order, no fused multiply-add) and int8 (the 2^-20 integer sum in int32: |s| < 1536^2 * 128 < 2^31, exact): each
 * output pixel's channels in runs of 16 (AVX-512) or 8 (AVX2), the last run overlapping the one before when the
 * depth is not a multiple (depth >= the run); shallower images take the scalar bodies. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define EM_RS_AVX2 __attribute__((target("avx2")))
#define EM_RS_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

/* The channel runs of one pixel: k over [0, c) by W, the last run moved back to end at c. */
#define EM_RS_RUNS(W, ...)                                                                                 \
    for (int64_t k0 = 0; k0 < c; k0 += (W)) {                                                               \
        const int64_t k = k0 + (W) <= c ? k0 : c - (W);                                                     \
        __VA_ARGS__                                                                                         \
    }

/* 8 uint8 (their sign bits flipped first when f is 0x80 in every byte: uint8 held as int8) as floats */
EM_RS_AVX2 static inline __m256 em_rs_u8x8(const uint8_t* q, __m128i f) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_xor_si128(_mm_loadl_epi64((const __m128i*)q), f)));
}

/* 8 int32 in [0, 255] (u8) or [-128, 127] as 8 bytes */
EM_RS_AVX2 static inline __m128i em_rs_pack8(__m256i v, int is_signed) {
    const __m256i w = is_signed ? _mm256_packs_epi16(_mm256_packs_epi32(v, v), v)
                                : _mm256_packus_epi16(_mm256_packus_epi32(v, v), v);
    return _mm_unpacklo_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}

EM_RS_AVX2 static inline void em_rs_store8(void* dst, __m256i v, int is_signed) {
    _mm_storel_epi64((__m128i*)dst, em_rs_pack8(v, is_signed));
}

EM_RS_AVX2 static void em_resize_bilinear_u8_avx2(const em_params* p) {
    const float* wy = (const float*)p->ptr[EM_RESIZE_P_Y_WEIGHT];
    const float* wx = (const float*)p->ptr[EM_RESIZE_P_X_WEIGHT];
    const __m256 half = _mm256_set1_ps(0.5f);
    const __m128i f = _mm_set1_epi8((char)em_resize_flip(p));
    EM_RESIZE_LOOP(uint8_t, {
        const __m256 ay = _mm256_set1_ps(1.0f - wy[y]), dy = _mm256_set1_ps(wy[y]);
        const __m256 ax = _mm256_set1_ps(1.0f - wx[x]), dx = _mm256_set1_ps(wx[x]);
        EM_RS_RUNS(8, {
            __m256 t = _mm256_mul_ps(_mm256_mul_ps(em_rs_u8x8(p00 + k, f), ay), ax);
            t = _mm256_add_ps(t, _mm256_mul_ps(_mm256_mul_ps(em_rs_u8x8(p10 + k, f), dy), ax));
            t = _mm256_add_ps(t, _mm256_mul_ps(_mm256_mul_ps(em_rs_u8x8(p01 + k, f), ay), dx));
            t = _mm256_add_ps(t, _mm256_mul_ps(_mm256_mul_ps(em_rs_u8x8(p11 + k, f), dy), dx));
            _mm_storel_epi64((__m128i*)(out + k),
                             _mm_xor_si128(em_rs_pack8(_mm256_cvttps_epi32(_mm256_add_ps(t, half)), 0), f));
        })
    })
}

EM_RS_AVX512 static inline __m512 em_rs_u8x16(const uint8_t* q, __m128i f) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_xor_si128(_mm_loadu_si128((const __m128i*)q), f)));
}

EM_RS_AVX512 static void em_resize_bilinear_u8_avx512(const em_params* p) {
    const float* wy = (const float*)p->ptr[EM_RESIZE_P_Y_WEIGHT];
    const float* wx = (const float*)p->ptr[EM_RESIZE_P_X_WEIGHT];
    const __m512 half = _mm512_set1_ps(0.5f);
    const __m512i zero = _mm512_setzero_si512();
    const __m128i f = _mm_set1_epi8((char)em_resize_flip(p));
    EM_RESIZE_LOOP(uint8_t, {
        const __m512 ay = _mm512_set1_ps(1.0f - wy[y]), dy = _mm512_set1_ps(wy[y]);
        const __m512 ax = _mm512_set1_ps(1.0f - wx[x]), dx = _mm512_set1_ps(wx[x]);
        EM_RS_RUNS(16, {
            __m512 t = _mm512_mul_ps(_mm512_mul_ps(em_rs_u8x16(p00 + k, f), ay), ax);
            t = _mm512_add_ps(t, _mm512_mul_ps(_mm512_mul_ps(em_rs_u8x16(p10 + k, f), dy), ax));
            t = _mm512_add_ps(t, _mm512_mul_ps(_mm512_mul_ps(em_rs_u8x16(p01 + k, f), ay), dx));
            t = _mm512_add_ps(t, _mm512_mul_ps(_mm512_mul_ps(em_rs_u8x16(p11 + k, f), dy), dx));
            const __m512i q = _mm512_max_epi32(_mm512_cvttps_epi32(_mm512_add_ps(t, half)), zero);
            _mm_storeu_si128((__m128i*)(out + k), _mm_xor_si128(_mm512_cvtusepi32_epi8(q), f));
        })
    })
}

/* int8: the four weights of a pixel in int32, the sum rounded as the scalar body */
EM_RS_AVX2 static inline __m256i em_rs_i8x8(const int8_t* q) {
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)q));
}

EM_RS_AVX2 static inline __m256i em_rs_round20_avx2(__m256i s, int single) {
    const __m256i r = _mm256_set1_epi32(1 << 19);
    if (single) return _mm256_srai_epi32(_mm256_add_epi32(s, r), 20);
    return _mm256_sign_epi32(_mm256_srli_epi32(_mm256_add_epi32(_mm256_abs_epi32(s), r), 20), s);
}

EM_RS_AVX2 static void em_resize_bilinear_i8_avx2(const em_params* p) {
    const int32_t* wy = (const int32_t*)p->ptr[EM_RESIZE_P_Y_WEIGHT];
    const int32_t* wx = (const int32_t*)p->ptr[EM_RESIZE_P_X_WEIGHT];
    const int single = p->i[EM_RESIZE_I_MODE] == EM_ROUND_SINGLE;
    EM_RESIZE_LOOP(int8_t, {
        const int32_t fy = wy[y], fx = wx[x];
        const __m256i w00 = _mm256_set1_epi32((1024 - fy) * (1024 - fx)), w10 = _mm256_set1_epi32(fy * (1024 - fx));
        const __m256i w01 = _mm256_set1_epi32((1024 - fy) * fx), w11 = _mm256_set1_epi32(fy * fx);
        EM_RS_RUNS(8, {
            __m256i s = _mm256_mullo_epi32(em_rs_i8x8(p00 + k), w00);
            s = _mm256_add_epi32(s, _mm256_mullo_epi32(em_rs_i8x8(p10 + k), w10));
            s = _mm256_add_epi32(s, _mm256_mullo_epi32(em_rs_i8x8(p01 + k), w01));
            s = _mm256_add_epi32(s, _mm256_mullo_epi32(em_rs_i8x8(p11 + k), w11));
            em_rs_store8(out + k, em_rs_round20_avx2(s, single), 1);
        })
    })
}

EM_RS_AVX512 static inline __m512i em_rs_i8x16(const int8_t* q) {
    return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)q));
}

EM_RS_AVX512 static void em_resize_bilinear_i8_avx512(const em_params* p) {
    const int32_t* wy = (const int32_t*)p->ptr[EM_RESIZE_P_Y_WEIGHT];
    const int32_t* wx = (const int32_t*)p->ptr[EM_RESIZE_P_X_WEIGHT];
    const int single = p->i[EM_RESIZE_I_MODE] == EM_ROUND_SINGLE;
    const __m512i r = _mm512_set1_epi32(1 << 19);
    EM_RESIZE_LOOP(int8_t, {
        const int32_t fy = wy[y], fx = wx[x];
        const __m512i w00 = _mm512_set1_epi32((1024 - fy) * (1024 - fx)), w10 = _mm512_set1_epi32(fy * (1024 - fx));
        const __m512i w01 = _mm512_set1_epi32((1024 - fy) * fx), w11 = _mm512_set1_epi32(fy * fx);
        EM_RS_RUNS(16, {
            __m512i s = _mm512_mullo_epi32(em_rs_i8x16(p00 + k), w00);
            s = _mm512_add_epi32(s, _mm512_mullo_epi32(em_rs_i8x16(p10 + k), w10));
            s = _mm512_add_epi32(s, _mm512_mullo_epi32(em_rs_i8x16(p01 + k), w01));
            s = _mm512_add_epi32(s, _mm512_mullo_epi32(em_rs_i8x16(p11 + k), w11));
            __m512i v;
            if (single) {
                v = _mm512_srai_epi32(_mm512_add_epi32(s, r), 20);
            } else {    /* half away from zero: the magnitude rounded, the sign put back */
                const __m512i m = _mm512_srli_epi32(_mm512_add_epi32(_mm512_abs_epi32(s), r), 20);
                v = _mm512_mask_sub_epi32(m, _mm512_cmplt_epi32_mask(s, _mm512_setzero_si512()),
                                          _mm512_setzero_si512(), m);
            }
            _mm_storeu_si128((__m128i*)(out + k), _mm512_cvtsepi32_epi8(v));
        })
    })
}
/* uint8 upscaling: each output row's two source rows multiplied once by (1 - dy) and dy into floats (the first
 * product of each of the reference's four terms, the same roundings), then each output pixel multiplies its four
 * by (1 - dx) and dx and sums them in the reference's order.  Rows of up to EM_RS_ROW_FLOATS values. */
#define EM_RS_ROW_FLOATS 4096
#define EM_RS_ROWS_BODY(W, VEC, LOADU8, SET1, MUL, ADD, LOADF, STOREF, STORE_RUN)                           \
    {                                                                                                       \
        const int64_t* d = p->i;                                                                            \
        const int64_t ih = d[EM_RESIZE_I_IN_H], iw = d[EM_RESIZE_I_IN_W], c = d[EM_RESIZE_I_DEPTH];         \
        const int64_t oh = d[EM_RESIZE_I_OUT_H], ow = d[EM_RESIZE_I_OUT_W], m = iw * c;                     \
        const int32_t* yi = (const int32_t*)p->ptr[EM_RESIZE_P_Y_INDEX];                                    \
        const int32_t* xi = (const int32_t*)p->ptr[EM_RESIZE_P_X_INDEX];                                    \
        const float* wy = (const float*)p->ptr[EM_RESIZE_P_Y_WEIGHT];                                       \
        const float* wx = (const float*)p->ptr[EM_RESIZE_P_X_WEIGHT];                                       \
        const uint8_t* in = (const uint8_t*)p->ptr[EM_RESIZE_P_INPUT];                                      \
        uint8_t* out = (uint8_t*)p->ptr[EM_RESIZE_P_OUTPUT];                                                \
        float v0[EM_RS_ROW_FLOATS], v1[EM_RS_ROW_FLOATS];                                                   \
        const uint8_t fb = em_resize_flip(p);                                                               \
        const __m128i f = _mm_set1_epi8((char)fb);                                                          \
        for (int64_t b = 0; b < d[EM_RESIZE_I_BATCH]; b++) {                                                \
            const uint8_t* image = in + b * ih * iw * c;                                                    \
            for (int64_t y = 0; y < oh; y++) {                                                              \
                const uint8_t* row0 = image + yi[2 * y] * m;                                                \
                const uint8_t* row1 = image + yi[2 * y + 1] * m;                                            \
                const float fay = 1.0f - wy[y], fdy = wy[y];                                                \
                const VEC ay = SET1(fay), dy = SET1(fdy);                                                   \
                int64_t i = 0;                                                                              \
                for (; i + (W) <= m; i += (W)) {                                                            \
                    STOREF(v0 + i, MUL(LOADU8(row0 + i, f), ay));                                           \
                    STOREF(v1 + i, MUL(LOADU8(row1 + i, f), dy));                                           \
                }                                                                                           \
                for (; i < m; i++) {                                                                        \
                    v0[i] = (float)(row0[i] ^ fb) * fay;                                                    \
                    v1[i] = (float)(row1[i] ^ fb) * fdy;                                                    \
                }                                                                                           \
                for (int64_t x = 0; x < ow; x++, out += c) {                                                \
                    const float *q00 = v0 + xi[2 * x] * c, *q10 = v1 + xi[2 * x] * c;                       \
                    const float *q01 = v0 + xi[2 * x + 1] * c, *q11 = v1 + xi[2 * x + 1] * c;               \
                    const VEC ax = SET1(1.0f - wx[x]), dx = SET1(wx[x]);                                    \
                    EM_RS_RUNS(W, {                                                                         \
                        VEC t = MUL(LOADF(q00 + k), ax);                                                    \
                        t = ADD(t, MUL(LOADF(q10 + k), ax));                                                \
                        t = ADD(t, MUL(LOADF(q01 + k), dx));                                                \
                        t = ADD(t, MUL(LOADF(q11 + k), dx));                                                \
                        STORE_RUN(out + k, t, f);                                                           \
                    })                                                                                      \
                }                                                                                           \
            }                                                                                               \
        }                                                                                                   \
    }

EM_RS_AVX2 static inline void em_rs_store_u8x8(uint8_t* dst, __m256 t, __m128i f) {
    _mm_storel_epi64((__m128i*)dst,
                     _mm_xor_si128(em_rs_pack8(_mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_set1_ps(0.5f))), 0), f));
}

EM_RS_AVX2 static void em_resize_bilinear_u8_rows_avx2(const em_params* p)
    EM_RS_ROWS_BODY(8, __m256, em_rs_u8x8, _mm256_set1_ps, _mm256_mul_ps, _mm256_add_ps, _mm256_loadu_ps,
                    _mm256_storeu_ps, em_rs_store_u8x8)

EM_RS_AVX512 static inline void em_rs_store_u8x16(uint8_t* dst, __m512 t, __m128i f) {
    const __m512i q = _mm512_max_epi32(_mm512_cvttps_epi32(_mm512_add_ps(t, _mm512_set1_ps(0.5f))),
                                       _mm512_setzero_si512());
    _mm_storeu_si128((__m128i*)dst, _mm_xor_si128(_mm512_cvtusepi32_epi8(q), f));
}

EM_RS_AVX512 static void em_resize_bilinear_u8_rows_avx512(const em_params* p)
    EM_RS_ROWS_BODY(16, __m512, em_rs_u8x16, _mm512_set1_ps, _mm512_mul_ps, _mm512_add_ps, _mm512_loadu_ps,
                    _mm512_storeu_ps, em_rs_store_u8x16)
#endif

static void em_resize_bilinear_u8(const em_params* p) {
#if defined(__x86_64__) && defined(__GNUC__)
    const int64_t c = p->i[EM_RESIZE_I_DEPTH], iw = p->i[EM_RESIZE_I_IN_W];
    /* the row products pay off when each source value serves about two outputs or more */
    const int rows = iw * c <= EM_RS_ROW_FLOATS && iw <= 2 * p->i[EM_RESIZE_I_OUT_W];
    if (em_isa() >= EM_ISA_AVX512 && c >= 16) {
        if (rows) em_resize_bilinear_u8_rows_avx512(p);
        else em_resize_bilinear_u8_avx512(p);
        return;
    }
    if (em_isa() >= EM_ISA_AVX2 && c >= 8) {
        if (rows) em_resize_bilinear_u8_rows_avx2(p);
        else em_resize_bilinear_u8_avx2(p);
        return;
    }
#endif
    em_resize_bilinear_u8_scalar(p);
}

static void em_resize_bilinear_int(const em_params* p) {
#if defined(__x86_64__) && defined(__GNUC__)
    const int64_t c = p->i[EM_RESIZE_I_DEPTH];
    if (p->i[EM_RESIZE_I_DTYPE] == EM_DT_I8) {
        if (em_isa() >= EM_ISA_AVX512 && c >= 16) { em_resize_bilinear_i8_avx512(p); return; }
        if (em_isa() >= EM_ISA_AVX2 && c >= 8) { em_resize_bilinear_i8_avx2(p); return; }
    }
#endif
    em_resize_bilinear_int_scalar(p);
}

/* Nearest neighbour, layout EM_NEAREST: every output pixel copies the input pixel of its row's and column's
 * source.  ptr: input, output, y_index (int32 [out_h]), x_index (int32 [out_w]);
 * i: batch, in_h, in_w, pixel bytes (depth * element size), out_h, out_w */
enum { EM_NEAREST_P_INPUT, EM_NEAREST_P_OUTPUT, EM_NEAREST_P_Y_INDEX, EM_NEAREST_P_X_INDEX, EM_NEAREST_P_COUNT };
enum { EM_NEAREST_I_BATCH, EM_NEAREST_I_IN_H, EM_NEAREST_I_IN_W, EM_NEAREST_I_PIXEL_BYTES, EM_NEAREST_I_OUT_H,
       EM_NEAREST_I_OUT_W, EM_NEAREST_I_COUNT };
enum { EM_NEAREST_F_COUNT = 0 };

static void em_resize_nearest(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t ih = d[EM_NEAREST_I_IN_H], iw = d[EM_NEAREST_I_IN_W], px = d[EM_NEAREST_I_PIXEL_BYTES];
    const int32_t* yi = (const int32_t*)p->ptr[EM_NEAREST_P_Y_INDEX];
    const int32_t* xi = (const int32_t*)p->ptr[EM_NEAREST_P_X_INDEX];
    const uint8_t* in = (const uint8_t*)p->ptr[EM_NEAREST_P_INPUT];
    uint8_t* out = (uint8_t*)p->ptr[EM_NEAREST_P_OUTPUT];
    for (int64_t b = 0; b < d[EM_NEAREST_I_BATCH]; b++) {
        const uint8_t* image = in + b * ih * iw * px;
        for (int64_t y = 0; y < d[EM_NEAREST_I_OUT_H]; y++) {
            const uint8_t* row = image + yi[y] * iw * px;
            for (int64_t x = 0; x < d[EM_NEAREST_I_OUT_W]; x++, out += px) memcpy(out, row + xi[x] * px, (size_t)px);
        }
    }
}
#endif
