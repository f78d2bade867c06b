/* Receptive-field gathers of the conv-like kernels (CONV_2D, DEPTHWISE_CONV_2D) and the integer layout they share:
 * im2col into int8 / float rows (taps outside the image take a pad value), and for AVX-512 VNNI the uint8 (x + 128)
 * im2col and the padded copy of one image that the implicit GEMM and the VNNI depthwise kernel read. */
#ifndef EM_IM2COL_H
#define EM_IM2COL_H
#include <stdint.h>
#include <string.h>
#include "em_params.h"
#include "em_gemm_vnni.h"

/* Shared integer layout of the conv-like kernels (p->i):
 *  0 N, 1 IH, 2 IW, 3 IC, 4 OH, 5 OW, 6 OC, 7 KH, 8 KW, 9 SH, 10 SW, 11 DH, 12 DW, 13 pad_top, 14 pad_left,
 *  15 in_zp, 16 out_zp, 17 act_min, 18 act_max, 19 rounding mode, 20 depth multiplier, 21 direct (1x1, no im2col),
 *  22 rows per im2col chunk
 * ptr: 0 input, 1 weights, 2 bias (int32 / float, may be NULL for float), 3 output, 4 multipliers, 5 shifts,
 *      6 scratch, 7 double scales (mode EM_REQUANT_DOUBLE_SCALE), 8 float scales (mode EM_REQUANT_FLOAT)
 * f: 0 act_min, 1 act_max (float kernels) */
enum { CI_N, CI_IH, CI_IW, CI_IC, CI_OH, CI_OW, CI_OC, CI_KH, CI_KW, CI_SH, CI_SW, CI_DH, CI_DW, CI_PT, CI_PL,
       CI_INZP, CI_OUTZP, CI_AMIN, CI_AMAX, CI_MODE, CI_DM, CI_DIRECT, CI_CHUNK, CI_KP };

/* Gather the receptive fields of output pixels [first, first+rows) of image b into col (rows x K).
 * Taps outside the image take the value `pad` (the input zero point for int8: they add nothing). */
#define EM_IM2COL(T)                                                                                  \
static void em_im2col_##T(const T* in, const int64_t* d, int64_t b, int64_t first, int64_t rows, T pad, \
                          T* col) {                                                                   \
    const int64_t IH = d[CI_IH], IW = d[CI_IW], IC = d[CI_IC], OW = d[CI_OW];                         \
    const int64_t KH = d[CI_KH], KW = d[CI_KW];                                                        \
    const int64_t K = KH * KW * IC;                                                                    \
    for (int64_t r = 0; r < rows; r++) {                                                               \
        int64_t pix = first + r, oy = pix / OW, ox = pix % OW;                                         \
        T* dst = col + r * K;                                                                          \
        for (int64_t ky = 0; ky < KH; ky++) {                                                          \
            int64_t iy = oy * d[CI_SH] - d[CI_PT] + ky * d[CI_DH];                                     \
            for (int64_t kx = 0; kx < KW; kx++, dst += IC) {                                           \
                int64_t ix = ox * d[CI_SW] - d[CI_PL] + kx * d[CI_DW];                                 \
                if (iy < 0 || iy >= IH || ix < 0 || ix >= IW) {                                        \
                    for (int64_t c = 0; c < IC; c++) dst[c] = pad;                                     \
                } else {                                                                               \
                    memcpy(dst, in + ((b * IH + iy) * IW + ix) * IC, (size_t)IC * sizeof(T));          \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
    }                                                                                                  \
}
EM_IM2COL(int8_t)
EM_IM2COL(float)

#if defined(__x86_64__) && defined(__GNUC__)
/* Receptive fields of output pixels [first, first + rows) of image b gathered straight into the VNNI layout:
 * rows of Kp uint8 (x + 128), padding taps = in_zp + 128 (they cancel against the bias, as in the reference).
 * With dilation 1 a window row inside the image is KW * IC contiguous bytes, copied at once.  Bytes K .. Kp of
 * a row are left as they are: their weights are zero.  col needs 64 bytes of slack. */
EM_VNNI_TARGET static void em_im2col_u8(const int8_t* in, const int64_t* d, int64_t b, int64_t first, int64_t rows,
                                        int64_t Kp, uint8_t* col) {
    const int64_t IH = d[CI_IH], IW = d[CI_IW], IC = d[CI_IC], OW = d[CI_OW], KH = d[CI_KH], KW = d[CI_KW];
    const int64_t DW = d[CI_DW], span = KW * IC;
    const __m512i pad = _mm512_set1_epi8((char)(uint8_t)(d[CI_INZP] + 128));
    const int8_t* img = in + b * IH * IW * IC;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t pix = first + r, oy = pix / OW, ox = pix % OW;
        const int64_t ix0 = ox * d[CI_SW] - d[CI_PL];
        const int whole = DW == 1 && ix0 >= 0 && ix0 + KW <= IW;
        uint8_t* dst = col + r * Kp;
        for (int64_t ky = 0; ky < KH; ky++, dst += span) {
            const int64_t iy = oy * d[CI_SH] - d[CI_PT] + ky * d[CI_DH];
            if (iy < 0 || iy >= IH) { em_fill_u8(dst, pad, span); continue; }
            const int8_t* row = img + iy * IW * IC;
            if (whole) { em_copy_flip(dst, row + ix0 * IC, span); continue; }
            for (int64_t kx = 0; kx < KW; kx++) {
                const int64_t ix = ix0 + kx * DW;
                if (ix < 0 || ix >= IW) em_fill_u8(dst + kx * IC, pad, IC);
                else em_copy_flip(dst + kx * IC, row + ix * IC, IC);
            }
        }
    }
}

/* The image a conv reads as uint8 (x + 128), padded with in_zp + 128 to the rows and columns its windows touch
 * (top-left at (-pad_top, -pad_left)): IHp x IWp x IC with 64 bytes of slack after it. */
EM_VNNI_TARGET static void em_pad_image_u8(const int8_t* img, const int64_t* d, int64_t IHp, int64_t IWp,
                                           uint8_t* out) {
    const int64_t IH = d[CI_IH], IW = d[CI_IW], IC = d[CI_IC], PT = d[CI_PT], PL = d[CI_PL];
    const __m512i pad = _mm512_set1_epi8((char)(uint8_t)(d[CI_INZP] + 128));
    const int64_t x0 = PL < IWp ? PL : IWp, x1 = IW + PL < IWp ? IW + PL : IWp;   /* columns holding pixels */
    for (int64_t r = 0; r < IHp; r++) {
        uint8_t* o = out + r * IWp * IC;
        const int64_t iy = r - PT;
        if (iy < 0 || iy >= IH || x1 <= x0) { em_fill_u8(o, pad, IWp * IC); continue; }
        em_fill_u8(o, pad, x0 * IC);
        em_copy_flip(o + x0 * IC, img + iy * IW * IC, (x1 - x0) * IC);
        em_fill_u8(o + x1 * IC, pad, (IWp - x1) * IC);
    }
    em_fill_u8(out + IHp * IWp * IC, pad, 64);
}
#endif
#endif
