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

/* int8 average: the window's sum over the pixels inside the image, divided by their count with ROUND(a, count) */
#define EM_AVG_POOL_INT8_BODY(ROUND)                                                                      \
    EM_POOL_WINDOW                                                                                        \
    const int8_t* in = (const int8_t*)p->ptr[EM_POOL_P_INPUT];                                            \
    int8_t* out = (int8_t*)p->ptr[EM_POOL_P_OUTPUT];                                                      \
    int32_t* acc = (int32_t*)p->ptr[EM_POOL_P_SCRATCH];                                                   \
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
        for (int64_t c = 0; c < C; c++) {                                                                 \
            const int32_t a = acc[c];                                                                     \
            const int32_t v = count == 0 ? 0 : ROUND(a, count);                                           \
            o[c] = (int8_t)em_clamp_i32(v, (int32_t)d[EM_POOL_I_ACT_MIN], (int32_t)d[EM_POOL_I_ACT_MAX]); \
        }                                                                                                 \
    }

/* reference_integer_ops::AveragePool: rounding half away from zero */
#define EM_ROUND_HALF_AWAY(a, n) ((a) > 0 ? ((a) + (n) / 2) / (n) : ((a) - (n) / 2) / (n))
/* reference_ops::AveragePool on uint8 (held as int8, q - 128): (sum + n / 2) / n on the uint8 sum, which is never
 * negative, so halves round up */
#define EM_ROUND_UINT8_HALF_UP(a, n) (((a) + 128 * (n) + (n) / 2) / (n) - 128)

static void em_avg_pool_int8(const em_params* p) { EM_AVG_POOL_INT8_BODY(EM_ROUND_HALF_AWAY) }

static void em_avg_pool_uint8(const em_params* p) { EM_AVG_POOL_INT8_BODY(EM_ROUND_UINT8_HALF_UP) }

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
