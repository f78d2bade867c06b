/* ONNX convolutions with onnxruntime's arithmetic: the float convolution in MLAS's order (QDQ convolutions
 * onnxruntime runs in float), and the integer convolution with any weight zero point (ConvInteger, QLinearConv). */
#ifndef EM_ONNX_CONV_H
#define EM_ONNX_CONV_H

#include <math.h>
#include <stdint.h>
#include "em_params.h"
#include "em_requant.h"
#include "em_isa.h"
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

/* Float convolution in onnxruntime's order (MLAS im2col + SGEMM), for the QDQ convolutions onnxruntime does
 * not fuse on x86 (int8 activations) and runs between DequantizeLinear and QuantizeLinear instead:
 * per output, the taps in ONNX order k = (c * KH + kh) * KW + kw are summed with fused multiply-adds from
 * zero in blocks of `stride_k`, block sums added in order, then the bias added.  Sixteen output channels
 * are computed together (one register block; each lane keeps that order).  Depthwise (depth multiplier DM > 0):
 * each group is a 1 x (KH * KW) by (KH * KW) x OH * OW product, summed the same way.
 * ptr: input (NHWC float), weights [K][OCP] float (OCP = OC rounded up to 16, zero-padded), bias float or NULL,
 *      output (NHWC float)
 * i:   N, IH, IW, IC, OH, OW, OC, KH, KW, SH, SW, DH, DW, pad_top, pad_left, stride_k, OCP, DM (0: not
 *      depthwise) */
enum { EM_MLAS_CONV_P_INPUT, EM_MLAS_CONV_P_WEIGHTS, EM_MLAS_CONV_P_BIAS, EM_MLAS_CONV_P_OUTPUT, EM_MLAS_CONV_P_COUNT };
enum { EM_MLAS_CONV_I_N, EM_MLAS_CONV_I_IH, EM_MLAS_CONV_I_IW, EM_MLAS_CONV_I_IC, EM_MLAS_CONV_I_OH, EM_MLAS_CONV_I_OW,
       EM_MLAS_CONV_I_OC, EM_MLAS_CONV_I_KH, EM_MLAS_CONV_I_KW, EM_MLAS_CONV_I_SH, EM_MLAS_CONV_I_SW, EM_MLAS_CONV_I_DH,
       EM_MLAS_CONV_I_DW, EM_MLAS_CONV_I_PAD_TOP, EM_MLAS_CONV_I_PAD_LEFT, EM_MLAS_CONV_I_STRIDE_K, EM_MLAS_CONV_I_OCP,
       EM_MLAS_CONV_I_DM, EM_MLAS_CONV_I_COUNT };
enum { EM_MLAS_CONV_F_COUNT = 0 };

/* NP output pixels of one row (ox0 .. ox0 + NP - 1) x 16 channels from o0: accumulators stay in registers */
#define EM_CONV_MLAS_BLOCK(NP)                                                                         \
    {                                                                                                  \
        float part[NP][16], total[NP][16];                                                             \
        for (int q = 0; q < NP; q++) for (int j = 0; j < 16; j++) part[q][j] = total[q][j] = 0.0f;     \
        int64_t k = 0, flush = SK < K ? SK : K;                                                        \
        int first = 1;                                                                                 \
        for (int64_t c = 0; c < (DM ? 1 : IC); c++)                                                    \
        for (int64_t ky = 0; ky < KH; ky++) {                                                          \
            const int64_t iy = oy * SH - PT + ky * DH;                                                 \
            const int row_ok = iy >= 0 && iy < IH;                                                     \
            for (int64_t kx = 0; kx < KW; kx++, k++) {                                                 \
                const float* wk = w + k * OCP + o0;                                                    \
                if (row_ok) {                                                                          \
                    for (int q = 0; q < NP; q++) {                                                     \
                        const int64_t ix = (ox0 + q) * SW - PL + kx * DW;                              \
                        if (ix < 0 || ix >= IW) continue;      /* im2col's zero: adds nothing */       \
                        const float* xp = x + ((b * IH + iy) * IW + ix) * IC;                          \
                        if (DM) {        /* depthwise: lane j reads its own channel (o0 + j) / DM */   \
                            for (int j = 0; j < 16; j++)                                               \
                                part[q][j] = fmaf(xp[(o0 + j) / DM < IC ? (o0 + j) / DM : IC - 1], wk[j], part[q][j]); \
                        } else {                                                                       \
                            const float xv = xp[c];                                                    \
                            for (int j = 0; j < 16; j++) part[q][j] = fmaf(xv, wk[j], part[q][j]);     \
                        }                                                                              \
                    }                                                                                  \
                }                                                                                      \
                if (k + 1 == flush) {                           /* end of a K block: fold it in */     \
                    for (int q = 0; q < NP; q++) for (int j = 0; j < 16; j++) {                        \
                        total[q][j] = first ? part[q][j] : total[q][j] + part[q][j];                   \
                        part[q][j] = 0.0f;                                                             \
                    }                                                                                  \
                    first = 0;                                                                         \
                    flush = flush + SK < K ? flush + SK : K;                                           \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
        const int64_t n = OC - o0 < 16 ? OC - o0 : 16;                                                 \
        for (int q = 0; q < NP; q++) {                                                                 \
            float* out = y + ((b * OH + oy) * OW + ox0 + q) * OC + o0;                                 \
            for (int64_t j = 0; j < n; j++) out[j] = bias ? total[q][j] + bias[o0 + j] : total[q][j];  \
        }                                                                                              \
    }

#define EM_CONV_MLAS_BODY                                                                                        \
    const float* x = (const float*)p->ptr[EM_MLAS_CONV_P_INPUT];                                                 \
    const float* w = (const float*)p->ptr[EM_MLAS_CONV_P_WEIGHTS];                                               \
    const float* bias = (const float*)p->ptr[EM_MLAS_CONV_P_BIAS];                                               \
    float* y = (float*)p->ptr[EM_MLAS_CONV_P_OUTPUT];                                                            \
    const int64_t N = p->i[EM_MLAS_CONV_I_N], IH = p->i[EM_MLAS_CONV_I_IH], IW = p->i[EM_MLAS_CONV_I_IW];        \
    const int64_t IC = p->i[EM_MLAS_CONV_I_IC], OH = p->i[EM_MLAS_CONV_I_OH], OW = p->i[EM_MLAS_CONV_I_OW];      \
    const int64_t OC = p->i[EM_MLAS_CONV_I_OC], KH = p->i[EM_MLAS_CONV_I_KH], KW = p->i[EM_MLAS_CONV_I_KW];      \
    const int64_t SH = p->i[EM_MLAS_CONV_I_SH], SW = p->i[EM_MLAS_CONV_I_SW];                                    \
    const int64_t DH = p->i[EM_MLAS_CONV_I_DH], DW = p->i[EM_MLAS_CONV_I_DW], PT = p->i[EM_MLAS_CONV_I_PAD_TOP]; \
    const int64_t PL = p->i[EM_MLAS_CONV_I_PAD_LEFT], SK = p->i[EM_MLAS_CONV_I_STRIDE_K];                        \
    const int64_t OCP = p->i[EM_MLAS_CONV_I_OCP], DM = p->i[EM_MLAS_CONV_I_DM], K = (DM ? 1 : IC) * KH * KW;     \
    for (int64_t b = 0; b < N; b++)                                                                              \
    for (int64_t oy = 0; oy < OH; oy++)                                                                          \
    for (int64_t o0 = 0; o0 < OC; o0 += 16) {                                                                    \
        int64_t ox0 = 0;                                                                                         \
        for (; ox0 + 4 <= OW; ox0 += 4) EM_CONV_MLAS_BLOCK(4)                                                    \
        for (; ox0 < OW; ox0++) EM_CONV_MLAS_BLOCK(1)                                                            \
    }

static void em_onnx_conv_f32_mlas_scalar(const em_params* p) { EM_CONV_MLAS_BODY }

#if defined(__x86_64__) && defined(__GNUC__)
/* the same loops compiled for FMA hardware: each lane is one output channel, so the order is unchanged */
__attribute__((target("avx2,fma"))) static void em_onnx_conv_f32_mlas_fma(const em_params* p) { EM_CONV_MLAS_BODY }
#endif

#if defined(__x86_64__) && defined(__GNUC__)
/* The register tiles of the float conv in MLAS's order, written once for AVX2 (L = 8 lanes, up to 12 accumulators
 * of the 16 registers) and AVX-512 (L = 16, up to 24 of 32): NP pixels x NC * L channels, the partial sums of the
 * current K block in registers, the sums of the finished blocks in memory (folded once per block of SK >= 128 taps
 * when K > SK, never when one block holds every tap); each lane is one output channel summed tap by tap with FMA and
 * folded block by block, the order of the scalar loops above.  The widest tiles keep the per-tile work (zeroing,
 * folding, bias, stores) small against the taps, which matters on the short K of 1x1 and few-channel layers. */
#define EM_MLAS_VEC_avx2 __m256
#define EM_MLAS_LOAD_avx2(p) _mm256_loadu_ps(p)
#define EM_MLAS_STORE_avx2(p, v) _mm256_storeu_ps(p, v)
#define EM_MLAS_SET1_avx2(p) _mm256_broadcast_ss(p)
#define EM_MLAS_FMA_avx2(a, b, c) _mm256_fmadd_ps(a, b, c)
#define EM_MLAS_ADD_avx2(a, b) _mm256_add_ps(a, b)
#define EM_MLAS_ZERO_avx2() _mm256_setzero_ps()
#define EM_MLAS_KEEP_T_avx2 __m256i
#define EM_MLAS_KEEP_avx2(n) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define EM_MLAS_MASKLOAD_avx2(keep, p) _mm256_maskload_ps(p, keep)
#define EM_MLAS_MASKSTORE_avx2(p, keep, v) _mm256_maskstore_ps(p, keep, v)

#define EM_MLAS_VEC_avx512 __m512
#define EM_MLAS_LOAD_avx512(p) _mm512_loadu_ps(p)
#define EM_MLAS_STORE_avx512(p, v) _mm512_storeu_ps(p, v)
#define EM_MLAS_SET1_avx512(p) _mm512_set1_ps(*(p))
#define EM_MLAS_FMA_avx512(a, b, c) _mm512_fmadd_ps(a, b, c)
#define EM_MLAS_ADD_avx512(a, b) _mm512_add_ps(a, b)
#define EM_MLAS_ZERO_avx512() _mm512_setzero_ps()
#define EM_MLAS_KEEP_T_avx512 __mmask16
#define EM_MLAS_KEEP_avx512(n) ((__mmask16)((1u << (n)) - 1u))
#define EM_MLAS_MASKLOAD_avx512(keep, p) _mm512_maskz_loadu_ps(keep, p)
#define EM_MLAS_MASKSTORE_avx512(p, keep, v) _mm512_mask_storeu_ps(p, keep, v)

/* tile pixels per register count NC: as many as the accumulators allow */
#define EM_MLAS_PIXELS_avx2(NC) ((NC) == 1 ? 12 : (NC) == 2 ? 6 : (NC) == 3 ? 4 : 3)
#define EM_MLAS_PIXELS_avx512(NC) ((NC) == 1 ? 12 : (NC) == 2 ? 12 : (NC) == 3 ? 8 : 6)

/* the end of a K block that is not the last: its sums folded into the earlier blocks' */
#define EM_MLAS_FOLD(ISA, L) \
    if (k + 1 == flush && flush < K) { \
_Pragma("GCC unroll 24") \
        for (int t = 0; t < NP * NC; t++) { \
            EM_MLAS_STORE_##ISA(total + L * t, first ? acc[t] \
                                : EM_MLAS_ADD_##ISA(EM_MLAS_LOAD_##ISA(total + L * t), acc[t])); \
            acc[t] = EM_MLAS_ZERO_##ISA(); \
        } \
        first = 0; \
        flush = flush + SK < K ? flush + SK : K; \
    }

/* one tap of the tile from xc (the input at the tile's first pixel) and wc (its weights): NP x NC FMAs */
#define EM_MLAS_TAP(ISA, L) \
    EM_MLAS_VEC_##ISA wv[4]; \
_Pragma("GCC unroll 4") \
    for (int j = 0; j < NC; j++) wv[j] = EM_MLAS_LOAD_##ISA(wc + L * j); \
    const float* xp = xc; \
_Pragma("GCC unroll 24") \
    for (int q = 0; q < NP; q++) { \
        const EM_MLAS_VEC_##ISA xv = EM_MLAS_SET1_##ISA(xp); \
        xp += step; \
        __asm__("" : "+r"(xp));         /* one pointer walked: GCC would hold NP apart and spill them */ \
_Pragma("GCC unroll 4") \
        for (int j = 0; j < NC; j++) acc[q * NC + j] = EM_MLAS_FMA_##ISA(xv, wv[j], acc[q * NC + j]); \
    }

#define EM_MLAS_BLOCK_FN(ISA, TARGET, L, TILE) \
TARGET __attribute__((always_inline)) static inline void em_conv_mlas_##ISA##_block( \
        const float* x, const float* w, const float* bias, float* y, int64_t b, int64_t oy, int64_t ox0, int64_t o0, \
        const int64_t* d, const int NP, const int NC) { \
    const int64_t IH = d[EM_MLAS_CONV_I_IH], IW = d[EM_MLAS_CONV_I_IW], IC = d[EM_MLAS_CONV_I_IC]; \
    const int64_t OH = d[EM_MLAS_CONV_I_OH], OW = d[EM_MLAS_CONV_I_OW], OC = d[EM_MLAS_CONV_I_OC]; \
    const int64_t KH = d[EM_MLAS_CONV_I_KH], KW = d[EM_MLAS_CONV_I_KW], SH = d[EM_MLAS_CONV_I_SH]; \
    const int64_t SW = d[EM_MLAS_CONV_I_SW], DH = d[EM_MLAS_CONV_I_DH], DW = d[EM_MLAS_CONV_I_DW]; \
    const int64_t PT = d[EM_MLAS_CONV_I_PAD_TOP], PL = d[EM_MLAS_CONV_I_PAD_LEFT], SK = d[EM_MLAS_CONV_I_STRIDE_K]; \
    const int64_t OCP = d[EM_MLAS_CONV_I_OCP]; \
    const int64_t K = IC * KH * KW; \
    EM_MLAS_VEC_##ISA acc[TILE]; \
    float total[TILE * L];                          /* finished blocks: memory, touched once per block */ \
_Pragma("GCC unroll 24") \
    for (int t = 0; t < NP * NC; t++) acc[t] = EM_MLAS_ZERO_##ISA(); \
    int64_t k = 0, flush = SK < K ? SK : K; \
    int first = 1; \
    const int64_t ix_first = ox0 * SW - PL, step = SW * IC; \
    const int64_t iy_first = oy * SH - PT; \
    if (iy_first >= 0 && iy_first + (KH - 1) * DH < IH && ix_first >= 0 && \
            ix_first + (KW - 1) * DW + (NP - 1) * SW < IW) { \
        /* the window inside the image for every pixel of the tile: no tap checks, pointers walked tap by tap */ \
        const float* wc = w + o0; \
        const float* xchan = x + ((b * IH + iy_first) * IW + ix_first) * IC; \
        if (KH == 1 && KW == 1) {                     /* 1x1: the taps are the input channels */ \
            for (; k < K; k++, xchan++, wc += OCP) { \
                const float* xc = xchan; \
                EM_MLAS_TAP(ISA, L) \
                EM_MLAS_FOLD(ISA, L) \
            } \
        } else { \
            for (int64_t c = 0; c < IC; c++, xchan++) \
            for (int64_t ky = 0; ky < KH; ky++) \
            for (int64_t kx = 0; kx < KW; kx++, k++, wc += OCP) { \
                const float* xc = xchan + (ky * DH * IW + kx * DW) * IC; \
                EM_MLAS_TAP(ISA, L) \
                EM_MLAS_FOLD(ISA, L) \
            } \
        } \
    } else \
    for (int64_t c = 0; c < IC; c++) \
    for (int64_t ky = 0; ky < KH; ky++) { \
        const int64_t iy = oy * SH - PT + ky * DH; \
        const int row_ok = iy >= 0 && iy < IH; \
        const float* xrow = x + (b * IH + iy) * IW * IC + c; \
        const float* wrow = w + k * OCP + o0; \
        for (int64_t kx = 0; kx < KW; kx++, k++) { \
            if (row_ok) { \
                const int64_t ix0 = ix_first + kx * DW, ixn = ix0 + (NP - 1) * SW; \
                if (ix0 >= 0 && ixn < IW) { \
                    const float* wc = wrow + kx * OCP; \
                    const float* xc = xrow + ix0 * IC; \
                    EM_MLAS_TAP(ISA, L) \
                } else { \
                    const float* wk = wrow + kx * OCP; \
                    EM_MLAS_VEC_##ISA wv[4]; \
_Pragma("GCC unroll 4") \
                    for (int j = 0; j < NC; j++) wv[j] = EM_MLAS_LOAD_##ISA(wk + L * j); \
_Pragma("GCC unroll 24") \
                    for (int q = 0; q < NP; q++) { \
                        const int64_t ix = ix0 + q * SW; \
                        if (ix < 0 || ix >= IW) continue;      /* im2col's zero: adds nothing */ \
                        const EM_MLAS_VEC_##ISA xv = EM_MLAS_SET1_##ISA(xrow + ix * IC); \
_Pragma("GCC unroll 4") \
                        for (int j = 0; j < NC; j++) acc[q * NC + j] = EM_MLAS_FMA_##ISA(xv, wv[j], acc[q * NC + j]); \
                    } \
                } \
            } \
            EM_MLAS_FOLD(ISA, L) \
        } \
    } \
    if (!first) {                                   /* the last block folded into the earlier ones */ \
_Pragma("GCC unroll 24") \
        for (int t = 0; t < NP * NC; t++) acc[t] = EM_MLAS_ADD_##ISA(EM_MLAS_LOAD_##ISA(total + L * t), acc[t]); \
    } \
    const int64_t left = OC - o0; \
_Pragma("GCC unroll 4") \
    for (int j = 0; j < NC; j++) { \
        const int64_t n = left - L * j < L ? left - L * j : L; \
        if (n <= 0) break; \
        const EM_MLAS_KEEP_T_##ISA keep = EM_MLAS_KEEP_##ISA(n); \
        const EM_MLAS_VEC_##ISA bv = bias ? EM_MLAS_MASKLOAD_##ISA(keep, bias + o0 + L * j) : EM_MLAS_ZERO_##ISA(); \
_Pragma("GCC unroll 24") \
        for (int q = 0; q < NP; q++) { \
            float* out = y + ((b * OH + oy) * OW + ox0 + q) * OC + o0 + L * j; \
            EM_MLAS_MASKSTORE_##ISA(out, keep, bias ? EM_MLAS_ADD_##ISA(acc[q * NC + j], bv) : acc[q * NC + j]); \
        } \
    } \
}

/* a tile of NC registers of channels by np pixels: a switch over compile-time sizes, so that each tile's sums stay
 * in registers (sizes past the register budget are never asked for and compile to nothing) */
#define EM_MLAS_CASE(ISA, TILE, NC, NP) \
        case NP: if (NP * NC <= TILE) em_conv_mlas_##ISA##_block(x, w, bias, y, b, oy, ox0, o0, d, NP, NC); break;
#define EM_MLAS_TILE_FN(ISA, TARGET, TILE, NC) \
TARGET static void em_conv_mlas_##ISA##_tile##NC( \
        const float* x, const float* w, const float* bias, float* y, int64_t b, int64_t oy, int64_t ox0, int64_t o0, \
        const int64_t* d, int64_t np) { \
    switch (np) { \
        EM_MLAS_CASE(ISA, TILE, NC, 1) EM_MLAS_CASE(ISA, TILE, NC, 2) EM_MLAS_CASE(ISA, TILE, NC, 3) \
        EM_MLAS_CASE(ISA, TILE, NC, 4) EM_MLAS_CASE(ISA, TILE, NC, 5) EM_MLAS_CASE(ISA, TILE, NC, 6) \
        EM_MLAS_CASE(ISA, TILE, NC, 7) EM_MLAS_CASE(ISA, TILE, NC, 8) EM_MLAS_CASE(ISA, TILE, NC, 9) \
        EM_MLAS_CASE(ISA, TILE, NC, 10) EM_MLAS_CASE(ISA, TILE, NC, 11) EM_MLAS_CASE(ISA, TILE, NC, 12) \
    } \
}

/* One output row of NC * L channels from o0 in as few tiles as the widest allows, of even widths (an output row of
 * 32 pixels with 12-pixel tiles: 11 + 11 + 10, not 12 + 12 + 8); then the layer, up to four registers of channels at
 * a time (the last partly padding). */
#define EM_MLAS_CONV_FN(ISA, TARGET, L) \
TARGET static void em_conv_mlas_##ISA##_row( \
        const float* x, const float* w, const float* bias, float* y, int64_t b, int64_t oy, int64_t o0, \
        const int64_t* d, int nc) { \
    const int64_t OW = d[EM_MLAS_CONV_I_OW], widest = EM_MLAS_PIXELS_##ISA(nc); \
    const int64_t tiles = (OW + widest - 1) / widest, narrow = OW / tiles, wide_tiles = OW % tiles; \
    int64_t ox0 = 0; \
    for (int64_t t = 0; t < tiles; t++) { \
        const int64_t np = narrow + (t < wide_tiles); \
        switch (nc) { \
            case 1: em_conv_mlas_##ISA##_tile1(x, w, bias, y, b, oy, ox0, o0, d, np); break; \
            case 2: em_conv_mlas_##ISA##_tile2(x, w, bias, y, b, oy, ox0, o0, d, np); break; \
            case 3: em_conv_mlas_##ISA##_tile3(x, w, bias, y, b, oy, ox0, o0, d, np); break; \
            default: em_conv_mlas_##ISA##_tile4(x, w, bias, y, b, oy, ox0, o0, d, np); break; \
        } \
        ox0 += np; \
    } \
} \
TARGET static void em_onnx_conv_f32_mlas_##ISA(const em_params* p) { \
    const float* x = (const float*)p->ptr[EM_MLAS_CONV_P_INPUT]; \
    const float* w = (const float*)p->ptr[EM_MLAS_CONV_P_WEIGHTS]; \
    const float* bias = (const float*)p->ptr[EM_MLAS_CONV_P_BIAS]; \
    float* y = (float*)p->ptr[EM_MLAS_CONV_P_OUTPUT]; \
    const int64_t* d = p->i; \
    const int64_t N = d[EM_MLAS_CONV_I_N], OH = d[EM_MLAS_CONV_I_OH], OC = d[EM_MLAS_CONV_I_OC]; \
    for (int64_t b = 0; b < N; b++) \
    for (int64_t oy = 0; oy < OH; oy++) \
        for (int64_t o0 = 0; o0 < OC; o0 += 4 * L) { \
            const int64_t left = OC - o0; \
            em_conv_mlas_##ISA##_row(x, w, bias, y, b, oy, o0, d, left > 3 * L ? 4 : (int)((left + L - 1) / L)); \
        } \
}

#define EM_MLAS_KERNELS(ISA, TARGET, L, TILE) \
    EM_MLAS_BLOCK_FN(ISA, TARGET, L, TILE) \
    EM_MLAS_TILE_FN(ISA, TARGET, TILE, 1) EM_MLAS_TILE_FN(ISA, TARGET, TILE, 2) \
    EM_MLAS_TILE_FN(ISA, TARGET, TILE, 3) EM_MLAS_TILE_FN(ISA, TARGET, TILE, 4) \
    EM_MLAS_CONV_FN(ISA, TARGET, L)
EM_MLAS_KERNELS(avx2, __attribute__((target("avx2,fma"))), 8, 12)
EM_MLAS_KERNELS(avx512, __attribute__((target("avx512f"))), 16, 24)
#endif

static void em_onnx_conv_f32_mlas(const em_params* p) {
#if defined(__x86_64__) && defined(__GNUC__)
    /* up to 8 output channels: one 8-lane register holds them all, a 16-lane one would run half empty */
    if (em_isa() >= EM_ISA_AVX512 && !p->i[EM_MLAS_CONV_I_DM] && p->i[EM_MLAS_CONV_I_OC] > 8) {
        em_onnx_conv_f32_mlas_avx512(p);
        return;
    }
    if (em_isa() >= EM_ISA_AVX2 && __builtin_cpu_supports("fma")) {
        if (p->i[EM_MLAS_CONV_I_DM]) em_onnx_conv_f32_mlas_fma(p);       /* depthwise: the generic loops */
        else em_onnx_conv_f32_mlas_avx2(p);
        return;
    }
#endif
    em_onnx_conv_f32_mlas_scalar(p);
}

/* Integer convolution with any weight zero point (ConvInteger, and QLinearConv / QLinearMatMul / QDQ groups
 * whose weights are not symmetric): acc = bias + sum (x - x_zp) * (w - w_zp), the weight difference
 * precomputed as int16; padding taps are skipped (they hold x_zp).  Output: int32 (mode 0), onnxruntime's
 * float requantization to int8 (mode 1) or float32 (float)acc * scale (mode 2, QGemm without an output scale:
 * MLAS's scale-bias output processor).  A matrix product is the 1x1 case.
 * ptr: input int8, weights int16 [OC][KH][KW][IC/G], bias int32 or NULL, output, 3 reserved slots (NULL), x zero
 *      point (int8, read at run time) or NULL, float32 scales [OC]
 * i:   N, IH, IW, IC, OH, OW, OC, KH, KW, SH, SW, DH, DW, pad_top, pad_left, x zero point (when no pointer), mode,
 *      output zero point, act min, act max, groups */
enum { EM_CONV_INTEGER_P_INPUT, EM_CONV_INTEGER_P_WEIGHTS, EM_CONV_INTEGER_P_BIAS, EM_CONV_INTEGER_P_OUTPUT,
       EM_CONV_INTEGER_P_RESERVED, EM_CONV_INTEGER_P_RESERVED_LAST = EM_CONV_INTEGER_P_RESERVED + 2,
       EM_CONV_INTEGER_P_X_ZP, EM_CONV_INTEGER_P_SCALES, EM_CONV_INTEGER_P_COUNT };
enum { EM_CONV_INTEGER_I_N, EM_CONV_INTEGER_I_IH, EM_CONV_INTEGER_I_IW, EM_CONV_INTEGER_I_IC, EM_CONV_INTEGER_I_OH,
       EM_CONV_INTEGER_I_OW, EM_CONV_INTEGER_I_OC, EM_CONV_INTEGER_I_KH, EM_CONV_INTEGER_I_KW, EM_CONV_INTEGER_I_SH,
       EM_CONV_INTEGER_I_SW, EM_CONV_INTEGER_I_DH, EM_CONV_INTEGER_I_DW, EM_CONV_INTEGER_I_PAD_TOP,
       EM_CONV_INTEGER_I_PAD_LEFT, EM_CONV_INTEGER_I_X_ZP, EM_CONV_INTEGER_I_MODE, EM_CONV_INTEGER_I_OUT_ZP,
       EM_CONV_INTEGER_I_ACT_MIN, EM_CONV_INTEGER_I_ACT_MAX, EM_CONV_INTEGER_I_GROUPS, EM_CONV_INTEGER_I_COUNT };
enum { EM_CONV_INTEGER_F_COUNT = 0 };

static void em_onnx_conv_integer(const em_params* p) {
    const int8_t* x = (const int8_t*)p->ptr[EM_CONV_INTEGER_P_INPUT];
    const int16_t* w = (const int16_t*)p->ptr[EM_CONV_INTEGER_P_WEIGHTS];
    const int32_t* bias = (const int32_t*)p->ptr[EM_CONV_INTEGER_P_BIAS];
    const float* scale = (const float*)p->ptr[EM_CONV_INTEGER_P_SCALES];
    const int64_t N = p->i[EM_CONV_INTEGER_I_N], IH = p->i[EM_CONV_INTEGER_I_IH], IW = p->i[EM_CONV_INTEGER_I_IW];
    const int64_t IC = p->i[EM_CONV_INTEGER_I_IC], OH = p->i[EM_CONV_INTEGER_I_OH], OW = p->i[EM_CONV_INTEGER_I_OW];
    const int64_t OC = p->i[EM_CONV_INTEGER_I_OC], KH = p->i[EM_CONV_INTEGER_I_KH], KW = p->i[EM_CONV_INTEGER_I_KW];
    const int64_t SH = p->i[EM_CONV_INTEGER_I_SH], SW = p->i[EM_CONV_INTEGER_I_SW];
    const int64_t DH = p->i[EM_CONV_INTEGER_I_DH], DW = p->i[EM_CONV_INTEGER_I_DW];
    const int64_t PT = p->i[EM_CONV_INTEGER_I_PAD_TOP], PL = p->i[EM_CONV_INTEGER_I_PAD_LEFT];
    const int64_t G = p->i[EM_CONV_INTEGER_I_GROUPS];
    const int32_t xzp = p->ptr[EM_CONV_INTEGER_P_X_ZP] ? (int32_t)*(const int8_t*)p->ptr[EM_CONV_INTEGER_P_X_ZP]
                                                       : (int32_t)p->i[EM_CONV_INTEGER_I_X_ZP];
    const int mode = (int)p->i[EM_CONV_INTEGER_I_MODE];
    const int32_t yzp = (int32_t)p->i[EM_CONV_INTEGER_I_OUT_ZP], lo = (int32_t)p->i[EM_CONV_INTEGER_I_ACT_MIN];
    const int32_t hi = (int32_t)p->i[EM_CONV_INTEGER_I_ACT_MAX];
    const int64_t ICg = IC / G, OCg = OC / G;
    for (int64_t b = 0; b < N; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t ox = 0; ox < OW; ox++) {
        const int64_t pix = (b * OH + oy) * OW + ox;
        for (int64_t o = 0; o < OC; o++) {
            const int64_t g = o / OCg;
            int64_t acc = bias ? bias[o] : 0;
            const int16_t* wo = w + o * KH * KW * ICg;
            for (int64_t ky = 0; ky < KH; ky++) {
                const int64_t iy = oy * SH - PT + ky * DH;
                if (iy < 0 || iy >= IH) continue;
                for (int64_t kx = 0; kx < KW; kx++) {
                    const int64_t ix = ox * SW - PL + kx * DW;
                    if (ix < 0 || ix >= IW) continue;
                    const int8_t* xp = x + ((b * IH + iy) * IW + ix) * IC + g * ICg;
                    const int16_t* wp = wo + (ky * KW + kx) * ICg;
                    for (int64_t c = 0; c < ICg; c++) acc += (int64_t)((int32_t)xp[c] - xzp) * wp[c];
                }
            }
            const int32_t a32 = (int32_t)acc;       /* int32 accumulation wraps as onnxruntime's does */
            if (mode == 0) ((int32_t*)p->ptr[EM_CONV_INTEGER_P_OUTPUT])[pix * OC + o] = a32;
            else if (mode == 2) ((float*)p->ptr[EM_CONV_INTEGER_P_OUTPUT])[pix * OC + o] = (float)a32 * scale[o];
            else ((int8_t*)p->ptr[EM_CONV_INTEGER_P_OUTPUT])[pix * OC + o] =
                     (int8_t)em_clamp_i32(em_requant_float(a32, scale[o]) + yzp, lo, hi);
        }
    }
}

#endif
