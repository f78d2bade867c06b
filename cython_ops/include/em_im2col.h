/* Receptive-field gathers of the conv-like kernels (CONV_2D, DEPTHWISE_CONV_2D) and the parameter layout they share:
 * im2col into int8 / float rows (taps outside the image take a pad value), and for AVX-512 VNNI the uint8 (x + 128)
 * im2col and the padded copy of one image that the implicit GEMM and the VNNI depthwise kernel read. */
#ifndef EM_IM2COL_H
#define EM_IM2COL_H
#include <stdint.h>
#include <string.h>
#include "em_params.h"
#include "em_gemm_avxvnni.h"

/* The layout of the conv-like kernels (em_params slots), shared by em_conv2d_int8 / _f32 and em_depthwise_int8 /
 * _f32, extended by the VNNI and AVX2 kernels (em_conv.h EM_CONV_VNNI / EM_CONV_AVX2, em_depthwise.h
 * EM_DEPTHWISE_VNNI) and read by the gathers below:
 * ptr: input, weights, bias (int32 / float, may be NULL for float), output, per-channel multipliers and shifts,
 *      scratch, double scales (mode EM_REQUANT_DOUBLE_SCALE), float scales (mode EM_REQUANT_FLOAT)
 * i:   N, IH, IW, IC, OH, OW, OC, KH, KW, strides SH SW, dilations DH DW, pad_top, pad_left, in_zp, out_zp,
 *      act_min, act_max, requantization mode (em_requant.h), depth multiplier, direct (1x1 stride 1 unpadded:
 *      no im2col), rows per im2col chunk
 * f:   act_min, act_max (float kernels) */
enum { EM_CONV_P_INPUT, EM_CONV_P_WEIGHTS, EM_CONV_P_BIAS, EM_CONV_P_OUTPUT, EM_CONV_P_MULT, EM_CONV_P_SHIFT,
       EM_CONV_P_SCRATCH, EM_CONV_P_DOUBLE_SCALES, EM_CONV_P_FLOAT_SCALES, EM_CONV_P_COUNT };
enum { EM_CONV_I_N, EM_CONV_I_IH, EM_CONV_I_IW, EM_CONV_I_IC, EM_CONV_I_OH, EM_CONV_I_OW, EM_CONV_I_OC, EM_CONV_I_KH,
       EM_CONV_I_KW, EM_CONV_I_SH, EM_CONV_I_SW, EM_CONV_I_DH, EM_CONV_I_DW, EM_CONV_I_PAD_TOP, EM_CONV_I_PAD_LEFT,
       EM_CONV_I_IN_ZP, EM_CONV_I_OUT_ZP, EM_CONV_I_ACT_MIN, EM_CONV_I_ACT_MAX, EM_CONV_I_MODE, EM_CONV_I_DM,
       EM_CONV_I_DIRECT, EM_CONV_I_CHUNK, EM_CONV_I_COUNT };
enum { EM_CONV_F_ACT_MIN, EM_CONV_F_ACT_MAX, EM_CONV_F_COUNT };

/* The AVX2 GEMM's weights and output stage read from a conv-layout step (conv, depthwise, sparse, Winograd):
 * w its int16 panels (NULL where the caller reads weights itself), n columns, kp the packed depth. */
static inline em_avx2_gemm em_conv_avx2_gemm(const em_params* p, const int16_t* w, int64_t n, int64_t kp) {
    const int64_t* d = p->i;
    em_avx2_gemm g = {w, (const int32_t*)p->ptr[EM_CONV_P_BIAS], (const int32_t*)p->ptr[EM_CONV_P_MULT],
                      (const int32_t*)p->ptr[EM_CONV_P_SHIFT], (const double*)p->ptr[EM_CONV_P_DOUBLE_SCALES],
                      (const float*)p->ptr[EM_CONV_P_FLOAT_SCALES], n, kp, (int32_t)d[EM_CONV_I_OUT_ZP],
                      (int32_t)d[EM_CONV_I_ACT_MIN], (int32_t)d[EM_CONV_I_ACT_MAX], (int32_t)d[EM_CONV_I_MODE]};
    return g;
}

/* Gather the receptive fields of output pixels [first, first+rows) of image b into col (rows x K).
 * Taps outside the image take the value `pad` (the input zero point for int8: they add nothing). */
#define EM_IM2COL(T)                                                                                      \
static void em_im2col_##T(const T* in, const int64_t* d, int64_t b, int64_t first, int64_t rows, T pad,   \
                          T* col) {                                                                       \
    const int64_t IH = d[EM_CONV_I_IH], IW = d[EM_CONV_I_IW], IC = d[EM_CONV_I_IC], OW = d[EM_CONV_I_OW]; \
    const int64_t KH = d[EM_CONV_I_KH], KW = d[EM_CONV_I_KW];                                             \
    const int64_t K = KH * KW * IC;                                                                       \
    for (int64_t r = 0; r < rows; r++) {                                                                  \
        int64_t pix = first + r, oy = pix / OW, ox = pix % OW;                                            \
        T* dst = col + r * K;                                                                             \
        for (int64_t ky = 0; ky < KH; ky++) {                                                             \
            int64_t iy = oy * d[EM_CONV_I_SH] - d[EM_CONV_I_PAD_TOP] + ky * d[EM_CONV_I_DH];              \
            for (int64_t kx = 0; kx < KW; kx++, dst += IC) {                                              \
                int64_t ix = ox * d[EM_CONV_I_SW] - d[EM_CONV_I_PAD_LEFT] + kx * d[EM_CONV_I_DW];         \
                if (iy < 0 || iy >= IH || ix < 0 || ix >= IW) {                                           \
                    for (int64_t c = 0; c < IC; c++) dst[c] = pad;                                        \
                } else {                                                                                  \
                    memcpy(dst, in + ((b * IH + iy) * IW + ix) * IC, (size_t)IC * sizeof(T));             \
                }                                                                                         \
            }                                                                                             \
        }                                                                                                 \
    }                                                                                                     \
}
EM_IM2COL(int8_t)
EM_IM2COL(float)

#if defined(__x86_64__) && defined(__GNUC__)
/* Receptive fields of output pixels [first, first + rows) of image b gathered straight into the VNNI layout:
 * rows of Kp uint8 (x + 128), padding taps = in_zp + 128 (they cancel against the bias, as in the reference).
 * With dilation 1 a window row inside the image is KW * IC contiguous bytes, copied at once.  Bytes K .. Kp of
 * a row are left as they are: their weights are zero.  col needs 32 bytes of slack. */
EM_AVX2_TARGET static void em_im2col_u8(const int8_t* in, const int64_t* d, int64_t b, int64_t first, int64_t rows,
                                        int64_t Kp, uint8_t* col) {
    const int64_t IH = d[EM_CONV_I_IH], IW = d[EM_CONV_I_IW], IC = d[EM_CONV_I_IC], OW = d[EM_CONV_I_OW];
    const int64_t KH = d[EM_CONV_I_KH], KW = d[EM_CONV_I_KW], DW = d[EM_CONV_I_DW], span = KW * IC;
    const uint8_t pad = (uint8_t)(d[EM_CONV_I_IN_ZP] + 128);
    const int8_t* img = in + b * IH * IW * IC;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t pix = first + r, oy = pix / OW, ox = pix % OW;
        const int64_t ix0 = ox * d[EM_CONV_I_SW] - d[EM_CONV_I_PAD_LEFT];
        const int whole = DW == 1 && ix0 >= 0 && ix0 + KW <= IW;
        uint8_t* dst = col + r * Kp;
        for (int64_t ky = 0; ky < KH; ky++, dst += span) {
            const int64_t iy = oy * d[EM_CONV_I_SH] - d[EM_CONV_I_PAD_TOP] + ky * d[EM_CONV_I_DH];
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

/* n int8 -> int16; from 16 on, whole vectors with the last one overlapping its predecessor (n < 16: a plain loop). */
EM_AVX2_TARGET static inline void em_widen_s16(int16_t* dst, const int8_t* src, int64_t n) {
    if (n < 16) {
        for (int64_t k = 0; k < n; k++) dst[k] = src[k];
        return;
    }
    for (int64_t k = 0;; k += 16) {
        if (k > n - 16) k = n - 16;
        _mm256_storeu_si256((__m256i*)(dst + k), _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(src + k))));
        if (k == n - 16) return;
    }
}

/* Receptive fields of output pixels [first, first + rows) of image b as the AVX2 GEMM's int16 rows of Kp (taps
 * outside the image = in_zp, which the bias cancels; K .. Kp zero), in one pass: with dilation 1 a window row
 * inside the image is KW * IC contiguous values, widened at once (a few-channel stem's taps are 3 bytes each). */
EM_AVX2_TARGET static void em_im2col_s16(const int8_t* in, const int64_t* d, int64_t b, int64_t first, int64_t rows,
                                         int64_t Kp, int16_t* col) {
    const int64_t IH = d[EM_CONV_I_IH], IW = d[EM_CONV_I_IW], IC = d[EM_CONV_I_IC], OW = d[EM_CONV_I_OW];
    const int64_t KH = d[EM_CONV_I_KH], KW = d[EM_CONV_I_KW], DW = d[EM_CONV_I_DW], span = KW * IC;
    const int16_t pad = (int16_t)d[EM_CONV_I_IN_ZP];
    const int8_t* img = in + b * IH * IW * IC;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t pix = first + r, oy = pix / OW, ox = pix % OW;
        const int64_t ix0 = ox * d[EM_CONV_I_SW] - d[EM_CONV_I_PAD_LEFT];
        const int whole = DW == 1 && ix0 >= 0 && ix0 + KW <= IW;
        int16_t* dst = col + r * Kp;
        for (int64_t ky = 0; ky < KH; ky++, dst += span) {
            const int64_t iy = oy * d[EM_CONV_I_SH] - d[EM_CONV_I_PAD_TOP] + ky * d[EM_CONV_I_DH];
            if (iy < 0 || iy >= IH) {
                for (int64_t k = 0; k < span; k++) dst[k] = pad;
                continue;
            }
            const int8_t* row = img + iy * IW * IC;
            if (whole) { em_widen_s16(dst, row + ix0 * IC, span); continue; }
            for (int64_t kx = 0; kx < KW; kx++) {
                const int64_t ix = ix0 + kx * DW;
                if (ix < 0 || ix >= IW) for (int64_t c = 0; c < IC; c++) dst[kx * IC + c] = pad;
                else em_widen_s16(dst + kx * IC, row + ix * IC, IC);
            }
        }
        for (int64_t k = KH * span; k < Kp; k++) col[r * Kp + k] = 0;
    }
}

/* Rows and columns of an image padded once so that every tap of every output pixel lies inside it (the implicit-GEMM
 * convs, dense and sparse, read windows of it). */
static inline int64_t em_conv_padded_rows(const int64_t* d) {
    return (d[EM_CONV_I_OH] - 1) * d[EM_CONV_I_SH] + (d[EM_CONV_I_KH] - 1) * d[EM_CONV_I_DH] + 1;
}
static inline int64_t em_conv_padded_cols(const int64_t* d) {
    return (d[EM_CONV_I_OW] - 1) * d[EM_CONV_I_SW] + (d[EM_CONV_I_KW] - 1) * d[EM_CONV_I_DW] + 1;
}

/* Rows [r_begin, r_end) of the image a conv reads as uint8 (x + 128), padded with in_zp + 128 to the rows and
 * columns its windows touch (top-left at (-pad_top, -pad_left)): (r_end - r_begin) x IWp x IC bytes from out, with
 * 64 bytes of slack after them.  A thread's slice pads only the rows its output rows read (em_slice_padded_rows). */
EM_AVX2_TARGET static void em_pad_rows_u8(const int8_t* img, const int64_t* d, int64_t r_begin, int64_t r_end,
                                          int64_t IWp, uint8_t* out) {
    const int64_t IH = d[EM_CONV_I_IH], IW = d[EM_CONV_I_IW], IC = d[EM_CONV_I_IC];
    const int64_t PT = d[EM_CONV_I_PAD_TOP], PL = d[EM_CONV_I_PAD_LEFT];
    const uint8_t pad = (uint8_t)(d[EM_CONV_I_IN_ZP] + 128);
    const int64_t x0 = PL < IWp ? PL : IWp, x1 = IW + PL < IWp ? IW + PL : IWp;   /* columns holding pixels */
    for (int64_t r = r_begin; r < r_end; r++) {
        uint8_t* o = out + (r - r_begin) * IWp * IC;
        const int64_t iy = r - PT;
        if (iy < 0 || iy >= IH || x1 <= x0) { em_fill_u8(o, pad, IWp * IC); continue; }
        em_fill_u8(o, pad, x0 * IC);
        em_copy_flip(o + x0 * IC, img + iy * IW * IC, (x1 - x0) * IC);
        em_fill_u8(o + x1 * IC, pad, (IWp - x1) * IC);
    }
    em_fill_u8(out + (r_end - r_begin) * IWp * IC, pad, 64);
}

/* The whole padded image (IHp rows): em_pad_rows_u8 over every row. */
EM_AVX2_TARGET static inline void em_pad_image_u8(const int8_t* img, const int64_t* d, int64_t IHp, int64_t IWp,
                                                  uint8_t* out) {
    em_pad_rows_u8(img, d, 0, IHp, IWp, out);
}

/* Bytes of an AVX2 slice's scratch that em_pad_image_s16's image takes (64-byte lines): the GEMM rows of
 * em_gather_windows_s16 follow it. */
static inline int64_t em_padded_image_s16_bytes(const int64_t* d) {
    return ((em_conv_padded_rows(d) * em_conv_padded_cols(d) * d[EM_CONV_I_IC] + 32) * 2 + 63) / 64 * 64;
}

/* The windows of output pixels [first, first + rows) read from the padded int16 image (em_pad_image_s16, row pitch
 * IWp pixels; dilation_w 1) as GEMM rows of Kp: the window rows (KW * IC values each) one straight after another,
 * so that K is padded to 4 once per window, not once per window row (a 3x3 x 3 stem: 28, not 36).  Copies go 16
 * values at a time and run up to 15 past a window (into the next row, written after, or 32 bytes of slack after
 * the rows; the image has 64 bytes of slack); K .. Kp are zeroed last. */
EM_AVX2_TARGET static void em_gather_windows_s16(const int16_t* img, const int64_t* d, int64_t IWp, int64_t first,
                                                 int64_t rows, int64_t Kp, int16_t* out) {
    const int64_t OW = d[EM_CONV_I_OW], IC = d[EM_CONV_I_IC], KH = d[EM_CONV_I_KH], span = d[EM_CONV_I_KW] * IC;
    const int64_t row_step = d[EM_CONV_I_SH] * IWp * IC, col_step = d[EM_CONV_I_SW] * IC;
    const int64_t win_step = d[EM_CONV_I_DH] * IWp * IC, K = KH * span;
    int64_t oy = first / OW, ox = first % OW;
    for (int64_t r = 0; r < rows; r++) {
        const int16_t* src = img + oy * row_step + ox * col_step;
        int16_t* dst = out + r * Kp;
        for (int64_t ky = 0; ky < KH; ky++, src += win_step, dst += span)
            for (int64_t k = 0; k < span; k += 16)
                _mm256_storeu_si256((__m256i*)(dst + k), _mm256_loadu_si256((const __m256i*)(src + k)));
        for (int64_t k = K; k < Kp; k++) out[r * Kp + k] = 0;
        if (++ox == OW) { ox = 0; oy++; }
    }
}

/* Rows [r_begin, r_end) of the image an AVX2 conv reads as int16 (x sign-extended), padded with in_zp to the rows
 * and columns its windows touch (top-left at (-pad_top, -pad_left)): (r_end - r_begin) x IWp x IC int16 from out,
 * with 64 bytes of slack after them.  A thread's slice pads only the rows its output rows read. */
EM_AVX2_TARGET static void em_pad_rows_s16(const int8_t* img, const int64_t* d, int64_t r_begin, int64_t r_end,
                                           int64_t IWp, int16_t* out) {
    const int64_t IH = d[EM_CONV_I_IH], IW = d[EM_CONV_I_IW], IC = d[EM_CONV_I_IC];
    const int64_t PT = d[EM_CONV_I_PAD_TOP], PL = d[EM_CONV_I_PAD_LEFT];
    const __m256i pad = _mm256_set1_epi16((int16_t)d[EM_CONV_I_IN_ZP]);
    const int64_t x0 = PL < IWp ? PL : IWp, x1 = IW + PL < IWp ? IW + PL : IWp;   /* columns holding pixels */
    for (int64_t r = r_begin; r <= r_end; r++) {
        int16_t* o = out + (r - r_begin) * IWp * IC;
        const int64_t iy = r - PT;
        const int64_t n = r == r_end ? 32 : IWp * IC;        /* the slack row: 64 bytes of padding */
        if (r == r_end || iy < 0 || iy >= IH || x1 <= x0) {
            for (int64_t k = 0; k < n; k += 16) _mm256_storeu_si256((__m256i*)(o + k), pad);
            continue;
        }
        for (int64_t k = 0; k < x0 * IC; k += 16) _mm256_storeu_si256((__m256i*)(o + k), pad);
        const int8_t* src = img + iy * IW * IC;
        int16_t* dst = o + x0 * IC;
        const int64_t total = (x1 - x0) * IC;
        int64_t k = 0;
        for (; k + 16 <= total; k += 16)
            _mm256_storeu_si256((__m256i*)(dst + k), _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(src + k))));
        for (; k < total; k++) dst[k] = src[k];
        for (k = x1 * IC; k < IWp * IC; k += 16) _mm256_storeu_si256((__m256i*)(o + k), pad);
    }
}

/* The whole padded image (IHp rows): em_pad_rows_s16 over every row. */
EM_AVX2_TARGET static inline void em_pad_image_s16(const int8_t* img, const int64_t* d, int64_t IHp, int64_t IWp,
                                                   int16_t* out) {
    em_pad_rows_s16(img, d, 0, IHp, IWp, out);
}

/* The padded rows output pixels [r0, r1) read (r1 > r0): [*first_row, *end_row), and the number of output pixels
 * before the slice's first output row (first + m then counts pixels from there). */
static inline int64_t em_slice_padded_rows(const int64_t* d, int64_t r0, int64_t r1, int64_t* first_row,
                                           int64_t* end_row) {
    const int64_t OW = d[EM_CONV_I_OW], oy0 = r0 / OW, oy1 = (r1 - 1) / OW;
    *first_row = oy0 * d[EM_CONV_I_SH];
    *end_row = oy1 * d[EM_CONV_I_SH] + (d[EM_CONV_I_KH] - 1) * d[EM_CONV_I_DH] + 1;
    return oy0 * OW;
}
#endif
#endif
