/* Plan-step adapters for the int8 activations of em_activations.h.
 * Every int8 op whose output byte depends on the input byte alone: a 256-entry table built at load by the
 * reference arithmetic (layout EM_LUT, looked up by em_lut.h).
 * LOGISTIC / TANH in gemmlowp fixed point (TFLite Micro's arithmetic, layout EM_FIXED_ACT), SOFTMAX
 * (EM_SOFTMAX_INT8), HARD_SWISH (EM_HARD_SWISH).  Every one reads an int8 input and writes an int8 output. */
#ifndef EM_ACTIVATION_STEPS_H
#define EM_ACTIVATION_STEPS_H
#include "em_params.h"
#include "em_activations.h"
#include "em_lut.h"

/* ptr: input, output, table (256 int8); i: n */
enum { EM_LUT_P_INPUT, EM_LUT_P_OUTPUT, EM_LUT_P_TABLE, EM_LUT_P_COUNT };
enum { EM_LUT_I_N, EM_LUT_I_COUNT };
enum { EM_LUT_F_COUNT = 0 };

/* ptr: input, output; i: n, input_zero_point, input_range_radius, input_multiplier, input_left_shift, mode */
enum { EM_FIXED_ACT_P_INPUT, EM_FIXED_ACT_P_OUTPUT, EM_FIXED_ACT_P_COUNT };
enum { EM_FIXED_ACT_I_N, EM_FIXED_ACT_I_IN_ZP, EM_FIXED_ACT_I_IN_RANGE_RADIUS, EM_FIXED_ACT_I_IN_MULT,
       EM_FIXED_ACT_I_IN_LEFT_SHIFT, EM_FIXED_ACT_I_MODE, EM_FIXED_ACT_I_COUNT };
enum { EM_FIXED_ACT_F_COUNT = 0 };

/* ptr: input, output; i: rows, depth, input_multiplier, input_left_shift, diff_min, mode */
enum { EM_SOFTMAX_INT8_P_INPUT, EM_SOFTMAX_INT8_P_OUTPUT, EM_SOFTMAX_INT8_P_COUNT };
enum { EM_SOFTMAX_INT8_I_ROWS, EM_SOFTMAX_INT8_I_DEPTH, EM_SOFTMAX_INT8_I_IN_MULT, EM_SOFTMAX_INT8_I_IN_LEFT_SHIFT,
       EM_SOFTMAX_INT8_I_DIFF_MIN, EM_SOFTMAX_INT8_I_MODE, EM_SOFTMAX_INT8_I_COUNT };
enum { EM_SOFTMAX_INT8_F_COUNT = 0 };

/* SOFTMAX by table: ptr: input, output, table (EM_SOFTMAX_TABLE_INT32 int32 from em_softmax_int8_table); i: rows,
 * depth */
enum { EM_SOFTMAX_LUT_P_INPUT, EM_SOFTMAX_LUT_P_OUTPUT, EM_SOFTMAX_LUT_P_TABLE, EM_SOFTMAX_LUT_P_COUNT };
enum { EM_SOFTMAX_LUT_I_ROWS, EM_SOFTMAX_LUT_I_DEPTH, EM_SOFTMAX_LUT_I_COUNT };
enum { EM_SOFTMAX_LUT_F_COUNT = 0 };

/* ptr: input, output; i: n, in_zp, out_zp, reluish multiplier, reluish exponent, output multiplier, output
 * exponent */
enum { EM_HARD_SWISH_P_INPUT, EM_HARD_SWISH_P_OUTPUT, EM_HARD_SWISH_P_COUNT };
enum { EM_HARD_SWISH_I_N, EM_HARD_SWISH_I_IN_ZP, EM_HARD_SWISH_I_OUT_ZP, EM_HARD_SWISH_I_RELUISH_MULT,
       EM_HARD_SWISH_I_RELUISH_EXPONENT, EM_HARD_SWISH_I_OUT_MULT, EM_HARD_SWISH_I_OUT_EXPONENT,
       EM_HARD_SWISH_I_COUNT };
enum { EM_HARD_SWISH_F_COUNT = 0 };

/* Every int8 -> int8 function of the byte (LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, the RELU family, QUANTIZE
 * between 8-bit types, the element-wise math): one vector table lookup per element (em_lut.h). */
static void em_lut_int8_step(const em_params* p) {
    em_lut_u8((const uint8_t*)p->ptr[EM_LUT_P_INPUT], (uint8_t*)p->ptr[EM_LUT_P_OUTPUT], p->i[EM_LUT_I_N],
              (const uint8_t*)p->ptr[EM_LUT_P_TABLE]);
}
static void em_logistic_fixed_int8_step(const em_params* p) {
    em_logistic_int8((const int8_t*)p->ptr[EM_FIXED_ACT_P_INPUT], (int8_t*)p->ptr[EM_FIXED_ACT_P_OUTPUT],
                     p->i[EM_FIXED_ACT_I_N], (int32_t)p->i[EM_FIXED_ACT_I_IN_ZP],
                     (int32_t)p->i[EM_FIXED_ACT_I_IN_RANGE_RADIUS], (int32_t)p->i[EM_FIXED_ACT_I_IN_MULT],
                     (int32_t)p->i[EM_FIXED_ACT_I_IN_LEFT_SHIFT], (int32_t)p->i[EM_FIXED_ACT_I_MODE]);
}
static void em_tanh_fixed_int8_step(const em_params* p) {
    em_tanh_int8((const int8_t*)p->ptr[EM_FIXED_ACT_P_INPUT], (int8_t*)p->ptr[EM_FIXED_ACT_P_OUTPUT],
                 p->i[EM_FIXED_ACT_I_N], (int32_t)p->i[EM_FIXED_ACT_I_IN_ZP],
                 (int32_t)p->i[EM_FIXED_ACT_I_IN_RANGE_RADIUS], (int32_t)p->i[EM_FIXED_ACT_I_IN_MULT],
                 (int32_t)p->i[EM_FIXED_ACT_I_IN_LEFT_SHIFT], (int32_t)p->i[EM_FIXED_ACT_I_MODE]);
}
static void em_softmax_int8_step(const em_params* p) {
    em_softmax_int8((const int8_t*)p->ptr[EM_SOFTMAX_INT8_P_INPUT], (int8_t*)p->ptr[EM_SOFTMAX_INT8_P_OUTPUT],
                    p->i[EM_SOFTMAX_INT8_I_ROWS], p->i[EM_SOFTMAX_INT8_I_DEPTH], (int32_t)p->i[EM_SOFTMAX_INT8_I_IN_MULT],
                    (int32_t)p->i[EM_SOFTMAX_INT8_I_IN_LEFT_SHIFT], (int32_t)p->i[EM_SOFTMAX_INT8_I_DIFF_MIN],
                    (int32_t)p->i[EM_SOFTMAX_INT8_I_MODE]);
}
static void em_softmax_lut_int8_step(const em_params* p) {
    em_softmax_int8_lut((const int8_t*)p->ptr[EM_SOFTMAX_LUT_P_INPUT], (int8_t*)p->ptr[EM_SOFTMAX_LUT_P_OUTPUT],
                        p->i[EM_SOFTMAX_LUT_I_ROWS], p->i[EM_SOFTMAX_LUT_I_DEPTH],
                        (const int32_t*)p->ptr[EM_SOFTMAX_LUT_P_TABLE]);
}

static void em_hard_swish_int8_step(const em_params* p) {
    em_hard_swish_int8((const int8_t*)p->ptr[EM_HARD_SWISH_P_INPUT], (int8_t*)p->ptr[EM_HARD_SWISH_P_OUTPUT],
                       p->i[EM_HARD_SWISH_I_N], (int32_t)p->i[EM_HARD_SWISH_I_IN_ZP],
                       (int32_t)p->i[EM_HARD_SWISH_I_OUT_ZP], (int32_t)p->i[EM_HARD_SWISH_I_RELUISH_MULT],
                       (int32_t)p->i[EM_HARD_SWISH_I_RELUISH_EXPONENT], (int32_t)p->i[EM_HARD_SWISH_I_OUT_MULT],
                       (int32_t)p->i[EM_HARD_SWISH_I_OUT_EXPONENT]);
}

/* HARD_SWISH's arithmetic vectorized (em_hard_swish_int8_avx2), for the AVX2 path where it beats the 256-entry
 * lookup; the scalar loop on a CPU without AVX2.  Same layout. */
static void em_hard_swish_int8_avx2_step(const em_params* p) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(EM_SCALAR_ONLY)
    void (*fn)(const int8_t*, int8_t*, int64_t, int32_t, int32_t, int32_t, int32_t, int32_t, int32_t) =
        em_isa() >= EM_ISA_AVX2 ? em_hard_swish_int8_avx2 : em_hard_swish_int8;
#else
    void (*fn)(const int8_t*, int8_t*, int64_t, int32_t, int32_t, int32_t, int32_t, int32_t, int32_t) =
        em_hard_swish_int8;
#endif
    fn((const int8_t*)p->ptr[EM_HARD_SWISH_P_INPUT], (int8_t*)p->ptr[EM_HARD_SWISH_P_OUTPUT], p->i[EM_HARD_SWISH_I_N],
       (int32_t)p->i[EM_HARD_SWISH_I_IN_ZP], (int32_t)p->i[EM_HARD_SWISH_I_OUT_ZP],
       (int32_t)p->i[EM_HARD_SWISH_I_RELUISH_MULT], (int32_t)p->i[EM_HARD_SWISH_I_RELUISH_EXPONENT],
       (int32_t)p->i[EM_HARD_SWISH_I_OUT_MULT], (int32_t)p->i[EM_HARD_SWISH_I_OUT_EXPONENT]);
}
#endif
