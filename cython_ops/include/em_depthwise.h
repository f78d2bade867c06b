/* The integer heart of DEPTHWISE_CONV_2D, shared by the int8 and hybrid kernels. */
#ifndef EM_DEPTHWISE_H
#define EM_DEPTHWISE_H
#include <stdint.h>

/* acc[oc] += sum over the taps of one output pixel that fall inside the image of w[tap][oc] * (x - zp).
 * img: one NHWC image (IH x IW x IC); w: [KH*KW][OC] with oc = ic * DM + m; (y0, x0): the window's top-left
 * input position (may be negative); (dh, dw): dilation. Padding taps are skipped, as the reference does. */
static inline void em_depthwise_accumulate_s8(const int8_t* img, const int8_t* w, int64_t IH, int64_t IW,
                                              int64_t IC, int64_t OC, int64_t KH, int64_t KW, int64_t DM,
                                              int64_t y0, int64_t x0, int64_t dh, int64_t dw, int32_t zp,
                                              int32_t* acc) {
    for (int64_t ky = 0; ky < KH; ky++) {
        const int64_t iy = y0 + ky * dh;
        if (iy < 0 || iy >= IH) continue;
        for (int64_t kx = 0; kx < KW; kx++) {
            const int64_t ix = x0 + kx * dw;
            if (ix < 0 || ix >= IW) continue;
            const int8_t* x = img + (iy * IW + ix) * IC;
            const int8_t* wr = w + (ky * KW + kx) * OC;
            if (DM == 1) {
                for (int64_t c = 0; c < OC; c++) acc[c] += (int32_t)wr[c] * ((int32_t)x[c] - zp);
            } else {
                for (int64_t ic = 0; ic < IC; ic++) {
                    const int32_t xv = (int32_t)x[ic] - zp;
                    for (int64_t m = 0; m < DM; m++) acc[ic * DM + m] += (int32_t)wr[ic * DM + m] * xv;
                }
            }
        }
    }
}
#endif
