/* Grouped CONV_2D (weights with IC / groups input channels; output channel block g reads input channel block g),
 * int8 and float32, NHWC, as LiteRT's reference ConvPerChannel / Conv compute it: per group, the receptive
 * fields of its channel block gathered into rows (taps outside the image take the input zero point, which the
 * bias folding cancels) and one GEMM (em_gemm.h) over the group's output channels. */
#ifndef EM_GROUPED_CONV_H
#define EM_GROUPED_CONV_H
#include <stdint.h>
#include <string.h>
#include "em_params.h"
#include "em_gemm.h"
#include "em_im2col.h"

/* layout EM_GROUPED_CONV: the conv layout (em_im2col.h, IC the input's channels, weights [OC][KH][KW][IC/groups],
 * bias with the input zero point folded in per output channel), then groups */
enum { EM_GROUPED_CONV_I_GROUPS = EM_CONV_I_COUNT, EM_GROUPED_CONV_I_COUNT };
enum { EM_GROUPED_CONV_P_COUNT = EM_CONV_P_COUNT, EM_GROUPED_CONV_F_COUNT = EM_CONV_F_COUNT };

/* Receptive fields of output pixels [first, first + rows) of image b over input channels [c0, c0 + cg). */
#define EM_IM2COL_GROUP(T)                                                                                    \
static void em_im2col_group_##T(const T* in, const int64_t* d, int64_t b, int64_t first, int64_t rows,        \
                                int64_t c0, int64_t cg, T pad, T* col) {                                      \
    const int64_t IH = d[EM_CONV_I_IH], IW = d[EM_CONV_I_IW], IC = d[EM_CONV_I_IC], OW = d[EM_CONV_I_OW];     \
    const int64_t KH = d[EM_CONV_I_KH], KW = d[EM_CONV_I_KW];                                                 \
    for (int64_t r = 0; r < rows; r++) {                                                                      \
        const int64_t pix = first + r, oy = pix / OW, ox = pix % OW;                                          \
        T* dst = col + r * KH * KW * cg;                                                                      \
        for (int64_t ky = 0; ky < KH; ky++) {                                                                 \
            const int64_t iy = oy * d[EM_CONV_I_SH] - d[EM_CONV_I_PAD_TOP] + ky * d[EM_CONV_I_DH];            \
            for (int64_t kx = 0; kx < KW; kx++, dst += cg) {                                                  \
                const int64_t ix = ox * d[EM_CONV_I_SW] - d[EM_CONV_I_PAD_LEFT] + kx * d[EM_CONV_I_DW];       \
                if (iy < 0 || iy >= IH || ix < 0 || ix >= IW) {                                               \
                    for (int64_t c = 0; c < cg; c++) dst[c] = pad;                                            \
                } else {                                                                                      \
                    memcpy(dst, in + ((b * IH + iy) * IW + ix) * IC + c0, (size_t)cg * sizeof(T));            \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
}
EM_IM2COL_GROUP(int8_t)
EM_IM2COL_GROUP(float)
#undef EM_IM2COL_GROUP

static void em_grouped_conv_int8(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t G = d[EM_GROUPED_CONV_I_GROUPS], OC = d[EM_CONV_I_OC], OCG = OC / G, ICG = d[EM_CONV_I_IC] / G;
    const int64_t K = d[EM_CONV_I_KH] * d[EM_CONV_I_KW] * ICG;
    const int64_t P = d[EM_CONV_I_OH] * d[EM_CONV_I_OW], chunk = d[EM_CONV_I_CHUNK];
    const int8_t* in = (const int8_t*)p->ptr[EM_CONV_P_INPUT];
    const int8_t* w = (const int8_t*)p->ptr[EM_CONV_P_WEIGHTS];
    int8_t* out = (int8_t*)p->ptr[EM_CONV_P_OUTPUT];
    int8_t* col = (int8_t*)p->ptr[EM_CONV_P_SCRATCH];
    const int8_t pad = (int8_t)d[EM_CONV_I_IN_ZP];
    const int32_t* bias = (const int32_t*)p->ptr[EM_CONV_P_BIAS];
    const int32_t* mult = (const int32_t*)p->ptr[EM_CONV_P_MULT];
    const int32_t* shift = (const int32_t*)p->ptr[EM_CONV_P_SHIFT];
    const double* scale = (const double*)p->ptr[EM_CONV_P_DOUBLE_SCALES];
    const float* fscale = (const float*)p->ptr[EM_CONV_P_FLOAT_SCALES];
    for (int64_t b = 0; b < d[EM_CONV_I_N]; b++) {
        for (int64_t first = 0; first < P; first += chunk) {
            const int64_t rows = P - first < chunk ? P - first : chunk;
            for (int64_t g = 0; g < G; g++) {
                const int64_t c0 = g * OCG;
                em_requant_cols rq = {bias + c0, mult + c0, shift + c0, (int32_t)d[EM_CONV_I_OUT_ZP],
                                      (int32_t)d[EM_CONV_I_ACT_MIN], (int32_t)d[EM_CONV_I_ACT_MAX],
                                      (int32_t)d[EM_CONV_I_MODE], scale ? scale + c0 : NULL,
                                      fscale ? fscale + c0 : NULL};
                em_im2col_group_int8_t(in, d, b, first, rows, g * ICG, ICG, pad, col);
                em_gemm_s8_requant(col, K, w + c0 * K, rows, OCG, K, out + (b * P + first) * OC + c0, OC, &rq);
            }
        }
    }
}

static void em_grouped_conv_f32(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t G = d[EM_GROUPED_CONV_I_GROUPS], OC = d[EM_CONV_I_OC], OCG = OC / G, ICG = d[EM_CONV_I_IC] / G;
    const int64_t K = d[EM_CONV_I_KH] * d[EM_CONV_I_KW] * ICG;
    const int64_t P = d[EM_CONV_I_OH] * d[EM_CONV_I_OW], chunk = d[EM_CONV_I_CHUNK];
    const float* in = (const float*)p->ptr[EM_CONV_P_INPUT];
    const float* w = (const float*)p->ptr[EM_CONV_P_WEIGHTS];
    const float* bias = (const float*)p->ptr[EM_CONV_P_BIAS];
    float* out = (float*)p->ptr[EM_CONV_P_OUTPUT];
    float* col = (float*)p->ptr[EM_CONV_P_SCRATCH];
    for (int64_t b = 0; b < d[EM_CONV_I_N]; b++) {
        for (int64_t first = 0; first < P; first += chunk) {
            const int64_t rows = P - first < chunk ? P - first : chunk;
            for (int64_t g = 0; g < G; g++) {
                const int64_t c0 = g * OCG;
                em_im2col_group_float(in, d, b, first, rows, g * ICG, ICG, 0.0f, col);
                em_gemm_f32(col, K, w + c0 * K, bias ? bias + c0 : NULL, rows, OCG, K,
                            out + (b * P + first) * OC + c0, OC, p->f[EM_CONV_F_ACT_MIN], p->f[EM_CONV_F_ACT_MAX]);
            }
        }
    }
}
#endif
