/* AVERAGE_POOL_2D and MAX_POOL_2D, int8 (uint8 held as int8: em_avg_pool_uint8) and float32, NHWC.  Layout EM_POOL:
 * i: N, IH, IW, C, OH, OW, KH, KW, SH, SW, pad_top, pad_left, act_min, act_max (int8)
 * ptr: input, output, scratch (C int32 / float sums); f: act_min, act_max (float) */
#ifndef EM_POOL_H
#define EM_POOL_H
#include "em_params.h"
#include "em_requant.h"
#include "em_isa.h"
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

enum { EM_POOL_P_INPUT, EM_POOL_P_OUTPUT, EM_POOL_P_SCRATCH, EM_POOL_P_COUNT };
enum { EM_POOL_I_N, EM_POOL_I_IH, EM_POOL_I_IW, EM_POOL_I_C, EM_POOL_I_OH, EM_POOL_I_OW, EM_POOL_I_KH, EM_POOL_I_KW,
       EM_POOL_I_SH, EM_POOL_I_SW, EM_POOL_I_PAD_TOP, EM_POOL_I_PAD_LEFT, EM_POOL_I_ACT_MIN, EM_POOL_I_ACT_MAX,
       EM_POOL_I_COUNT };
enum { EM_POOL_F_ACT_MIN, EM_POOL_F_ACT_MAX, EM_POOL_F_COUNT };

#define EM_POOL_WINDOW                                                                                    \
    const int64_t* d = p->i;                                                                              \
    const int64_t N = d[EM_POOL_I_N], IH = d[EM_POOL_I_IH], IW = d[EM_POOL_I_IW], C = d[EM_POOL_I_C];     \
    const int64_t OH = d[EM_POOL_I_OH], OW = d[EM_POOL_I_OW], KH = d[EM_POOL_I_KH], KW = d[EM_POOL_I_KW];

#define EM_POOL_CLIP                                                                                             \
    int64_t y0 = oy * d[EM_POOL_I_SH] - d[EM_POOL_I_PAD_TOP], x0 = ox * d[EM_POOL_I_SW] - d[EM_POOL_I_PAD_LEFT]; \
    int64_t ky0 = y0 < 0 ? -y0 : 0, ky1 = KH < IH - y0 ? KH : IH - y0;                                           \
    int64_t kx0 = x0 < 0 ? -x0 : 0, kx1 = KW < IW - x0 ? KW : IW - x0;

/* int8 average: the window's sum over the pixels inside the image, divided by their count with ROUND(a, count).
 * The division is floor(t / n) for a t >= 0: a float estimate (q <= 129 always, so it is within one of the
 * quotient) corrected by integer products, which the compiler vectorizes; an integer division per channel cost
 * ~2.5 ns (vww's 3x3x256 pool ran at 3.7 GB/s).  Up to 2^22 pixels per window, where (q + 1) n fits in int32. */
#define EM_POOL_FAST_DIV_MAX (1 << 22)
static inline int32_t em_pool_floor_div(int32_t t, int32_t n, float reciprocal) {
    if (n > EM_POOL_FAST_DIV_MAX) return t / n;
    int32_t q = (int32_t)((float)t * reciprocal);
    q += (q + 1) * n <= t;
    q -= q * n > t;
    return q;
}

#define EM_AVG_POOL_INT8_BODY(ROUND)                                                                      \
    EM_POOL_WINDOW                                                                                        \
    const int8_t* in = (const int8_t*)p->ptr[EM_POOL_P_INPUT];                                            \
    int8_t* out = (int8_t*)p->ptr[EM_POOL_P_OUTPUT];                                                      \
    int32_t* acc = (int32_t*)p->ptr[EM_POOL_P_SCRATCH];                                                   \
    const int32_t act_min = (int32_t)d[EM_POOL_I_ACT_MIN], act_max = (int32_t)d[EM_POOL_I_ACT_MAX];       \
    for (int64_t b = 0; b < N; b++)                                                                       \
    for (int64_t oy = 0; oy < OH; oy++)                                                                   \
    for (int64_t ox = 0; ox < OW; ox++) {                                                                 \
        EM_POOL_CLIP                                                                                      \
        for (int64_t c = 0; c < C; c++) acc[c] = 0;                                                       \
        int32_t count = 0;                                                                                \
        for (int64_t ky = ky0; ky < ky1; ky++)                                                            \
            for (int64_t kx = kx0; kx < kx1; kx++, count++) {                                             \
                const int8_t* x = in + ((b * IH + y0 + ky) * IW + x0 + kx) * C;                           \
                for (int64_t c = 0; c < C; c++) acc[c] += x[c];                                           \
            }                                                                                             \
        int8_t* o = out + ((b * OH + oy) * OW + ox) * C;                                                  \
        if (count == 0) {                                                                                 \
            for (int64_t c = 0; c < C; c++) o[c] = (int8_t)em_clamp_i32(0, act_min, act_max);             \
            continue;                                                                                     \
        }                                                                                                 \
        const float reciprocal = 1.0f / (float)count;                                                     \
        for (int64_t c = 0; c < C; c++) {                                                                 \
            const int32_t v = ROUND(acc[c], count, reciprocal);                                           \
            o[c] = (int8_t)em_clamp_i32(v, act_min, act_max);                                             \
        }                                                                                                 \
    }

/* reference_integer_ops::AveragePool: rounding half away from zero, sign(a) floor((|a| + n / 2) / n) */
static inline int32_t em_round_half_away(int32_t a, int32_t n, float reciprocal) {
    const int32_t q = em_pool_floor_div((a < 0 ? -a : a) + n / 2, n, reciprocal);
    return a < 0 ? -q : q;
}
/* reference_ops::AveragePool on uint8 (held as int8, q - 128): (sum + n / 2) / n on the uint8 sum, which is never
 * negative, so halves round up */
static inline int32_t em_round_uint8_half_up(int32_t a, int32_t n, float reciprocal) {
    return em_pool_floor_div(a + 128 * n + n / 2, n, reciprocal) - 128;
}

static void em_avg_pool_int8_scalar(const em_params* p) { EM_AVG_POOL_INT8_BODY(em_round_half_away) }

static void em_avg_pool_uint8_scalar(const em_params* p) { EM_AVG_POOL_INT8_BODY(em_round_uint8_half_up) }

#if defined(__x86_64__) && defined(__GNUC__)
/* ROUND(a, n) on eight int32 sums: em_pool_floor_div's estimate and corrections in vector form (n <= 2^22) */
__attribute__((target("avx2"))) static inline __m256i em_avg_pool_round8(__m256i a, __m256i n, __m256i half,
                                                                        __m256 reciprocal, int uint8) {
    const __m256i t = uint8 ? _mm256_add_epi32(a, half) : _mm256_add_epi32(_mm256_abs_epi32(a), half);
    __m256i q = _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_cvtepi32_ps(t), reciprocal));
    const __m256i one = _mm256_set1_epi32(1);
    /* q += (q + 1) n <= t; q -= q n > t (a true comparison is -1) */
    q = _mm256_add_epi32(q, _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_mullo_epi32(_mm256_add_epi32(q, one), n), t),
                                                one));
    q = _mm256_add_epi32(q, _mm256_cmpgt_epi32(_mm256_mullo_epi32(q, n), t));
    return uint8 ? _mm256_sub_epi32(q, _mm256_set1_epi32(128)) : _mm256_sign_epi32(q, a);
}

/* The same windows, 32 channels per step as four int32 sums of eight, then 8, then one by one.  uint8: the
 * uint8 rounding on int8-held values (half = 128 n + n / 2); else half away from zero (half = n / 2). */
__attribute__((target("avx2"))) static void em_avg_pool_int8_avx2(const em_params* p, int uint8) {
    EM_POOL_WINDOW
    const int8_t* in = (const int8_t*)p->ptr[EM_POOL_P_INPUT];
    int8_t* out = (int8_t*)p->ptr[EM_POOL_P_OUTPUT];
    const int32_t amin = (int32_t)d[EM_POOL_I_ACT_MIN], amax = (int32_t)d[EM_POOL_I_ACT_MAX];
    const __m256i lo = _mm256_set1_epi32(amin), hi = _mm256_set1_epi32(amax);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t b = 0; b < N; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t ox = 0; ox < OW; ox++) {
        EM_POOL_CLIP
        int8_t* o = out + ((b * OH + oy) * OW + ox) * C;
        const int8_t* corner = in + ((b * IH + y0) * IW + x0) * C;
        const int32_t count = (int32_t)((ky1 > ky0 ? ky1 - ky0 : 0) * (kx1 > kx0 ? kx1 - kx0 : 0));
        if (count == 0 || count > EM_POOL_FAST_DIV_MAX) {
            for (int64_t c = 0; c < C; c++) {
                int32_t a = 0;
                for (int64_t ky = ky0; ky < ky1; ky++)
                    for (int64_t kx = kx0; kx < kx1; kx++) a += corner[(ky * IW + kx) * C + c];
                const int32_t v = count == 0 ? 0 : uint8 ? em_round_uint8_half_up(a, count, 0.0f)
                                                         : em_round_half_away(a, count, 0.0f);
                o[c] = (int8_t)em_clamp_i32(v, amin, amax);
            }
            continue;
        }
        const __m256i n = _mm256_set1_epi32(count);
        const __m256i half = _mm256_set1_epi32(uint8 ? 128 * count + count / 2 : count / 2);
        const __m256 reciprocal = _mm256_set1_ps(1.0f / (float)count);
        int64_t c = 0;
        for (; c + 32 <= C; c += 32) {
            __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
            for (int64_t ky = ky0; ky < ky1; ky++)
                for (int64_t kx = kx0; kx < kx1; kx++) {
                    const int8_t* x = corner + (ky * IW + kx) * C + c;
                    s0 = _mm256_add_epi32(s0, _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)x)));
                    s1 = _mm256_add_epi32(s1, _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(x + 8))));
                    s2 = _mm256_add_epi32(s2, _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(x + 16))));
                    s3 = _mm256_add_epi32(s3, _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(x + 24))));
                }
            s0 = _mm256_min_epi32(_mm256_max_epi32(em_avg_pool_round8(s0, n, half, reciprocal, uint8), lo), hi);
            s1 = _mm256_min_epi32(_mm256_max_epi32(em_avg_pool_round8(s1, n, half, reciprocal, uint8), lo), hi);
            s2 = _mm256_min_epi32(_mm256_max_epi32(em_avg_pool_round8(s2, n, half, reciprocal, uint8), lo), hi);
            s3 = _mm256_min_epi32(_mm256_max_epi32(em_avg_pool_round8(s3, n, half, reciprocal, uint8), lo), hi);
            /* packs interleave 128-bit lanes: [s0 lo, s1 lo, s0 hi, s1 hi] -> bytes, then dwords back in order */
            const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(s0, s1), _mm256_packs_epi32(s2, s3));
            _mm256_storeu_si256((__m256i*)(o + c), _mm256_permutevar8x32_epi32(bytes, order));
        }
        for (; c + 8 <= C; c += 8) {
            __m256i s0 = _mm256_setzero_si256();
            for (int64_t ky = ky0; ky < ky1; ky++)
                for (int64_t kx = kx0; kx < kx1; kx++)
                    s0 = _mm256_add_epi32(s0, _mm256_cvtepi8_epi32(
                        _mm_loadl_epi64((const __m128i*)(corner + (ky * IW + kx) * C + c))));
            s0 = _mm256_min_epi32(_mm256_max_epi32(em_avg_pool_round8(s0, n, half, reciprocal, uint8), lo), hi);
            const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(s0), _mm256_extracti128_si256(s0, 1));
            _mm_storel_epi64((__m128i*)(o + c), _mm_packs_epi16(w, w));
        }
        const float r = 1.0f / (float)count;
        for (; c < C; c++) {
            int32_t a = 0;
            for (int64_t ky = ky0; ky < ky1; ky++)
                for (int64_t kx = kx0; kx < kx1; kx++) a += corner[(ky * IW + kx) * C + c];
            const int32_t v = uint8 ? em_round_uint8_half_up(a, count, r) : em_round_half_away(a, count, r);
            o[c] = (int8_t)em_clamp_i32(v, amin, amax);
        }
    }
}
#endif

static void em_avg_pool_path(const em_params* p, int uint8) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (em_isa() >= EM_ISA_AVX2) {
        em_avg_pool_int8_avx2(p, uint8);
        return;
    }
#endif
    if (uint8) em_avg_pool_uint8_scalar(p);
    else em_avg_pool_int8_scalar(p);
}

static void em_avg_pool_int8(const em_params* p) { em_avg_pool_path(p, 0); }

static void em_avg_pool_uint8(const em_params* p) { em_avg_pool_path(p, 1); }

static void em_avg_pool_f32(const em_params* p) {
    EM_POOL_WINDOW
    const float* in = (const float*)p->ptr[EM_POOL_P_INPUT];
    float* out = (float*)p->ptr[EM_POOL_P_OUTPUT];
    float* acc = (float*)p->ptr[EM_POOL_P_SCRATCH];
    for (int64_t b = 0; b < N; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t ox = 0; ox < OW; ox++) {
        EM_POOL_CLIP
        for (int64_t c = 0; c < C; c++) acc[c] = 0.0f;
        int32_t count = 0;
        for (int64_t ky = ky0; ky < ky1; ky++)
            for (int64_t kx = kx0; kx < kx1; kx++, count++) {
                const float* x = in + ((b * IH + y0 + ky) * IW + x0 + kx) * C;
                for (int64_t c = 0; c < C; c++) acc[c] += x[c];
            }
        float* o = out + ((b * OH + oy) * OW + ox) * C;
        for (int64_t c = 0; c < C; c++)
            o[c] = em_clamp_f32(count ? acc[c] / (float)count : 0.0f, p->f[EM_POOL_F_ACT_MIN], p->f[EM_POOL_F_ACT_MAX]);
    }
}

static void em_max_pool_int8_scalar(const em_params* p) {
    EM_POOL_WINDOW
    const int8_t* in = (const int8_t*)p->ptr[EM_POOL_P_INPUT];
    int8_t* out = (int8_t*)p->ptr[EM_POOL_P_OUTPUT];
    for (int64_t b = 0; b < N; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t ox = 0; ox < OW; ox++) {
        EM_POOL_CLIP
        int8_t* o = out + ((b * OH + oy) * OW + ox) * C;
        for (int64_t c = 0; c < C; c++) o[c] = -128;
        for (int64_t ky = ky0; ky < ky1; ky++)
            for (int64_t kx = kx0; kx < kx1; kx++) {
                const int8_t* x = in + ((b * IH + y0 + ky) * IW + x0 + kx) * C;
                for (int64_t c = 0; c < C; c++) o[c] = x[c] > o[c] ? x[c] : o[c];
            }
        for (int64_t c = 0; c < C; c++)
            o[c] = (int8_t)em_clamp_i32(o[c], (int32_t)d[EM_POOL_I_ACT_MIN], (int32_t)d[EM_POOL_I_ACT_MAX]);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The same windows, 32 channels per vector (vpmaxsb), then 16, then one by one. */
__attribute__((target("avx2"))) static void em_max_pool_int8_avx2(const em_params* p) {
    EM_POOL_WINDOW
    const int8_t* in = (const int8_t*)p->ptr[EM_POOL_P_INPUT];
    int8_t* out = (int8_t*)p->ptr[EM_POOL_P_OUTPUT];
    const int32_t amin = (int32_t)d[EM_POOL_I_ACT_MIN], amax = (int32_t)d[EM_POOL_I_ACT_MAX];
    const __m256i lo = _mm256_set1_epi8((char)amin), hi = _mm256_set1_epi8((char)amax);
    for (int64_t b = 0; b < N; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t ox = 0; ox < OW; ox++) {
        EM_POOL_CLIP
        int8_t* o = out + ((b * OH + oy) * OW + ox) * C;
        const int8_t* corner = in + ((b * IH + y0) * IW + x0) * C;
        int64_t c = 0;
        for (; c + 32 <= C; c += 32) {
            __m256i m = _mm256_set1_epi8(-128);
            for (int64_t ky = ky0; ky < ky1; ky++)
                for (int64_t kx = kx0; kx < kx1; kx++)
                    m = _mm256_max_epi8(m, _mm256_loadu_si256((const __m256i*)(corner + (ky * IW + kx) * C + c)));
            _mm256_storeu_si256((__m256i*)(o + c), _mm256_min_epi8(_mm256_max_epi8(m, lo), hi));
        }
        for (; c + 16 <= C; c += 16) {
            __m128i m = _mm_set1_epi8(-128);
            for (int64_t ky = ky0; ky < ky1; ky++)
                for (int64_t kx = kx0; kx < kx1; kx++)
                    m = _mm_max_epi8(m, _mm_loadu_si128((const __m128i*)(corner + (ky * IW + kx) * C + c)));
            _mm_storeu_si128((__m128i*)(o + c), _mm_min_epi8(_mm_max_epi8(m, _mm256_castsi256_si128(lo)),
                                                             _mm256_castsi256_si128(hi)));
        }
        for (; c < C; c++) {
            int32_t m = -128;
            for (int64_t ky = ky0; ky < ky1; ky++)
                for (int64_t kx = kx0; kx < kx1; kx++) {
                    const int32_t v = corner[(ky * IW + kx) * C + c];
                    m = v > m ? v : m;
                }
            o[c] = (int8_t)em_clamp_i32(m, amin, amax);
        }
    }
}
#endif

static void em_max_pool_int8(const em_params* p) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (em_isa() >= EM_ISA_AVX2) {
        em_max_pool_int8_avx2(p);
        return;
    }
#endif
    em_max_pool_int8_scalar(p);
}

static void em_max_pool_f32(const em_params* p) {
    EM_POOL_WINDOW
    const float* in = (const float*)p->ptr[EM_POOL_P_INPUT];
    float* out = (float*)p->ptr[EM_POOL_P_OUTPUT];
    for (int64_t b = 0; b < N; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t ox = 0; ox < OW; ox++) {
        EM_POOL_CLIP
        float* o = out + ((b * OH + oy) * OW + ox) * C;
        for (int64_t c = 0; c < C; c++) o[c] = -3.402823466e+38f;
        for (int64_t ky = ky0; ky < ky1; ky++)
            for (int64_t kx = kx0; kx < kx1; kx++) {
                const float* x = in + ((b * IH + y0 + ky) * IW + x0 + kx) * C;
                for (int64_t c = 0; c < C; c++) o[c] = x[c] > o[c] ? x[c] : o[c];
            }
        for (int64_t c = 0; c < C; c++) o[c] = em_clamp_f32(o[c], p->f[EM_POOL_F_ACT_MIN], p->f[EM_POOL_F_ACT_MAX]);
    }
}
#endif
