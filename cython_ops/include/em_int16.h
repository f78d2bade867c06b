/* The 16x8 scheme: int16 activations (zero point 0), int8 weights, int64 (or int32) bias, as LiteRT's reference
 * kernels compute it: CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED with wide sums, ADD / SUB (general scales and
 * the power-of-two path), MUL, LEAKY_RELU, requantization between int8 / int16 / int32, QUANTIZE / DEQUANTIZE,
 * MEAN.  SOFTMAX / LOGISTIC / TANH: em_int16_lut.h.  Portable scalar code only. */
#ifndef EM_INT16_H
#define EM_INT16_H
#include <math.h>
#include "em_params.h"
#include "em_requant.h"
#include "em_im2col.h"
#include "em_fully_connected.h"
#include "em_elementwise.h"
#include "em_reduce.h"

static inline int16_t em_sat_i16(int32_t v) {
    return (int16_t)(v > INT16_MAX ? INT16_MAX : (v < INT16_MIN ? INT16_MIN : v));
}

/* ----- CONV_2D / DEPTHWISE_CONV_2D 16x8 ---------------------------------------------------------------------
 * Layout EM_CONV16: the conv layout (em_im2col.h: input int16, weights int8 [OC][KH][KW][IC] or [KH][KW][OC],
 * bias int64 / int32 / NULL, per-channel multipliers and shifts; in_zp is 0), then wide_bias: 1 sums in int64
 * and requantizes with em_mbqm64 (int64 or no bias), 0 sums in int32 and requantizes with em_mbqm in `mode`
 * (an int32 bias: LiteRT's int32 accumulator instantiation). */
enum { EM_CONV16_P_COUNT = EM_CONV_P_COUNT };
enum { EM_CONV16_I_WIDE_BIAS = EM_CONV_I_COUNT, EM_CONV16_I_COUNT };
enum { EM_CONV16_F_COUNT = 0 };

static inline int16_t em_requant16(int64_t acc, const em_params* p, int64_t c, int wide, int mode,
                                   int32_t ozp, int32_t amin, int32_t amax) {
    const int32_t* mult = (const int32_t*)p->ptr[EM_CONV_P_MULT];
    const int32_t* shift = (const int32_t*)p->ptr[EM_CONV_P_SHIFT];
    int32_t r;
    if (wide) {
        if (p->ptr[EM_CONV_P_BIAS]) acc += ((const int64_t*)p->ptr[EM_CONV_P_BIAS])[c];
        r = em_mbqm64(acc, mult[c], shift[c]);
    } else {
        int32_t a32 = (int32_t)(uint32_t)(uint64_t)acc;
        if (p->ptr[EM_CONV_P_BIAS])
            a32 = (int32_t)((uint32_t)a32 + (uint32_t)((const int32_t*)p->ptr[EM_CONV_P_BIAS])[c]);
        r = em_mbqm(a32, mult[c], shift[c], mode);
    }
    return (int16_t)em_clamp_i32(r + ozp, amin, amax);
}

static void em_conv2d_16x8(const em_params* p) {
    const int64_t* q = p->i;
    const int64_t N = q[EM_CONV_I_N], IH = q[EM_CONV_I_IH], IW = q[EM_CONV_I_IW], IC = q[EM_CONV_I_IC];
    const int64_t OH = q[EM_CONV_I_OH], OW = q[EM_CONV_I_OW], OC = q[EM_CONV_I_OC];
    const int64_t KH = q[EM_CONV_I_KH], KW = q[EM_CONV_I_KW];
    const int wide = (int)q[EM_CONV16_I_WIDE_BIAS], mode = (int)q[EM_CONV_I_MODE];
    const int32_t ozp = (int32_t)q[EM_CONV_I_OUT_ZP];
    const int32_t amin = (int32_t)q[EM_CONV_I_ACT_MIN], amax = (int32_t)q[EM_CONV_I_ACT_MAX];
    const int16_t* x = (const int16_t*)p->ptr[EM_CONV_P_INPUT];
    const int8_t* w = (const int8_t*)p->ptr[EM_CONV_P_WEIGHTS];
    int16_t* y = (int16_t*)p->ptr[EM_CONV_P_OUTPUT];
    for (int64_t b = 0; b < N; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t ox = 0; ox < OW; ox++)
    for (int64_t c = 0; c < OC; c++) {
        int64_t acc = 0;
        for (int64_t ky = 0; ky < KH; ky++) {
            const int64_t iy = oy * q[EM_CONV_I_SH] - q[EM_CONV_I_PAD_TOP] + ky * q[EM_CONV_I_DH];
            if (iy < 0 || iy >= IH) continue;
            for (int64_t kx = 0; kx < KW; kx++) {
                const int64_t ix = ox * q[EM_CONV_I_SW] - q[EM_CONV_I_PAD_LEFT] + kx * q[EM_CONV_I_DW];
                if (ix < 0 || ix >= IW) continue;
                const int16_t* xin = x + ((b * IH + iy) * IW + ix) * IC;
                const int8_t* wk = w + ((c * KH + ky) * KW + kx) * IC;
                for (int64_t i = 0; i < IC; i++) acc += (int32_t)xin[i] * (int32_t)wk[i];
            }
        }
        y[((b * OH + oy) * OW + ox) * OC + c] = em_requant16(acc, p, c, wide, mode, ozp, amin, amax);
    }
}

static void em_depthwise_16x8(const em_params* p) {
    const int64_t* q = p->i;
    const int64_t N = q[EM_CONV_I_N], IH = q[EM_CONV_I_IH], IW = q[EM_CONV_I_IW], IC = q[EM_CONV_I_IC];
    const int64_t OH = q[EM_CONV_I_OH], OW = q[EM_CONV_I_OW], OC = q[EM_CONV_I_OC];
    const int64_t KH = q[EM_CONV_I_KH], KW = q[EM_CONV_I_KW], DM = q[EM_CONV_I_DM];
    const int wide = (int)q[EM_CONV16_I_WIDE_BIAS], mode = (int)q[EM_CONV_I_MODE];
    const int32_t ozp = (int32_t)q[EM_CONV_I_OUT_ZP];
    const int32_t amin = (int32_t)q[EM_CONV_I_ACT_MIN], amax = (int32_t)q[EM_CONV_I_ACT_MAX];
    const int16_t* x = (const int16_t*)p->ptr[EM_CONV_P_INPUT];
    const int8_t* w = (const int8_t*)p->ptr[EM_CONV_P_WEIGHTS];
    int16_t* y = (int16_t*)p->ptr[EM_CONV_P_OUTPUT];
    for (int64_t b = 0; b < N; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t ox = 0; ox < OW; ox++)
    for (int64_t c = 0; c < OC; c++) {
        const int64_t ic = c / DM;
        int64_t acc = 0;
        for (int64_t ky = 0; ky < KH; ky++) {
            const int64_t iy = oy * q[EM_CONV_I_SH] - q[EM_CONV_I_PAD_TOP] + ky * q[EM_CONV_I_DH];
            if (iy < 0 || iy >= IH) continue;
            for (int64_t kx = 0; kx < KW; kx++) {
                const int64_t ix = ox * q[EM_CONV_I_SW] - q[EM_CONV_I_PAD_LEFT] + kx * q[EM_CONV_I_DW];
                if (ix < 0 || ix >= IW) continue;
                acc += (int32_t)x[((b * IH + iy) * IW + ix) * IC + ic] * (int32_t)w[(ky * KW + kx) * OC + c];
            }
        }
        y[((b * OH + oy) * OW + ox) * OC + c] = em_requant16(acc, p, c, wide, mode, ozp, amin, amax);
    }
}

/* ----- FULLY_CONNECTED 16x8 -----------------------------------------------------------------------------------
 * Layout EM_FC16: the int8 layout (em_fully_connected.h: input int16 [rows][depth], weights int8 [units][depth],
 * bias int64 / int32 / NULL), mode EM_REQUANT_DOUBLE_SCALE rescales round(acc * scale) in double (LiteRT's
 * reference kernel), else em_mbqm64 / em_mbqm as the conv kernels; then wide_bias as EM_CONV16. */
enum { EM_FC16_P_COUNT = EM_FC_P_COUNT };
enum { EM_FC16_I_WIDE_BIAS = EM_FC_I_COUNT, EM_FC16_I_COUNT };
enum { EM_FC16_F_COUNT = 0 };

static void em_fully_connected_16x8(const em_params* p) {
    const int64_t* q = p->i;
    const int64_t M = q[EM_FC_I_ROWS], K = q[EM_FC_I_DEPTH], N = q[EM_FC_I_UNITS];
    const int wide = (int)q[EM_FC16_I_WIDE_BIAS], mode = (int)q[EM_FC_I_MODE];
    const int32_t ozp = (int32_t)q[EM_FC_I_OUT_ZP];
    const int32_t amin = (int32_t)q[EM_FC_I_ACT_MIN], amax = (int32_t)q[EM_FC_I_ACT_MAX];
    const int16_t* x = (const int16_t*)p->ptr[EM_FC_P_INPUT];
    const int8_t* w = (const int8_t*)p->ptr[EM_FC_P_WEIGHTS];
    const int32_t* mult = (const int32_t*)p->ptr[EM_FC_P_MULT];
    const int32_t* shift = (const int32_t*)p->ptr[EM_FC_P_SHIFT];
    const double* scales = (const double*)p->ptr[EM_FC_P_DOUBLE_SCALES];
    int16_t* y = (int16_t*)p->ptr[EM_FC_P_OUTPUT];
    for (int64_t r = 0; r < M; r++)
    for (int64_t c = 0; c < N; c++) {
        int64_t acc = 0;
        for (int64_t k = 0; k < K; k++) acc += (int32_t)x[r * K + k] * (int32_t)w[c * K + k];
        int32_t v;
        if (wide) {
            if (p->ptr[EM_FC_P_BIAS]) acc += ((const int64_t*)p->ptr[EM_FC_P_BIAS])[c];
            if (mode == EM_REQUANT_DOUBLE_SCALE) {
                double s = round((double)acc * scales[c]);
                v = (int32_t)(s > 2e9 ? 2e9 : (s < -2e9 ? -2e9 : s));
            } else {
                v = em_mbqm64(acc, mult[c], shift[c]);
            }
        } else {
            int32_t a32 = (int32_t)(uint32_t)(uint64_t)acc;
            if (p->ptr[EM_FC_P_BIAS])
                a32 = (int32_t)((uint32_t)a32 + (uint32_t)((const int32_t*)p->ptr[EM_FC_P_BIAS])[c]);
            if (mode == EM_REQUANT_DOUBLE_SCALE) {
                double s = round((double)a32 * scales[c]);
                v = (int32_t)(s > 2e9 ? 2e9 : (s < -2e9 ? -2e9 : s));
            } else {
                v = em_mbqm(a32, mult[c], shift[c], mode);
            }
        }
        y[r * N + c] = (int16_t)em_clamp_i32(v + ozp, amin, amax);
    }
}

/* ----- ADD / SUB / MUL int16 ----------------------------------------------------------------------------------- */

/* ADD / SUB with general scales, layout EM_ADD (em_elementwise.h; tables unused): as int8 with left shift 15 */
static void em_add_int16(const em_params* p) {
    const int64_t* q = p->i;
    const int32_t zp1 = (int32_t)q[EM_ADD_I_ZP1], zp2 = (int32_t)q[EM_ADD_I_ZP2], ozp = (int32_t)q[EM_ADD_I_OUT_ZP];
    const int32_t ls = (int32_t)q[EM_ADD_I_LEFT_SHIFT];
    const int32_t m1 = (int32_t)q[EM_ADD_I_MULT1], sh1 = (int32_t)q[EM_ADD_I_SHIFT1];
    const int32_t m2 = (int32_t)q[EM_ADD_I_MULT2], sh2 = (int32_t)q[EM_ADD_I_SHIFT2];
    const int32_t mo = (int32_t)q[EM_ADD_I_OUT_MULT], sho = (int32_t)q[EM_ADD_I_OUT_SHIFT];
    const int32_t amin = (int32_t)q[EM_ADD_I_ACT_MIN], amax = (int32_t)q[EM_ADD_I_ACT_MAX];
    const int mode = (int)q[EM_ADD_I_MODE];
    const int sub = q[EM_ADD_I_SIGN] < 0;
    EM_BINARY_LOOP(int16_t, int16_t, {
        int32_t v1 = em_mbqm(((int32_t)a - zp1) * (1 << ls), m1, sh1, mode);
        int32_t v2 = em_mbqm(((int32_t)b - zp2) * (1 << ls), m2, sh2, mode);
        int32_t s = sub ? v1 - v2 : v1 + v2;
        y[o] = (int16_t)em_clamp_i32(em_mbqm(s, mo, sho, mode) + ozp, amin, amax);
    })
}

/* ADD / SUB on power-of-two scales (LiteRT's legacy int16 path, pot_scale_int16): one input is rounded right by
 * its shift, then a saturating int16 add / subtract; equal shapes only.
 * Layout EM_ADD16_POT: the binary pointers and integers, then shift1, shift2 (<= 0, one of them 0), act_min,
 * act_max, sign of input 2 (+1 ADD, -1 SUB) */
enum { EM_ADD16_POT_P_COUNT = EM_BINARY_P_COUNT };
enum { EM_ADD16_POT_I_SHIFT1 = EM_BINARY_I_COUNT, EM_ADD16_POT_I_SHIFT2, EM_ADD16_POT_I_ACT_MIN,
       EM_ADD16_POT_I_ACT_MAX, EM_ADD16_POT_I_SIGN, EM_ADD16_POT_I_COUNT };
enum { EM_ADD16_POT_F_COUNT = 0 };

static void em_add_int16_pot(const em_params* p) {
    const int64_t* q = p->i;
    const int64_t* dims = p->i + EM_BINARY_I_DIMS;
    const int16_t* x1 = (const int16_t*)p->ptr[EM_BINARY_P_INPUT1];
    const int16_t* x2 = (const int16_t*)p->ptr[EM_BINARY_P_INPUT2];
    int16_t* y = (int16_t*)p->ptr[EM_BINARY_P_OUTPUT];
    const int64_t n = dims[0] * dims[1] * dims[2] * dims[3] * dims[4] * dims[5];
    const int e1 = (int)-q[EM_ADD16_POT_I_SHIFT1], e2 = (int)-q[EM_ADD16_POT_I_SHIFT2];
    const int32_t amin = (int32_t)q[EM_ADD16_POT_I_ACT_MIN], amax = (int32_t)q[EM_ADD16_POT_I_ACT_MAX];
    const int sub = q[EM_ADD16_POT_I_SIGN] < 0;
    for (int64_t k = 0; k < n; k++) {
        /* input 1 is taken as it is when its shift is 0, otherwise input 2 is */
        int32_t a = e1 == 0 ? x1[k] : em_rounding_divide_by_pot(x1[k], e1);
        int32_t b = e1 == 0 ? em_rounding_divide_by_pot(x2[k], e2) : x2[k];
        int32_t s = em_sat_i16(sub ? a - b : a + b);
        y[k] = (int16_t)em_clamp_i32(s, amin, amax);
    }
}

/* MUL int16, layout EM_MUL: as int8 (zero points are 0, the product fits int32) */
static void em_mul_int16(const em_params* p) {
    const int64_t* q = p->i;
    const int32_t zp1 = (int32_t)q[EM_MUL_I_ZP1], zp2 = (int32_t)q[EM_MUL_I_ZP2], ozp = (int32_t)q[EM_MUL_I_OUT_ZP];
    const int32_t m = (int32_t)q[EM_MUL_I_MULT], sh = (int32_t)q[EM_MUL_I_SHIFT];
    const int32_t amin = (int32_t)q[EM_MUL_I_ACT_MIN], amax = (int32_t)q[EM_MUL_I_ACT_MAX];
    const int mode = (int)q[EM_MUL_I_MODE];
    EM_BINARY_LOOP(int16_t, int16_t, {
        int32_t prod = ((int32_t)a - zp1) * ((int32_t)b - zp2);
        y[o] = (int16_t)em_clamp_i32(em_mbqm(prod, m, sh, mode) + ozp, amin, amax);
    })
}

/* ----- requantization between integer types (QUANTIZE), layout EM_REQUANTIZE (em_elementwise.h): y = clamp(out_zp +
 * MBQM(x - in_zp, m, s), act_min, act_max) with the output type's bounds as act_min / act_max ----------------- */
#define EM_REQUANTIZE_KERNEL(NAME, T_IN, T_OUT)                                                                 \
static void NAME(const em_params* p) {                                                                          \
    const int64_t* q = p->i;                                                                                    \
    const T_IN* x = (const T_IN*)p->ptr[EM_REQUANTIZE_P_INPUT];                                                 \
    T_OUT* y = (T_OUT*)p->ptr[EM_REQUANTIZE_P_OUTPUT];                                                          \
    const int32_t izp = (int32_t)q[EM_REQUANTIZE_I_IN_ZP], ozp = (int32_t)q[EM_REQUANTIZE_I_OUT_ZP];            \
    const int32_t m = (int32_t)q[EM_REQUANTIZE_I_MULT], sh = (int32_t)q[EM_REQUANTIZE_I_SHIFT];                 \
    const int32_t amin = (int32_t)q[EM_REQUANTIZE_I_ACT_MIN], amax = (int32_t)q[EM_REQUANTIZE_I_ACT_MAX];       \
    const int mode = (int)q[EM_REQUANTIZE_I_MODE];                                                              \
    for (int64_t k = 0; k < q[EM_REQUANTIZE_I_N]; k++) {                                                        \
        const int32_t d0 = (int32_t)((uint32_t)(int32_t)x[k] - (uint32_t)izp);                                 \
        const int64_t r = (int64_t)em_mbqm(d0, m, sh, mode) + ozp;                                              \
        y[k] = (T_OUT)(r < amin ? amin : (r > amax ? amax : r));                                                \
    }                                                                                                           \
}
EM_REQUANTIZE_KERNEL(em_requantize_int16_int8, int16_t, int8_t)
EM_REQUANTIZE_KERNEL(em_requantize_int8_int16, int8_t, int16_t)
EM_REQUANTIZE_KERNEL(em_requantize_int16_int16, int16_t, int16_t)
EM_REQUANTIZE_KERNEL(em_requantize_int16_int32, int16_t, int32_t)
EM_REQUANTIZE_KERNEL(em_requantize_int32_int16, int32_t, int16_t)
#undef EM_REQUANTIZE_KERNEL

/* LEAKY_RELU int16, layout EM_LEAKY_RELU: as int8, clamped to int16 */
static void em_leaky_relu_int16(const em_params* p) {
    const int64_t* q = p->i;
    const int16_t* x = (const int16_t*)p->ptr[EM_LEAKY_RELU_P_INPUT];
    int16_t* y = (int16_t*)p->ptr[EM_LEAKY_RELU_P_OUTPUT];
    const int mode = (int)q[EM_LEAKY_RELU_I_MODE];
    for (int64_t k = 0; k < q[EM_LEAKY_RELU_I_N]; k++) {
        int32_t v = (int32_t)x[k] - (int32_t)q[EM_LEAKY_RELU_I_IN_ZP];
        int32_t r = v >= 0
            ? em_mbqm(v, (int32_t)q[EM_LEAKY_RELU_I_MULT_IDENTITY], (int)q[EM_LEAKY_RELU_I_SHIFT_IDENTITY], mode)
            : em_mbqm(v, (int32_t)q[EM_LEAKY_RELU_I_MULT_ALPHA], (int)q[EM_LEAKY_RELU_I_SHIFT_ALPHA], mode);
        y[k] = em_sat_i16(r + (int32_t)q[EM_LEAKY_RELU_I_OUT_ZP]);
    }
}

/* QUANTIZE float -> int16, layout EM_QUANTIZE: x / scale in float32, rounded half away from zero */
static void em_quantize_f32_int16(const em_params* p) {
    const float* x = (const float*)p->ptr[EM_QUANTIZE_P_INPUT];
    int16_t* y = (int16_t*)p->ptr[EM_QUANTIZE_P_OUTPUT];
    const float scale = p->f[EM_QUANTIZE_F_SCALE];
    const int32_t zp = (int32_t)p->i[EM_QUANTIZE_I_ZP];
    for (int64_t k = 0; k < p->i[EM_QUANTIZE_I_N]; k++) {
        float r = roundf(x[k] / scale);
        if (r > 1e9f) r = 1e9f;          /* keep the int conversion defined for inf / huge inputs */
        if (r < -1e9f) r = -1e9f;
        if (r != r) r = 0.0f;            /* NaN */
        y[k] = em_sat_i16((int32_t)r + zp);
    }
}

/* DEQUANTIZE int16 -> float, layout EM_DEQUANTIZE: float(scale * (x - zp)) in double */
static void em_dequantize_int16_f32(const em_params* p) {
    const int16_t* x = (const int16_t*)p->ptr[EM_DEQUANTIZE_P_INPUT];
    float* y = (float*)p->ptr[EM_DEQUANTIZE_P_OUTPUT];
    const double scale = (double)p->f[EM_DEQUANTIZE_F_SCALE];
    const int32_t zp = (int32_t)p->i[EM_DEQUANTIZE_I_ZP];
    for (int64_t k = 0; k < p->i[EM_DEQUANTIZE_I_N]; k++) y[k] = (float)(scale * (double)((int32_t)x[k] - zp));
}

/* MEAN int16, layout EM_MEAN (em_reduce.h; is_float 0): integer sum, one multiplier holding s_in / s_out / count */
static void em_mean_int16(const em_params* p) {
    const int64_t* q = p->i;
    const int64_t* dims = q + EM_MEAN_I_DIMS;
    const int64_t* ost = q + EM_MEAN_I_OUT_STRIDES;
    const int64_t n_out = q[EM_MEAN_I_OUTPUTS], count = q[EM_MEAN_I_REDUCED];
    const int16_t* x = (const int16_t*)p->ptr[EM_MEAN_P_INPUT];
    int16_t* y = (int16_t*)p->ptr[EM_MEAN_P_OUTPUT];
    int32_t* acc = (int32_t*)p->ptr[EM_MEAN_P_SCRATCH];
    int64_t k = 0;
    for (int64_t o = 0; o < n_out; o++) acc[o] = 0;
    EM_REDUCE_SUM(int32_t)
    const int32_t zp_sum = (int32_t)(q[EM_MEAN_I_IN_ZP] * count);
    for (int64_t o = 0; o < n_out; o++) {
        int32_t v = em_mbqm(acc[o] - zp_sum, (int32_t)q[EM_MEAN_I_MULT], (int)q[EM_MEAN_I_SHIFT],
                            (int)q[EM_MEAN_I_MODE]) + (int32_t)q[EM_MEAN_I_OUT_ZP];
        y[o] = em_sat_i16(v);
    }
}
#endif
