/* TRANSPOSE_CONV (the gradient of CONV_2D, "deconvolution"): int8, 16x8 and float32, as LiteRT's reference kernels
 * compute it: every input pixel scatters its products into the output window it influences (summed in an int32 /
 * int64 / float buffer in the reference's order), then bias, requantization and the activation clamp.
 * Weights are [OC][KH][KW][IC].  Portable scalar code only.
 *
 * Layout EM_TCONV:
 * ptr: input, weights, bias (int32 / int64 / float, or NULL), output, per-channel multipliers and shifts (int8 /
 *      int16), scratch (one int32 / int64 per output element; unused for float), output_shape (the int32 tensor
 *      read at run time when it is not a constant, else NULL), status (int32 set to 1 when that tensor differs
 *      from the planned shape; the output is then zeros)
 * i:   N, IH, IW, IC, OH, OW, OC, KH, KW, SH, SW, pad_top, pad_left, in_zp, out_zp, act_min, act_max, rounding mode,
 *      kind (EM_TCONV_*)
 * f:   act_min, act_max (float) */
#ifndef EM_TRANSPOSE_CONV_H
#define EM_TRANSPOSE_CONV_H
#include <string.h>
#include "em_params.h"
#include "em_requant.h"
#include "em_int16.h"

enum { EM_TCONV_P_INPUT, EM_TCONV_P_WEIGHTS, EM_TCONV_P_BIAS, EM_TCONV_P_OUTPUT, EM_TCONV_P_MULT, EM_TCONV_P_SHIFT,
       EM_TCONV_P_SCRATCH, EM_TCONV_P_OUTPUT_SHAPE, EM_TCONV_P_STATUS, EM_TCONV_P_COUNT };
enum { EM_TCONV_I_N, EM_TCONV_I_IH, EM_TCONV_I_IW, EM_TCONV_I_IC, EM_TCONV_I_OH, EM_TCONV_I_OW, EM_TCONV_I_OC,
       EM_TCONV_I_KH, EM_TCONV_I_KW, EM_TCONV_I_SH, EM_TCONV_I_SW, EM_TCONV_I_PAD_TOP, EM_TCONV_I_PAD_LEFT,
       EM_TCONV_I_IN_ZP, EM_TCONV_I_OUT_ZP, EM_TCONV_I_ACT_MIN, EM_TCONV_I_ACT_MAX, EM_TCONV_I_MODE, EM_TCONV_I_KIND,
       EM_TCONV_I_COUNT };
enum { EM_TCONV_F_ACT_MIN, EM_TCONV_F_ACT_MAX, EM_TCONV_F_COUNT };

#define EM_TCONV_INT8 0      /* int8 input and output, int32 sums and bias */
#define EM_TCONV_INT16 1     /* int16 input and output, int64 sums and bias */
#define EM_TCONV_FLOAT 2

/* The scatter: out[b, iy * SH - pad_top + ky, ix * SW - pad_left + kx, c] += (x - in_zp) * w[c, ky, kx, ic] */
#define EM_TCONV_SCATTER(T_IN, T_ACC, ACC)                                                                      \
    for (int64_t b = 0; b < N; b++)                                                                             \
    for (int64_t iy = 0; iy < IH; iy++)                                                                         \
    for (int64_t ix = 0; ix < IW; ix++)                                                                         \
    for (int64_t ic = 0; ic < IC; ic++) {                                                                       \
        const T_ACC v = (T_ACC)((const T_IN*)p->ptr[EM_TCONV_P_INPUT])[((b * IH + iy) * IW + ix) * IC + ic]     \
                        - (T_ACC)q[EM_TCONV_I_IN_ZP];                                                           \
        for (int64_t ky = 0; ky < KH; ky++) {                                                                   \
            const int64_t oy = iy * q[EM_TCONV_I_SH] - q[EM_TCONV_I_PAD_TOP] + ky;                              \
            if (oy < 0 || oy >= OH) continue;                                                                   \
            for (int64_t kx = 0; kx < KW; kx++) {                                                               \
                const int64_t ox = ix * q[EM_TCONV_I_SW] - q[EM_TCONV_I_PAD_LEFT] + kx;                         \
                if (ox < 0 || ox >= OW) continue;                                                               \
                T_ACC* dst = (ACC) + ((b * OH + oy) * OW + ox) * OC;                                            \
                for (int64_t c = 0; c < OC; c++) dst[c] += v * (T_ACC)w[((c * KH + ky) * KW + kx) * IC + ic];   \
            }                                                                                                   \
        }                                                                                                       \
    }

static void em_transpose_conv(const em_params* p) {
    const int64_t* q = p->i;
    const int64_t N = q[EM_TCONV_I_N], IH = q[EM_TCONV_I_IH], IW = q[EM_TCONV_I_IW], IC = q[EM_TCONV_I_IC];
    const int64_t OH = q[EM_TCONV_I_OH], OW = q[EM_TCONV_I_OW], OC = q[EM_TCONV_I_OC];
    const int64_t KH = q[EM_TCONV_I_KH], KW = q[EM_TCONV_I_KW];
    const int64_t total = N * OH * OW * OC;
    const int kind = (int)q[EM_TCONV_I_KIND];
    const int64_t planned[4] = {N, OH, OW, OC};
    if (p->ptr[EM_TCONV_P_OUTPUT_SHAPE] != NULL) {
        const int32_t* shape = (const int32_t*)p->ptr[EM_TCONV_P_OUTPUT_SHAPE];
        int32_t* status = (int32_t*)p->ptr[EM_TCONV_P_STATUS];
        int bad = 0;
        for (int k = 0; k < 4; k++) bad |= (int64_t)shape[k] != planned[k];
        *status = bad;
        if (bad) {
            const size_t item = kind == EM_TCONV_INT8 ? 1 : (kind == EM_TCONV_INT16 ? 2 : 4);
            memset(p->ptr[EM_TCONV_P_OUTPUT], 0, (size_t)total * item);
            return;
        }
    }
    const int8_t* w8 = (const int8_t*)p->ptr[EM_TCONV_P_WEIGHTS];
    const int32_t* mult = (const int32_t*)p->ptr[EM_TCONV_P_MULT];
    const int32_t* shift = (const int32_t*)p->ptr[EM_TCONV_P_SHIFT];
    const int32_t ozp = (int32_t)q[EM_TCONV_I_OUT_ZP];
    const int32_t amin = (int32_t)q[EM_TCONV_I_ACT_MIN], amax = (int32_t)q[EM_TCONV_I_ACT_MAX];
    if (kind == EM_TCONV_FLOAT) {
        const float* w = (const float*)p->ptr[EM_TCONV_P_WEIGHTS];
        const float* bias = (const float*)p->ptr[EM_TCONV_P_BIAS];
        float* y = (float*)p->ptr[EM_TCONV_P_OUTPUT];
        for (int64_t k = 0; k < total; k++) y[k] = 0.0f;
        EM_TCONV_SCATTER(float, float, y)
        for (int64_t k = 0; k < total; k++) {
            float v = bias ? y[k] + bias[k % OC] : y[k];
            y[k] = em_clamp_f32(v, p->f[EM_TCONV_F_ACT_MIN], p->f[EM_TCONV_F_ACT_MAX]);
        }
    } else if (kind == EM_TCONV_INT8) {
        const int8_t* w = w8;
        const int32_t* bias = (const int32_t*)p->ptr[EM_TCONV_P_BIAS];
        int32_t* acc = (int32_t*)p->ptr[EM_TCONV_P_SCRATCH];
        int8_t* y = (int8_t*)p->ptr[EM_TCONV_P_OUTPUT];
        const int mode = (int)q[EM_TCONV_I_MODE];
        memset(acc, 0, (size_t)total * sizeof(int32_t));
        EM_TCONV_SCATTER(int8_t, int32_t, acc)
        for (int64_t k = 0; k < total; k++) {
            const int64_t c = k % OC;
            int32_t a = bias ? (int32_t)((uint32_t)acc[k] + (uint32_t)bias[c]) : acc[k];
            y[k] = (int8_t)em_clamp_i32(em_mbqm(a, mult[c], shift[c], mode) + ozp, amin, amax);
        }
    } else {
        const int8_t* w = w8;
        const int64_t* bias = (const int64_t*)p->ptr[EM_TCONV_P_BIAS];
        int64_t* acc = (int64_t*)p->ptr[EM_TCONV_P_SCRATCH];
        int16_t* y = (int16_t*)p->ptr[EM_TCONV_P_OUTPUT];
        memset(acc, 0, (size_t)total * sizeof(int64_t));
        EM_TCONV_SCATTER(int16_t, int64_t, acc)
        for (int64_t k = 0; k < total; k++) {
            const int64_t c = k % OC;
            int64_t a = bias ? acc[k] + bias[c] : acc[k];
            y[k] = (int16_t)em_clamp_i32(em_mbqm64(a, mult[c], shift[c]) + ozp, amin, amax);
        }
    }
}
#undef EM_TCONV_SCATTER
#endif
