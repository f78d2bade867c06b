/* float32 DEPTHWISE_CONV_2D on AVX-512 / AVX2, every geometry (strides, dilations, padding, depth multiplier).
 *
 * The vectors run across output channels; each output's taps are summed in the reference's order (window row,
 * window column), with a separate multiply and add, then the bias added and the clamp: the reference kernel's
 * operations (depthwise_f32_<isa>); depthwise_f32_fma_<isa>, the default, is the same body with fused
 * multiply-adds.  Pixels whose windows lie inside the image read the input directly, four pixels of a row side by side
 * on two vectors of channels (eight independent sums hide the add latency; four for a last lone vector); the
 * others (windows reaching into the padding, and a run's last pixels) skip the taps outside the image as the
 * reference does, four vectors of channels at a time.  With a depth multiplier M, output channel c reads input
 * channel c / M: one vector of input channels is loaded and its lanes permuted.
 *
 * Layout EM_FDW (depthwise_f32_[fma_]avx512 / depthwise_f32_[fma_]avx2):
 *   ptr: input f32 NHWC, weights f32 [KH * KW][OC], bias f32 [OC] (zeros where the model has none: the reference
 *        adds 0.0f), output f32 NHWC
 *   i:   N, IH, IW, IC, OH, OW, OC, KH, KW, SH, SW, DH, DW, pad_top, pad_left, depth multiplier
 *   f:   act_min, act_max */
#ifndef EM_FLOAT_DEPTHWISE_H
#define EM_FLOAT_DEPTHWISE_H
#include <stdint.h>
#include <string.h>
#include "em_params.h"

enum { EM_FDW_P_INPUT, EM_FDW_P_WEIGHTS, EM_FDW_P_BIAS, EM_FDW_P_OUTPUT, EM_FDW_P_COUNT };
enum { EM_FDW_I_N, EM_FDW_I_IH, EM_FDW_I_IW, EM_FDW_I_IC, EM_FDW_I_OH, EM_FDW_I_OW, EM_FDW_I_OC, EM_FDW_I_KH,
       EM_FDW_I_KW, EM_FDW_I_SH, EM_FDW_I_SW, EM_FDW_I_DH, EM_FDW_I_DW, EM_FDW_I_PAD_TOP, EM_FDW_I_PAD_LEFT,
       EM_FDW_I_DM, EM_FDW_I_COUNT };
enum { EM_FDW_F_ACT_MIN, EM_FDW_F_ACT_MAX, EM_FDW_F_COUNT };

#define EM_FDW_MAX_TAPS 1024    /* windows with more taps take the reference kernel (ops/float_kernels.py) */

/* Output columns [*lo, *hi) whose windows lie inside the image's width (the rest reach into the padding). */
static inline void em_fdw_inner_columns(const int64_t* d, int64_t* lo, int64_t* hi) {
    const int64_t OW = d[EM_FDW_I_OW], SW = d[EM_FDW_I_SW], PL = d[EM_FDW_I_PAD_LEFT];
    const int64_t last = d[EM_FDW_I_IW] - 1 + PL - (d[EM_FDW_I_KW] - 1) * d[EM_FDW_I_DW];   /* ox * SW <= last */
    int64_t a = PL > 0 ? (PL + SW - 1) / SW : 0, b = last >= 0 ? last / SW + 1 : 0;
    a = a < OW ? a : OW;
    b = b < OW ? b : OW;
    *lo = a;
    *hi = b > a ? b : a;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define EM_FDW512 __attribute__((target("avx512f,avx512dq")))
#define EM_FDW256 __attribute__((target("avx2")))
#define EM_FDW256FMA __attribute__((target("avx2,fma")))

/* The kernel body for one ISA.  Defined before use: VEC, LANES, ZERO, ADD, MADD(acc, x, w), CLAMP(y), and
 * SETUP(c) (declares the lane masks / permutes of the vector of channels starting at c, suffix _##c), XLOAD(p, c),
 * WLOAD(p, c), STORE(p, c, y) for that vector. */
#define EM_FDW_BODY                                                                                           \
    const int64_t* d = p->i;                                                                                  \
    const float* w = (const float*)p->ptr[EM_FDW_P_WEIGHTS];                                                  \
    const float* bias = (const float*)p->ptr[EM_FDW_P_BIAS];                                                  \
    float* out = (float*)p->ptr[EM_FDW_P_OUTPUT];                                                             \
    const int64_t IH = d[EM_FDW_I_IH], IW = d[EM_FDW_I_IW], IC = d[EM_FDW_I_IC], OH = d[EM_FDW_I_OH];         \
    const int64_t OW = d[EM_FDW_I_OW], OC = d[EM_FDW_I_OC], KH = d[EM_FDW_I_KH], KW = d[EM_FDW_I_KW];         \
    const int64_t SH = d[EM_FDW_I_SH], SW = d[EM_FDW_I_SW], DM = d[EM_FDW_I_DM], T = KH * KW;                 \
    const int64_t DH = d[EM_FDW_I_DH], DW = d[EM_FDW_I_DW], PT = d[EM_FDW_I_PAD_TOP], PL = d[EM_FDW_I_PAD_LEFT]; \
    int64_t tap_off[EM_FDW_MAX_TAPS], ox_lo, ox_hi;                                                           \
    em_fdw_inner_columns(d, &ox_lo, &ox_hi);                                                                  \
    for (int64_t ky = 0; ky < KH; ky++)                                                                       \
        for (int64_t kx = 0; kx < KW; kx++)                                                                   \
            tap_off[ky * KW + kx] = (ky * DH * IW + kx * DW) * IC;                                            \
    for (int64_t b = 0; b < d[EM_FDW_I_N]; b++) {                                                             \
        const float* img = (const float*)p->ptr[EM_FDW_P_INPUT] + b * IH * IW * IC;                           \
        for (int64_t oy = 0; oy < OH; oy++) {                                                                 \
            const int64_t iy0 = oy * SH - PT;                                                                 \
            const int row_inside = iy0 >= 0 && iy0 + (KH - 1) * DH < IH;                                      \
            const int64_t x_lo = row_inside ? ox_lo : OW, x_hi = row_inside ? ox_hi : OW;                     \
            float* orow = out + (b * OH + oy) * OW * OC;                                                      \
            for (int64_t ox = 0; ox < OW; ox++) {                                                             \
                if (ox == x_lo) ox = x_hi;          /* the inside run is below */                            \
                if (ox >= OW) break;                                                                          \
                EM_FDW_EDGE_PIXEL                                                                             \
            }                                                                                                 \
            int64_t ox = x_lo;                                                                                \
            const int64_t step = SW * IC;                                                                     \
            for (; ox + 4 <= x_hi; ox += 4) {                                                                 \
                const float* px = img + (iy0 * IW + ox * SW - PL) * IC;                                       \
                int64_t c0 = 0;                                                                               \
                for (; c0 + LANES < OC; c0 += 2 * LANES) {                                                    \
                    const int64_t c1 = c0 + LANES;                                                            \
                    SETUP(c0) SETUP(c1)                                                                       \
                    VEC a0 = ZERO, a1 = ZERO, a2 = ZERO, a3 = ZERO, b0 = ZERO, b1 = ZERO, b2 = ZERO, b3 = ZERO; \
                    for (int64_t t = 0; t < T; t++) {                                                         \
                        const float* q = px + tap_off[t];                                                     \
                        const VEC w0 = WLOAD(w + t * OC + c0, c0), w1 = WLOAD(w + t * OC + c1, c1);           \
                        a0 = MADD(a0, XLOAD(q, c0), w0);                                                  \
                        b0 = MADD(b0, XLOAD(q, c1), w1);                                                  \
                        a1 = MADD(a1, XLOAD(q + step, c0), w0);                                           \
                        b1 = MADD(b1, XLOAD(q + step, c1), w1);                                           \
                        a2 = MADD(a2, XLOAD(q + 2 * step, c0), w0);                                       \
                        b2 = MADD(b2, XLOAD(q + 2 * step, c1), w1);                                       \
                        a3 = MADD(a3, XLOAD(q + 3 * step, c0), w0);                                       \
                        b3 = MADD(b3, XLOAD(q + 3 * step, c1), w1);                                       \
                    }                                                                                         \
                    const VEC bv0 = WLOAD(bias + c0, c0), bv1 = WLOAD(bias + c1, c1);                         \
                    float* po = orow + ox * OC;                                                               \
                    STORE(po + c0, c0, CLAMP(ADD(a0, bv0)));                                                  \
                    STORE(po + OC + c0, c0, CLAMP(ADD(a1, bv0)));                                             \
                    STORE(po + 2 * OC + c0, c0, CLAMP(ADD(a2, bv0)));                                         \
                    STORE(po + 3 * OC + c0, c0, CLAMP(ADD(a3, bv0)));                                         \
                    STORE(po + c1, c1, CLAMP(ADD(b0, bv1)));                                                  \
                    STORE(po + OC + c1, c1, CLAMP(ADD(b1, bv1)));                                             \
                    STORE(po + 2 * OC + c1, c1, CLAMP(ADD(b2, bv1)));                                         \
                    STORE(po + 3 * OC + c1, c1, CLAMP(ADD(b3, bv1)));                                         \
                }                                                                                             \
                if (c0 < OC) {                      /* one vector of channels left: four sums */             \
                    SETUP(c0)                                                                                 \
                    VEC a0 = ZERO, a1 = ZERO, a2 = ZERO, a3 = ZERO;                                           \
                    for (int64_t t = 0; t < T; t++) {                                                         \
                        const float* q = px + tap_off[t];                                                     \
                        const VEC w0 = WLOAD(w + t * OC + c0, c0);                                            \
                        a0 = MADD(a0, XLOAD(q, c0), w0);                                                  \
                        a1 = MADD(a1, XLOAD(q + step, c0), w0);                                           \
                        a2 = MADD(a2, XLOAD(q + 2 * step, c0), w0);                                       \
                        a3 = MADD(a3, XLOAD(q + 3 * step, c0), w0);                                       \
                    }                                                                                         \
                    const VEC bv0 = WLOAD(bias + c0, c0);                                                     \
                    float* po = orow + ox * OC;                                                               \
                    STORE(po + c0, c0, CLAMP(ADD(a0, bv0)));                                                  \
                    STORE(po + OC + c0, c0, CLAMP(ADD(a1, bv0)));                                             \
                    STORE(po + 2 * OC + c0, c0, CLAMP(ADD(a2, bv0)));                                         \
                    STORE(po + 3 * OC + c0, c0, CLAMP(ADD(a3, bv0)));                                         \
                }                                                                                             \
            }                                                                                                 \
            for (; ox < x_hi; ox++) {           /* the run's last pixels: the edge loop, every tap inside */ \
                EM_FDW_EDGE_PIXEL                                                                             \
            }                                                                                                 \
        }                                                                                                     \
    }

/* One output pixel (oy, ox) whose window may reach into the padding: the taps outside the image are skipped, as
 * the reference skips them; four vectors of channels at a time (four independent sums), then one. */
#define EM_FDW_TAPS(ACCUMULATE)                                                                               \
    for (int64_t ky = 0; ky < KH; ky++) {                                                                     \
        const int64_t iy = iy0 + ky * DH;                                                                     \
        if (iy < 0 || iy >= IH) continue;                                                                     \
        for (int64_t kx = 0; kx < KW; kx++) {                                                                 \
            const int64_t ix = ox * SW - PL + kx * DW;                                                        \
            if (ix < 0 || ix >= IW) continue;                                                                 \
            const float* q = img + (iy * IW + ix) * IC;                                                       \
            const float* wt = w + (ky * KW + kx) * OC;                                                        \
            ACCUMULATE                                                                                        \
        }                                                                                                     \
    }
#define EM_FDW_EDGE_PIXEL                                                                                     \
    {                                                                                                         \
        float* po = orow + ox * OC;                                                                           \
        int64_t c4 = 0;                                                                                       \
        for (; c4 + 3 * LANES < OC; c4 += 4 * LANES) {                                                        \
            const int64_t c0 = c4, c1 = c4 + LANES, c2 = c4 + 2 * LANES, c3 = c4 + 3 * LANES;                 \
            SETUP(c0) SETUP(c1) SETUP(c2) SETUP(c3)                                                           \
            VEC a0 = ZERO, a1 = ZERO, a2 = ZERO, a3 = ZERO;                                                   \
            EM_FDW_TAPS(a0 = MADD(a0, XLOAD(q, c0), WLOAD(wt + c0, c0));                                  \
                        a1 = MADD(a1, XLOAD(q, c1), WLOAD(wt + c1, c1));                                  \
                        a2 = MADD(a2, XLOAD(q, c2), WLOAD(wt + c2, c2));                                  \
                        a3 = MADD(a3, XLOAD(q, c3), WLOAD(wt + c3, c3));)                                 \
            STORE(po + c0, c0, CLAMP(ADD(a0, WLOAD(bias + c0, c0))));                                         \
            STORE(po + c1, c1, CLAMP(ADD(a1, WLOAD(bias + c1, c1))));                                         \
            STORE(po + c2, c2, CLAMP(ADD(a2, WLOAD(bias + c2, c2))));                                         \
            STORE(po + c3, c3, CLAMP(ADD(a3, WLOAD(bias + c3, c3))));                                         \
        }                                                                                                     \
        for (int64_t c0 = c4; c0 < OC; c0 += LANES) {                                                         \
            SETUP(c0)                                                                                         \
            VEC a0 = ZERO;                                                                                    \
            EM_FDW_TAPS(a0 = MADD(a0, XLOAD(q, c0), WLOAD(wt + c0, c0));)                                 \
            STORE(po + c0, c0, CLAMP(ADD(a0, WLOAD(bias + c0, c0))));                                         \
        }                                                                                                     \
    }

/* lane j of the vector at channel c reads input channel (c + j) / dm: lane (c + j) / dm - c / dm of a vector
 * loaded at c / dm */
EM_FDW512 static inline __m512i em_fdw_lane_sources16(int64_t c, int64_t dm) {
    int32_t v[16];
    for (int j = 0; j < 16; j++) v[j] = (int32_t)((c + j) / dm - c / dm);
    return _mm512_loadu_si512((const void*)v);
}
EM_FDW512 static inline __mmask16 em_fdw_mask16(int64_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n > 0 ? n : 0)) - 1u);
}

/* One kernel: the body twice, with the depth multiplier 1 (no per-load test of it: folded) and with any other. */
#define EM_FDW_KERNEL(NAME, TARGET)                                                                           \
TARGET static void NAME(const em_params* p) {                                                                \
    const VEC lo = SET1(p->f[EM_FDW_F_ACT_MIN]), hi = SET1(p->f[EM_FDW_F_ACT_MAX]);                          \
    if (p->i[EM_FDW_I_DM] == 1) {                                                                             \
        const int one_dm = 1;                                                                                 \
        EM_FDW_BODY                                                                                           \
    } else {                                                                                                  \
        const int one_dm = 0;                                                                                 \
        EM_FDW_BODY                                                                                           \
    }                                                                                                         \
}
#define ONE_DM one_dm

#define VEC __m512
#define LANES 16
#define SET1 _mm512_set1_ps
#define ZERO _mm512_setzero_ps()
#define ADD _mm512_add_ps
#define MUL _mm512_mul_ps
#define CLAMP(y) _mm512_min_ps(hi, _mm512_max_ps(lo, y))    /* NaN stays NaN, as the reference's min / max */
#define SETUP(c)                                                                                              \
    const __mmask16 cm_##c = em_fdw_mask16(OC - c);                                                           \
    const __mmask16 lm_##c = em_fdw_mask16(IC - c / DM);                                                      \
    const __m512i idx_##c = ONE_DM ? _mm512_setzero_si512() : em_fdw_lane_sources16(c, DM);
#define XLOAD(q, c) (ONE_DM ? _mm512_maskz_loadu_ps(cm_##c, (q) + c)                                         \
                             : _mm512_permutexvar_ps(idx_##c, _mm512_maskz_loadu_ps(lm_##c, (q) + c / DM)))
#define WLOAD(q, c) _mm512_maskz_loadu_ps(cm_##c, q)
#define STORE(q, c, y) _mm512_mask_storeu_ps(q, cm_##c, y)
/* depthwise_f32_<isa>: a multiply then an add, the reference's bits; depthwise_f32_fma_<isa>: fused */
#define MADD(a, x, w) ADD(a, MUL(x, w))
EM_FDW_KERNEL(em_depthwise_f32_avx512, EM_FDW512)
#undef MADD
#define MADD(a, x, w) _mm512_fmadd_ps(x, w, a)
EM_FDW_KERNEL(em_depthwise_f32_fma_avx512, EM_FDW512)
#undef MADD
#undef VEC
#undef LANES
#undef SET1
#undef ZERO
#undef ADD
#undef MUL
#undef CLAMP
#undef SETUP
#undef XLOAD
#undef WLOAD
#undef STORE

EM_FDW256 static inline __m256i em_fdw_lane_sources8(int64_t c, int64_t dm) {
    int32_t v[8];
    for (int j = 0; j < 8; j++) v[j] = (int32_t)((c + j) / dm - c / dm);
    return _mm256_loadu_si256((const __m256i*)(const void*)v);
}
EM_FDW256 static inline __m256i em_fdw_mask8(int64_t n) {
    const int64_t k = n < 0 ? 0 : (n > 8 ? 8 : n);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
EM_FDW256 static inline __m256 em_fdw_load8(const float* q, int full, __m256i m) {
    return full ? _mm256_loadu_ps(q) : _mm256_maskload_ps(q, m);
}
EM_FDW256 static inline void em_fdw_store8(float* q, int full, __m256i m, __m256 y) {
    if (full) _mm256_storeu_ps(q, y);
    else _mm256_maskstore_ps(q, m, y);
}

#define VEC __m256
#define LANES 8
#define SET1 _mm256_set1_ps
#define ZERO _mm256_setzero_ps()
#define ADD _mm256_add_ps
#define MUL _mm256_mul_ps
#define CLAMP(y) _mm256_min_ps(hi, _mm256_max_ps(lo, y))
#define SETUP(c)                                                                                              \
    const int full_##c = OC - c >= 8;                                                                         \
    const __m256i cm_##c = em_fdw_mask8(OC - c);                                                              \
    const __m256i lm_##c = em_fdw_mask8(IC - c / DM);                                                         \
    const __m256i idx_##c = ONE_DM ? _mm256_setzero_si256() : em_fdw_lane_sources8(c, DM);
#define XLOAD(q, c) (ONE_DM ? em_fdw_load8((q) + c, full_##c, cm_##c)                                        \
                             : _mm256_permutevar8x32_ps(_mm256_maskload_ps((q) + c / DM, lm_##c), idx_##c))
#define WLOAD(q, c) em_fdw_load8(q, full_##c, cm_##c)
#define STORE(q, c, y) em_fdw_store8(q, full_##c, cm_##c, y)
#define MADD(a, x, w) ADD(a, MUL(x, w))
EM_FDW_KERNEL(em_depthwise_f32_avx2, EM_FDW256)
#undef MADD
#define MADD(a, x, w) _mm256_fmadd_ps(x, w, a)
EM_FDW_KERNEL(em_depthwise_f32_fma_avx2, EM_FDW256FMA)
#undef MADD
#undef VEC
#undef LANES
#undef SET1
#undef ZERO
#undef ADD
#undef MUL
#undef CLAMP
#undef SETUP
#undef XLOAD
#undef WLOAD
#undef STORE
#undef ONE_DM
#undef EM_FDW_KERNEL
#else
static void em_depthwise_f32_avx512(const em_params* p) { (void)p; }
static void em_depthwise_f32_avx2(const em_params* p) { (void)p; }
static void em_depthwise_f32_fma_avx512(const em_params* p) { (void)p; }
static void em_depthwise_f32_fma_avx2(const em_params* p) { (void)p; }
#endif
#endif
