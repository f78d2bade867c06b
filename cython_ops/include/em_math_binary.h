/* Element-wise binary math with broadcasting (the EM_BINARY loop of em_elementwise.h): DIV, FLOOR_DIV, FLOOR_MOD,
 * POW, SQUARED_DIFFERENCE and PRELU in float32, DIV / FLOOR_DIV / FLOOR_MOD / POW / SQUARED_DIFFERENCE in int32,
 * and the quantized DIV, SQUARED_DIFFERENCE and PRELU of LiteRT's reference kernels in int8 and uint8.  Inputs
 * LiteRT refuses at run time (a zero divisor, a negative int32 exponent) set the status word. */
#ifndef EM_MATH_BINARY_H
#define EM_MATH_BINARY_H
#include <math.h>
#include <stdint.h>
#include "em_params.h"
#include "em_requant.h"
#include "em_activations.h"
#include "em_elementwise.h"

/* Function codes (the `kind` slot). */
enum { EM_MATH_DIV, EM_MATH_FLOOR_DIV, EM_MATH_FLOOR_MOD, EM_MATH_POW, EM_MATH_SQUARED_DIFFERENCE, EM_MATH_PRELU,
       EM_MATH_BINARY_KINDS };

/* em_math_binary_f32 / _i32, layout EM_MATH_BINARY: the binary pointers, then status (int32, 1 after a refused
 * input); the binary integers, then kind, int_min, int_max (int32 DIV's fused activation range); the binary
 * floats (float DIV's fused activation range) */
enum { EM_MATH_BINARY_P_STATUS = EM_BINARY_P_OUTPUT + 1, EM_MATH_BINARY_P_COUNT };
enum { EM_MATH_BINARY_I_KIND = EM_BINARY_I_COUNT, EM_MATH_BINARY_I_INT_MIN, EM_MATH_BINARY_I_INT_MAX,
       EM_MATH_BINARY_I_COUNT };
enum { EM_MATH_BINARY_F_COUNT = EM_BINARY_F_COUNT };

/* em_math_binary_int8 / _uint8, layout EM_MATH_BINARY_Q: the binary pointers, then status; the binary integers,
 * then kind, zero points of input 1, input 2 and output, multiplier / shift of input 1, of input 2 and of the
 * output, left shift (SQUARED_DIFFERENCE), act_min, act_max, rounding mode.  DIV uses only the output
 * multiplier; PRELU the input-1 one for x >= 0 and the input-2 one for x * alpha. */
enum { EM_MATH_BINARY_Q_P_STATUS = EM_BINARY_P_OUTPUT + 1, EM_MATH_BINARY_Q_P_COUNT };
enum { EM_MATH_BINARY_Q_I_KIND = EM_BINARY_I_COUNT, EM_MATH_BINARY_Q_I_ZP1, EM_MATH_BINARY_Q_I_ZP2,
       EM_MATH_BINARY_Q_I_OUT_ZP, EM_MATH_BINARY_Q_I_MULT1, EM_MATH_BINARY_Q_I_SHIFT1, EM_MATH_BINARY_Q_I_MULT2,
       EM_MATH_BINARY_Q_I_SHIFT2, EM_MATH_BINARY_Q_I_OUT_MULT, EM_MATH_BINARY_Q_I_OUT_SHIFT,
       EM_MATH_BINARY_Q_I_LEFT_SHIFT, EM_MATH_BINARY_Q_I_ACT_MIN, EM_MATH_BINARY_Q_I_ACT_MAX, EM_MATH_BINARY_Q_I_MODE,
       EM_MATH_BINARY_Q_I_COUNT };
enum { EM_MATH_BINARY_Q_F_COUNT = 0 };

/* double -> int32 as x86's cvttsd2si converts (the reference's static_cast there): out of range -> INT32_MIN */
static inline int32_t em_f64_to_i32_x86(double v) {
    if (!(v >= -2147483648.0 && v < 2147483648.0)) return INT32_MIN;
    return (int32_t)v;
}

/* fmod-based floor modulo as reference_ops::FloorMod: the truncated remainder moved to the divisor's sign */
static inline float em_floor_mod_f32(float a, float b) {
    const float r = fmodf(a, b);
    return (r != 0.0f && ((b < 0.0f) != (r < 0.0f))) ? r + b : r;
}

static void em_math_binary_f32(const em_params* p) {
    int32_t* status = (int32_t*)p->ptr[EM_MATH_BINARY_P_STATUS];
    const float lo = p->f[EM_BINARY_F_ACT_MIN], hi = p->f[EM_BINARY_F_ACT_MAX];
    int32_t bad = 0;
    switch ((int)p->i[EM_MATH_BINARY_I_KIND]) {
    case EM_MATH_DIV: { EM_BINARY_LOOP(float, float, { y[o] = em_clamp_f32(a / b, lo, hi); }) break; }
    case EM_MATH_FLOOR_DIV: {
        EM_BINARY_LOOP(float, float, {
            bad |= b == 0.0f;
            y[o] = (float)floor((double)a / (double)b);
        })
        break;
    }
    case EM_MATH_FLOOR_MOD: { EM_BINARY_LOOP(float, float, { y[o] = em_floor_mod_f32(a, b); }) break; }
    case EM_MATH_POW: { EM_BINARY_LOOP(float, float, { y[o] = powf(a, b); }) break; }
    case EM_MATH_SQUARED_DIFFERENCE: { EM_BINARY_LOOP(float, float, { const float d = a - b; y[o] = d * d; }) break; }
    case EM_MATH_PRELU: { EM_BINARY_LOOP(float, float, { y[o] = a >= 0.0f ? a : a * b; }) break; }
    }
    *status = bad;
}

/* int32: the reference's two's-complement results where C leaves overflow undefined (INT32_MIN / -1 wraps,
 * INT32_MIN % -1 is 0, a double result outside int32 converts to INT32_MIN as on x86). */
static void em_math_binary_i32(const em_params* p) {
    int32_t* status = (int32_t*)p->ptr[EM_MATH_BINARY_P_STATUS];
    const int32_t lo = (int32_t)p->i[EM_MATH_BINARY_I_INT_MIN], hi = (int32_t)p->i[EM_MATH_BINARY_I_INT_MAX];
    int32_t bad = 0;
    switch ((int)p->i[EM_MATH_BINARY_I_KIND]) {
    case EM_MATH_DIV: {
        EM_BINARY_LOOP(int32_t, int32_t, {
            int32_t q = 0;
            if (b == 0) bad = 1;
            else q = (b == -1) ? (int32_t)(0u - (uint32_t)a) : a / b;
            y[o] = em_clamp_i32(q, lo, hi);
        })
        break;
    }
    case EM_MATH_FLOOR_DIV: {
        EM_BINARY_LOOP(int32_t, int32_t, {
            bad |= b == 0;
            y[o] = b == 0 ? 0 : em_f64_to_i32_x86(floor((double)a / (double)b));
        })
        break;
    }
    case EM_MATH_FLOOR_MOD: {
        EM_BINARY_LOOP(int32_t, int32_t, {
            int32_t r = 0;
            if (b == 0) bad = 1;
            else if (b != -1) r = a % b;
            y[o] = (r != 0 && ((b < 0) != (r < 0))) ? (int32_t)((uint32_t)r + (uint32_t)b) : r;
        })
        break;
    }
    case EM_MATH_POW: {
        EM_BINARY_LOOP(int32_t, int32_t, {
            bad |= b < 0;
            y[o] = em_f64_to_i32_x86(pow((double)a, (double)b));
        })
        break;
    }
    case EM_MATH_SQUARED_DIFFERENCE: {
        EM_BINARY_LOOP(int32_t, int32_t, {
            const uint32_t d = (uint32_t)a - (uint32_t)b;
            y[o] = (int32_t)(d * d);
        })
        break;
    }
    }
    *status = bad;
}

/* gemmlowp's RoundingDivideByPOT as LiteRT's x86 build runs it when the exponent exceeds 31 (the quantized DIV
 * of a tiny numerator): the mask is taken from 64 bits and the shift count modulo 32. */
static inline int32_t em_rdbpot_wide(int32_t x, int exponent) {
    if (exponent <= 31) return em_rounding_divide_by_pot(x, exponent);
    const int32_t mask = (int32_t)((exponent < 63 ? (1LL << exponent) : INT64_MIN) - 1);
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> (exponent & 31)) + ((x & mask) > threshold ? 1 : 0);
}

/* reference_ops::DivElementwise for one pair of zero-point-free values (b != 0): the reciprocal of b in fixed
 * point, the numerator shifted to use its headroom, the product rescaled to the output.  out_shift <= 23 (checked
 * at load) keeps the final shift a right shift. */
static inline int32_t em_div_q(int32_t a, int32_t b, int32_t out_mult, int out_shift, int mode) {
    if (b < 0) {
        a = -a;
        b = -b;
    }
    int recip_shift;
    const int32_t inv = em_fp_get_reciprocal(b, 31, &recip_shift);
    const int headroom = __builtin_clrsb(a);
    const int total = out_shift - recip_shift - headroom;
    if (mode == EM_ROUND_SINGLE) {
        /* a shift of 31 (a = 0 or -1) leaves the product itself, as the x86 build computes it */
        const int32_t quotient = headroom == 31 ? (int32_t)((uint32_t)a * (uint32_t)inv)
                                                : em_mbqm_single(a, inv, headroom);
        return em_mbqm_single(quotient, out_mult, total < -31 ? -31 : total);
    }
    const int32_t quotient = em_srdhm((int32_t)((uint32_t)a << headroom), inv);
    return em_rdbpot_wide(em_srdhm(quotient, out_mult), -total);
}

#define EM_MATH_BINARY_Q(NAME, T)                                                                              \
static void NAME(const em_params* p) {                                                                         \
    const int64_t* q = p->i;                                                                                   \
    int32_t* status = (int32_t*)p->ptr[EM_MATH_BINARY_Q_P_STATUS];                                             \
    const int32_t zp1 = (int32_t)q[EM_MATH_BINARY_Q_I_ZP1], zp2 = (int32_t)q[EM_MATH_BINARY_Q_I_ZP2];          \
    const int32_t ozp = (int32_t)q[EM_MATH_BINARY_Q_I_OUT_ZP];                                                 \
    const int32_t m1 = (int32_t)q[EM_MATH_BINARY_Q_I_MULT1], m2 = (int32_t)q[EM_MATH_BINARY_Q_I_MULT2];        \
    const int sh1 = (int)q[EM_MATH_BINARY_Q_I_SHIFT1], sh2 = (int)q[EM_MATH_BINARY_Q_I_SHIFT2];                \
    const int32_t mo = (int32_t)q[EM_MATH_BINARY_Q_I_OUT_MULT];                                                \
    const int so = (int)q[EM_MATH_BINARY_Q_I_OUT_SHIFT], ls = (int)q[EM_MATH_BINARY_Q_I_LEFT_SHIFT];           \
    const int32_t amin = (int32_t)q[EM_MATH_BINARY_Q_I_ACT_MIN], amax = (int32_t)q[EM_MATH_BINARY_Q_I_ACT_MAX]; \
    const int mode = (int)q[EM_MATH_BINARY_Q_I_MODE];                                                          \
    int32_t bad = 0;                                                                                           \
    switch ((int)q[EM_MATH_BINARY_Q_I_KIND]) {                                                                 \
    case EM_MATH_DIV: {                                                                                        \
        EM_BINARY_LOOP(T, T, {                                                                                 \
            const int32_t d = (int32_t)b - zp2;                                                                \
            bad |= d == 0;                                                                                     \
            const int32_t r = d == 0 ? ozp : em_div_q((int32_t)a - zp1, d, mo, so, mode) + ozp;                \
            y[o] = (T)em_clamp_i32(r, amin, amax);                                                             \
        })                                                                                                     \
        break;                                                                                                 \
    }                                                                                                          \
    case EM_MATH_SQUARED_DIFFERENCE: {                                                                         \
        EM_BINARY_LOOP(T, T, {                                                                                 \
            const int32_t v1 = em_mbqm(((int32_t)a - zp1) * (1 << ls), m1, sh1, mode);                          \
            const int32_t v2 = em_mbqm(((int32_t)b - zp2) * (1 << ls), m2, sh2, mode);                          \
            const int32_t r = em_mbqm((v1 - v2) * (v1 - v2), mo, so, mode) + ozp;                              \
            y[o] = (T)em_clamp_i32(r, amin, amax);                                                             \
        })                                                                                                     \
        break;                                                                                                 \
    }                                                                                                          \
    case EM_MATH_PRELU: {                                                                                      \
        EM_BINARY_LOOP(T, T, {                                                                                 \
            const int32_t x = (int32_t)a - zp1;                                                                \
            const int32_t r = (x >= 0 ? em_mbqm(x, m1, sh1, mode) : em_mbqm(x * ((int32_t)b - zp2), m2, sh2, mode)) \
                              + ozp;                                                                           \
            y[o] = (T)em_clamp_i32(r, amin, amax);                                                             \
        })                                                                                                     \
        break;                                                                                                 \
    }                                                                                                          \
    }                                                                                                          \
    *status = bad;                                                                                             \
}
EM_MATH_BINARY_Q(em_math_binary_int8, int8_t)
EM_MATH_BINARY_Q(em_math_binary_uint8, uint8_t)
#undef EM_MATH_BINARY_Q
#endif
