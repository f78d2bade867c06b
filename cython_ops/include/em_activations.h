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
#include "em_isa.h"

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
#if defined(__GNUC__)
    return x == 0 ? 32 : __builtin_clz(x);     /* one instruction, not a loop of up to 31 shifts */
#else
    int n = 0;
    if (x == 0) return 32;
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
#endif
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
 * sum_of_exps.  A row of two values is a function of its one difference d: the 512 bytes after those 512 int32
 * (EM_SOFTMAX_PAIRS) hold the larger value's output for each d, then the smaller one's, computed by the table
 * kernel itself on the rows (127, 127 - d); only for a SOFTMAX over rows of two (with_pairs; else zeros: the
 * other depths never read them, and the 256 rows cost half the table's build).  Built once at load by the
 * kernel's own arithmetic. */
#define EM_SOFTMAX_TABLE_INT32 640       /* 512 int32 + 2 x 256 int8 */
#define EM_SOFTMAX_PAIRS 512             /* the int32 offset of the pair outputs */

static inline void em_softmax_int8_by_table(const int8_t* in, int8_t* out, int64_t rows, int64_t depth,
                                            const int32_t* table);

static inline void em_softmax_int8_table(int32_t* table, int32_t input_multiplier, int32_t input_left_shift,
                                         int32_t diff_min, int32_t mode, int32_t with_pairs) {
    int32_t d;
    int8_t pair_in[2 * 256], pair_out[2 * 256];
    int8_t* pairs = (int8_t*)(table + EM_SOFTMAX_PAIRS);
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
    if (!with_pairs) {
        memset(pairs, 0, 2 * 256);
        return;
    }
    for (d = 0; d < 256; ++d) {
        pair_in[2 * d] = 127;
        pair_in[2 * d + 1] = (int8_t)(127 - d);
    }
    for (d = 0; d < 256; ++d) {
        em_softmax_int8_by_table(pair_in + 2 * d, pair_out + 2 * d, 1, 2, table);
        pairs[d] = pair_out[2 * d];
        pairs[256 + d] = pair_out[2 * d + 1];
    }
}

/* Rows of two: the larger value's output and the smaller one's, looked up by their difference */
static inline void em_softmax_int8_pairs(const int8_t* in, int8_t* out, int64_t rows, const int8_t* pairs) {
    for (int64_t r = 0; r < rows; ++r) {
        const int32_t a = in[2 * r], b = in[2 * r + 1];
        const int32_t d = a >= b ? a - b : b - a;
        const int8_t hi = pairs[d], lo = pairs[256 + d];
        out[2 * r] = a >= b ? hi : lo;
        out[2 * r + 1] = a >= b ? lo : hi;
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

/* Vector bodies of em_softmax_int8_by_table (x86; the scalar one above is the reference they are tested against):
 * rows of two by the pair table, rows of 3 .. 16 values 16 (AVX2: 8) rows at a time, longer rows along the row.
 * SaturatingRoundingDoublingHighMul in int32 lanes: for int32 a, b the reference's (a*b + nudge) / 2^31,
 * truncated, equals floor((a*b + 2^30) / 2^31) for either sign of a*b, i.e. bits 31..62 of the 64-bit
 * a*b + 2^30; only INT32_MIN * INT32_MIN saturates.  The sums of exps wrap in int32 lanes as the scalar uint32 sum
 * does: the order of the additions cannot change a sum modulo 2^32. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(EM_SCALAR_ONLY)
#include <immintrin.h>
/* rows whose exp sums include a zero (the vector reciprocal's one undefined case): the scalar reciprocal, row by row */
static inline void em_sm_scalar_reciprocals(const int32_t* sum, int nb, int32_t* scale, int32_t* exponent) {
    for (int r = 0; r < nb; r++) {
        int bits;
        scale[r] = em_fp_get_reciprocal(sum[r], 12, &bits);
        exponent[r] = bits + 31 - 8;
    }
}

#define EM_SM_AVX2 __attribute__((target("avx2")))
#define EM_SM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

/* SaturatingRoundingDoublingHighMul in lanes (the identity above) */
EM_SM_AVX2 static inline __m256i em_srdhm_x8(__m256i a, __m256i b) {
    const __m256i half = _mm256_set1_epi64x(1LL << 30), min = _mm256_set1_epi32(INT32_MIN);
    const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(a, b), half), 31);
    const __m256i odd = _mm256_slli_epi64(_mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(a, 32),
                                                                            _mm256_srli_epi64(b, 32)), half), 1);
    const __m256i sat = _mm256_and_si256(_mm256_cmpeq_epi32(a, min), _mm256_cmpeq_epi32(b, min));
    return _mm256_blendv_epi8(_mm256_blend_epi32(even, odd, 0xAA), _mm256_set1_epi32(INT32_MAX), sat);
}

EM_SM_AVX512 static inline __m512i em_srdhm_x16(__m512i a, __m512i b) {
    const __m512i half = _mm512_set1_epi64(1LL << 30), min = _mm512_set1_epi32(INT32_MIN);
    const __m512i even = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(a, b), half), 31);
    const __m512i odd = _mm512_slli_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(a, 32),
                                                                            _mm512_srli_epi64(b, 32)), half), 1);
    return _mm512_mask_mov_epi32(_mm512_mask_blend_epi32(0xAAAA, even, odd),
                                 _mm512_cmpeq_epi32_mask(a, min) & _mm512_cmpeq_epi32_mask(b, min),
                                 _mm512_set1_epi32(INT32_MAX));
}

/* the output of one row's elements from their exps: (SRDHM(scale, e) rounded down by 2^exponent) - 128, clamped */
EM_SM_AVX2 static inline __m256i em_sm_output_avx2(__m256i e, __m256i scale, int exponent) {
    const __m256i min = _mm256_set1_epi32(INT32_MIN);
    __m256i x = em_srdhm_x8(scale, e);
    if (exponent >= 32) {       /* em_rounding_divide_by_pot: 0, or -1 for INT32_MIN at exactly 32 */
        x = exponent == 32 ? _mm256_cmpeq_epi32(x, min) : _mm256_setzero_si256();
    } else {
        const __m256i mask = _mm256_set1_epi32((int32_t)((1LL << exponent) - 1));
        const __m256i rem = _mm256_and_si256(x, mask);
        /* threshold (mask >> 1) + (x < 0): x < 0 adds one, i.e. subtracts the all-ones compare */
        const __m256i thr = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_cmpgt_epi32(_mm256_setzero_si256(), x));
        x = _mm256_sub_epi32(_mm256_srai_epi32(x, exponent), _mm256_cmpgt_epi32(rem, thr));
    }
    return _mm256_sub_epi32(x, _mm256_set1_epi32(128));
}

/* the exps of 8 values by scalar loads: measured faster than an 8-lane vpgatherdd here (the AVX-512 body gathers:
 * 16 lanes per gather paid off) */
EM_SM_AVX2 static inline __m256i em_sm_lookup8(const int32_t* table, const int8_t* x, int8_t max_in_row) {
    return _mm256_setr_epi32(table[(uint8_t)(max_in_row - x[0])], table[(uint8_t)(max_in_row - x[1])],
                             table[(uint8_t)(max_in_row - x[2])], table[(uint8_t)(max_in_row - x[3])],
                             table[(uint8_t)(max_in_row - x[4])], table[(uint8_t)(max_in_row - x[5])],
                             table[(uint8_t)(max_in_row - x[6])], table[(uint8_t)(max_in_row - x[7])]);
}

/* 8 int32 (any value) as 8 int8, saturated: the clamp to [-128, 127] */
EM_SM_AVX2 static inline void em_sm_store8_avx2(int8_t* dst, __m256i v) {
    const __m256i w = _mm256_packs_epi16(_mm256_packs_epi32(v, v), v);
    _mm_storel_epi64((__m128i*)dst, _mm_unpacklo_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
}


EM_SM_AVX512 static inline __m512i em_sm_output_avx512(__m512i e, __m512i scale, int exponent) {
    const __m512i min = _mm512_set1_epi32(INT32_MIN);
    __m512i x = em_srdhm_x16(scale, e);
    if (exponent >= 32) {
        x = exponent == 32 ? _mm512_maskz_mov_epi32(_mm512_cmpeq_epi32_mask(x, min), _mm512_set1_epi32(-1))
                           : _mm512_setzero_si512();
    } else {
        const __m512i mask = _mm512_set1_epi32((int32_t)((1LL << exponent) - 1));
        const __m512i rem = _mm512_and_si512(x, mask);
        const __m512i thr = _mm512_mask_add_epi32(_mm512_srli_epi32(mask, 1),
                                                  _mm512_cmplt_epi32_mask(x, _mm512_setzero_si512()),
                                                  _mm512_srli_epi32(mask, 1), _mm512_set1_epi32(1));
        x = _mm512_srai_epi32(x, exponent);
        x = _mm512_mask_add_epi32(x, _mm512_cmpgt_epi32_mask(rem, thr), x, _mm512_set1_epi32(1));
    }
    return _mm512_sub_epi32(x, _mm512_set1_epi32(128));
}


/* ---- rows of 3 .. 16 values, 16 rows at a time (AVX2: 8): each row's maximum and sum of exps in scalar code, the
 * 16 reciprocals in vector lanes (GetReciprocal: the leading zeros by a binary search, the Newton-Raphson steps in
 * lanes), then the block's outputs 16 values at a time, each lane reading its row's maximum, scale and exponent
 * through a lane -> row index.  Sums of at most 16 addends of at most 2^19 stay in (0, 2^24): the exponents
 * (35 - leading zeros) stay below 32. */
#define EM_SM_BLOCK_DEPTH 16

/* lane -> row of a block of `lanes` rows of `depth` values, read `lanes` values at a time: idx[j] = j / depth */
static inline void em_sm_block_rows(int32_t* idx, int64_t depth, int lanes) {
    int32_t row = 0, col = 0;
    for (int64_t j = 0; j < depth * lanes; j++) {
        idx[j] = row;
        if (++col == depth) { col = 0; ++row; }
    }
}

/* the rows' maxima and sums of exps, as the scalar kernel computes them */
static inline void em_sm_block_sums(const int8_t* x, int64_t depth, int lanes, const int32_t* table, int32_t* max,
                                    int32_t* sum) {
    for (int r = 0; r < lanes; r++, x += depth) {
        int8_t m = INT8_MIN;
        uint32_t s = 0;
        for (int64_t c = 0; c < depth; c++) m = x[c] > m ? x[c] : m;
        for (int64_t c = 0; c < depth; c++) s += (uint32_t)table[256 + (uint8_t)(m - x[c])];
        max[r] = m;
        sum[r] = (int32_t)s;
    }
}


/* SaturatingRoundingMultiplyByPOT with a positive exponent k */
EM_SM_AVX512 static inline __m512i em_sat_shl_x16(__m512i x, int k) {
    const __m512i thr = _mm512_set1_epi32((int32_t)((1LL << (31 - k)) - 1));
    __m512i r = _mm512_slli_epi32(x, (unsigned)k);
    r = _mm512_mask_mov_epi32(r, _mm512_cmpgt_epi32_mask(x, thr), _mm512_set1_epi32(INT32_MAX));
    return _mm512_mask_mov_epi32(r, _mm512_cmplt_epi32_mask(x, _mm512_sub_epi32(_mm512_setzero_si512(), thr)),
                                 _mm512_set1_epi32(INT32_MIN));
}

/* GetReciprocal(sum, 12) of positive sums: the Q0.31 scale and num_bits_over_unit + 31 - 8 */
EM_SM_AVX512 static inline void em_sm_reciprocal_x16(__m512i x, __m512i* scale, __m512i* exponent) {
    const __m512i zero = _mm512_setzero_si512();
    __m512i clz = zero;
    for (int b = 16; b >= 1; b >>= 1) {      /* shift up while the top b bits are clear */
        const __mmask16 top_clear = _mm512_cmpeq_epi32_mask(_mm512_srli_epi32(x, 32 - b), zero);
        x = _mm512_mask_mov_epi32(x, top_clear, _mm512_slli_epi32(x, (unsigned)b));
        clz = _mm512_mask_add_epi32(clz, top_clear, clz, _mm512_set1_epi32(b));
    }
    {
        const __m512i shifted = _mm512_xor_si512(x, _mm512_set1_epi32(INT32_MIN));    /* x - 2^31, in [0, 2^31) */
        const __m512i half_den = _mm512_add_epi32(_mm512_srli_epi32(shifted, 1), _mm512_set1_epi32(1 << 30));
        __m512i y = _mm512_add_epi32(_mm512_set1_epi32(1515870810),
                                     em_srdhm_x16(half_den, _mm512_set1_epi32(-1010580540)));
        for (int i = 0; i < 3; i++) {
            const __m512i one_minus = _mm512_sub_epi32(_mm512_set1_epi32(1 << 29), em_srdhm_x16(half_den, y));
            y = _mm512_add_epi32(y, em_sat_shl_x16(em_srdhm_x16(y, one_minus), 2));
        }
        *scale = em_sat_shl_x16(y, 1);
        *exponent = _mm512_sub_epi32(_mm512_set1_epi32(12 + 31 - 8), clz);
    }
}

EM_SM_AVX512 static void em_softmax_int8_short_rows_avx512(const int8_t* in, int8_t* out, int64_t rows,
                                                           int64_t depth, const int32_t* table) {
    int32_t idx[16 * EM_SM_BLOCK_DEPTH], max[16], sum[16];
    int64_t r = 0;
    em_sm_block_rows(idx, depth, 16);
    for (; r + 16 <= rows; r += 16) {
        const int8_t* x = in + r * depth;
        int8_t* y = out + r * depth;
        __m512i scale, exponent;
        em_sm_block_sums(x, depth, 16, table, max, sum);
        em_sm_reciprocal_x16(_mm512_loadu_si512(sum), &scale, &exponent);
        {
            const __m512i vmax = _mm512_loadu_si512(max), one = _mm512_set1_epi32(1), zero = _mm512_setzero_si512();
            for (int64_t c = 0; c < depth; c++) {
                const __m512i row = _mm512_loadu_si512(idx + 16 * c);
                const __m512i d = _mm512_sub_epi32(_mm512_permutexvar_epi32(row, vmax),
                                                   _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(x + 16 * c))));
                const __m512i v = em_srdhm_x16(_mm512_permutexvar_epi32(row, scale),
                                               _mm512_i32gather_epi32(d, table, 4));
                const __m512i e = _mm512_permutexvar_epi32(row, exponent);       /* 23 .. 26 */
                const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, e), one);
                const __m512i half_mask = _mm512_srli_epi32(mask, 1);
                const __m512i thr = _mm512_mask_add_epi32(half_mask, _mm512_cmplt_epi32_mask(v, zero), half_mask, one);
                __m512i q = _mm512_srav_epi32(v, e);
                q = _mm512_mask_add_epi32(q, _mm512_cmpgt_epi32_mask(_mm512_and_si512(v, mask), thr), q, one);
                _mm_storeu_si128((__m128i*)(y + 16 * c),
                                 _mm512_cvtsepi32_epi8(_mm512_sub_epi32(q, _mm512_set1_epi32(128))));
            }
        }
    }
    em_softmax_int8_by_table(in + r * depth, out + r * depth, rows - r, depth, table);
}


EM_SM_AVX2 static inline __m256i em_sat_shl_x8(__m256i x, int k) {
    const __m256i thr = _mm256_set1_epi32((int32_t)((1LL << (31 - k)) - 1));
    __m256i r = _mm256_slli_epi32(x, k);
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32(INT32_MAX), _mm256_cmpgt_epi32(x, thr));
    return _mm256_blendv_epi8(r, _mm256_set1_epi32(INT32_MIN),
                              _mm256_cmpgt_epi32(_mm256_sub_epi32(_mm256_setzero_si256(), thr), x));
}

EM_SM_AVX2 static inline void em_sm_reciprocal_x8(__m256i x, __m256i* scale, __m256i* exponent) {
    const __m256i zero = _mm256_setzero_si256();
    __m256i clz = zero;
    for (int b = 16; b >= 1; b >>= 1) {
        const __m256i top_clear = _mm256_cmpeq_epi32(_mm256_srli_epi32(x, 32 - b), zero);
        x = _mm256_blendv_epi8(x, _mm256_slli_epi32(x, b), top_clear);
        clz = _mm256_sub_epi32(clz, _mm256_and_si256(top_clear, _mm256_set1_epi32(-b)));
    }
    {
        const __m256i shifted = _mm256_xor_si256(x, _mm256_set1_epi32(INT32_MIN));
        const __m256i half_den = _mm256_add_epi32(_mm256_srli_epi32(shifted, 1), _mm256_set1_epi32(1 << 30));
        __m256i y = _mm256_add_epi32(_mm256_set1_epi32(1515870810),
                                     em_srdhm_x8(half_den, _mm256_set1_epi32(-1010580540)));
        for (int i = 0; i < 3; i++) {
            const __m256i one_minus = _mm256_sub_epi32(_mm256_set1_epi32(1 << 29), em_srdhm_x8(half_den, y));
            y = _mm256_add_epi32(y, em_sat_shl_x8(em_srdhm_x8(y, one_minus), 2));
        }
        *scale = em_sat_shl_x8(y, 1);
        *exponent = _mm256_sub_epi32(_mm256_set1_epi32(12 + 31 - 8), clz);
    }
}

EM_SM_AVX2 static void em_softmax_int8_short_rows_avx2(const int8_t* in, int8_t* out, int64_t rows, int64_t depth,
                                                       const int32_t* table) {
    int32_t idx[8 * EM_SM_BLOCK_DEPTH], max[8], sum[8];
    int64_t r = 0;
    em_sm_block_rows(idx, depth, 8);
    for (; r + 8 <= rows; r += 8) {
        const int8_t* x = in + r * depth;
        int8_t* y = out + r * depth;
        __m256i scale, exponent;
        em_sm_block_sums(x, depth, 8, table, max, sum);
        em_sm_reciprocal_x8(_mm256_loadu_si256((const __m256i*)sum), &scale, &exponent);
        {
            const __m256i one = _mm256_set1_epi32(1), zero = _mm256_setzero_si256();
            for (int64_t c = 0; c < depth; c++) {
                const int32_t* row_of = idx + 8 * c;
                const int8_t* xc = x + 8 * c;
                const __m256i row = _mm256_loadu_si256((const __m256i*)row_of);
                const __m256i ev = _mm256_setr_epi32(
                    table[(uint8_t)(max[row_of[0]] - xc[0])], table[(uint8_t)(max[row_of[1]] - xc[1])],
                    table[(uint8_t)(max[row_of[2]] - xc[2])], table[(uint8_t)(max[row_of[3]] - xc[3])],
                    table[(uint8_t)(max[row_of[4]] - xc[4])], table[(uint8_t)(max[row_of[5]] - xc[5])],
                    table[(uint8_t)(max[row_of[6]] - xc[6])], table[(uint8_t)(max[row_of[7]] - xc[7])]);
                const __m256i v = em_srdhm_x8(_mm256_permutevar8x32_epi32(scale, row), ev);
                const __m256i e = _mm256_permutevar8x32_epi32(exponent, row);       /* 23 .. 26 */
                const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, e), one);
                const __m256i thr = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_cmpgt_epi32(zero, v));
                const __m256i q = _mm256_sub_epi32(_mm256_srav_epi32(v, e),
                                                   _mm256_cmpgt_epi32(_mm256_and_si256(v, mask), thr));
                em_sm_store8_avx2(y + 8 * c, _mm256_sub_epi32(q, _mm256_set1_epi32(128)));
            }
        }
    }
    em_softmax_int8_by_table(in + r * depth, out + r * depth, rows - r, depth, table);
}

/* ---- rows of 8 (AVX-512: 16) or more values: each row's maximum and sum of exps in vector lanes, the
 * reciprocals of 16 (AVX2: 8) rows at once, then each row's outputs in lanes.  A sum that wrapped to exactly 0
 * (8192 or more values at the maximum) has no reciprocal in lanes: such a block takes the scalar one. */
EM_SM_AVX512 static inline void em_sm_row_sums_avx512(const int8_t* x, int64_t depth, const int32_t* table,
                                                      int32_t* max, int32_t* sum) {
    __m512i m = _mm512_set1_epi8(INT8_MIN), acc = _mm512_setzero_si512();
    int64_t c = 0;
    for (; c + 64 <= depth; c += 64) m = _mm512_max_epi8(m, _mm512_loadu_si512((const void*)(x + c)));
    if (c < depth)
        m = _mm512_mask_max_epi8(m, (__mmask64)((1ULL << (depth - c)) - 1), m,
                                 _mm512_maskz_loadu_epi8((__mmask64)((1ULL << (depth - c)) - 1), x + c));
    {
        __m256i h = _mm256_max_epi8(_mm512_castsi512_si256(m), _mm512_extracti64x4_epi64(m, 1));
        __m128i q = _mm_max_epi8(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        q = _mm_max_epi8(q, _mm_srli_si128(q, 8));
        q = _mm_max_epi8(q, _mm_srli_si128(q, 4));
        q = _mm_max_epi8(q, _mm_srli_si128(q, 2));
        q = _mm_max_epi8(q, _mm_srli_si128(q, 1));
        *max = (int8_t)_mm_cvtsi128_si32(q);
    }
    m = _mm512_set1_epi32(*max);
    for (c = 0; c < depth; c += 16) {
        const __mmask16 k = c + 16 <= depth ? (__mmask16)0xFFFF : (__mmask16)((1u << (depth - c)) - 1);
        const __m512i d = _mm512_sub_epi32(m, _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, x + c)));
        acc = _mm512_mask_add_epi32(acc, k, acc, _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), k, d,
                                                                            table + 256, 4));
    }
    *sum = _mm512_reduce_add_epi32(acc);
}

EM_SM_AVX512 static void em_softmax_int8_by_table_avx512(const int8_t* in, int8_t* out, int64_t rows,
                                                         int64_t depth, const int32_t* table) {
    int32_t max[16], sum[16], scale[16], exponent[16];
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        const int nb = rows - r0 < 16 ? (int)(rows - r0) : 16;
        for (int r = 0; r < 16; r++) sum[r] = 1 << 19;      /* lanes past the last row: any positive sum */
        for (int r = 0; r < nb; r++) em_sm_row_sums_avx512(in + (r0 + r) * depth, depth, table, max + r, sum + r);
        {
            const __m512i sums = _mm512_loadu_si512(sum);
            __m512i vs, ve;
            em_sm_reciprocal_x16(sums, &vs, &ve);
            _mm512_storeu_si512(scale, vs);
            _mm512_storeu_si512(exponent, ve);
            if (_mm512_cmpeq_epi32_mask(sums, _mm512_setzero_si512()))
                em_sm_scalar_reciprocals(sum, nb, scale, exponent);
        }
        for (int r = 0; r < nb; r++) {
            const int8_t* x = in + (r0 + r) * depth;
            int8_t* y = out + (r0 + r) * depth;
            const __m512i vmax = _mm512_set1_epi32(max[r]), vs = _mm512_set1_epi32(scale[r]);
            for (int64_t c = 0; c < depth; c += 16) {
                const __mmask16 k = c + 16 <= depth ? (__mmask16)0xFFFF : (__mmask16)((1u << (depth - c)) - 1);
                const __m512i d = _mm512_sub_epi32(vmax, _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, x + c)));
                const __m512i e = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), k, d, table, 4);
                _mm_mask_storeu_epi8(y + c, k, _mm512_cvtsepi32_epi8(em_sm_output_avx512(e, vs, exponent[r])));
            }
        }
    }
}

EM_SM_AVX2 static void em_softmax_int8_by_table_avx2(const int8_t* in, int8_t* out, int64_t rows, int64_t depth,
                                                     const int32_t* table) {
    int32_t max[8], sum[8], scale[8], exponent[8];
    for (int64_t r0 = 0; r0 < rows; r0 += 8) {
        const int nb = rows - r0 < 8 ? (int)(rows - r0) : 8;
        for (int r = 0; r < 8; r++) sum[r] = 1 << 19;
        for (int r = 0; r < nb; r++) {
            const int8_t* x = in + (r0 + r) * depth;
            __m256i m = _mm256_set1_epi8(INT8_MIN);
            int64_t c = 0;
            int8_t max_in_row;
            uint32_t sum_of_exps = 0;
            for (; c + 32 <= depth; c += 32) m = _mm256_max_epi8(m, _mm256_loadu_si256((const __m256i*)(x + c)));
            {
                __m128i h = _mm_max_epi8(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
                h = _mm_max_epi8(h, _mm_srli_si128(h, 8));
                h = _mm_max_epi8(h, _mm_srli_si128(h, 4));
                h = _mm_max_epi8(h, _mm_srli_si128(h, 2));
                h = _mm_max_epi8(h, _mm_srli_si128(h, 1));
                max_in_row = (int8_t)_mm_cvtsi128_si32(h);
            }
            for (; c < depth; ++c) max_in_row = x[c] > max_in_row ? x[c] : max_in_row;
            {   /* the exps of max - x (0 .. 255) gathered 8 at a time; the uint32 sum wraps alike in any order */
                const __m256i vmax = _mm256_set1_epi32(max_in_row);
                __m256i acc = _mm256_setzero_si256();
                for (c = 0; c + 8 <= depth; c += 8) {
                    const __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(x + c)));
                    const __m256i d = _mm256_sub_epi32(vmax, v);
                    acc = _mm256_add_epi32(acc, _mm256_i32gather_epi32((const int*)(table + 256), d, 4));
                }
                __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
                h = _mm_add_epi32(h, _mm_srli_si128(h, 8));
                h = _mm_add_epi32(h, _mm_srli_si128(h, 4));
                sum_of_exps = (uint32_t)_mm_cvtsi128_si32(h);
            }
            for (; c < depth; ++c) sum_of_exps += (uint32_t)table[256 + (uint8_t)(max_in_row - x[c])];
            max[r] = max_in_row;
            sum[r] = (int32_t)sum_of_exps;
        }
        {
            const __m256i sums = _mm256_loadu_si256((const __m256i*)sum);
            __m256i vs, ve;
            em_sm_reciprocal_x8(sums, &vs, &ve);
            _mm256_storeu_si256((__m256i*)scale, vs);
            _mm256_storeu_si256((__m256i*)exponent, ve);
            if (_mm256_movemask_epi8(_mm256_cmpeq_epi32(sums, _mm256_setzero_si256())))
                em_sm_scalar_reciprocals(sum, nb, scale, exponent);
        }
        for (int r = 0; r < nb; r++) {
            const int8_t* x = in + (r0 + r) * depth;
            int8_t* y = out + (r0 + r) * depth;
            const int8_t max_in_row = (int8_t)max[r];
            const __m256i vs = _mm256_set1_epi32(scale[r]);
            int64_t c = 0;
            for (; c + 8 <= depth; c += 8)
                em_sm_store8_avx2(y + c, em_sm_output_avx2(em_sm_lookup8(table, x + c, max_in_row), vs, exponent[r]));
            for (; c < depth; ++c) {        /* the scalar kernel's last step */
                const int32_t e = table[(uint8_t)(max_in_row - x[c])];
                const int32_t unsat = em_rounding_divide_by_pot(em_fp_mul(scale[r], e), exponent[r]);
                y[c] = (int8_t)em_clamp_i32(unsat - 128, INT8_MIN, INT8_MAX);
            }
        }
    }
}
#endif

/* SOFTMAX by table on the best path: rows of two by their difference, long rows in vector lanes */
static inline void em_softmax_int8_lut(const int8_t* in, int8_t* out, int64_t rows, int64_t depth,
                                       const int32_t* table) {
#if defined(__GNUC__)
    /* a model's last SOFTMAX finds its 2.5 KB table evicted by the layers before it: ask for every line at once
     * rather than wait for the misses one gather at a time */
    for (int k = 0; k < EM_SOFTMAX_TABLE_INT32; k += 16) __builtin_prefetch(table + k);
#endif
    if (depth == 2) {
        em_softmax_int8_pairs(in, out, rows, (const int8_t*)(table + EM_SOFTMAX_PAIRS));
        return;
    }
#if defined(__x86_64__) && defined(__GNUC__) && !defined(EM_SCALAR_ONLY)
    const int isa = em_isa();
    if (depth >= 3 && depth <= EM_SM_BLOCK_DEPTH && isa >= EM_ISA_AVX2) {   /* short rows, many of them */
        if (isa >= EM_ISA_AVX512 && rows >= 16) {
            em_softmax_int8_short_rows_avx512(in, out, rows, depth, table);
            return;
        }
        if (rows >= 8) {
            em_softmax_int8_short_rows_avx2(in, out, rows, depth, table);
            return;
        }
    }
    if (isa >= EM_ISA_AVX512 && depth >= 16) {
        em_softmax_int8_by_table_avx512(in, out, rows, depth, table);
        return;
    }
    if (isa >= EM_ISA_AVX2 && depth >= 8) {
        em_softmax_int8_by_table_avx2(in, out, rows, depth, table);
        return;
    }
#endif
    em_softmax_int8_by_table(in, out, rows, depth, table);
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

#if defined(__x86_64__) && defined(__GNUC__) && !defined(EM_SCALAR_ONLY)
/* em_hard_swish_int8 on 16 int16 lanes at a time, the same operations in the same order: vpmulhrs is the int16
 * SaturatingRoundingDoublingHighMul (floor((ab + 2^14) / 2^15) equals the reference's half-away-from-zero nudge
 * for every product, and -32768 * -32768 cannot occur: |hires| <= 255 * 128 and the multipliers are positive);
 * the saturating shifts are saturating doublings; the reluish value r' = (r + 2^15) >> 1 is >= 0, so the
 * truncating doubling high product r' p / 2^15 is sign(p) floor(|p| 2r' / 2^16) (vpmulhuw, 2r' < 2^16), and
 * the output shift rounds that magnitude ((m + 2^(e-1)) >> e < 2^15: m < 2^15, e >= 1) before the sign goes back.
 * Parameters outside what the vector form covers (a right shift beyond 15, a left one beyond 16) take the scalar
 * loop; prepare (activations.py) also compares this kernel with the scalar one on all 256 inputs before using it. */
__attribute__((target("avx2"))) static inline __m256i em_rdbp_i16_x16(__m256i x, int exponent) {
    const __m128i e = _mm_cvtsi32_si128(exponent);
    const __m256i mask = _mm256_set1_epi16((int16_t)((1 << exponent) - 1));
    const __m256i threshold = _mm256_sub_epi16(_mm256_srli_epi16(mask, 1), _mm256_srai_epi16(x, 15));
    const __m256i up = _mm256_cmpgt_epi16(_mm256_and_si256(x, mask), threshold);
    return _mm256_sub_epi16(_mm256_sra_epi16(x, e), up);
}

/* The reluish value's exponent, a loop constant: > 0 (that many saturating doublings around the product), 0, a
 * right shift of 1 .. 7 (|r| <= 32640, so (r + 2^(e-1) - [r < 0]) >> e cannot wrap), or a longer one. */
enum { EM_HS_LEFT, EM_HS_NONE, EM_HS_RIGHT_SHORT, EM_HS_RIGHT_LONG };

typedef struct {
    __m256i in_zp, out_zp, reluish_m, output_m, reluish_half, out_half;
    __m128i reluish_shift, out_shift;
    int reluish_exponent;
} em_hard_swish_consts;

__attribute__((target("avx2"))) static inline __attribute__((always_inline)) __m256i em_hard_swish_x16(
        __m256i x16, const em_hard_swish_consts* c, const int kind) {
    const __m256i hires = _mm256_slli_epi16(_mm256_sub_epi16(x16, c->in_zp), 7);
    const __m256i pre = _mm256_mulhrs_epi16(hires, c->output_m);
    __m256i r = hires;
    if (kind == EM_HS_LEFT)
        for (int k = 1; k < c->reluish_exponent; k++) r = _mm256_adds_epi16(r, r);
    r = _mm256_mulhrs_epi16(r, c->reluish_m);
    if (kind == EM_HS_LEFT) r = _mm256_adds_epi16(r, r);
    if (kind == EM_HS_RIGHT_SHORT)
        r = _mm256_sra_epi16(_mm256_add_epi16(_mm256_add_epi16(r, c->reluish_half), _mm256_srai_epi16(r, 15)),
                             c->reluish_shift);
    if (kind == EM_HS_RIGHT_LONG) r = em_rdbp_i16_x16(r, -c->reluish_exponent);
    const __m256i twice = _mm256_and_si256(_mm256_xor_si256(r, _mm256_set1_epi16((int16_t)0x8000)),
                                           _mm256_set1_epi16((int16_t)0xFFFE));
    /* RoundingDivideByPOT rounds half away from zero: on the magnitude, then the sign of pre (that of the product) */
    __m256i mag = _mm256_mulhi_epu16(_mm256_abs_epi16(pre), twice);
    mag = _mm256_srl_epi16(_mm256_add_epi16(mag, c->out_half), c->out_shift);
    return _mm256_add_epi16(_mm256_sign_epi16(mag, pre), c->out_zp);   /* wraps as the reference's int16 sum does */
}

/* 32 bytes at a time; returns how many were done (the scalar loop takes the rest). */
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) int64_t em_hard_swish_avx2_run(
        const int8_t* in, int8_t* out, int64_t n, const em_hard_swish_consts* c, const int kind) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i lo = em_hard_swish_x16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(in + i))), c, kind);
        const __m256i hi = em_hard_swish_x16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(in + i + 16))), c,
                                             kind);
        _mm256_storeu_si256((__m256i*)(out + i), _mm256_permute4x64_epi64(_mm256_packs_epi16(lo, hi), 0xD8));
    }
    return i;
}

__attribute__((target("avx2"))) static void em_hard_swish_int8_avx2(const int8_t* in, int8_t* out, int64_t n,
        int32_t input_zero_point, int32_t output_zero_point, int32_t reluish_multiplier_fixedpoint_int16,
        int32_t reluish_multiplier_exponent, int32_t output_multiplier_fixedpoint_int16,
        int32_t output_multiplier_exponent) {
    int64_t i = 0;
    const int out_shift = -output_multiplier_exponent, e = reluish_multiplier_exponent;
    if (out_shift >= 0 && out_shift <= 15 && e >= -15 && e <= 17
        && reluish_multiplier_fixedpoint_int16 >= 0 && output_multiplier_fixedpoint_int16 >= 0) {
        const em_hard_swish_consts c = {
            _mm256_set1_epi16((int16_t)input_zero_point), _mm256_set1_epi16((int16_t)output_zero_point),
            _mm256_set1_epi16((int16_t)reluish_multiplier_fixedpoint_int16),
            _mm256_set1_epi16((int16_t)output_multiplier_fixedpoint_int16),
            _mm256_set1_epi16((int16_t)(e < 0 ? 1 << (-e - 1) : 0)),
            _mm256_set1_epi16((int16_t)(out_shift ? 1 << (out_shift - 1) : 0)),
            _mm_cvtsi32_si128(e < 0 ? -e : 0), _mm_cvtsi32_si128(out_shift), e};
        if (e > 0) i = em_hard_swish_avx2_run(in, out, n, &c, EM_HS_LEFT);
        else if (e == 0) i = em_hard_swish_avx2_run(in, out, n, &c, EM_HS_NONE);
        else if (e >= -7) i = em_hard_swish_avx2_run(in, out, n, &c, EM_HS_RIGHT_SHORT);
        else i = em_hard_swish_avx2_run(in, out, n, &c, EM_HS_RIGHT_LONG);
    }
    em_hard_swish_int8(in + i, out + i, n - i, input_zero_point, output_zero_point,
                       reluish_multiplier_fixedpoint_int16, reluish_multiplier_exponent,
                       output_multiplier_fixedpoint_int16, output_multiplier_exponent);
}
#endif

#endif /* EM_ACTIVATIONS_H */
