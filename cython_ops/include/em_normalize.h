/* Row-wise normalizations over the last axis: LOG_SOFTMAX and L2_NORMALIZATION, float32 and int8 (the gemmlowp
 * fixed-point arithmetic of LiteRT's reference_integer_ops::LogSoftmax and L2Normalization), and the uint8
 * L2_NORMALIZATION of reference_ops. */
#ifndef EM_NORMALIZE_H
#define EM_NORMALIZE_H
#include <math.h>
#include <stdint.h>
#include "em_params.h"
#include "em_requant.h"
#include "em_activations.h"
#include "em_math_unary.h"

/* layout EM_NORMALIZE: ptr: input, output; i: rows, depth, input zero point, input multiplier, input left
 * shift, reverse multiplier, reverse shift (LOG_SOFTMAX: the input scaling undone), diff_min, rounding mode */
enum { EM_NORMALIZE_P_INPUT, EM_NORMALIZE_P_OUTPUT, EM_NORMALIZE_P_COUNT };
enum { EM_NORMALIZE_I_ROWS, EM_NORMALIZE_I_DEPTH, EM_NORMALIZE_I_IN_ZP, EM_NORMALIZE_I_IN_MULT,
       EM_NORMALIZE_I_IN_SHIFT, EM_NORMALIZE_I_REVERSE_MULT, EM_NORMALIZE_I_REVERSE_SHIFT, EM_NORMALIZE_I_DIFF_MIN,
       EM_NORMALIZE_I_MODE, EM_NORMALIZE_I_COUNT };
enum { EM_NORMALIZE_F_COUNT = 0 };

static void em_log_softmax_f32(const em_params* p) {
    const float* x = (const float*)p->ptr[EM_NORMALIZE_P_INPUT];
    float* y = (float*)p->ptr[EM_NORMALIZE_P_OUTPUT];
    const int64_t rows = p->i[EM_NORMALIZE_I_ROWS], depth = p->i[EM_NORMALIZE_I_DEPTH];
    for (int64_t r = 0; r < rows; r++, x += depth, y += depth) {
        float max = -INFINITY;
        for (int64_t c = 0; c < depth; c++) max = x[c] > max ? x[c] : max;
        float sum = 0.0f;
        for (int64_t c = 0; c < depth; c++) sum += expf(x[c] - max);
        const float log_sum = logf(sum);
        for (int64_t c = 0; c < depth; c++) y[c] = x[c] - max - log_sum;
    }
}

static void em_l2_norm_f32(const em_params* p) {
    const float* x = (const float*)p->ptr[EM_NORMALIZE_P_INPUT];
    float* y = (float*)p->ptr[EM_NORMALIZE_P_OUTPUT];
    const int64_t rows = p->i[EM_NORMALIZE_I_ROWS], depth = p->i[EM_NORMALIZE_I_DEPTH];
    for (int64_t r = 0; r < rows; r++, x += depth, y += depth) {
        float squares = 0.0f;
        for (int64_t c = 0; c < depth; c++) squares += x[c] * x[c];
        float norm = sqrtf(squares);
        norm = norm < 1e-6f ? 1e-6f : norm;          /* LiteRT's epsilon */
        for (int64_t c = 0; c < depth; c++) y[c] = x[c] / norm;
    }
}

/* saturating int32 add / sub (SaturatingAddNonGemmlowp / SaturatingSub) */
static inline int32_t em_sat_add_i32(int32_t a, int32_t b) {
    const int64_t s = (int64_t)a + b;
    return s > INT32_MAX ? INT32_MAX : (s < INT32_MIN ? INT32_MIN : (int32_t)s);
}
static inline int32_t em_sat_sub_i32(int32_t a, int32_t b) {
    const int64_t s = (int64_t)a - b;
    return s > INT32_MAX ? INT32_MAX : (s < INT32_MIN ? INT32_MIN : (int32_t)s);
}

/* log(x) for x >= 1 given with input_bits integer bits, in output_bits integer bits (tflite's
 * log_x_for_x_greater_than_or_equal_to_1_impl: the input split into a power of two and a mantissa near 1 whose
 * log is a rational approximation, accumulated with one more integer bit). */
static inline int32_t em_fp_log_x_ge_1(int32_t x, int input_bits, int output_bits) {
    const int accum_bits = output_bits + 1;
    const int32_t log_2 = 1488522236, sqrt_sqrt_half = 1805811301, sqrt_half = 1518500250;
    const int32_t one_quarter = 536870912;
    const int32_t alpha_n = 117049297, alpha_d = 127690142, alpha_i = 1057819769, alpha_f = 638450708;
    const int32_t shifted_quarter = em_fp_rescale(one_quarter, 0, accum_bits);

    const int z_a_headroom_plus_1 = em_clz_u32((uint32_t)x);
    const int32_t r_a_tmp = em_fp_sat_round_mul_pot(x, z_a_headroom_plus_1 - 1);
    const int32_t r_a_raw = em_fp_sat_round_mul_pot(em_fp_mul(r_a_tmp, sqrt_half), 1);
    const int32_t z_a_pow_2_adj = em_sat_add_i32(
        em_fp_sat_round_mul_pot(input_bits - z_a_headroom_plus_1, 31 - accum_bits), shifted_quarter);

    const int32_t z_b = em_fp_mul(x, sqrt_half);
    const int z_b_headroom = em_clz_u32((uint32_t)z_b) - 1;
    const int32_t r_b_raw = em_fp_sat_round_mul_pot(x, z_b_headroom);
    const int32_t z_b_pow_2_adj = em_sat_sub_i32(
        em_fp_sat_round_mul_pot(input_bits - z_b_headroom, 31 - accum_bits), shifted_quarter);

    const int32_t r = r_a_raw < r_b_raw ? r_a_raw : r_b_raw;
    const int32_t z_pow_2_adj = z_a_pow_2_adj > z_b_pow_2_adj ? z_a_pow_2_adj : z_b_pow_2_adj;

    const int32_t pp = em_fp_rounding_half_sum(r, sqrt_sqrt_half);
    int32_t q = em_fp_sub(r, sqrt_sqrt_half);
    q = em_fp_add(q, q);
    const int32_t common_sq = em_fp_mul(q, q);
    const int32_t num = em_fp_add(em_fp_mul(q, r), em_fp_mul(em_fp_mul(q, common_sq), alpha_n));
    const int32_t denom_minus_one = em_fp_add(
        em_fp_mul(pp, em_fp_add(em_fp_add(alpha_i, q), em_fp_mul(alpha_d, common_sq))), em_fp_mul(alpha_f, q));
    const int32_t recip_denom = em_fp_one_over_one_plus_x_for_x_in_0_1(denom_minus_one);
    const int32_t num_scaled = em_fp_rescale(num, 0, accum_bits);
    return em_fp_rescale(em_fp_add(em_fp_mul(z_pow_2_adj, log_2), em_fp_mul(num_scaled, recip_denom)),
                         accum_bits, output_bits);
}

/* LOG_SOFTMAX int8 (output scale 16/256, zero point 127): differences to the row maximum in Q5.26, their
 * exponentials summed in Q12.19, the log of the sum in Q5.26 subtracted, rescaled to Q4 with the zero point. */
static void em_log_softmax_int8(const em_params* p) {
    const int8_t* x = (const int8_t*)p->ptr[EM_NORMALIZE_P_INPUT];
    int8_t* y = (int8_t*)p->ptr[EM_NORMALIZE_P_OUTPUT];
    const int64_t* d = p->i;
    const int64_t rows = d[EM_NORMALIZE_I_ROWS], depth = d[EM_NORMALIZE_I_DEPTH];
    const int32_t in_mult = (int32_t)d[EM_NORMALIZE_I_IN_MULT], rev_mult = (int32_t)d[EM_NORMALIZE_I_REVERSE_MULT];
    const int in_shift = (int)d[EM_NORMALIZE_I_IN_SHIFT], rev_shift = (int)d[EM_NORMALIZE_I_REVERSE_SHIFT];
    const int32_t diff_min = (int32_t)d[EM_NORMALIZE_I_DIFF_MIN];
    const int mode = (int)d[EM_NORMALIZE_I_MODE];
    for (int64_t r = 0; r < rows; r++, x += depth, y += depth) {
        int32_t max = -128;
        for (int64_t c = 0; c < depth; c++) max = x[c] > max ? x[c] : max;
        int32_t sum_q12 = 0;
        for (int64_t c = 0; c < depth; c++) {
            const int32_t diff = (int32_t)x[c] - max;
            if (diff >= diff_min) {
                const int32_t diff_q5 = em_mbqm(diff, in_mult, in_shift, mode);
                sum_q12 = em_fp_add(sum_q12, em_fp_rescale(em_fp_exp_on_negative_values(diff_q5, 5), 0, 12));
            }
        }
        const int32_t log_sum_q5 = em_fp_log_x_ge_1(sum_q12, 12, 5);
        const int32_t shifted = (int32_t)((uint32_t)log_sum_q5 + 0x80000000u);
        const int32_t scaled = em_mbqm(shifted, rev_mult, rev_shift, mode);
        const int32_t adjusted_diff_min = diff_min - 1 > scaled ? diff_min - 1 : scaled;
        for (int64_t c = 0; c < depth; c++) {
            const int32_t diff = (int32_t)x[c] - max;
            if (diff > adjusted_diff_min) {
                const int32_t diff_q5 = em_mbqm(diff, in_mult, in_shift, mode);
                const int32_t v = em_rounding_divide_by_pot(em_fp_sub(diff_q5, log_sum_q5), 31 - 5 - 4) + 127;
                y[c] = (int8_t)em_clamp_i32(v, -128, 127);
            } else {
                y[c] = -128;
            }
        }
    }
}

/* L2_NORMALIZATION int8 (output scale 1/128, zero point 0): 1 / sqrt(sum of squares) as a fixed-point
 * multiplier, applied to each value with the 7 bits of the output scale folded into its shift. */
static void em_l2_norm_int8(const em_params* p) {
    const int8_t* x = (const int8_t*)p->ptr[EM_NORMALIZE_P_INPUT];
    int8_t* y = (int8_t*)p->ptr[EM_NORMALIZE_P_OUTPUT];
    const int64_t rows = p->i[EM_NORMALIZE_I_ROWS], depth = p->i[EM_NORMALIZE_I_DEPTH];
    const int32_t zp = (int32_t)p->i[EM_NORMALIZE_I_IN_ZP];
    const int mode = (int)p->i[EM_NORMALIZE_I_MODE];
    for (int64_t r = 0; r < rows; r++, x += depth, y += depth) {
        uint32_t acc = 0;                     /* int32 in the reference; wraps alike */
        for (int64_t c = 0; c < depth; c++) acc += (uint32_t)(((int32_t)x[c] - zp) * ((int32_t)x[c] - zp));
        int32_t mult;
        int shift;
        em_inv_sqrt_multiplier((int32_t)acc, -1, &mult, &shift);
        for (int64_t c = 0; c < depth; c++)
            y[c] = (int8_t)em_clamp_i32(em_mbqm((int32_t)x[c] - zp, mult, shift + 7, mode), -128, 127);
    }
}

/* L2_NORMALIZATION uint8 (output scale 1/128, zero point 128), reference_ops::L2Normalization: 128 x the
 * difference scaled by the inverse norm, a right shift only. */
static void em_l2_norm_uint8(const em_params* p) {
    const uint8_t* x = (const uint8_t*)p->ptr[EM_NORMALIZE_P_INPUT];
    uint8_t* y = (uint8_t*)p->ptr[EM_NORMALIZE_P_OUTPUT];
    const int64_t rows = p->i[EM_NORMALIZE_I_ROWS], depth = p->i[EM_NORMALIZE_I_DEPTH];
    const int32_t zp = (int32_t)p->i[EM_NORMALIZE_I_IN_ZP];
    const int mode = (int)p->i[EM_NORMALIZE_I_MODE];
    for (int64_t r = 0; r < rows; r++, x += depth, y += depth) {
        uint32_t acc = 0;
        for (int64_t c = 0; c < depth; c++) acc += (uint32_t)(((int32_t)x[c] - zp) * ((int32_t)x[c] - zp));
        int32_t mult;
        int shift;
        em_inv_sqrt_multiplier((int32_t)acc, -1, &mult, &shift);
        for (int64_t c = 0; c < depth; c++)
            y[c] = (uint8_t)em_clamp_i32(128 + em_mbqm(128 * ((int32_t)x[c] - zp), mult, shift, mode), 0, 255);
    }
}
#endif
