/* MEAN, int8 and float32.  int8 follows LiteRT's reference QuantizedMeanOrSum: integer sum, minus
 * zp_in * count, then one fixed-point multiplier that already holds s_in / s_out / count (folded at load).
 * Layout EM_MEAN:
 * i: input dims (6-D), output stride of each input dim (6, 0 where reduced), outputs, reduced count,
 *    float (1) or int8 (0), in_zp, out_zp, multiplier, shift, rounding mode
 * ptr: input, output, scratch (one int32 / float per output) */
#ifndef EM_REDUCE_H
#define EM_REDUCE_H
#include "em_params.h"
#include "em_requant.h"

enum { EM_MEAN_P_INPUT, EM_MEAN_P_OUTPUT, EM_MEAN_P_SCRATCH, EM_MEAN_P_COUNT };
enum { EM_MEAN_I_DIMS, EM_MEAN_I_DIMS_LAST = EM_MEAN_I_DIMS + 5, EM_MEAN_I_OUT_STRIDES,
       EM_MEAN_I_OUT_STRIDES_LAST = EM_MEAN_I_OUT_STRIDES + 5, EM_MEAN_I_OUTPUTS, EM_MEAN_I_REDUCED,
       EM_MEAN_I_IS_FLOAT, EM_MEAN_I_IN_ZP, EM_MEAN_I_OUT_ZP, EM_MEAN_I_MULT, EM_MEAN_I_SHIFT, EM_MEAN_I_MODE,
       EM_MEAN_I_COUNT };
enum { EM_MEAN_F_COUNT = 0 };

#define EM_REDUCE_SUM(T_ACC)                                                                 \
    for (int64_t i0 = 0; i0 < dims[0]; i0++)                                                 \
    for (int64_t i1 = 0; i1 < dims[1]; i1++)                                                 \
    for (int64_t i2 = 0; i2 < dims[2]; i2++)                                                 \
    for (int64_t i3 = 0; i3 < dims[3]; i3++)                                                 \
    for (int64_t i4 = 0; i4 < dims[4]; i4++) {                                               \
        int64_t ob = i0 * ost[0] + i1 * ost[1] + i2 * ost[2] + i3 * ost[3] + i4 * ost[4];    \
        for (int64_t i5 = 0; i5 < dims[5]; i5++) acc[ob + i5 * ost[5]] += (T_ACC)x[k++];     \
    }

static void em_mean(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t* dims = d + EM_MEAN_I_DIMS;
    const int64_t* ost = d + EM_MEAN_I_OUT_STRIDES;
    const int64_t n_out = d[EM_MEAN_I_OUTPUTS], count = d[EM_MEAN_I_REDUCED];
    int64_t k = 0;
    if (d[EM_MEAN_I_IS_FLOAT]) {
        const float* x = (const float*)p->ptr[EM_MEAN_P_INPUT];
        float* y = (float*)p->ptr[EM_MEAN_P_OUTPUT];
        float* acc = (float*)p->ptr[EM_MEAN_P_SCRATCH];
        for (int64_t o = 0; o < n_out; o++) acc[o] = 0.0f;
        EM_REDUCE_SUM(float)
        for (int64_t o = 0; o < n_out; o++) y[o] = acc[o] / (float)count;
        return;
    }
    const int8_t* x = (const int8_t*)p->ptr[EM_MEAN_P_INPUT];
    int8_t* y = (int8_t*)p->ptr[EM_MEAN_P_OUTPUT];
    int32_t* acc = (int32_t*)p->ptr[EM_MEAN_P_SCRATCH];
    for (int64_t o = 0; o < n_out; o++) acc[o] = 0;
    EM_REDUCE_SUM(int32_t)
    const int32_t zp_sum = (int32_t)(d[EM_MEAN_I_IN_ZP] * count);
    for (int64_t o = 0; o < n_out; o++) {
        int32_t v = em_mbqm(acc[o] - zp_sum, (int32_t)d[EM_MEAN_I_MULT], (int)d[EM_MEAN_I_SHIFT],
                            (int)d[EM_MEAN_I_MODE]) + (int32_t)d[EM_MEAN_I_OUT_ZP];
        y[o] = (int8_t)em_clamp_i32(v, -128, 127);
    }
}
#endif
