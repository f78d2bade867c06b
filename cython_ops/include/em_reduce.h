/* MEAN, int8 and float32.  int8 follows LiteRT's reference QuantizedMeanOrSum: integer sum, minus
 * zp_in * count, then one fixed-point multiplier that already holds s_in / s_out / count (folded at load).
 * i: 0-5 input dims (6-D), 6-11 output stride of each input dim (0 where reduced), 12 outputs, 13 reduced count,
 *    14 float (1) or int8 (0), 15 in_zp, 16 out_zp, 17 multiplier, 18 shift, 19 rounding mode
 * ptr: 0 in, 1 out, 2 scratch (one int32 / float per output) */
#ifndef EM_REDUCE_H
#define EM_REDUCE_H
#include "em_params.h"
#include "em_requant.h"

#define EM_REDUCE_SUM(T_ACC)                                                                   \
    for (int64_t i0 = 0; i0 < d[0]; i0++)                                                      \
    for (int64_t i1 = 0; i1 < d[1]; i1++)                                                      \
    for (int64_t i2 = 0; i2 < d[2]; i2++)                                                      \
    for (int64_t i3 = 0; i3 < d[3]; i3++)                                                      \
    for (int64_t i4 = 0; i4 < d[4]; i4++) {                                                    \
        int64_t ob = i0 * d[6] + i1 * d[7] + i2 * d[8] + i3 * d[9] + i4 * d[10];              \
        for (int64_t i5 = 0; i5 < d[5]; i5++) acc[ob + i5 * d[11]] += (T_ACC)x[k++];           \
    }

static void em_mean(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t n_out = d[12], count = d[13];
    int64_t k = 0;
    if (d[14]) {
        const float* x = (const float*)p->ptr[0];
        float* y = (float*)p->ptr[1];
        float* acc = (float*)p->ptr[2];
        for (int64_t o = 0; o < n_out; o++) acc[o] = 0.0f;
        EM_REDUCE_SUM(float)
        for (int64_t o = 0; o < n_out; o++) y[o] = acc[o] / (float)count;
        return;
    }
    const int8_t* x = (const int8_t*)p->ptr[0];
    int8_t* y = (int8_t*)p->ptr[1];
    int32_t* acc = (int32_t*)p->ptr[2];
    for (int64_t o = 0; o < n_out; o++) acc[o] = 0;
    EM_REDUCE_SUM(int32_t)
    const int32_t zp_sum = (int32_t)(d[15] * count);
    for (int64_t o = 0; o < n_out; o++) {
        int32_t v = em_mbqm(acc[o] - zp_sum, (int32_t)d[17], (int)d[18], (int)d[19]) + (int32_t)d[16];
        y[o] = (int8_t)em_clamp_i32(v, -128, 127);
    }
}
#endif
