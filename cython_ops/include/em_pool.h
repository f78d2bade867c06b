/* AVERAGE_POOL_2D and MAX_POOL_2D, int8 and float32, NHWC.
 * i: 0 N, 1 IH, 2 IW, 3 C, 4 OH, 5 OW, 6 KH, 7 KW, 8 SH, 9 SW, 10 pad_top, 11 pad_left, 12 act_min, 13 act_max
 * ptr: 0 input, 1 output, 2 scratch (C int32 / float sums); f: 0 act_min, 1 act_max */
#ifndef EM_POOL_H
#define EM_POOL_H
#include "em_params.h"
#include "em_requant.h"

#define EM_POOL_WINDOW                                                                   \
    const int64_t* d = p->i;                                                             \
    const int64_t N = d[0], IH = d[1], IW = d[2], C = d[3], OH = d[4], OW = d[5];        \
    const int64_t KH = d[6], KW = d[7];

#define EM_POOL_CLIP                                                                     \
    int64_t y0 = oy * d[8] - d[10], x0 = ox * d[9] - d[11];                              \
    int64_t ky0 = y0 < 0 ? -y0 : 0, ky1 = KH < IH - y0 ? KH : IH - y0;                   \
    int64_t kx0 = x0 < 0 ? -x0 : 0, kx1 = KW < IW - x0 ? KW : IW - x0;

static void em_avg_pool_int8(const em_params* p) {
    EM_POOL_WINDOW
    const int8_t* in = (const int8_t*)p->ptr[0];
    int8_t* out = (int8_t*)p->ptr[1];
    int32_t* acc = (int32_t*)p->ptr[2];
    for (int64_t b = 0; b < N; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t ox = 0; ox < OW; ox++) {
        EM_POOL_CLIP
        for (int64_t c = 0; c < C; c++) acc[c] = 0;
        int32_t count = 0;
        for (int64_t ky = ky0; ky < ky1; ky++)
            for (int64_t kx = kx0; kx < kx1; kx++, count++) {
                const int8_t* x = in + ((b * IH + y0 + ky) * IW + x0 + kx) * C;
                for (int64_t c = 0; c < C; c++) acc[c] += x[c];
            }
        int8_t* o = out + ((b * OH + oy) * OW + ox) * C;
        for (int64_t c = 0; c < C; c++) {
            int32_t a = acc[c], v;
            if (count == 0) v = 0;
            else v = a > 0 ? (a + count / 2) / count : (a - count / 2) / count;
            o[c] = (int8_t)em_clamp_i32(v, (int32_t)d[12], (int32_t)d[13]);
        }
    }
}

static void em_avg_pool_f32(const em_params* p) {
    EM_POOL_WINDOW
    const float* in = (const float*)p->ptr[0];
    float* out = (float*)p->ptr[1];
    float* acc = (float*)p->ptr[2];
    for (int64_t b = 0; b < N; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t ox = 0; ox < OW; ox++) {
        EM_POOL_CLIP
        for (int64_t c = 0; c < C; c++) acc[c] = 0.0f;
        int32_t count = 0;
        for (int64_t ky = ky0; ky < ky1; ky++)
            for (int64_t kx = kx0; kx < kx1; kx++, count++) {
                const float* x = in + ((b * IH + y0 + ky) * IW + x0 + kx) * C;
                for (int64_t c = 0; c < C; c++) acc[c] += x[c];
            }
        float* o = out + ((b * OH + oy) * OW + ox) * C;
        for (int64_t c = 0; c < C; c++)
            o[c] = em_clamp_f32(count ? acc[c] / (float)count : 0.0f, p->f[0], p->f[1]);
    }
}

static void em_max_pool_int8(const em_params* p) {
    EM_POOL_WINDOW
    const int8_t* in = (const int8_t*)p->ptr[0];
    int8_t* out = (int8_t*)p->ptr[1];
    for (int64_t b = 0; b < N; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t ox = 0; ox < OW; ox++) {
        EM_POOL_CLIP
        int8_t* o = out + ((b * OH + oy) * OW + ox) * C;
        for (int64_t c = 0; c < C; c++) o[c] = -128;
        for (int64_t ky = ky0; ky < ky1; ky++)
            for (int64_t kx = kx0; kx < kx1; kx++) {
                const int8_t* x = in + ((b * IH + y0 + ky) * IW + x0 + kx) * C;
                for (int64_t c = 0; c < C; c++) o[c] = x[c] > o[c] ? x[c] : o[c];
            }
        for (int64_t c = 0; c < C; c++) o[c] = (int8_t)em_clamp_i32(o[c], (int32_t)d[12], (int32_t)d[13]);
    }
}

static void em_max_pool_f32(const em_params* p) {
    EM_POOL_WINDOW
    const float* in = (const float*)p->ptr[0];
    float* out = (float*)p->ptr[1];
    for (int64_t b = 0; b < N; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t ox = 0; ox < OW; ox++) {
        EM_POOL_CLIP
        float* o = out + ((b * OH + oy) * OW + ox) * C;
        for (int64_t c = 0; c < C; c++) o[c] = -3.402823466e+38f;
        for (int64_t ky = ky0; ky < ky1; ky++)
            for (int64_t kx = kx0; kx < kx1; kx++) {
                const float* x = in + ((b * IH + y0 + ky) * IW + x0 + kx) * C;
                for (int64_t c = 0; c < C; c++) o[c] = x[c] > o[c] ? x[c] : o[c];
            }
        for (int64_t c = 0; c < C; c++) o[c] = em_clamp_f32(o[c], p->f[0], p->f[1]);
    }
}
#endif
