/* DEPTHWISE_CONV_2D, int8 and float32, NHWC: the portable kernels and the integer heart shared by the int8 and
 * hybrid kernels (em_depthwise_accumulate_s8); the vector kernels are in em_depthwise_simd.h.
 * em_depthwise_int8 / em_depthwise_f32 read the conv layout EM_CONV (em_im2col.h). */
#ifndef EM_DEPTHWISE_H
#define EM_DEPTHWISE_H
#include <stdint.h>
#include "em_params.h"
#include "em_gemm.h"
#include "em_im2col.h"

/* acc[oc] += sum over the taps of one output pixel that fall inside the image of w[tap][oc] * (x - zp).
 * img: one NHWC image (IH x IW x IC); w: [KH*KW][OC] with oc = ic * DM + m; (y0, x0): the window's top-left
 * input position (may be negative); (dh, dw): dilation. Padding taps are skipped, as the reference does.
 * The _s16 form reads int16 weights w - w_zp (uint8 models' asymmetric weights). */
#define EM_DEPTHWISE_ACCUMULATE(NAME, WT)                                                                     \
static inline void NAME(const int8_t* img, const WT* w, int64_t IH, int64_t IW, int64_t IC, int64_t OC,       \
                        int64_t KH, int64_t KW, int64_t DM, int64_t y0, int64_t x0, int64_t dh, int64_t dw,   \
                        int32_t zp, int32_t* acc) {                                                           \
    for (int64_t ky = 0; ky < KH; ky++) {                                                                     \
        const int64_t iy = y0 + ky * dh;                                                                      \
        if (iy < 0 || iy >= IH) continue;                                                                     \
        for (int64_t kx = 0; kx < KW; kx++) {                                                                 \
            const int64_t ix = x0 + kx * dw;                                                                  \
            if (ix < 0 || ix >= IW) continue;                                                                 \
            const int8_t* x = img + (iy * IW + ix) * IC;                                                      \
            const WT* wr = w + (ky * KW + kx) * OC;                                                           \
            if (DM == 1) {                                                                                    \
                for (int64_t c = 0; c < OC; c++) acc[c] += (int32_t)wr[c] * ((int32_t)x[c] - zp);             \
            } else {                                                                                          \
                for (int64_t ic = 0; ic < IC; ic++) {                                                         \
                    const int32_t xv = (int32_t)x[ic] - zp;                                                   \
                    for (int64_t m = 0; m < DM; m++) acc[ic * DM + m] += (int32_t)wr[ic * DM + m] * xv;       \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
}
EM_DEPTHWISE_ACCUMULATE(em_depthwise_accumulate_s8, int8_t)
EM_DEPTHWISE_ACCUMULATE(em_depthwise_accumulate_s16, int16_t)

#if defined(__aarch64__)
/* One tap of 8 channels: (x - zp) and w widened to int16 (|x - zp| <= 255), SMLAL into int32: exact. */
#define EM_DEPTHWISE_NEON_TAP8(S_LO, S_HI, X8, W8)                                                          \
    {                                                                                                         \
        const int16x8_t xd_ = vsubq_s16(vmovl_s8(X8), zpv), wd_ = vmovl_s8(W8);                               \
        S_LO = vmlal_s16(S_LO, vget_low_s16(xd_), vget_low_s16(wd_));                                         \
        S_HI = vmlal_high_s16(S_HI, xd_, wd_);                                                                \
    }

/* em_depthwise_accumulate_s8 on NEON for a multiplier of 1 (others take the portable loop): each block of 16
 * (then 8) channels keeps its sums in registers over every tap of the window; the last OC % 8 channels are
 * summed as the portable loop does. */
static inline void em_depthwise_accumulate_s8_neon(const int8_t* img, const int8_t* w, int64_t IH, int64_t IW,
                                                   int64_t IC, int64_t OC, int64_t KH, int64_t KW, int64_t DM,
                                                   int64_t y0, int64_t x0, int64_t dh, int64_t dw, int32_t zp,
                                                   int32_t* acc) {
    if (DM != 1) { em_depthwise_accumulate_s8(img, w, IH, IW, IC, OC, KH, KW, DM, y0, x0, dh, dw, zp, acc); return; }
    const int16x8_t zpv = vdupq_n_s16((int16_t)zp);
    int64_t c = 0;
    for (; c + 8 <= OC; ) {
        const int wide = c + 16 <= OC;
        int32x4_t s0 = vld1q_s32(acc + c), s1 = vld1q_s32(acc + c + 4);
        int32x4_t s2 = wide ? vld1q_s32(acc + c + 8) : vdupq_n_s32(0), s3 = wide ? vld1q_s32(acc + c + 12) : s2;
        for (int64_t ky = 0; ky < KH; ky++) {
            const int64_t iy = y0 + ky * dh;
            if (iy < 0 || iy >= IH) continue;
            for (int64_t kx = 0; kx < KW; kx++) {
                const int64_t ix = x0 + kx * dw;
                if (ix < 0 || ix >= IW) continue;
                const int8_t* x = img + (iy * IW + ix) * IC + c;
                const int8_t* wr = w + (ky * KW + kx) * OC + c;
                if (wide) {
                    const int8x16_t xv = vld1q_s8(x), wv = vld1q_s8(wr);
                    EM_DEPTHWISE_NEON_TAP8(s0, s1, vget_low_s8(xv), vget_low_s8(wv))
                    EM_DEPTHWISE_NEON_TAP8(s2, s3, vget_high_s8(xv), vget_high_s8(wv))
                } else {
                    EM_DEPTHWISE_NEON_TAP8(s0, s1, vld1_s8(x), vld1_s8(wr))
                }
            }
        }
        vst1q_s32(acc + c, s0);
        vst1q_s32(acc + c + 4, s1);
        if (wide) { vst1q_s32(acc + c + 8, s2); vst1q_s32(acc + c + 12, s3); }
        c += wide ? 16 : 8;
    }
    if (c == OC) return;
    for (int64_t ky = 0; ky < KH; ky++) {
        const int64_t iy = y0 + ky * dh;
        if (iy < 0 || iy >= IH) continue;
        for (int64_t kx = 0; kx < KW; kx++) {
            const int64_t ix = x0 + kx * dw;
            if (ix < 0 || ix >= IW) continue;
            const int8_t* x = img + (iy * IW + ix) * IC;
            const int8_t* wr = w + (ky * KW + kx) * OC;
            for (int64_t r = c; r < OC; r++) acc[r] += (int32_t)wr[r] * ((int32_t)x[r] - zp);
        }
    }
}

/* The int8 depthwise's sums on NEON unless EDGEML_ISA=scalar forces the portable path. */
static inline void em_depthwise_accumulate_s8_isa(const int8_t* img, const int8_t* w, int64_t IH, int64_t IW,
                                                  int64_t IC, int64_t OC, int64_t KH, int64_t KW, int64_t DM,
                                                  int64_t y0, int64_t x0, int64_t dh, int64_t dw, int32_t zp,
                                                  int32_t* acc) {
    if (em_isa() >= EM_ISA_NEON)
        em_depthwise_accumulate_s8_neon(img, w, IH, IW, IC, OC, KH, KW, DM, y0, x0, dh, dw, zp, acc);
    else
        em_depthwise_accumulate_s8(img, w, IH, IW, IC, OC, KH, KW, DM, y0, x0, dh, dw, zp, acc);
}
#define EM_DEPTHWISE_ACCUMULATE_S8 em_depthwise_accumulate_s8_isa
/* a pixel's OC sums requantized four at a time (em_gemm.h) */
#define EM_DEPTHWISE_REQUANT_ROW(ACC, OC, RQ, OUT)                                                            \
    if (em_isa() >= EM_ISA_NEON) em_requant_row_neon(ACC, 0, OC, RQ, OUT);                                    \
    else for (int64_t c = 0; c < (OC); c++) (OUT)[c] = em_requant_one((ACC)[c], (int)c, RQ);
#else
#define EM_DEPTHWISE_ACCUMULATE_S8 em_depthwise_accumulate_s8
#define EM_DEPTHWISE_REQUANT_ROW(ACC, OC, RQ, OUT)                                                            \
    for (int64_t c = 0; c < (OC); c++) (OUT)[c] = em_requant_one((ACC)[c], (int)c, RQ);
#endif

/* Depthwise: weights [KH][KW][OC], output channel oc = ic * DM + m; scratch holds OC int32/float sums. */
#define EM_DEPTHWISE_INT8_BODY(WT, ACCUMULATE)                                                                \
    const int64_t* d = p->i;                                                                                  \
    const int8_t* in = (const int8_t*)p->ptr[EM_CONV_P_INPUT];                                                \
    const WT* w = (const WT*)p->ptr[EM_CONV_P_WEIGHTS];                                                       \
    int8_t* out = (int8_t*)p->ptr[EM_CONV_P_OUTPUT];                                                          \
    int32_t* acc = (int32_t*)p->ptr[EM_CONV_P_SCRATCH];                                                       \
    em_requant_cols rq = {(const int32_t*)p->ptr[EM_CONV_P_BIAS], (const int32_t*)p->ptr[EM_CONV_P_MULT],     \
                          (const int32_t*)p->ptr[EM_CONV_P_SHIFT], (int32_t)d[EM_CONV_I_OUT_ZP],              \
                          (int32_t)d[EM_CONV_I_ACT_MIN], (int32_t)d[EM_CONV_I_ACT_MAX], (int32_t)d[EM_CONV_I_MODE], \
                          (const double*)p->ptr[EM_CONV_P_DOUBLE_SCALES],                                     \
                          (const float*)p->ptr[EM_CONV_P_FLOAT_SCALES]};                                      \
    const int64_t IH = d[EM_CONV_I_IH], IW = d[EM_CONV_I_IW], IC = d[EM_CONV_I_IC], OH = d[EM_CONV_I_OH];     \
    const int64_t OW = d[EM_CONV_I_OW], OC = d[EM_CONV_I_OC];                                                 \
    const int64_t KH = d[EM_CONV_I_KH], KW = d[EM_CONV_I_KW], DM = d[EM_CONV_I_DM];                           \
    const int32_t in_zp = (int32_t)d[EM_CONV_I_IN_ZP];                                                        \
    for (int64_t b = 0; b < d[EM_CONV_I_N]; b++)                                                              \
    for (int64_t oy = 0; oy < OH; oy++)                                                                       \
    for (int64_t ox = 0; ox < OW; ox++) {                                                                     \
        for (int64_t c = 0; c < OC; c++) acc[c] = 0;                                                          \
        ACCUMULATE(in + b * IH * IW * IC, w, IH, IW, IC, OC, KH, KW, DM,                                      \
                   oy * d[EM_CONV_I_SH] - d[EM_CONV_I_PAD_TOP], ox * d[EM_CONV_I_SW] - d[EM_CONV_I_PAD_LEFT], \
                   d[EM_CONV_I_DH], d[EM_CONV_I_DW], in_zp, acc);                                             \
        int8_t* o = out + ((b * OH + oy) * OW + ox) * OC;                                                     \
        EM_DEPTHWISE_REQUANT_ROW(acc, OC, &rq, o)                                                             \
    }

static void em_depthwise_int8(const em_params* p) { EM_DEPTHWISE_INT8_BODY(int8_t, EM_DEPTHWISE_ACCUMULATE_S8) }

/* em_depthwise_int8 with int16 weights w - w_zp (uint8 models' asymmetric weights). */
static void em_depthwise_int8_w16(const em_params* p) { EM_DEPTHWISE_INT8_BODY(int16_t, em_depthwise_accumulate_s16) }

static void em_depthwise_f32(const em_params* p) {
    const int64_t* d = p->i;
    const float* in = (const float*)p->ptr[EM_CONV_P_INPUT];
    const float* w = (const float*)p->ptr[EM_CONV_P_WEIGHTS];
    const float* bias = (const float*)p->ptr[EM_CONV_P_BIAS];
    float* out = (float*)p->ptr[EM_CONV_P_OUTPUT];
    float* acc = (float*)p->ptr[EM_CONV_P_SCRATCH];
    const int64_t IH = d[EM_CONV_I_IH], IW = d[EM_CONV_I_IW], IC = d[EM_CONV_I_IC], OH = d[EM_CONV_I_OH];
    const int64_t OW = d[EM_CONV_I_OW], OC = d[EM_CONV_I_OC];
    const int64_t KH = d[EM_CONV_I_KH], KW = d[EM_CONV_I_KW], DM = d[EM_CONV_I_DM];
    for (int64_t b = 0; b < d[EM_CONV_I_N]; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t ox = 0; ox < OW; ox++) {
        for (int64_t c = 0; c < OC; c++) acc[c] = 0.0f;
        for (int64_t ky = 0; ky < KH; ky++) {
            int64_t iy = oy * d[EM_CONV_I_SH] - d[EM_CONV_I_PAD_TOP] + ky * d[EM_CONV_I_DH];
            if (iy < 0 || iy >= IH) continue;
            for (int64_t kx = 0; kx < KW; kx++) {
                int64_t ix = ox * d[EM_CONV_I_SW] - d[EM_CONV_I_PAD_LEFT] + kx * d[EM_CONV_I_DW];
                if (ix < 0 || ix >= IW) continue;
                const float* x = in + ((b * IH + iy) * IW + ix) * IC;
                const float* wr = w + (ky * KW + kx) * OC;
                for (int64_t ic = 0; ic < IC; ic++)
                    for (int64_t m = 0; m < DM; m++) acc[ic * DM + m] += x[ic] * wr[ic * DM + m];
            }
        }
        float* o = out + ((b * OH + oy) * OW + ox) * OC;
        for (int64_t c = 0; c < OC; c++)
            o[c] = em_clamp_f32(acc[c] + (bias ? bias[c] : 0.0f), p->f[EM_CONV_F_ACT_MIN], p->f[EM_CONV_F_ACT_MAX]);
    }
}

#endif
