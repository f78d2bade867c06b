/* MEAN, int8 and float32.  LiteRT's reference picks one of three int8 arithmetics (see the `variant` values);
 * edgeml's loader picks the same one and this kernel carries all of them.
 * i: 0-5 input dims (6-D), 6-11 output stride of each input dim (0 where reduced), 12 outputs, 13 reduced count,
 *    14 variant, 15 in_zp, 16 out_zp, 17 multiplier, 18 shift, 19 rounding mode
 * f: 0 scale (float s_in / s_out), 1 bias; ptr: 0 in, 1 out, 2 scratch (one int32 / float per output) */
#ifndef EM_REDUCE_H
#define EM_REDUCE_H
#include <math.h>
#include "em_params.h"
#include "em_requant.h"

enum {
    EM_MEAN_INT8_MULTIPLIER = 0,  /* keep_dims, 4-D, axes {1,2}: MBQM of sum(x - zp), then rounded divide */
    EM_MEAN_INT8_SAME_PARAMS = 1, /* same scale and zero point in and out: truncating integer mean */
    EM_MEAN_INT8_FLOAT = 2,       /* otherwise: float rescale of the integer mean */
    EM_MEAN_F32 = 3
};

#define EM_REDUCE_SUM(T_ACC, T_IN, OFFSET)                                                     \
    for (int64_t i0 = 0; i0 < d[0]; i0++)                                                      \
    for (int64_t i1 = 0; i1 < d[1]; i1++)                                                      \
    for (int64_t i2 = 0; i2 < d[2]; i2++)                                                      \
    for (int64_t i3 = 0; i3 < d[3]; i3++)                                                      \
    for (int64_t i4 = 0; i4 < d[4]; i4++) {                                                    \
        int64_t ob = i0 * d[6] + i1 * d[7] + i2 * d[8] + i3 * d[9] + i4 * d[10];              \
        for (int64_t i5 = 0; i5 < d[5]; i5++)                                                  \
            acc[ob + i5 * d[11]] += (T_ACC)((T_IN)x[k++] - (OFFSET));                           \
    }

static void em_mean(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t n_out = d[12], count = d[13];
    int64_t k = 0;
    if (d[14] == EM_MEAN_F32) {
        const float* x = (const float*)p->ptr[0];
        float* y = (float*)p->ptr[1];
        float* acc = (float*)p->ptr[2];
        for (int64_t o = 0; o < n_out; o++) acc[o] = 0.0f;
        EM_REDUCE_SUM(float, float, 0.0f)
        for (int64_t o = 0; o < n_out; o++) y[o] = acc[o] / (float)count;
        return;
    }
    const int8_t* x = (const int8_t*)p->ptr[0];
    int8_t* y = (int8_t*)p->ptr[1];
    int32_t* acc = (int32_t*)p->ptr[2];
    const int32_t in_zp = (int32_t)d[15], out_zp = (int32_t)d[16];
    for (int64_t o = 0; o < n_out; o++) acc[o] = 0;
    if (d[14] == EM_MEAN_INT8_MULTIPLIER) {
        EM_REDUCE_SUM(int32_t, int32_t, in_zp)
        const int32_t n = (int32_t)count;
        for (int64_t o = 0; o < n_out; o++) {
            int32_t a = em_mbqm(acc[o], (int32_t)d[17], (int)d[18], (int)d[19]);
            a = a > 0 ? (a + n / 2) / n : (a - n / 2) / n;
            y[o] = (int8_t)em_clamp_i32(a + out_zp, -128, 127);
        }
    } else if (d[14] == EM_MEAN_INT8_SAME_PARAMS) {
        EM_REDUCE_SUM(int32_t, int32_t, 0)
        for (int64_t o = 0; o < n_out; o++) y[o] = (int8_t)(acc[o] / (int32_t)count);
    } else {
        EM_REDUCE_SUM(int32_t, int32_t, 0)
        const float scale = p->f[0], bias = p->f[1];
        for (int64_t o = 0; o < n_out; o++) {
            float mean = (float)acc[o] / (float)count;
            float r = roundf(mean * scale + bias) + (float)out_zp;
            r = r < 127.0f ? r : 127.0f;
            r = r > -128.0f ? r : -128.0f;
            y[o] = (int8_t)r;
        }
    }
}
#endif
