/* Integer requantization shared by every int8 kernel.
 *
 * Formulas follow the TFLite reference arithmetic (see shared NUMERICS.md):
 * SaturatingRoundingDoublingHighMul + RoundingDivideByPOT ("double rounding",
 * the default) or the TFLITE_SINGLE_ROUNDING variant.  ONNX float requantization
 * lives here too so that one kernel serves both formats.
 */
#ifndef EM_REQUANT_H
#define EM_REQUANT_H

#include <stdint.h>
#include <math.h>

/* Requantization modes of the int8 GEMM / conv / depthwise kernels (one kernel, several arithmetics). */
#define EM_ROUND_DOUBLE 0          /* TFLite MultiplyByQuantizedMultiplier, double rounding (default) */
#define EM_ROUND_SINGLE 1          /* TFLITE_SINGLE_ROUNDING */
#define EM_REQUANT_DOUBLE_SCALE 2  /* round(acc * scale) in double, ties away: LiteRT reference FULLY_CONNECTED */
#define EM_REQUANT_FLOAT 3         /* onnxruntime / MLAS: (float)acc * scale in float32, ties to even */

static inline int32_t em_srdhm(int32_t a, int32_t b) {
    if (a == b && a == INT32_MIN) return INT32_MAX;
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    /* C division truncates toward zero, as the reference requires. */
    return (int32_t)((ab + nudge) / (1LL << 31));
}

static inline int32_t em_rounding_divide_by_pot(int32_t x, int exponent) {
    /* |x| / 2^32 <= 1/2: the rounded quotient is 0 (-1 for the tie of INT32_MIN, rounded away from zero).
     * SOFTMAX over more than ~500 elements near the maximum reaches this; LiteRT's reference aborts there,
     * and an int32 shift by 32 or more is undefined in C (x86 took the count mod 32: output 127, not -128). */
    if (exponent >= 32) return (exponent == 32 && x == INT32_MIN) ? -1 : 0;
    int32_t mask = (int32_t)((1LL << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static inline int32_t em_mbqm_double(int32_t x, int32_t m, int shift) {
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    /* the reference shifts in int32 arithmetic (wrapping on overflow) */
    int32_t shifted = (int32_t)((uint32_t)x << left);
    return em_rounding_divide_by_pot(em_srdhm(shifted, m), right);
}

static inline int32_t em_mbqm_single(int32_t x, int32_t m, int shift) {
    int total = 31 - shift;
    int64_t round = (int64_t)1 << (total - 1);
    return (int32_t)(((int64_t)x * (int64_t)m + round) >> total);
}

/* MultiplyByQuantizedMultiplier in the mode chosen at load. */
static inline int32_t em_mbqm(int32_t x, int32_t m, int shift, int mode) {
    return mode == EM_ROUND_SINGLE ? em_mbqm_single(x, m, shift) : em_mbqm_double(x, m, shift);
}

/* onnxruntime's requantization of one int32 sum (MLAS MlasRequantizeOutput): float product, rounded to
 * nearest even.  Clamping the float to +-1e9 first keeps the conversion defined; the caller adds the zero
 * point and clamps to the activation range, which equals MLAS's clamp-before-round since bounds are integers. */
static inline int32_t em_requant_float(int32_t acc, float scale) {
    float f = (float)acc * scale;
    f = f < -1e9f ? -1e9f : (f > 1e9f ? 1e9f : f);
    return (int32_t)nearbyintf(f);
}

static inline int32_t em_clamp_i32(int32_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

static inline float em_clamp_f32(float v, float lo, float hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

/* LiteRT's MultiplyByQuantizedMultiplier of an int64 sum (the same in both rounding builds): the multiplier rounded
 * to 16 bits, then one rounding shift (16x8 conv / FC / TRANSPOSE_CONV, quantized REDUCE_PROD). */
static inline int32_t em_mbqm64(int64_t x, int32_t m, int shift) {
    const int64_t reduced = m < 0x7FFF0000 ? ((int64_t)m + (1 << 15)) >> 16 : 0x7FFF;
    const int total = 15 - shift;
    return (int32_t)((x * reduced + ((int64_t)1 << (total - 1))) >> total);
}


#if defined(__aarch64__)
#include <arm_neon.h>
/* em_mbqm on four lanes (modes EM_ROUND_DOUBLE / EM_ROUND_SINGLE, shifts in [-31, 30]: em_mbqm_neon_applies),
 * the same bits: SQRDMULH is SaturatingRoundingDoublingHighMul (both round the product's 2^31 tie alike),
 * RoundingDivideByPOT is SRSHL after taking 1 from negative values (gemmlowp's fix-up: ties away from zero), and
 * the single-rounding mode one SRSHL of the 64-bit product. */
static inline int32x4_t em_mbqm_neon(int32x4_t v, int32x4_t mult, int32x4_t shift, int mode) {
    if (mode == EM_ROUND_DOUBLE) {
        const int32x4_t neg_right = vminq_s32(shift, vdupq_n_s32(0));
        v = vqrdmulhq_s32(vshlq_s32(v, vmaxq_s32(shift, vdupq_n_s32(0))), mult);
        return vrshlq_s32(vqaddq_s32(v, vshrq_n_s32(vandq_s32(v, neg_right), 31)), neg_right);
    }
    const int32x4_t neg_total = vsubq_s32(shift, vdupq_n_s32(31));
    const int64x2_t lo = vrshlq_s64(vmull_s32(vget_low_s32(v), vget_low_s32(mult)), vmovl_s32(vget_low_s32(neg_total)));
    const int64x2_t hi = vrshlq_s64(vmull_high_s32(v, mult), vmovl_high_s32(neg_total));
    return vcombine_s32(vmovn_s64(lo), vmovn_s64(hi));
}
static inline int em_mbqm_neon_applies(int mode, int32_t shift) {
    return (mode == EM_ROUND_DOUBLE || mode == EM_ROUND_SINGLE) && shift >= -31 && shift <= 30;
}
#endif
#endif
