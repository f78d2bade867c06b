/* int8 activation kernels: LOGISTIC, TANH, SOFTMAX, HARD_SWISH.
 *
 * Target: bit-exact agreement with LiteRT's reference kernels
 * (OpResolverType.BUILTIN_REF) and with TFLite Micro's reference kernels.
 *
 * Which arithmetic LiteRT BUILTIN_REF actually runs for int8 (activations.cc,
 * kernel_type kReference):
 *   LOGISTIC  -> a 256-entry lookup table filled at Prepare time in *float*
 *                (x -> 1 / (1 + expf(-x)), roundf, clamp): em_logistic_int8_lut_init
 *                + em_lut_int8_apply.  NOT the gemmlowp fixed-point kernel.
 *   TANH      -> same, with tanhf: em_tanh_int8_lut_init + em_lut_int8_apply.
 *   SOFTMAX   -> reference_ops::Softmax, gemmlowp fixed point (Q5.26 diffs, Q12.19
 *                accumulator): em_softmax_int8.
 *   HARD_SWISH-> reference_ops::HardSwish, int16 fixed point: em_hard_swish_int8.
 * em_logistic_int8 / em_tanh_int8 implement reference_integer_ops::Logistic/Tanh
 * (gemmlowp fixed point, Q4.27 input), which is what TFLite Micro runs.
 *
 * The LUT builders call the C library's expf/tanhf, as LiteRT does (it imports
 * expf/tanhf from glibc); the table is exact only when both use the same libm.
 * Do not build with -ffast-math (it may replace expf/tanhf or reassociate the
 * float expressions below).
 *
 * All fixed-point helpers below are written from the formulas of gemmlowp's
 * fixedpoint.h (FixedPoint<int32, IntegerBits>, raw value = real * 2^(31-IntegerBits)).
 * Integer additions that may wrap are done in uint32 so that they are defined
 * in C and wrap like the reference on two's-complement hardware.
 */
#ifndef EM_ACTIVATIONS_H
#define EM_ACTIVATIONS_H

#include <stdint.h>
#include <math.h>
#include <string.h>

#include "em_requant.h"

/* ------------------------------------------------------------------------ */
/* Wrapping int32 helpers                                                    */
/* ------------------------------------------------------------------------ */

static inline int32_t em_fp_add(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int32_t em_fp_sub(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

static inline int32_t em_fp_neg(int32_t a) {
    return (int32_t)(0u - (uint32_t)a);
}

/* Fixed-point product: integer bits add up; raw op is SRDHM. */
static inline int32_t em_fp_mul(int32_t a, int32_t b) {
    return em_srdhm(a, b);
}

/* Rounded (a + b) / 2, ties away from zero (RoundingHalfSum). */
static inline int32_t em_fp_rounding_half_sum(int32_t a, int32_t b) {
    int64_t sum = (int64_t)a + (int64_t)b;
    int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/* Multiply by 2^exponent: saturating left shift for exponent > 0,
 * rounding right shift (RoundingDivideByPOT) for exponent < 0. */
static inline int32_t em_fp_sat_round_mul_pot(int32_t x, int exponent) {
    if (exponent == 0) return x;
    if (exponent < 0) return em_rounding_divide_by_pot(x, -exponent);
    {
        int32_t threshold = (int32_t)((1LL << (31 - exponent)) - 1);
        if (x > threshold) return INT32_MAX;
        if (x < -threshold) return INT32_MIN;
        return (int32_t)((uint32_t)x << exponent);
    }
}

/* Rescale a raw value from src_bits to dst_bits integer bits. */
static inline int32_t em_fp_rescale(int32_t x, int src_bits, int dst_bits) {
    return em_fp_sat_round_mul_pot(x, src_bits - dst_bits);
}

static inline int em_clz_u32(uint32_t x) {
    int n = 0;
    if (x == 0) return 32;
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* gemmlowp transcendental functions                                         */
/* ------------------------------------------------------------------------ */

#define EM_FP_ONE_Q0 INT32_MAX /* FixedPoint<int32,0>::One() */

/* exp(a) for a in [-1/4, 0), Q0.31 in and out.  Taylor expansion around -1/8. */
static inline int32_t em_fp_exp_on_interval_neg_quarter_0(int32_t a) {
    const int32_t exp_minus_one_eighth = 1895147668; /* exp(-1/8) in Q0.31 */
    const int32_t one_third = 715827883;             /* 1/3 in Q0.31 */
    int32_t x = em_fp_add(a, 1 << 28);               /* a + 1/8 */
    int32_t x2 = em_fp_mul(x, x);
    int32_t x3 = em_fp_mul(x2, x);
    int32_t x4 = em_fp_mul(x2, x2);
    int32_t x4_over_4 = em_fp_sat_round_mul_pot(x4, -2);
    int32_t poly = em_fp_sat_round_mul_pot(
        em_fp_add(em_fp_mul(em_fp_add(x4_over_4, x3), one_third), x2), -1);
    return em_fp_add(exp_minus_one_eighth,
                     em_fp_mul(exp_minus_one_eighth, em_fp_add(x, poly)));
}

/* exp(a) for a <= 0; a has `integer_bits` integer bits, result is Q0.31. */
static inline int32_t em_fp_exp_on_negative_values(int32_t a, int integer_bits) {
    const int frac_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (frac_bits - 2);
    const int32_t mask = one_quarter - 1;
    /* Multipliers exp(-2^k) in Q0.31 for k = -2 .. 4. */
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308,
                                      39332535,   720401,     242};
    int32_t a_mod_q_minus_q = em_fp_sub(a & mask, one_quarter);
    int32_t result = em_fp_exp_on_interval_neg_quarter_0(
        em_fp_rescale(a_mod_q_minus_q, integer_bits, 0));
    int32_t remainder = em_fp_sub(a_mod_q_minus_q, a);
    int k;
    for (k = -2; k <= 4; ++k) {
        if (integer_bits > k) {
            int shift = frac_bits + k;
            if (remainder & (int32_t)((uint32_t)1 << shift)) {
                result = em_fp_mul(result, barrel[k + 2]);
            }
        }
    }
    if (integer_bits > 5) {
        int32_t clamp = -((int32_t)1 << (36 - integer_bits)); /* -32.0 */
        if (a < clamp) result = 0;
    }
    if (a == 0) result = EM_FP_ONE_Q0;
    return result;
}

/* Newton-Raphson reciprocal iteration shared by the two functions below.
 * Input: half_denominator in Q0.31; returns x ~ 1/half_denominator in Q2.29. */
static inline int32_t em_fp_newton_reciprocal_q2(int32_t half_denominator) {
    const int32_t c48_over_17 = 1515870810;      /* Q2.29 */
    const int32_t cneg32_over_17 = -1010580540;  /* Q2.29 */
    const int32_t one_q2 = (int32_t)1 << 29;
    int32_t x = em_fp_add(c48_over_17, em_fp_mul(half_denominator, cneg32_over_17));
    int i;
    for (i = 0; i < 3; ++i) {
        int32_t hdx = em_fp_mul(half_denominator, x);       /* Q2 */
        int32_t one_minus = em_fp_sub(one_q2, hdx);         /* Q2 */
        int32_t corr = em_fp_rescale(em_fp_mul(x, one_minus), 4, 2);
        x = em_fp_add(x, corr);
    }
    return x;
}

/* 1 / (1 + a) for a in [0, 1), Q0.31 in and out. */
static inline int32_t em_fp_one_over_one_plus_x_for_x_in_0_1(int32_t a) {
    int32_t half_den = em_fp_rounding_half_sum(a, EM_FP_ONE_Q0);
    int32_t x = em_fp_newton_reciprocal_q2(half_den);
    /* x/2 reinterpreted as Q1, then rescaled to Q0. */
    return em_fp_rescale(x, 1, 0);
}

/* (1 - a) / (1 + a) for a in [0, 1), Q0.31 in and out. */
static inline int32_t em_fp_one_minus_x_over_one_plus_x_for_x_in_0_1(int32_t a) {
    int32_t half_den = em_fp_rounding_half_sum(a, EM_FP_ONE_Q0);
    int32_t x = em_fp_newton_reciprocal_q2(half_den);
    return em_fp_rescale(em_fp_sub(x, (int32_t)1 << 29), 2, 0);
}

/* logistic(a), a with `integer_bits` integer bits, result Q0.31. */
static inline int32_t em_fp_logistic(int32_t a, int integer_bits) {
    int32_t abs_a, pos, neg;
    if (a == 0) return (int32_t)1 << 30;
    abs_a = a > 0 ? a : em_fp_neg(a);
    pos = em_fp_one_over_one_plus_x_for_x_in_0_1(
        em_fp_exp_on_negative_values(em_fp_neg(abs_a), integer_bits));
    neg = em_fp_sub(EM_FP_ONE_Q0, pos);
    return a > 0 ? pos : neg;
}

/* tanh(a), a with `integer_bits` integer bits, result Q0.31. */
static inline int32_t em_fp_tanh(int32_t a, int integer_bits) {
    int32_t n, t;
    if (a == 0) return 0;
    n = a < 0 ? a : em_fp_neg(a); /* n <= 0 */
    /* exp(2n): same raw value read with one more integer bit */
    t = em_fp_one_minus_x_over_one_plus_x_for_x_in_0_1(
        em_fp_exp_on_negative_values(n, integer_bits + 1));
    return a < 0 ? em_fp_neg(t) : t;
}

/* 1/x for x with x_integer_digits integer bits: returns a Q0.31 value s and
 * num_bits_over_unit b such that 1/x ~= s * 2^-b (TFLite GetReciprocal). */
static inline int32_t em_fp_get_reciprocal(int32_t x, int x_integer_digits,
                                           int* num_bits_over_unit) {
    int headroom_plus_one = em_clz_u32((uint32_t)x);
    int32_t shifted_minus_one;
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    shifted_minus_one = (int32_t)(((uint32_t)x << headroom_plus_one) - 0x80000000u);
    return em_fp_one_over_one_plus_x_for_x_in_0_1(shifted_minus_one);
}

/* ------------------------------------------------------------------------ */
/* LOGISTIC / TANH, fixed point (reference_integer_ops; TFLite Micro path)   */
/* ------------------------------------------------------------------------ */

/* LOGISTIC int8 -> int8 (output scale 1/256, zp -128),
 * reference_integer_ops::Logistic.  Params from logistic_int8_params().
 * `mode` (EM_ROUND_DOUBLE / EM_ROUND_SINGLE) selects the
 * MultiplyByQuantizedMultiplier variant (appended parameter). */
static inline void em_logistic_int8(const int8_t* in, int8_t* out, int64_t n,
                             int32_t input_zero_point, int32_t input_range_radius,
                             int32_t input_multiplier, int32_t input_left_shift,
                             int32_t mode) {
    int64_t i;
    for (i = 0; i < n; ++i) {
        int32_t x = (int32_t)in[i] - input_zero_point;
        if (x <= -input_range_radius) {
            out[i] = INT8_MIN;
        } else if (x >= input_range_radius) {
            out[i] = INT8_MAX;
        } else {
            int32_t x_q4 = em_mbqm(x, input_multiplier, input_left_shift, mode);
            int32_t y_q0 = em_fp_logistic(x_q4, 4);
            int32_t y = em_rounding_divide_by_pot(y_q0, 31 - 8);
            out[i] = (int8_t)em_clamp_i32(y - 128, INT8_MIN, INT8_MAX);
        }
    }
}

/* TANH int8 -> int8 (output scale 1/128, zp 0), reference_integer_ops::Tanh. */
static inline void em_tanh_int8(const int8_t* in, int8_t* out, int64_t n,
                         int32_t input_zero_point, int32_t input_range_radius,
                         int32_t input_multiplier, int32_t input_left_shift,
                         int32_t mode) {
    int64_t i;
    for (i = 0; i < n; ++i) {
        int32_t x = (int32_t)in[i] - input_zero_point;
        if (x <= -input_range_radius) {
            out[i] = INT8_MIN;
        } else if (x >= input_range_radius) {
            out[i] = INT8_MAX;
        } else {
            int32_t x_q4 = em_mbqm(x, input_multiplier, input_left_shift, mode);
            int32_t y_q0 = em_fp_tanh(x_q4, 4);
            int32_t y = em_rounding_divide_by_pot(y_q0, 31 - 7);
            out[i] = (int8_t)em_clamp_i32(y, INT8_MIN, INT8_MAX);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* LOGISTIC / TANH, lookup table (LiteRT BUILTIN_REF and optimized path)     */
/* ------------------------------------------------------------------------ */

#define EM_LUT_LOGISTIC 0
#define EM_LUT_TANH 1

/* Fill a 256-entry int8 table the way LiteRT's LUTPopulate<int8_t> does:
 * dequantize in float, apply the float function, multiply by 1/output_scale
 * (float), roundf (half away from zero), add the output zero point in float,
 * truncate to int, clamp.  lut is indexed by (uint8_t)input. */
static inline void em_lut_int8_populate(int kind, float input_scale, int32_t input_zero_point,
                                 float output_scale, int32_t output_zero_point,
                                 int8_t* lut) {
    const float inverse_scale = 1.0f / output_scale;
    int32_t v;
    for (v = -128; v <= 127; ++v) {
        volatile float dequantized = input_scale * (float)(v - input_zero_point);
        volatile float transformed;
        float rescaled;
        int32_t q;
        if (kind == EM_LUT_LOGISTIC) {
            volatile float e = expf(-dequantized);
            volatile float den = 1.0f + e;
            transformed = 1.0f / den;
        } else {
            transformed = tanhf(dequantized);
        }
        {
            volatile float prod = transformed * inverse_scale;
            rescaled = roundf(prod);
        }
        q = (int32_t)(rescaled + (float)output_zero_point);
        if (q > 127) q = 127;
        if (q < -128) q = -128;
        lut[(uint8_t)(int8_t)v] = (int8_t)q;
    }
}

/* LOGISTIC table for LiteRT (int8 input; output normally 1/256, -128). */
static inline void em_logistic_int8_lut_init(float input_scale, int32_t input_zero_point,
                                      float output_scale, int32_t output_zero_point,
                                      int8_t* lut) {
    em_lut_int8_populate(EM_LUT_LOGISTIC, input_scale, input_zero_point,
                         output_scale, output_zero_point, lut);
}

/* TANH table for LiteRT (int8 input; output normally 1/128, 0). */
static inline void em_tanh_int8_lut_init(float input_scale, int32_t input_zero_point,
                                  float output_scale, int32_t output_zero_point,
                                  int8_t* lut) {
    em_lut_int8_populate(EM_LUT_TANH, input_scale, input_zero_point,
                         output_scale, output_zero_point, lut);
}

/* Apply a 256-entry table built by the *_lut_init functions. */
static inline void em_lut_int8_apply(const int8_t* in, int8_t* out, int64_t n,
                              const int8_t* lut) {
    int64_t i;
    for (i = 0; i < n; ++i) out[i] = lut[(uint8_t)in[i]];
}

/* ------------------------------------------------------------------------ */
/* SOFTMAX                                                                   */
/* ------------------------------------------------------------------------ */

/* reference_ops::Softmax<int8_t, int8_t>: softmax over the last axis, output
 * scale 1/256, zero point -128.  Params from softmax_int8_params().
 * `mode` selects MultiplyByQuantizedMultiplierGreaterThanOne's rounding
 * (appended parameter; LiteRT's pip build uses EM_ROUND_DOUBLE). */
static inline void em_softmax_int8(const int8_t* in, int8_t* out, int64_t rows, int64_t depth,
                            int32_t input_multiplier, int32_t input_left_shift,
                            int32_t diff_min, int32_t mode) {
    const int kScaledDiffIntegerBits = 5;
    const int kAccumulationIntegerBits = 12;
    int64_t r, c;
    for (r = 0; r < rows; ++r) {
        const int8_t* x = in + r * depth;
        int8_t* y = out + r * depth;
        int32_t max_in_row = INT8_MIN;
        int32_t sum_of_exps = 0;
        int num_bits_over_unit, exponent;
        int32_t shifted_scale;
        for (c = 0; c < depth; ++c)
            if (x[c] > max_in_row) max_in_row = x[c];
        for (c = 0; c < depth; ++c) {
            int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= diff_min) {
                int32_t scaled;
                if (mode == EM_ROUND_SINGLE) {
                    scaled = em_mbqm_single(diff, input_multiplier, input_left_shift);
                } else {
                    scaled = em_srdhm((int32_t)((uint32_t)diff << input_left_shift),
                                      input_multiplier);
                }
                sum_of_exps = em_fp_add(
                    sum_of_exps,
                    em_fp_rescale(em_fp_exp_on_negative_values(scaled, kScaledDiffIntegerBits),
                                  0, kAccumulationIntegerBits));
            }
        }
        shifted_scale = em_fp_get_reciprocal(sum_of_exps, kAccumulationIntegerBits,
                                             &num_bits_over_unit);
        exponent = num_bits_over_unit + 31 - 8;
        for (c = 0; c < depth; ++c) {
            int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= diff_min) {
                int32_t scaled, e, unsat;
                if (mode == EM_ROUND_SINGLE) {
                    scaled = em_mbqm_single(diff, input_multiplier, input_left_shift);
                } else {
                    scaled = em_srdhm((int32_t)((uint32_t)diff << input_left_shift),
                                      input_multiplier);
                }
                e = em_fp_exp_on_negative_values(scaled, kScaledDiffIntegerBits);
                unsat = em_rounding_divide_by_pot(em_fp_mul(shifted_scale, e), exponent);
                y[c] = (int8_t)em_clamp_i32(unsat - 128, INT8_MIN, INT8_MAX);
            } else {
                y[c] = INT8_MIN;
            }
        }
    }
}

/* The same SOFTMAX by table.  Every per-element quantity of em_softmax_int8 depends on the difference
 * d = max_in_row - x (0..255) alone: table[d] = the Q0.31 exp of -d (0 where -d < diff_min: such an element
 * adds nothing to the sum, and 0 * scale gives the same -128 output), table[256 + d] = its Q12.19 addend to
 * sum_of_exps.  Built once at load by the kernel's own arithmetic. */
static inline void em_softmax_int8_table(int32_t* table, int32_t input_multiplier, int32_t input_left_shift,
                                         int32_t diff_min, int32_t mode) {
    int32_t d;
    for (d = 0; d < 256; ++d) {
        int32_t diff = -d, e = 0;
        if (diff >= diff_min) {
            int32_t scaled = mode == EM_ROUND_SINGLE
                ? em_mbqm_single(diff, input_multiplier, input_left_shift)
                : em_srdhm((int32_t)((uint32_t)diff << input_left_shift), input_multiplier);
            e = em_fp_exp_on_negative_values(scaled, 5);
        }
        table[d] = e;
        table[256 + d] = em_fp_rescale(e, 0, 12);
    }
}

static inline void em_softmax_int8_by_table(const int8_t* in, int8_t* out, int64_t rows, int64_t depth,
                                            const int32_t* table) {
    int64_t r, c;
    for (r = 0; r < rows; ++r) {
        const int8_t* x = in + r * depth;
        int8_t* y = out + r * depth;
        int8_t max_in_row = INT8_MIN;
        uint32_t sum_of_exps = 0;            /* wraps as em_fp_add does */
        int num_bits_over_unit, exponent;
        int32_t shifted_scale;
        for (c = 0; c < depth; ++c) max_in_row = x[c] > max_in_row ? x[c] : max_in_row;
        for (c = 0; c < depth; ++c) sum_of_exps += (uint32_t)table[256 + (uint8_t)(max_in_row - x[c])];
        shifted_scale = em_fp_get_reciprocal((int32_t)sum_of_exps, 12, &num_bits_over_unit);
        exponent = num_bits_over_unit + 31 - 8;
        for (c = 0; c < depth; ++c) {
            const int32_t e = table[(uint8_t)(max_in_row - x[c])];
            const int32_t unsat = em_rounding_divide_by_pot(em_fp_mul(shifted_scale, e), exponent);
            y[c] = (int8_t)em_clamp_i32(unsat - 128, INT8_MIN, INT8_MAX);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* HARD_SWISH                                                                */
/* ------------------------------------------------------------------------ */

/* int16 SaturatingRoundingDoublingHighMul (gemmlowp, int16 specialisation). */
static inline int16_t em_srdhm_i16(int16_t a, int16_t b) {
    int32_t ab, nudge;
    if (a == b && a == INT16_MIN) return INT16_MAX;
    ab = (int32_t)a * (int32_t)b;
    nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    return (int16_t)((ab + nudge) / (1 << 15));
}

/* int16 doubling high mul rounding toward zero (ARM SQDMULH). */
static inline int16_t em_sdhm_i16(int16_t a, int16_t b) {
    int32_t ab;
    if (a == b && a == INT16_MIN) return INT16_MAX;
    ab = (int32_t)a * (int32_t)b;
    return (int16_t)(ab / (1 << 15));
}

/* gemmlowp RoundingDivideByPOT instantiated on int16 (mask truncated to int16). */
static inline int16_t em_rdbp_i16(int16_t x, int exponent) {
    int16_t mask = (int16_t)((1LL << exponent) - 1);
    int16_t remainder = (int16_t)(x & mask);
    int16_t threshold = (int16_t)((mask >> 1) + (x < 0 ? 1 : 0));
    return (int16_t)((x >> exponent) + (remainder > threshold ? 1 : 0));
}

static inline int16_t em_sat_left_shift_i16(int16_t v, int amount) {
    int64_t r = (int64_t)v * ((int64_t)1 << amount);
    if (r > INT16_MAX) r = INT16_MAX;
    if (r < INT16_MIN) r = INT16_MIN;
    return (int16_t)r;
}

/* reference_ops::HardSwish<int8_t> (quantized).  Params from
 * hard_swish_int8_params(). */
static inline void em_hard_swish_int8(const int8_t* in, int8_t* out, int64_t n,
                               int32_t input_zero_point, int32_t output_zero_point,
                               int32_t reluish_multiplier_fixedpoint_int16,
                               int32_t reluish_multiplier_exponent,
                               int32_t output_multiplier_fixedpoint_int16,
                               int32_t output_multiplier_exponent) {
    const int16_t reluish_m = (int16_t)reluish_multiplier_fixedpoint_int16;
    const int16_t output_m = (int16_t)output_multiplier_fixedpoint_int16;
    int64_t i;
    for (i = 0; i < n; ++i) {
        int16_t v = (int16_t)((int32_t)in[i] - input_zero_point);
        int16_t hires = (int16_t)(v * (1 << 7));
        int16_t preshift_out = em_srdhm_i16(hires, output_m);
        int16_t reluish = hires;
        int16_t pre, o;
        int32_t o32;
        if (reluish_multiplier_exponent > 0)
            reluish = em_sat_left_shift_i16(reluish, reluish_multiplier_exponent - 1);
        reluish = em_srdhm_i16(reluish, reluish_m);
        if (reluish_multiplier_exponent > 0)
            reluish = em_sat_left_shift_i16(reluish, 1);
        if (reluish_multiplier_exponent < 0)
            reluish = em_rdbp_i16(reluish, -reluish_multiplier_exponent);
        reluish = (int16_t)(((int32_t)reluish + (1 << 15)) >> 1);
        pre = em_sdhm_i16(reluish, preshift_out);
        o = em_rdbp_i16(pre, -output_multiplier_exponent);
        o = (int16_t)((int32_t)o + output_zero_point);
        o32 = o;
        if (o32 > INT8_MAX) o32 = INT8_MAX;
        if (o32 < INT8_MIN) o32 = INT8_MIN;
        out[i] = (int8_t)o32;
    }
}

#endif /* EM_ACTIVATIONS_H */
