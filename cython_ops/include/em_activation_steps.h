/* Plan-step adapters for the int8 activations of em_activations.h.
 * LOGISTIC / TANH as LiteRT's reference kernels run them: a 256-entry table built at load.
 *   lut: i: 0 n; ptr: 0 in, 1 out, 2 table
 * LOGISTIC / TANH in gemmlowp fixed point (TFLite Micro's arithmetic):
 *   i: 0 n, 1 input_zero_point, 2 input_range_radius, 3 input_multiplier, 4 input_left_shift, 5 mode
 * SOFTMAX: i: 0 rows, 1 depth, 2 input_multiplier, 3 input_left_shift, 4 diff_min, 5 mode
 * HARD_SWISH: i: 0 n, 1 in_zp, 2 out_zp, 3 reluish mult, 4 reluish exponent, 5 output mult, 6 output exponent
 * ptr: 0 in, 1 out */
#ifndef EM_ACTIVATION_STEPS_H
#define EM_ACTIVATION_STEPS_H
#include "em_params.h"
#include "em_activations.h"

static void em_lut_int8_step(const em_params* p) {
    em_lut_int8_apply((const int8_t*)p->ptr[0], (int8_t*)p->ptr[1], p->i[0], (const int8_t*)p->ptr[2]);
}
static void em_logistic_fixed_int8_step(const em_params* p) {
    em_logistic_int8((const int8_t*)p->ptr[0], (int8_t*)p->ptr[1], p->i[0], (int32_t)p->i[1], (int32_t)p->i[2],
                     (int32_t)p->i[3], (int32_t)p->i[4], (int32_t)p->i[5]);
}
static void em_tanh_fixed_int8_step(const em_params* p) {
    em_tanh_int8((const int8_t*)p->ptr[0], (int8_t*)p->ptr[1], p->i[0], (int32_t)p->i[1], (int32_t)p->i[2],
                 (int32_t)p->i[3], (int32_t)p->i[4], (int32_t)p->i[5]);
}
static void em_softmax_int8_step(const em_params* p) {
    em_softmax_int8((const int8_t*)p->ptr[0], (int8_t*)p->ptr[1], p->i[0], p->i[1], (int32_t)p->i[2],
                    (int32_t)p->i[3], (int32_t)p->i[4], (int32_t)p->i[5]);
}
static void em_hard_swish_int8_step(const em_params* p) {
    em_hard_swish_int8((const int8_t*)p->ptr[0], (int8_t*)p->ptr[1], p->i[0], (int32_t)p->i[1], (int32_t)p->i[2],
                       (int32_t)p->i[3], (int32_t)p->i[4], (int32_t)p->i[5], (int32_t)p->i[6]);
}
#endif
