/* Element-wise unary math: FLOOR, SQRT, RSQRT, EXP, LOG, ABS, NEG, SQUARE, ELU, GELU (tanh and erf forms) in
 * float32; ABS and NEG in int32; the int8 / uint8 forms as a 256-entry table built at load (each entry computed
 * with the arithmetic of LiteRT's reference kernel for that input value) and applied by em_lut_int8_step
 * (em_activation_steps.h) or, where LiteRT refuses some inputs at run time (SQRT, RSQRT below the zero point),
 * by em_lut_checked. */
#ifndef EM_MATH_UNARY_H
#define EM_MATH_UNARY_H
#include <math.h>
#include <stdint.h>
#include "em_params.h"
#include "em_requant.h"
#include "em_activations.h"
#include "em_lut.h"

/* Function codes (the `kind` slot and em_unary_table's first argument). */
enum { EM_MATH_FLOOR, EM_MATH_SQRT, EM_MATH_RSQRT, EM_MATH_EXP, EM_MATH_LOG, EM_MATH_ABS, EM_MATH_NEG,
       EM_MATH_SQUARE, EM_MATH_ELU, EM_MATH_GELU_TANH, EM_MATH_GELU_ERF, EM_MATH_UNARY_KINDS };

/* em_math_unary_f32 / em_math_unary_i32, layout EM_MATH_UNARY: ptr: input, output; i: n, kind */
enum { EM_MATH_UNARY_P_INPUT, EM_MATH_UNARY_P_OUTPUT, EM_MATH_UNARY_P_COUNT };
enum { EM_MATH_UNARY_I_N, EM_MATH_UNARY_I_KIND, EM_MATH_UNARY_I_COUNT };
enum { EM_MATH_UNARY_F_COUNT = 0 };

/* em_lut_checked, layout EM_LUT_CHECKED: ptr: input, output, table (256 outputs then 256 validity bytes, both
 * indexed by the input byte), status (int32: set to 1 when an input's validity byte is 0); i: n */
enum { EM_LUT_CHECKED_P_INPUT, EM_LUT_CHECKED_P_OUTPUT, EM_LUT_CHECKED_P_TABLE, EM_LUT_CHECKED_P_STATUS,
       EM_LUT_CHECKED_P_COUNT };
enum { EM_LUT_CHECKED_I_N, EM_LUT_CHECKED_I_COUNT };
enum { EM_LUT_CHECKED_F_COUNT = 0 };

/* GELU as LiteRT's reference_ops::GeluTransform / GeluTransformApproximate write it, in float (erfc form: no
 * cancellation for large negative inputs). */
static inline float em_gelu_erf(float x) {
    return 0.5f * x * erfcf(x * (float)-M_SQRT1_2);
}
static inline float em_gelu_tanh(float x) {
    const float sqrt_2_over_pi = (float)(M_2_SQRTPI * M_SQRT1_2);
    return 0.5f * x * (1.0f + tanhf(sqrt_2_over_pi * (x + 0.044715f * x * x * x)));
}

static inline float em_math_f32(int kind, float x) {
    switch (kind) {
    case EM_MATH_FLOOR: return floorf(x);
    case EM_MATH_SQRT: return sqrtf(x);
    case EM_MATH_RSQRT: return 1.0f / sqrtf(x);
    case EM_MATH_EXP: return expf(x);
    case EM_MATH_LOG: return logf(x);
    case EM_MATH_ABS: return fabsf(x);
    case EM_MATH_NEG: return -x;
    case EM_MATH_SQUARE: return x * x;
    case EM_MATH_ELU: return x < 0.0f ? expm1f(x) : x;
    case EM_MATH_GELU_TANH: return em_gelu_tanh(x);
    default: return em_gelu_erf(x);
    }
}

/* One loop per function, so the switch is not in the loop (the compiler vectorizes the simple ones). */
#define EM_MATH_UNARY_LOOP(K) case K: for (int64_t i = 0; i < n; i++) y[i] = em_math_f32(K, x[i]); break;

static void em_math_unary_f32(const em_params* p) {
    const float* x = (const float*)p->ptr[EM_MATH_UNARY_P_INPUT];
    float* y = (float*)p->ptr[EM_MATH_UNARY_P_OUTPUT];
    const int64_t n = p->i[EM_MATH_UNARY_I_N];
    switch ((int)p->i[EM_MATH_UNARY_I_KIND]) {
    EM_MATH_UNARY_LOOP(EM_MATH_FLOOR)
    EM_MATH_UNARY_LOOP(EM_MATH_SQRT)
    EM_MATH_UNARY_LOOP(EM_MATH_RSQRT)
    EM_MATH_UNARY_LOOP(EM_MATH_EXP)
    EM_MATH_UNARY_LOOP(EM_MATH_LOG)
    EM_MATH_UNARY_LOOP(EM_MATH_ABS)
    EM_MATH_UNARY_LOOP(EM_MATH_NEG)
    EM_MATH_UNARY_LOOP(EM_MATH_SQUARE)
    EM_MATH_UNARY_LOOP(EM_MATH_ELU)
    EM_MATH_UNARY_LOOP(EM_MATH_GELU_TANH)
    EM_MATH_UNARY_LOOP(EM_MATH_GELU_ERF)
    }
}
#undef EM_MATH_UNARY_LOOP

/* int32 ABS and NEG wrap as the reference's two's-complement arithmetic does (|INT32_MIN| = INT32_MIN). */
static void em_math_unary_i32(const em_params* p) {
    const int32_t* x = (const int32_t*)p->ptr[EM_MATH_UNARY_P_INPUT];
    int32_t* y = (int32_t*)p->ptr[EM_MATH_UNARY_P_OUTPUT];
    const int64_t n = p->i[EM_MATH_UNARY_I_N];
    if (p->i[EM_MATH_UNARY_I_KIND] == EM_MATH_NEG) {
        for (int64_t i = 0; i < n; i++) y[i] = (int32_t)(0u - (uint32_t)x[i]);
    } else {
        for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0 ? (int32_t)(0u - (uint32_t)x[i]) : x[i];
    }
}

static void em_lut_checked(const em_params* p) {
    const uint8_t* x = (const uint8_t*)p->ptr[EM_LUT_CHECKED_P_INPUT];
    uint8_t* y = (uint8_t*)p->ptr[EM_LUT_CHECKED_P_OUTPUT];
    const uint8_t* table = (const uint8_t*)p->ptr[EM_LUT_CHECKED_P_TABLE];
    int32_t* status = (int32_t*)p->ptr[EM_LUT_CHECKED_P_STATUS];
    const int64_t n = p->i[EM_LUT_CHECKED_I_N];
    uint8_t valid[1024];
    uint8_t all = 1;
    for (int64_t i = 0; i < n; i += 1024) {       /* outputs and validity bytes, both by vector lookups */
        const int64_t m = n - i < 1024 ? n - i : 1024;
        em_lut_u8(x + i, y + i, m, table);
        em_lut_u8(x + i, valid, m, table + 256);
        for (int64_t k = 0; k < m; k++) all &= valid[k];
    }
    *status = all ? 0 : 1;
}

/* ---- load-time tables ------------------------------------------------------------------------------------ */

/* float -> int32 as x86's cvttss2si converts (what the reference's static_cast compiles to there): NaN and
 * values outside the int32 range give INT32_MIN. */
static inline int32_t em_f32_to_i32_x86(float v) {
    if (!(v >= -2147483648.0f && v < 2147483648.0f)) return INT32_MIN;
    return (int32_t)v;
}

/* LiteRT's LUTPopulate<int8_t / uint8_t> for one input value: dequantize in float, apply f, multiply by
 * 1 / output_scale, round half away from zero, add the zero point in float, convert, clamp. */
static inline int32_t em_lut_entry(float f_of_x, float inverse_scale, int32_t out_zp, int32_t lo, int32_t hi) {
    volatile float prod = f_of_x * inverse_scale;
    volatile float rescaled = roundf(prod);
    const int32_t q = em_f32_to_i32_x86(rescaled + (float)out_zp);
    return q < lo ? lo : (q > hi ? hi : q);
}

/* 1 / sqrt(input) as a fixed-point multiplier and shift (tflite::GetInvSqrtQuantizedMultiplierExp, a Newton
 * iteration in Q3.28); reverse_shift -1 gives a left shift (negative: right). */
static inline void em_inv_sqrt_multiplier(int32_t input, int reverse_shift, int32_t* mult, int* shift) {
    if (input <= 1) {     /* 0 (invalid) and 1 both give the largest multiplier, as the reference does */
        *mult = INT32_MAX;
        *shift = 0;
        return;
    }
    int s = 11;
    while (input >= (1 << 29)) {
        input /= 4;
        s++;
    }
    const int left_pairs = (em_clz_u32((uint32_t)input) - 1) / 2 - 1;
    s -= left_pairs;
    input <<= 2 * left_pairs;
    const int32_t fp_input = input >> 1;                                 /* Q3.28 */
    const int32_t half_input = em_rounding_divide_by_pot(fp_input, 1);
    const int32_t half_three = (1 << 28) + (1 << 27);
    int32_t x = 1 << 28;                                                 /* 1.0 in Q3.28 */
    for (int k = 0; k < 5; k++) {
        const int32_t x3 = em_fp_rescale(em_fp_mul(em_fp_mul(x, x), x), 9, 3);
        x = em_fp_rescale(em_fp_sub(em_fp_mul(half_three, x), em_fp_mul(half_input, x3)), 6, 3);
    }
    x = em_fp_mul(x, 1518500250);                                        /* sqrt(2) / 2 in Q0.31 */
    if (s < 0) {
        x = (int32_t)((uint32_t)x << -s);
        s = 0;
    }
    *mult = x;
    *shift = s * reverse_shift;
}

/* The 256-entry table of one int8 (signed 1) or uint8 (signed 0) unary op, indexed by the input byte, and 256
 * validity bytes after it (0 where LiteRT's kernel refuses the input at run time).  mult / shift: the output
 * rescale of ABS (input / output scale) and RSQRT (1 / (sqrt(input scale) * output scale)); rescale: ABS with
 * differing scales; log_floor: what LOG gives for inputs <= 0 (the lowest output value, in float). */
static void em_unary_table(int kind, int is_signed, float in_scale, int32_t in_zp, float out_scale, int32_t out_zp,
                           int32_t mult, int32_t shift, int rescale, int mode, uint8_t* table) {
    const int32_t lo = is_signed ? -128 : 0, hi = is_signed ? 127 : 255;
    const float inverse_scale = 1.0f / out_scale;
    const float log_floor = (float)(lo - out_zp) * out_scale;
    for (int32_t v = lo; v <= hi; v++) {
        const uint8_t byte = (uint8_t)v;
        volatile float x = in_scale * (float)(v - in_zp);
        int32_t q = 0;
        uint8_t valid = 1;
        switch (kind) {
        case EM_MATH_EXP: q = em_lut_entry(expf(x), inverse_scale, out_zp, lo, hi); break;
        case EM_MATH_LOG: q = em_lut_entry(x <= 0.0f ? log_floor : logf(x), inverse_scale, out_zp, lo, hi); break;
        case EM_MATH_ELU: q = em_lut_entry(x < 0.0f ? expm1f(x) : x, inverse_scale, out_zp, lo, hi); break;
        case EM_MATH_GELU_TANH: q = em_lut_entry(em_gelu_tanh(x), inverse_scale, out_zp, lo, hi); break;
        case EM_MATH_GELU_ERF: q = em_lut_entry(em_gelu_erf(x), inverse_scale, out_zp, lo, hi); break;
        case EM_MATH_SQRT: {
            /* SqrtEvalQuantized: truncating conversion, not rounding */
            valid = x >= 0.0f;
            volatile float r = sqrtf(x) / out_scale;
            q = valid ? em_f32_to_i32_x86(r) + out_zp : 0;
            break;
        }
        case EM_MATH_RSQRT: {
            const int32_t value = v - in_zp;
            const int k_shift = 20;       /* keeps the intermediate an integer, as the reference does */
            valid = value >= 0;
            if (value == 0) {
                q = hi;
            } else if (valid) {
                int32_t inv_mult;
                int inv_shift;
                em_inv_sqrt_multiplier(value, -1, &inv_mult, &inv_shift);
                const int32_t data = em_mbqm(1, inv_mult, inv_shift + k_shift, mode);
                q = em_mbqm(data, mult, shift - k_shift, mode) + out_zp;
            }
            break;
        }
        case EM_MATH_ABS: {
            const int32_t value = v - in_zp < 0 ? in_zp - v : v - in_zp;
            q = (rescale ? em_mbqm(value, mult, shift, mode) : value) + out_zp;
            break;
        }
        default: valid = 0; break;
        }
        table[byte] = (uint8_t)(q < lo ? lo : (q > hi ? hi : q));
        table[256 + byte] = valid;
    }
}
#endif
