/* MEAN, int8 and float32.  int8 follows LiteRT's reference QuantizedMeanOrSum: integer sum, minus
 * zp_in * count, then one fixed-point multiplier that already holds s_in / s_out / count (folded at load).
 * Layout EM_MEAN:
 * i: input dims (6-D), output stride of each input dim (6, 0 where reduced), outputs, reduced count,
 *    float (1) or int8 (0), in_zp, out_zp, multiplier, shift, rounding mode
 * ptr: input, output, scratch (one int32 / float per output) */
#ifndef EM_REDUCE_H
#define EM_REDUCE_H
#include "em_params.h"
#include "em_requant.h"
#include "em_isa.h"

enum { EM_MEAN_P_INPUT, EM_MEAN_P_OUTPUT, EM_MEAN_P_SCRATCH, EM_MEAN_P_COUNT };
enum { EM_MEAN_I_DIMS, EM_MEAN_I_DIMS_LAST = EM_MEAN_I_DIMS + 5, EM_MEAN_I_OUT_STRIDES,
       EM_MEAN_I_OUT_STRIDES_LAST = EM_MEAN_I_OUT_STRIDES + 5, EM_MEAN_I_OUTPUTS, EM_MEAN_I_REDUCED,
       EM_MEAN_I_IS_FLOAT, EM_MEAN_I_IN_ZP, EM_MEAN_I_OUT_ZP, EM_MEAN_I_MULT, EM_MEAN_I_SHIFT, EM_MEAN_I_MODE,
       EM_MEAN_I_COUNT };
enum { EM_MEAN_F_COUNT = 0 };

/* acc[i] += x[i] over one contiguous run (the innermost dim kept): int8 -> int32 widening adds (AVX-512 / AVX2
 * bodies chosen at run time, the scalar loop the reference), float adds in the same per-output order. */
static inline void em_mean_add_i8_scalar(int32_t* restrict acc, const int8_t* restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) acc[i] += x[i];
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void em_mean_add_i8_avx512(int32_t* acc, const int8_t* x,
                                                                                int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i v = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(x + i)));
        _mm512_storeu_si512(acc + i, _mm512_add_epi32(_mm512_loadu_si512(acc + i), v));
    }
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        const __m512i v = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, x + i));
        _mm512_mask_storeu_epi32(acc + i, m, _mm512_add_epi32(_mm512_maskz_loadu_epi32(m, acc + i), v));
    }
}

__attribute__((target("avx2"))) static void em_mean_add_i8_avx2(int32_t* acc, const int8_t* x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(x + i)));
        _mm256_storeu_si256((__m256i*)(acc + i), _mm256_add_epi32(_mm256_loadu_si256((const __m256i*)(acc + i)), v));
    }
    em_mean_add_i8_scalar(acc + i, x + i, n - i);
}

__attribute__((target("avx2"))) static void em_mean_add_f32_avx2(float* acc, const float* x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(acc + i, _mm256_add_ps(_mm256_loadu_ps(acc + i), _mm256_loadu_ps(x + i)));
    for (; i < n; i++) acc[i] += x[i];
}
#endif

static inline void em_mean_add_i8(int isa, int32_t* acc, const int8_t* x, int64_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (isa >= EM_ISA_AVX512) { em_mean_add_i8_avx512(acc, x, n); return; }
    if (isa >= EM_ISA_AVX2) { em_mean_add_i8_avx2(acc, x, n); return; }
#endif
    (void)isa;
    em_mean_add_i8_scalar(acc, x, n);
}

static inline void em_mean_add_f32(int isa, float* restrict acc, const float* restrict x, int64_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (isa >= EM_ISA_AVX2) { em_mean_add_f32_avx2(acc, x, n); return; }
#endif
    (void)isa;
    for (int64_t i = 0; i < n; i++) acc[i] += x[i];
}

/* Walks the input in order; each output sums its inputs in that order (float: as LiteRT's reference).
 * ADD_RUN(isa, acc, x, n) adds a contiguous run; EM_REDUCE_SUM (int16 MEAN) adds it with a plain loop. */
#define EM_MEAN_ADD_LOOP(isa_, a_, x_, n_) for (int64_t j_ = 0; j_ < (n_); j_++) (a_)[j_] += (x_)[j_];
#define EM_REDUCE_SUM(T_ACC) EM_MEAN_SUM_RUNS(T_ACC, EM_MEAN_ADD_LOOP)
#define EM_MEAN_SUM_RUNS(T_ACC, ADD_RUN)                                                        \
    for (int64_t i0 = 0; i0 < dims[0]; i0++)                                                 \
    for (int64_t i1 = 0; i1 < dims[1]; i1++)                                                 \
    for (int64_t i2 = 0; i2 < dims[2]; i2++)                                                 \
    for (int64_t i3 = 0; i3 < dims[3]; i3++)                                                 \
    for (int64_t i4 = 0; i4 < dims[4]; i4++) {                                               \
        int64_t ob = i0 * ost[0] + i1 * ost[1] + i2 * ost[2] + i3 * ost[3] + i4 * ost[4];    \
        if (ost[5] == 1) {             /* innermost dim kept: one vector add of the run */   \
            ADD_RUN(isa, acc + ob, x + k, dims[5]);                                          \
            k += dims[5];                                                                    \
        } else if (ost[5] == 0) {      /* innermost dim reduced: one running sum, same order */ \
            T_ACC s_ = acc[ob];                                                              \
            for (int64_t i5 = 0; i5 < dims[5]; i5++) s_ += (T_ACC)x[k + i5];                 \
            acc[ob] = s_;                                                                    \
            k += dims[5];                                                                    \
        } else {                                                                             \
            for (int64_t i5 = 0; i5 < dims[5]; i5++) acc[ob + i5 * ost[5]] += (T_ACC)x[k++]; \
        }                                                                                    \
    }

/* int8 MEAN's sums are exact integers, so their order is free: a contiguous run summed at once (byte sums of
 * x + 128 by psadbw, minus 128 n), and a block of rows (a reduced dim over a kept contiguous run) summed column-wise
 * in 16-bit registers, 256 rows at a time (256 * -128 = INT16_MIN still fits), before one int32 add per column. */
static inline int32_t em_mean_sum_i8_scalar(const int8_t* x, int64_t n) {
    int32_t s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s;
}

static inline void em_mean_rows_i8_scalar(int32_t* acc, const int8_t* x, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++) em_mean_add_i8_scalar(acc, x + r * cols, cols);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define EM_MEAN_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))
EM_MEAN_AVX512_TARGET static int32_t em_mean_sum_i8_avx512(const int8_t* x, int64_t n) {
    const __m512i flip = _mm512_set1_epi8((char)0x80), zero = _mm512_setzero_si512();
    __m512i s = zero;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        s = _mm512_add_epi64(s, _mm512_sad_epu8(_mm512_xor_si512(_mm512_loadu_si512(x + i), flip), zero));
    if (i < n) {   /* masked-off bytes count 0 */
        const __mmask64 m = ((__mmask64)1 << (n - i)) - 1;
        const __m512i v = _mm512_maskz_mov_epi8(m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, x + i), flip));
        s = _mm512_add_epi64(s, _mm512_sad_epu8(v, zero));
    }
    return (int32_t)(_mm512_reduce_add_epi64(s) - 128 * n);
}

EM_MEAN_AVX512_TARGET static void em_mean_rows_i8_avx512(int32_t* acc, const int8_t* x, int64_t rows, int64_t cols) {
    for (int64_t j = 0; j < cols; j += 32) {
        const __mmask32 m = cols - j >= 32 ? ~(__mmask32)0 : ((__mmask32)1 << (cols - j)) - 1;
        __m512i lo = _mm512_maskz_loadu_epi32((__mmask16)m, acc + j);
        __m512i hi = _mm512_maskz_loadu_epi32((__mmask16)(m >> 16), acc + j + 16);
        for (int64_t r0 = 0; r0 < rows; r0 += 256) {
            const int64_t r1 = rows - r0 < 256 ? rows : r0 + 256;
            __m512i s = _mm512_setzero_si512();
            for (int64_t r = r0; r < r1; r++)
                s = _mm512_add_epi16(s, _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, x + r * cols + j)));
            lo = _mm512_add_epi32(lo, _mm512_cvtepi16_epi32(_mm512_castsi512_si256(s)));
            hi = _mm512_add_epi32(hi, _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(s, 1)));
        }
        _mm512_mask_storeu_epi32(acc + j, (__mmask16)m, lo);
        _mm512_mask_storeu_epi32(acc + j + 16, (__mmask16)(m >> 16), hi);
    }
}

__attribute__((target("avx2"))) static int32_t em_mean_sum_i8_avx2(const int8_t* x, int64_t n) {
    const __m256i flip = _mm256_set1_epi8((char)0x80), zero = _mm256_setzero_si256();
    __m256i s = zero;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        s = _mm256_add_epi64(s, _mm256_sad_epu8(_mm256_xor_si256(_mm256_loadu_si256((const __m256i*)(x + i)), flip),
                                                zero));
    const __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    const int64_t total = _mm_cvtsi128_si64(t) + _mm_extract_epi64(t, 1) - 128 * i;
    return (int32_t)total + em_mean_sum_i8_scalar(x + i, n - i);
}

__attribute__((target("avx2"))) static void em_mean_rows_i8_avx2(int32_t* acc, const int8_t* x, int64_t rows,
                                                                  int64_t cols) {
    int64_t j = 0;
    for (; j + 16 <= cols; j += 16) {
        __m256i lo = _mm256_loadu_si256((const __m256i*)(acc + j));
        __m256i hi = _mm256_loadu_si256((const __m256i*)(acc + j + 8));
        for (int64_t r0 = 0; r0 < rows; r0 += 256) {
            const int64_t r1 = rows - r0 < 256 ? rows : r0 + 256;
            __m256i s = _mm256_setzero_si256();
            for (int64_t r = r0; r < r1; r++)
                s = _mm256_add_epi16(s, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(x + r * cols + j))));
            lo = _mm256_add_epi32(lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s)));
            hi = _mm256_add_epi32(hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s, 1)));
        }
        _mm256_storeu_si256((__m256i*)(acc + j), lo);
        _mm256_storeu_si256((__m256i*)(acc + j + 8), hi);
    }
    if (j < cols) {
        /* the last cols - j (< 16) columns by the same 16-byte loads, on the rows where 16 bytes from column j stay
         * inside the block (their lanes past the block's columns read the next row: summed apart, never used) */
        const int64_t tail = cols - j, room = rows * cols - j - 16;
        const int64_t safe = room < 0 ? 0 : (room / cols + 1 < rows ? room / cols + 1 : rows);
        __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
        for (int64_t r0 = 0; r0 < safe; r0 += 256) {
            const int64_t r1 = safe - r0 < 256 ? safe : r0 + 256;
            __m256i s = _mm256_setzero_si256();
            for (int64_t r = r0; r < r1; r++)
                s = _mm256_add_epi16(s, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(x + r * cols + j))));
            lo = _mm256_add_epi32(lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s)));
            hi = _mm256_add_epi32(hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s, 1)));
        }
        int32_t part[16];
        _mm256_storeu_si256((__m256i*)part, lo);
        _mm256_storeu_si256((__m256i*)(part + 8), hi);
        for (int64_t k = 0; k < tail; k++) acc[j + k] += part[k];
        for (int64_t r = safe; r < rows; r++) em_mean_add_i8_scalar(acc + j, x + r * cols + j, tail);
    }
}
/* y = clamp(MBQM(acc - zp_sum, m, shift) + out_zp) for the outputs, 8 at a time (em_gemm_avx2.h's arithmetic,
 * the same bits as em_mbqm); returns how many it wrote (a multiple of 8), the rest for the scalar loop. */
#include "em_gemm_avx2.h"
__attribute__((target("avx2"))) static int64_t em_mean_finish_i8_avx2(const int32_t* acc, int8_t* y, int64_t n,
                                                                       int32_t zp_sum, int32_t m, int shift,
                                                                       int mode, int32_t out_zp) {
    if ((mode != EM_ROUND_DOUBLE && mode != EM_ROUND_SINGLE) || shift < -31 || shift > 30) return 0;
    const __m256i mv = _mm256_set1_epi32(m), sv = _mm256_set1_epi32(shift), zs = _mm256_set1_epi32(zp_sum);
    const __m256i oz = _mm256_set1_epi32(out_zp), lo = _mm256_set1_epi32(-128), hi = _mm256_set1_epi32(127);
    const em_mbqm8_lanes q = em_mbqm8_consts(mv, sv);
    int64_t o = 0;
    for (; o + 8 <= n; o += 8) {
        const __m256i v = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i*)(acc + o)), zs);
        __m256i r = mode == EM_ROUND_SINGLE ? em_mbqm_single_x8(v, mv, sv) : em_mbqm_lanes_x8(v, &q, shift > 0);
        r = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(r, oz), lo), hi);
        const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        _mm_storel_epi64((__m128i*)(y + o), _mm_packs_epi16(w, w));
    }
    return o;
}
#endif


static inline int32_t em_mean_sum_i8(int isa, const int8_t* x, int64_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (isa >= EM_ISA_AVX512) return em_mean_sum_i8_avx512(x, n);
    if (isa >= EM_ISA_AVX2) return em_mean_sum_i8_avx2(x, n);
#endif
    (void)isa;
    return em_mean_sum_i8_scalar(x, n);
}

static inline void em_mean_rows_i8(int isa, int32_t* acc, const int8_t* x, int64_t rows, int64_t cols) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (isa >= EM_ISA_AVX512) { em_mean_rows_i8_avx512(acc, x, rows, cols); return; }
    if (isa >= EM_ISA_AVX2) { em_mean_rows_i8_avx2(acc, x, rows, cols); return; }
#endif
    (void)isa;
    em_mean_rows_i8_scalar(acc, x, rows, cols);
}

/* The int8 walk: as EM_MEAN_SUM_RUNS, with a reduced dim over a kept contiguous innermost run taken as one block
 * of rows, and a reduced innermost run summed at once. */
static void em_mean_sum_i8_walk(int isa, const int64_t* dims, const int64_t* ost, const int8_t* x, int32_t* acc) {
    const int rows_block = ost[5] == 1 && ost[4] == 0 && dims[4] > 1;
    const int64_t run = rows_block ? dims[4] * dims[5] : dims[5];
    int64_t k = 0;
    for (int64_t i0 = 0; i0 < dims[0]; i0++)
    for (int64_t i1 = 0; i1 < dims[1]; i1++)
    for (int64_t i2 = 0; i2 < dims[2]; i2++)
    for (int64_t i3 = 0; i3 < dims[3]; i3++)
    for (int64_t i4 = 0; i4 < (rows_block ? 1 : dims[4]); i4++, k += run) {
        const int64_t ob = i0 * ost[0] + i1 * ost[1] + i2 * ost[2] + i3 * ost[3] + i4 * ost[4];
        if (rows_block) em_mean_rows_i8(isa, acc + ob, x + k, dims[4], dims[5]);
        else if (ost[5] == 1) em_mean_add_i8(isa, acc + ob, x + k, dims[5]);
        else if (ost[5] == 0) acc[ob] += em_mean_sum_i8(isa, x + k, dims[5]);
        else for (int64_t i5 = 0; i5 < dims[5]; i5++) acc[ob + i5 * ost[5]] += x[k + i5];
    }
}

static void em_mean(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t* dims = d + EM_MEAN_I_DIMS;
    const int64_t* ost = d + EM_MEAN_I_OUT_STRIDES;
    const int64_t n_out = d[EM_MEAN_I_OUTPUTS], count = d[EM_MEAN_I_REDUCED];
    const int isa = em_isa();
    int64_t k = 0;
    if (d[EM_MEAN_I_IS_FLOAT]) {
        const float* x = (const float*)p->ptr[EM_MEAN_P_INPUT];
        float* y = (float*)p->ptr[EM_MEAN_P_OUTPUT];
        float* acc = (float*)p->ptr[EM_MEAN_P_SCRATCH];
        for (int64_t o = 0; o < n_out; o++) acc[o] = 0.0f;
        EM_MEAN_SUM_RUNS(float, em_mean_add_f32)
        for (int64_t o = 0; o < n_out; o++) y[o] = acc[o] / (float)count;
        return;
    }
    const int8_t* x = (const int8_t*)p->ptr[EM_MEAN_P_INPUT];
    int8_t* y = (int8_t*)p->ptr[EM_MEAN_P_OUTPUT];
    int32_t* acc = (int32_t*)p->ptr[EM_MEAN_P_SCRATCH];
    for (int64_t o = 0; o < n_out; o++) acc[o] = 0;
    em_mean_sum_i8_walk(isa, dims, ost, x, acc);
    const int32_t zp_sum = (int32_t)(d[EM_MEAN_I_IN_ZP] * count);
    int64_t o = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (isa >= EM_ISA_AVX2)
        o = em_mean_finish_i8_avx2(acc, y, n_out, zp_sum, (int32_t)d[EM_MEAN_I_MULT], (int)d[EM_MEAN_I_SHIFT],
                                   (int)d[EM_MEAN_I_MODE], (int32_t)d[EM_MEAN_I_OUT_ZP]);
#endif
    for (; o < n_out; o++) {
        int32_t v = em_mbqm(acc[o] - zp_sum, (int32_t)d[EM_MEAN_I_MULT], (int)d[EM_MEAN_I_SHIFT],
                            (int)d[EM_MEAN_I_MODE]) + (int32_t)d[EM_MEAN_I_OUT_ZP];
        y[o] = (int8_t)em_clamp_i32(v, -128, 127);
    }
}

/* ----- REDUCE_MAX, REDUCE_MIN, SUM, REDUCE_PROD, ARG_MAX, ARG_MIN (edgeml/runtime/ops/reduce.py) ----------- */
#include <float.h>
#include <string.h>
#include "em_dtype.h"

/* Visits every input element in order with `ob`, the output it reduces into (the MEAN walk). */
#define EM_REDUCE_WALK(...)                                                                         \
    for (int64_t i0 = 0; i0 < dims[0]; i0++)                                                        \
    for (int64_t i1 = 0; i1 < dims[1]; i1++)                                                        \
    for (int64_t i2 = 0; i2 < dims[2]; i2++)                                                        \
    for (int64_t i3 = 0; i3 < dims[3]; i3++)                                                        \
    for (int64_t i4 = 0; i4 < dims[4]; i4++) {                                                      \
        const int64_t base = i0 * ost[0] + i1 * ost[1] + i2 * ost[2] + i3 * ost[3] + i4 * ost[4];   \
        for (int64_t i5 = 0; i5 < dims[5]; i5++, k++) {                                             \
            const int64_t ob = base + i5 * ost[5];                                                  \
            __VA_ARGS__                                                                             \
        }                                                                                           \
    }

/* Layout EM_REDUCE: REDUCE_MAX / REDUCE_MIN / SUM / REDUCE_PROD of unquantized values (float32, int8, uint8,
 * int16, int32, int64), as LiteRT's reference: each output starts at the reduction's identity (the lowest /
 * highest value for max / min) and takes the inputs in order; integer sums and products wrap.  With every
 * axis reduced LiteRT starts from the first element instead (`from_first`).
 * ptr: input, output; i: input dims (6-D), output stride of each input dim (6, 0 where reduced), outputs,
 *      element type (EM_DT_*), reduction (EM_REDUCE_KIND_*), from_first */
#define EM_REDUCE_KIND_MAX 0
#define EM_REDUCE_KIND_MIN 1
#define EM_REDUCE_KIND_SUM 2
#define EM_REDUCE_KIND_PROD 3
enum { EM_REDUCE_P_INPUT, EM_REDUCE_P_OUTPUT, EM_REDUCE_P_COUNT };
enum { EM_REDUCE_I_DIMS, EM_REDUCE_I_DIMS_LAST = EM_REDUCE_I_DIMS + 5, EM_REDUCE_I_OUT_STRIDES,
       EM_REDUCE_I_OUT_STRIDES_LAST = EM_REDUCE_I_OUT_STRIDES + 5, EM_REDUCE_I_OUTPUTS, EM_REDUCE_I_DTYPE,
       EM_REDUCE_I_KIND, EM_REDUCE_I_FROM_FIRST, EM_REDUCE_I_COUNT };
enum { EM_REDUCE_F_COUNT = 0 };

/* The walk by runs of the innermost input dim, STEP folding one input v into acc: a kept innermost dim (output
 * stride 1) folds a run into a run of outputs, element by element; a reduced one (stride 0) folds a run into one
 * output through a local.  Each output still takes its inputs in input order (float sums round as the reference);
 * the locals and runs, not y[ob] re-read through memory a byte store may alias, let the compiler vectorize. */
#define EM_REDUCE_RUNS(T, ...)                                                                      \
    for (int64_t i0 = 0; i0 < dims[0]; i0++)                                                        \
    for (int64_t i1 = 0; i1 < dims[1]; i1++)                                                        \
    for (int64_t i2 = 0; i2 < dims[2]; i2++)                                                        \
    for (int64_t i3 = 0; i3 < dims[3]; i3++)                                                        \
    for (int64_t i4 = 0; i4 < dims[4]; i4++, k += dims[5]) {                                        \
        const int64_t base = i0 * ost[0] + i1 * ost[1] + i2 * ost[2] + i3 * ost[3] + i4 * ost[4];   \
        const int64_t run = dims[5], stride = ost[5];                                               \
        const T* xr = x + k;                                                                        \
        T* yr = y + base;                                                                           \
        if (stride == 1) {                                                                          \
            for (int64_t i5 = 0; i5 < run; i5++) { T acc = yr[i5]; const T v = xr[i5]; __VA_ARGS__ yr[i5] = acc; } \
        } else if (stride == 0) {                                                                   \
            T acc = yr[0];                                                                          \
            for (int64_t i5 = 0; i5 < run; i5++) { const T v = xr[i5]; __VA_ARGS__ }                \
            yr[0] = acc;                                                                            \
        } else {                                                                                    \
            for (int64_t i5 = 0; i5 < run; i5++) {                                                  \
                T acc = yr[i5 * stride]; const T v = xr[i5]; __VA_ARGS__ yr[i5 * stride] = acc;    \
            }                                                                                       \
        }                                                                                           \
    }

/* T the element type, U its wrapping arithmetic type, LO / HI its range */
#define EM_REDUCE_TYPED(T, U, LO, HI)                                                               \
    {                                                                                               \
        const T* x = (const T*)p->ptr[EM_REDUCE_P_INPUT];                                           \
        T* y = (T*)p->ptr[EM_REDUCE_P_OUTPUT];                                                      \
        const T init = kind == EM_REDUCE_KIND_MAX ? (T)(LO) : kind == EM_REDUCE_KIND_MIN ? (T)(HI)  \
                       : kind == EM_REDUCE_KIND_SUM ? (T)0 : (T)1;                                  \
        for (int64_t o = 0; o < n_out; o++) y[o] = init;                                            \
        if (d[EM_REDUCE_I_FROM_FIRST] && total > 0) y[0] = x[k++];                                  \
        if (k == 0) {                                                                               \
            switch (kind) {                                                                         \
            case EM_REDUCE_KIND_MAX: EM_REDUCE_RUNS(T, acc = v > acc ? v : acc;) break;            \
            case EM_REDUCE_KIND_MIN: EM_REDUCE_RUNS(T, acc = v < acc ? v : acc;) break;            \
            case EM_REDUCE_KIND_SUM: EM_REDUCE_RUNS(T, acc = (T)((U)acc + (U)v);) break;           \
            default: EM_REDUCE_RUNS(T, acc = (T)((U)acc * (U)v);) break;                           \
            }                                                                                       \
        } else {                                                                                    \
            for (; k < total; k++) {                                                                \
                const T v = x[k];                                                                   \
                switch (kind) {                                                                     \
                case EM_REDUCE_KIND_MAX: if (v > y[0]) y[0] = v; break;                             \
                case EM_REDUCE_KIND_MIN: if (v < y[0]) y[0] = v; break;                             \
                case EM_REDUCE_KIND_SUM: y[0] = (T)((U)y[0] + (U)v); break;                         \
                default: y[0] = (T)((U)y[0] * (U)v); break;                                         \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }

#if defined(__x86_64__) && defined(__GNUC__)
/* REDUCE_MAX / REDUCE_MIN of int8 or uint8 with the innermost dim kept (runs of 16+ outputs: a global max pool
 * over the spatial dims): 32 and 16 outputs at a time, the same walk and order as EM_REDUCE_RUNS (max and min are
 * exact, so only the speed differs).  Not for the every-axis form (`from_first`), whose innermost dim is reduced. */
/* Folds up to `rows` runs into yr[j .. j + width) with one vector type V (LOAD / STORE its unaligned forms). */
#define EM_REDUCE_MINMAX8_BLOCK(V, LOAD, STORE, OP)                                                 \
    {                                                                                               \
        V v = LOAD((const V*)(yr + j));                                                             \
        for (int64_t r = 0; r < rows; r++) v = OP(v, LOAD((const V*)(xr + r * run + j)));            \
        STORE((V*)(yr + j), v);                                                                     \
    }

#define EM_REDUCE_MINMAX8(OP256, OP128, CMP)                                                        \
    for (int64_t i0 = 0; i0 < dims[0]; i0++)                                                        \
    for (int64_t i1 = 0; i1 < dims[1]; i1++)                                                        \
    for (int64_t i2 = 0; i2 < dims[2]; i2++)                                                        \
    for (int64_t i3 = 0; i3 < dims[3]; i3++)                                                        \
    for (int64_t i4 = 0; i4 < dims[4]; ) {                                                          \
        /* up to 8 runs that fold into the same outputs (dim 4 reduced) combined in registers first */ \
        const int64_t rows = ost[4] ? 1 : (dims[4] - i4 < 8 ? dims[4] - i4 : 8);                    \
        T* yr = y + i0 * ost[0] + i1 * ost[1] + i2 * ost[2] + i3 * ost[3] + i4 * ost[4];            \
        const T* xr = x + k;                                                                        \
        int64_t j = 0;                                                                              \
        for (; j + 32 <= run; j += 32)                                                              \
            EM_REDUCE_MINMAX8_BLOCK(__m256i, _mm256_loadu_si256, _mm256_storeu_si256, OP256)        \
        for (; j + 16 <= run; j += 16)                                                              \
            EM_REDUCE_MINMAX8_BLOCK(__m128i, _mm_loadu_si128, _mm_storeu_si128, OP128)              \
        for (; j < run; j++)                                                                        \
            for (int64_t r = 0; r < rows; r++) if (xr[r * run + j] CMP yr[j]) yr[j] = xr[r * run + j]; \
        k += rows * run;                                                                            \
        i4 += rows;                                                                                 \
    }

/* The walk for element type TYPE, the outputs starting at LO (max) or HI (min), with its max / min intrinsics. */
#define EM_REDUCE_MINMAX8_TYPED(TYPE, LO, HI, MAX256, MAX128, MIN256, MIN128)                       \
    {                                                                                               \
        typedef TYPE T;                                                                             \
        const T* x = (const T*)p->ptr[EM_REDUCE_P_INPUT];                                           \
        T* y = (T*)p->ptr[EM_REDUCE_P_OUTPUT];                                                      \
        memset(y, is_max ? (LO) : (HI), (size_t)d[EM_REDUCE_I_OUTPUTS]);                            \
        if (is_max) { EM_REDUCE_MINMAX8(MAX256, MAX128, >) }                                        \
        else { EM_REDUCE_MINMAX8(MIN256, MIN128, <) }                                               \
    }

__attribute__((target("avx2"))) static void em_reduce_minmax8_avx2(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t* dims = d + EM_REDUCE_I_DIMS;
    const int64_t* ost = d + EM_REDUCE_I_OUT_STRIDES;
    const int64_t run = dims[5];
    const int is_max = d[EM_REDUCE_I_KIND] == EM_REDUCE_KIND_MAX;
    int64_t k = 0;
    if (d[EM_REDUCE_I_DTYPE] == EM_DT_I8)
        EM_REDUCE_MINMAX8_TYPED(int8_t, 0x80, 0x7F, _mm256_max_epi8, _mm_max_epi8, _mm256_min_epi8, _mm_min_epi8)
    else
        EM_REDUCE_MINMAX8_TYPED(uint8_t, 0x00, 0xFF, _mm256_max_epu8, _mm_max_epu8, _mm256_min_epu8, _mm_min_epu8)
}
#endif

static void em_reduce(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t* dims = d + EM_REDUCE_I_DIMS;
    const int64_t* ost = d + EM_REDUCE_I_OUT_STRIDES;
    const int64_t n_out = d[EM_REDUCE_I_OUTPUTS];
    const int kind = (int)d[EM_REDUCE_I_KIND];
    const int64_t total = dims[0] * dims[1] * dims[2] * dims[3] * dims[4] * dims[5];
    int64_t k = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if ((d[EM_REDUCE_I_DTYPE] == EM_DT_I8 || d[EM_REDUCE_I_DTYPE] == EM_DT_U8) && kind <= EM_REDUCE_KIND_MIN &&
            !d[EM_REDUCE_I_FROM_FIRST] && ost[5] == 1 && dims[5] >= 16 && em_isa() >= EM_ISA_AVX2) {
        em_reduce_minmax8_avx2(p);
        return;
    }
#endif
    switch (d[EM_REDUCE_I_DTYPE]) {
    case EM_DT_F32: EM_REDUCE_TYPED(float, float, -FLT_MAX, FLT_MAX) break;
    case EM_DT_I8: EM_REDUCE_TYPED(int8_t, uint32_t, INT8_MIN, INT8_MAX) break;
    case EM_DT_U8: EM_REDUCE_TYPED(uint8_t, uint32_t, 0, UINT8_MAX) break;
    case EM_DT_I16: EM_REDUCE_TYPED(int16_t, uint32_t, INT16_MIN, INT16_MAX) break;
    case EM_DT_I32: EM_REDUCE_TYPED(int32_t, uint32_t, INT32_MIN, INT32_MAX) break;
    case EM_DT_I64: EM_REDUCE_TYPED(int64_t, uint64_t, INT64_MIN, INT64_MAX) break;
    }
}

/* Layout EM_QSUM: quantized SUM (LiteRT's QuantizedMeanOrSum with compute_sum): integer sum of the raw values,
 * minus in_zp * reduced, one fixed-point multiplier s_in / s_out, plus out_zp, clamped to [lo, hi].
 * ptr: input, output, scratch (one int32 per output); i: input dims (6-D), output strides (6, 0 where reduced),
 *      outputs, reduced count, element type, in_zp, out_zp, multiplier, shift, rounding mode, lo, hi */
enum { EM_QSUM_P_INPUT, EM_QSUM_P_OUTPUT, EM_QSUM_P_SCRATCH, EM_QSUM_P_COUNT };
enum { EM_QSUM_I_DIMS, EM_QSUM_I_DIMS_LAST = EM_QSUM_I_DIMS + 5, EM_QSUM_I_OUT_STRIDES,
       EM_QSUM_I_OUT_STRIDES_LAST = EM_QSUM_I_OUT_STRIDES + 5, EM_QSUM_I_OUTPUTS, EM_QSUM_I_REDUCED,
       EM_QSUM_I_DTYPE, EM_QSUM_I_IN_ZP, EM_QSUM_I_OUT_ZP, EM_QSUM_I_MULT, EM_QSUM_I_SHIFT, EM_QSUM_I_MODE,
       EM_QSUM_I_LO, EM_QSUM_I_HI, EM_QSUM_I_COUNT };
enum { EM_QSUM_F_COUNT = 0 };

static void em_reduce_sum_quantized(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t* dims = d + EM_QSUM_I_DIMS;
    const int64_t* ost = d + EM_QSUM_I_OUT_STRIDES;
    const int64_t n_out = d[EM_QSUM_I_OUTPUTS];
    int32_t* acc = (int32_t*)p->ptr[EM_QSUM_P_SCRATCH];
    for (int64_t o = 0; o < n_out; o++) acc[o] = 0;
    if (dims[0] * dims[1] * dims[2] * dims[3] * dims[4] * dims[5] == 0) {     /* LiteRT: zeros */
        EM_DT_SWITCH(d[EM_QSUM_I_DTYPE], for (int64_t o = 0; o < n_out; o++) ((T*)p->ptr[EM_QSUM_P_OUTPUT])[o] = 0;)
        return;
    }
    int64_t k = 0;
    EM_DT_SWITCH(d[EM_QSUM_I_DTYPE], {
        const T* x = (const T*)p->ptr[EM_QSUM_P_INPUT];
        EM_REDUCE_WALK(acc[ob] = (int32_t)((uint32_t)acc[ob] + (uint32_t)(int32_t)x[k]);)
    })
    const int32_t zp_sum = (int32_t)(d[EM_QSUM_I_IN_ZP] * d[EM_QSUM_I_REDUCED]);
    const int32_t lo = (int32_t)d[EM_QSUM_I_LO], hi = (int32_t)d[EM_QSUM_I_HI];
    for (int64_t o = 0; o < n_out; o++) {
        const int32_t v = em_mbqm((int32_t)((uint32_t)acc[o] - (uint32_t)zp_sum), (int32_t)d[EM_QSUM_I_MULT],
                                  (int)d[EM_QSUM_I_SHIFT], (int)d[EM_QSUM_I_MODE]) + (int32_t)d[EM_QSUM_I_OUT_ZP];
        const int32_t r = em_clamp_i32(v, lo, hi);
        EM_DT_SWITCH(d[EM_QSUM_I_DTYPE], ((T*)p->ptr[EM_QSUM_P_OUTPUT])[o] = (T)r;)
    }
}

/* Layout EM_QPROD: quantized REDUCE_PROD (LiteRT's QuantizedReduceProd): each output starts at its first input
 * minus in_zp; every further input multiplies it (int64) and the product is rescaled at once by
 * s_in / s_out^(1 / reduced) (em_mbqm64); the result is rescaled once more, plus out_zp, clamped.
 * ptr: input, output, scratch (int32 per output, then one byte per output); i: input dims (6-D), output strides
 *      (6), outputs, element type (int8 / int16), in_zp, out_zp, multiplier, shift, lo, hi */
enum { EM_QPROD_P_INPUT, EM_QPROD_P_OUTPUT, EM_QPROD_P_SCRATCH, EM_QPROD_P_COUNT };
enum { EM_QPROD_I_DIMS, EM_QPROD_I_DIMS_LAST = EM_QPROD_I_DIMS + 5, EM_QPROD_I_OUT_STRIDES,
       EM_QPROD_I_OUT_STRIDES_LAST = EM_QPROD_I_OUT_STRIDES + 5, EM_QPROD_I_OUTPUTS, EM_QPROD_I_DTYPE,
       EM_QPROD_I_IN_ZP, EM_QPROD_I_OUT_ZP, EM_QPROD_I_MULT, EM_QPROD_I_SHIFT, EM_QPROD_I_LO, EM_QPROD_I_HI,
       EM_QPROD_I_COUNT };
enum { EM_QPROD_F_COUNT = 0 };

static void em_reduce_prod_quantized(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t* dims = d + EM_QPROD_I_DIMS;
    const int64_t* ost = d + EM_QPROD_I_OUT_STRIDES;
    const int64_t n_out = d[EM_QPROD_I_OUTPUTS];
    const int32_t zp = (int32_t)d[EM_QPROD_I_IN_ZP], m = (int32_t)d[EM_QPROD_I_MULT];
    const int sh = (int)d[EM_QPROD_I_SHIFT];
    int32_t* acc = (int32_t*)p->ptr[EM_QPROD_P_SCRATCH];
    uint8_t* seen = (uint8_t*)(acc + n_out);
    for (int64_t o = 0; o < n_out; o++) {
        acc[o] = 0;
        seen[o] = 0;
    }
    int64_t k = 0;
    EM_DT_SWITCH(d[EM_QPROD_I_DTYPE], {
        const T* x = (const T*)p->ptr[EM_QPROD_P_INPUT];
        EM_REDUCE_WALK(
            const int32_t v = (int32_t)x[k] - zp;
            if (!seen[ob]) {
                acc[ob] = v;
                seen[ob] = 1;
            } else {
                acc[ob] = em_mbqm64((int64_t)acc[ob] * v, m, sh);
            })
    })
    const int32_t lo = (int32_t)d[EM_QPROD_I_LO], hi = (int32_t)d[EM_QPROD_I_HI];
    for (int64_t o = 0; o < n_out; o++) {
        const int32_t r = em_clamp_i32(em_mbqm64(acc[o], m, sh) + (int32_t)d[EM_QPROD_I_OUT_ZP], lo, hi);
        EM_DT_SWITCH(d[EM_QPROD_I_DTYPE], ((T*)p->ptr[EM_QPROD_P_OUTPUT])[o] = (T)r;)
    }
}

/* Layout EM_ARG: ARG_MAX / ARG_MIN over the middle axis of [outer][axis][inner]: the first index of the
 * largest (smallest) value; a float NaN never wins and any number beats a NaN (LiteRT's comparator).
 * ptr: input, output (int32 or int64); i: outer, axis size, inner, element type, is_max, int64 output */
enum { EM_ARG_P_INPUT, EM_ARG_P_OUTPUT, EM_ARG_P_COUNT };
enum { EM_ARG_I_OUTER, EM_ARG_I_AXIS_SIZE, EM_ARG_I_INNER, EM_ARG_I_DTYPE, EM_ARG_I_IS_MAX, EM_ARG_I_INT64_OUTPUT,
       EM_ARG_I_COUNT };
enum { EM_ARG_F_COUNT = 0 };

/* Bytes over the last axis (inner 1, axis <= 32), one row per 32-byte vector: the row's bytes mapped so that the
 * wanted value is the signed maximum (uint8: ^ 0x80; ARG_MIN: ~), the lanes past the row set to -128, the maximum
 * found by halving folds, and its first lane by a byte compare.  Rows whose 32-byte read would pass the end of the
 * input are left to the scalar loop; returns the rows done. */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) static int64_t em_arg_bytes_avx2(const int8_t* x, int64_t rows, int64_t axis,
                                                                 uint8_t flip, void* y, int wide) {
    const __m256i lanes = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                                           21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31);
    const __m256i past = _mm256_cmpgt_epi8(lanes, _mm256_set1_epi8((char)(axis - 1)));   /* lanes >= axis */
    const __m256i low = _mm256_set1_epi8((char)-128), f = _mm256_set1_epi8((char)flip);
    const uint32_t real = axis >= 32 ? 0xFFFFFFFFu : (1u << axis) - 1;
    const int64_t done = rows * axis >= 32 ? (rows * axis - 32) / axis + 1 : 0;   /* rows r with r axis + 32 <= all */
    for (int64_t r = 0; r < done; r++) {
        const __m256i v = _mm256_blendv_epi8(
            _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)(x + r * axis)), f), low, past);
        __m128i m = _mm_max_epi8(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        m = _mm_max_epi8(m, _mm_srli_si128(m, 8));
        m = _mm_max_epi8(m, _mm_srli_si128(m, 4));
        m = _mm_max_epi8(m, _mm_srli_si128(m, 2));
        m = _mm_max_epi8(m, _mm_srli_si128(m, 1));
        const uint32_t hits = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_broadcastb_epi8(m))) & real;
        const int64_t at = __builtin_ctz(hits);
        if (wide) ((int64_t*)y)[r] = at;
        else ((int32_t*)y)[r] = (int32_t)at;
    }
    return done;
}
#endif

static void em_arg_min_max(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t outer = d[EM_ARG_I_OUTER], axis = d[EM_ARG_I_AXIS_SIZE], inner = d[EM_ARG_I_INNER];
    const int is_max = d[EM_ARG_I_IS_MAX] != 0, wide = d[EM_ARG_I_INT64_OUTPUT] != 0;
    void* y = p->ptr[EM_ARG_P_OUTPUT];
    int64_t start = 0;     /* rows (outer) the vector body did */
#if defined(__x86_64__) && defined(__GNUC__)
    const int64_t code = d[EM_ARG_I_DTYPE];
    if (em_isa() >= EM_ISA_AVX2 && inner == 1 && axis <= 32 && (code == EM_DT_I8 || code == EM_DT_U8))
        start = em_arg_bytes_avx2((const int8_t*)p->ptr[EM_ARG_P_INPUT], outer, axis,
                                  (uint8_t)((code == EM_DT_U8 ? 0x80 : 0) ^ (is_max ? 0 : 0xFF)), y, wide);
#endif
    EM_DT_SWITCH(d[EM_ARG_I_DTYPE], {
        const T* x = (const T*)p->ptr[EM_ARG_P_INPUT];
        for (int64_t o = start; o < outer; o++)
            for (int64_t j = 0; j < inner; j++) {
                const T* col = x + o * axis * inner + j;
                T best = col[0];
                int64_t at = 0;
                for (int64_t i = 1; i < axis; i++) {
                    const T v = col[i * inner];
                    /* v != v: NaN (float only); the comparison is false for NaN anyway */
                    const int better = is_max ? v > best : v < best;
                    if (v == v && (better || best != best)) {
                        best = v;
                        at = i;
                    }
                }
                if (wide) ((int64_t*)y)[o * inner + j] = at;
                else ((int32_t*)y)[o * inner + j] = (int32_t)at;
            }
    })
}
#endif
