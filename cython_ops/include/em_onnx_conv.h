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
 * are computed together (one register block; each lane keeps that order).  Depthwise (i[17] = depth
 * multiplier DM > 0): each group is a 1 x (KH * KW) by (KH * KW) x OH * OW product, summed the same way.
 * ptr: 0 x (NHWC float), 1 w [K][OCP] float (OCP = OC rounded up to 16, zero-padded), 2 bias float or 0,
 * 3 y (NHWC float); i: 0 N, 1 IH, 2 IW, 3 IC, 4 OH, 5 OW, 6 OC, 7 KH, 8 KW, 9 SH, 10 SW, 11 DH, 12 DW,
 * 13 PT, 14 PL, 15 stride_k, 16 OCP, 17 DM (0: not depthwise) */
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

#define EM_CONV_MLAS_BODY                                                                              \
    const float* x = (const float*)p->ptr[0];                                                          \
    const float* w = (const float*)p->ptr[1];                                                          \
    const float* bias = (const float*)p->ptr[2];                                                       \
    float* y = (float*)p->ptr[3];                                                                      \
    const int64_t N = p->i[0], IH = p->i[1], IW = p->i[2], IC = p->i[3], OH = p->i[4], OW = p->i[5];   \
    const int64_t OC = p->i[6], KH = p->i[7], KW = p->i[8], SH = p->i[9], SW = p->i[10];               \
    const int64_t DH = p->i[11], DW = p->i[12], PT = p->i[13], PL = p->i[14], SK = p->i[15];            \
    const int64_t OCP = p->i[16], DM = p->i[17], K = (DM ? 1 : IC) * KH * KW;                          \
    for (int64_t b = 0; b < N; b++)                                                                    \
    for (int64_t oy = 0; oy < OH; oy++)                                                                \
    for (int64_t o0 = 0; o0 < OC; o0 += 16) {                                                          \
        int64_t ox0 = 0;                                                                               \
        for (; ox0 + 4 <= OW; ox0 += 4) EM_CONV_MLAS_BLOCK(4)                                          \
        for (; ox0 < OW; ox0++) EM_CONV_MLAS_BLOCK(1)                                                  \
    }

static void em_onnx_conv_f32_mlas_scalar(const em_params* p) { EM_CONV_MLAS_BODY }

#if defined(__x86_64__) && defined(__GNUC__)
/* the same loops compiled for FMA hardware: each lane is one output channel, so the order is unchanged */
__attribute__((target("avx2,fma"))) static void em_onnx_conv_f32_mlas_fma(const em_params* p) { EM_CONV_MLAS_BODY }
#endif

#if defined(__x86_64__) && defined(__GNUC__)
/* NP pixels x 16 channels with the partial sums in registers (each lane still sums tap by tap with FMA) */
#define EM_CONV_MLAS_AVX2_BLOCK(NP)                                                                    \
    {                                                                                                  \
        __m256 pa[NP][2];                                                                              \
        float total[NP][16];                                                                           \
        for (int q = 0; q < NP; q++) { pa[q][0] = pa[q][1] = _mm256_setzero_ps(); }                   \
        int64_t k = 0, flush = SK < K ? SK : K;                                                        \
        int first = 1;                                                                                 \
        for (int64_t c = 0; c < IC; c++)                                                               \
        for (int64_t ky = 0; ky < KH; ky++) {                                                          \
            const int64_t iy = oy * SH - PT + ky * DH;                                                 \
            const int row_ok = iy >= 0 && iy < IH;                                                     \
            const float* xrow = x + (b * IH + iy) * IW * IC + c;                                       \
            for (int64_t kx = 0; kx < KW; kx++, k++) {                                                 \
                if (row_ok) {                                                                          \
                    const __m256 w0 = _mm256_loadu_ps(w + k * OCP + o0);                               \
                    const __m256 w1 = _mm256_loadu_ps(w + k * OCP + o0 + 8);                           \
                    for (int q = 0; q < NP; q++) {                                                     \
                        const int64_t ix = (ox0 + q) * SW - PL + kx * DW;                              \
                        if (ix < 0 || ix >= IW) continue;      /* im2col's zero: adds nothing */       \
                        const __m256 xv = _mm256_broadcast_ss(xrow + ix * IC);                         \
                        pa[q][0] = _mm256_fmadd_ps(xv, w0, pa[q][0]);                                  \
                        pa[q][1] = _mm256_fmadd_ps(xv, w1, pa[q][1]);                                  \
                    }                                                                                  \
                }                                                                                      \
                if (k + 1 == flush) {                           /* end of a K block: fold it in */     \
                    for (int q = 0; q < NP; q++) {                                                     \
                        float t[16];                                                                   \
                        _mm256_storeu_ps(t, pa[q][0]);                                                 \
                        _mm256_storeu_ps(t + 8, pa[q][1]);                                             \
                        for (int j = 0; j < 16; j++) total[q][j] = first ? t[j] : total[q][j] + t[j];  \
                        pa[q][0] = pa[q][1] = _mm256_setzero_ps();                                     \
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

__attribute__((target("avx2,fma"))) static void em_onnx_conv_f32_mlas_avx2(const em_params* p) {
    const float* x = (const float*)p->ptr[0];
    const float* w = (const float*)p->ptr[1];
    const float* bias = (const float*)p->ptr[2];
    float* y = (float*)p->ptr[3];
    const int64_t N = p->i[0], IH = p->i[1], IW = p->i[2], IC = p->i[3], OH = p->i[4], OW = p->i[5];
    const int64_t OC = p->i[6], KH = p->i[7], KW = p->i[8], SH = p->i[9], SW = p->i[10];
    const int64_t DH = p->i[11], DW = p->i[12], PT = p->i[13], PL = p->i[14], SK = p->i[15];
    const int64_t OCP = p->i[16], K = IC * KH * KW;
    for (int64_t b = 0; b < N; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t o0 = 0; o0 < OC; o0 += 16) {
        int64_t ox0 = 0;
        for (; ox0 + 4 <= OW; ox0 += 4) EM_CONV_MLAS_AVX2_BLOCK(4)
        for (; ox0 < OW; ox0++) EM_CONV_MLAS_AVX2_BLOCK(1)
    }
}
#endif

static void em_onnx_conv_f32_mlas(const em_params* p) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (em_isa() >= EM_ISA_AVX2 && __builtin_cpu_supports("fma")) {
        if (p->i[17]) em_onnx_conv_f32_mlas_fma(p);       /* depthwise: the generic loops */
        else em_onnx_conv_f32_mlas_avx2(p);
        return;
    }
#endif
    em_onnx_conv_f32_mlas_scalar(p);
}

/* Integer convolution with any weight zero point (ConvInteger, and QLinearConv / QLinearMatMul / QDQ groups
 * whose weights are not symmetric): acc = bias + sum (x - x_zp) * (w - w_zp), the weight difference
 * precomputed as int16; padding taps are skipped (they hold x_zp).  Output: int32 (mode 0) or onnxruntime's
 * float requantization to int8 (mode 1).  A matrix product is the 1x1 case.
 * ptr: 0 x int8, 1 w int16 [OC][KH][KW][IC/G], 2 bias int32 or 0, 3 y, 7 x zero point (int8, read at run
 * time) or 0, 8 float32 scales [OC];  i: 0 N, 1 IH, 2 IW, 3 IC, 4 OH, 5 OW, 6 OC, 7 KH, 8 KW, 9 SH, 10 SW,
 * 11 DH, 12 DW, 13 PT, 14 PL, 15 x zero point, 16 mode, 17 output zero point, 18 act min, 19 act max, 20 G */
static void em_onnx_conv_integer(const em_params* p) {
    const int8_t* x = (const int8_t*)p->ptr[0];
    const int16_t* w = (const int16_t*)p->ptr[1];
    const int32_t* bias = (const int32_t*)p->ptr[2];
    const float* scale = (const float*)p->ptr[8];
    const int64_t N = p->i[0], IH = p->i[1], IW = p->i[2], IC = p->i[3], OH = p->i[4], OW = p->i[5];
    const int64_t OC = p->i[6], KH = p->i[7], KW = p->i[8], SH = p->i[9], SW = p->i[10];
    const int64_t DH = p->i[11], DW = p->i[12], PT = p->i[13], PL = p->i[14], G = p->i[20];
    const int32_t xzp = p->ptr[7] ? (int32_t)*(const int8_t*)p->ptr[7] : (int32_t)p->i[15];
    const int mode = (int)p->i[16];
    const int32_t yzp = (int32_t)p->i[17], lo = (int32_t)p->i[18], hi = (int32_t)p->i[19];
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
            if (mode == 0) ((int32_t*)p->ptr[3])[pix * OC + o] = a32;
            else ((int8_t*)p->ptr[3])[pix * OC + o] = (int8_t)em_clamp_i32(em_requant_float(a32, scale[o]) + yzp, lo, hi);
        }
    }
}

#endif
