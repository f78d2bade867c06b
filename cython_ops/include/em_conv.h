/* CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, int8 and float32, NHWC. */
#ifndef EM_CONV_H
#define EM_CONV_H
#include "em_params.h"
#include "em_gemm.h"
#include "em_gemm_vnni.h"
#include "em_gemm_avx2.h"
#include "em_threads.h"
#include "em_depthwise.h"

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

static void em_conv2d_int8(const em_params* p) {
    const int64_t* d = p->i;
    const int8_t* in = (const int8_t*)p->ptr[0];
    const int8_t* w = (const int8_t*)p->ptr[1];
    int8_t* out = (int8_t*)p->ptr[3];
    int8_t* col = (int8_t*)p->ptr[6];
    em_requant_cols rq = {(const int32_t*)p->ptr[2], (const int32_t*)p->ptr[4], (const int32_t*)p->ptr[5],
                          (int32_t)d[CI_OUTZP], (int32_t)d[CI_AMIN], (int32_t)d[CI_AMAX], (int32_t)d[CI_MODE],
                          (const double*)p->ptr[7], (const float*)p->ptr[8]};
    const int64_t K = d[CI_KH] * d[CI_KW] * d[CI_IC], OC = d[CI_OC];
    const int64_t P = d[CI_OH] * d[CI_OW], chunk = d[CI_CHUNK];
    const int8_t pad = (int8_t)d[CI_INZP];
    for (int64_t b = 0; b < d[CI_N]; b++) {
        if (d[CI_DIRECT]) {
            em_gemm_s8_requant(in + b * P * K, K, w, P, OC, K, out + b * P * OC, OC, &rq);
            continue;
        }
        for (int64_t first = 0; first < P; first += chunk) {
            int64_t rows = P - first < chunk ? P - first : chunk;
            em_im2col_int8_t(in, d, b, first, rows, pad, col);
            em_gemm_s8_requant(col, K, w, rows, OC, K, out + (b * P + first) * OC, OC, &rq);
        }
    }
}

static void em_conv2d_f32(const em_params* p) {
    const int64_t* d = p->i;
    const float* in = (const float*)p->ptr[0];
    const float* w = (const float*)p->ptr[1];
    const float* bias = (const float*)p->ptr[2];
    float* out = (float*)p->ptr[3];
    float* col = (float*)p->ptr[6];
    const int64_t K = d[CI_KH] * d[CI_KW] * d[CI_IC], OC = d[CI_OC];
    const int64_t P = d[CI_OH] * d[CI_OW], chunk = d[CI_CHUNK];
    for (int64_t b = 0; b < d[CI_N]; b++) {
        if (d[CI_DIRECT]) {
            em_gemm_f32(in + b * P * K, K, w, bias, P, OC, K, out + b * P * OC, OC, p->f[0], p->f[1]);
            continue;
        }
        for (int64_t first = 0; first < P; first += chunk) {
            int64_t rows = P - first < chunk ? P - first : chunk;
            em_im2col_float(in, d, b, first, rows, 0.0f, col);
            em_gemm_f32(col, K, w, bias, rows, OC, K, out + (b * P + first) * OC, OC, p->f[0], p->f[1]);
        }
    }
}

/* Depthwise: weights [KH][KW][OC], output channel oc = ic * DM + m; scratch holds OC int32/float sums. */
static void em_depthwise_int8(const em_params* p) {
    const int64_t* d = p->i;
    const int8_t* in = (const int8_t*)p->ptr[0];
    const int8_t* w = (const int8_t*)p->ptr[1];
    int8_t* out = (int8_t*)p->ptr[3];
    int32_t* acc = (int32_t*)p->ptr[6];
    em_requant_cols rq = {(const int32_t*)p->ptr[2], (const int32_t*)p->ptr[4], (const int32_t*)p->ptr[5],
                          (int32_t)d[CI_OUTZP], (int32_t)d[CI_AMIN], (int32_t)d[CI_AMAX], (int32_t)d[CI_MODE],
                          (const double*)p->ptr[7], (const float*)p->ptr[8]};
    const int64_t IH = d[CI_IH], IW = d[CI_IW], IC = d[CI_IC], OH = d[CI_OH], OW = d[CI_OW], OC = d[CI_OC];
    const int64_t KH = d[CI_KH], KW = d[CI_KW], DM = d[CI_DM];
    const int32_t in_zp = (int32_t)d[CI_INZP];
    for (int64_t b = 0; b < d[CI_N]; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t ox = 0; ox < OW; ox++) {
        for (int64_t c = 0; c < OC; c++) acc[c] = 0;
        em_depthwise_accumulate_s8(in + b * IH * IW * IC, w, IH, IW, IC, OC, KH, KW, DM,
                                   oy * d[CI_SH] - d[CI_PT], ox * d[CI_SW] - d[CI_PL], d[CI_DH], d[CI_DW],
                                   in_zp, acc);
        int8_t* o = out + ((b * OH + oy) * OW + ox) * OC;
        for (int64_t c = 0; c < OC; c++) o[c] = em_requant_one(acc[c], (int)c, &rq);
    }
}

static void em_depthwise_f32(const em_params* p) {
    const int64_t* d = p->i;
    const float* in = (const float*)p->ptr[0];
    const float* w = (const float*)p->ptr[1];
    const float* bias = (const float*)p->ptr[2];
    float* out = (float*)p->ptr[3];
    float* acc = (float*)p->ptr[6];
    const int64_t IH = d[CI_IH], IW = d[CI_IW], IC = d[CI_IC], OH = d[CI_OH], OW = d[CI_OW], OC = d[CI_OC];
    const int64_t KH = d[CI_KH], KW = d[CI_KW], DM = d[CI_DM];
    for (int64_t b = 0; b < d[CI_N]; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t ox = 0; ox < OW; ox++) {
        for (int64_t c = 0; c < OC; c++) acc[c] = 0.0f;
        for (int64_t ky = 0; ky < KH; ky++) {
            int64_t iy = oy * d[CI_SH] - d[CI_PT] + ky * d[CI_DH];
            if (iy < 0 || iy >= IH) continue;
            for (int64_t kx = 0; kx < KW; kx++) {
                int64_t ix = ox * d[CI_SW] - d[CI_PL] + kx * d[CI_DW];
                if (ix < 0 || ix >= IW) continue;
                const float* x = in + ((b * IH + iy) * IW + ix) * IC;
                const float* wr = w + (ky * KW + kx) * OC;
                for (int64_t ic = 0; ic < IC; ic++)
                    for (int64_t m = 0; m < DM; m++) acc[ic * DM + m] += x[ic] * wr[ic * DM + m];
            }
        }
        float* o = out + ((b * OH + oy) * OW + ox) * OC;
        for (int64_t c = 0; c < OC; c++) o[c] = em_clamp_f32(acc[c] + (bias ? bias[c] : 0.0f), p->f[0], p->f[1]);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
/* One output vector of the depthwise kernel below: 16 lanes, TG groups of 4 taps at px + off[t]. */
EM_VNNI_TARGET static inline __attribute__((always_inline)) void em_depthwise_vector16(
        const uint8_t* px, const int64_t* off, const int8_t* w, int64_t TG, const em_vnni_gemm* g, int64_t lane0,
        int8_t* o, int64_t lanes, const em_mbqm16* q) {
    /* dword 4L + t <- dword 4t + L: lane L gets bytes 4L..4L+3 of each tap; then byte 4i + t <- byte 4t + i */
    const __m512i gather = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    const __m512i interleave = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    __m512i acc = _mm512_setzero_si512();
    for (int64_t tg = 0; tg < TG; tg++, off += 4, w += 64) {
        __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i*)(px + off[0])));
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i*)(px + off[1])), 1);
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i*)(px + off[2])), 2);
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i*)(px + off[3])), 3);
        v = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(gather, v), interleave);
        acc = _mm512_dpbusd_epi32(acc, v, _mm512_loadu_si512(w));
    }
    __mmask16 cols = lanes >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << lanes) - 1);
    em_vnni_store16_q(acc, g, lane0, o, cols, q);
}

/* Depthwise on 64 channels at once (C % 64 == 0): four taps' 64-byte rows are interleaved by two rounds of
 * in-lane unpacks, which leave accumulator k holding channels 16 L + 4 k + i in dword i of 128-bit lane L; the
 * weights and per-lane requantization are packed in that order, and saturating packs of the four requantized
 * vectors (already in [-128, 127]) restore channel order for one 64-byte store. */
EM_VNNI_TARGET static inline __attribute__((always_inline)) void em_depthwise_vector64(
        const uint8_t* px, const int64_t* off, const int8_t* w, int64_t TG, const em_vnni_gemm* g, int64_t lane0,
        int8_t* o, const em_mbqm16* q, int64_t nbytes) {
    __m512i acc[4];
    for (int k = 0; k < 4; k++) acc[k] = _mm512_loadu_si512(g->bias + lane0 + 16 * k);
    for (int64_t tg = 0; tg < TG; tg++, off += 4, w += 256) {
        const __m512i t0 = _mm512_loadu_si512(px + off[0]), t1 = _mm512_loadu_si512(px + off[1]);
        const __m512i t2 = _mm512_loadu_si512(px + off[2]), t3 = _mm512_loadu_si512(px + off[3]);
        const __m512i lo01 = _mm512_unpacklo_epi8(t0, t1), hi01 = _mm512_unpackhi_epi8(t0, t1);
        const __m512i lo23 = _mm512_unpacklo_epi8(t2, t3), hi23 = _mm512_unpackhi_epi8(t2, t3);
        acc[0] = _mm512_dpbusd_epi32(acc[0], _mm512_unpacklo_epi16(lo01, lo23), _mm512_loadu_si512(w));
        acc[1] = _mm512_dpbusd_epi32(acc[1], _mm512_unpackhi_epi16(lo01, lo23), _mm512_loadu_si512(w + 64));
        acc[2] = _mm512_dpbusd_epi32(acc[2], _mm512_unpacklo_epi16(hi01, hi23), _mm512_loadu_si512(w + 128));
        acc[3] = _mm512_dpbusd_epi32(acc[3], _mm512_unpackhi_epi16(hi01, hi23), _mm512_loadu_si512(w + 192));
    }
    __m512i v[4];
    for (int k = 0; k < 4; k++) v[k] = em_vnni_requant16(acc[k], g, lane0 + 16 * k, &q[k]);
    const __m512i bytes = _mm512_packs_epi16(_mm512_packs_epi32(v[0], v[1]), _mm512_packs_epi32(v[2], v[3]));
    if (nbytes >= 64) _mm512_storeu_si512(o, bytes);
    else _mm512_mask_storeu_epi8(o, ((__mmask64)-1) >> (64 - nbytes), bytes);
}

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

/* VNNI variants. ptr: 0 input, 1 packed weights (16c4), 2 bias (VNNI-corrected, padded), 3 output, 4 mult,
 * 5 shift, 6 scratch, 7 double scales, 8 float scales; per-column arrays padded to a multiple of 16.
 * CI_DIRECT says how the GEMM reads its rows (all as uint8 x + 128 in scratch):
 *   1 1x1 stride-1 conv: the input's rows repacked to Kp
 *   4 implicit GEMM over a padded copy of the input (dilation_w 1); the weights are packed per window row,
 *     KW * IC rounded up to 4 (CI_KP = KH * that)
 *   0 im2col in chunks of CI_CHUNK rows (dilation_w > 1)
 * i[24] threads: the output pixels of each image are split into that many slices (em_threads.h), each with its
 * own scratch of i[25] bytes. */
static void em_conv2d_vnni_slice(const void* ctx, int64_t slice, int64_t nslices) {
    const em_params* p = (const em_params*)ctx;
    const int64_t* d = p->i;
    const int8_t* in = (const int8_t*)p->ptr[0];
    int8_t* out = (int8_t*)p->ptr[3];
    const int64_t K = d[CI_KH] * d[CI_KW] * d[CI_IC], OC = d[CI_OC], Kp = d[CI_KP], IC = d[CI_IC];
    const int64_t P = d[CI_OH] * d[CI_OW], chunk = d[CI_CHUNK], mode = d[CI_DIRECT];
    const int64_t IHp = (d[CI_OH] - 1) * d[CI_SH] + (d[CI_KH] - 1) * d[CI_DH] + 1;
    const int64_t IWp = (d[CI_OW] - 1) * d[CI_SW] + (d[CI_KW] - 1) * d[CI_DW] + 1;
    const int64_t r0 = P * slice / nslices, r1 = P * (slice + 1) / nslices;
    em_vnni_gemm g = {(const int8_t*)p->ptr[1], (const int32_t*)p->ptr[2], (const int32_t*)p->ptr[4],
                      (const int32_t*)p->ptr[5], (const double*)p->ptr[7], (const float*)p->ptr[8], OC, Kp,
                      (int32_t)d[CI_OUTZP], (int32_t)d[CI_AMIN], (int32_t)d[CI_AMAX], (int32_t)d[CI_MODE]};
    uint8_t* scratch = (uint8_t*)p->ptr[6] + slice * d[25];
    if (r1 <= r0) return;
    for (int64_t b = 0; b < d[CI_N]; b++) {
        const int8_t* img = in + b * d[CI_IH] * d[CI_IW] * IC;
        int8_t* o = out + b * P * OC;
        if (mode == 1) {
            em_pack_rows_u8(img + r0 * K, K, r1 - r0, K, Kp, scratch);
            em_gemm_u8s8_vnni(scratch, r1 - r0, &g, o + r0 * OC, OC);
        } else if (mode == 4) {
            em_pad_image_u8(img, d, IHp, IWp, scratch);
            em_vnni_rows rows = {scratch, 0, d[CI_OW], d[CI_SH] * IWp * IC, d[CI_SW] * IC,
                                 d[CI_KH], d[CI_DH] * IWp * IC, Kp / d[CI_KH] / 4, r0};
            em_gemm_vnni_rows(&rows, r1 - r0, &g, o + r0 * OC, OC);
        } else {
            for (int64_t first = r0; first < r1; first += chunk) {
                int64_t rows = r1 - first < chunk ? r1 - first : chunk;
                em_im2col_u8(in, d, b, first, rows, Kp, scratch);
                em_gemm_u8s8_vnni(scratch, rows, &g, o + first * OC, OC);
            }
        }
    }
}

static void em_conv2d_int8_vnni(const em_params* p) {
    em_parallel_run(p->i[24] > 1 ? p->i[24] : 1, em_conv2d_vnni_slice, p);
}

/* i: 0 rows, 1 K, 2 N, 3 out_zp, 4 act_min, 5 act_max, 6 mode, 7 Kp, 8 chunk rows */
static void em_fully_connected_int8_vnni(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t M = d[0], K = d[1], Kp = d[7], chunk = d[8];
    em_vnni_gemm g = {(const int8_t*)p->ptr[1], (const int32_t*)p->ptr[2], (const int32_t*)p->ptr[4],
                      (const int32_t*)p->ptr[5], (const double*)p->ptr[7], (const float*)p->ptr[8], d[2], Kp,
                      (int32_t)d[3], (int32_t)d[4], (int32_t)d[5], (int32_t)d[6]};
    const int8_t* in = (const int8_t*)p->ptr[0];
    int8_t* out = (int8_t*)p->ptr[3];
    uint8_t* packed = (uint8_t*)p->ptr[6];
    for (int64_t first = 0; first < M; first += chunk) {
        int64_t rows = M - first < chunk ? M - first : chunk;
        em_pack_rows_u8(in + first * K, K, rows, K, Kp, packed);
        em_gemm_u8s8_vnni(packed, rows, &g, out + first * d[2], d[2]);
    }
}
/* Depthwise (depth multiplier 1) with vpdpbusd over 4 taps at a time.  The input is first copied to a padded
 * uint8 image (em_pad_image_u8), so every tap is a plain load and padding taps cancel against the bias.  A vector
 * holds 16 lanes: 16 channels of one output pixel, or, when stride_w is 1 and C divides 16, all C channels of
 * PV = 16 / C neighbouring pixels (their taps are 16 contiguous bytes).  Four taps' 16 bytes go into the four
 * 128-bit lanes, then a dword permute and an in-lane byte shuffle put each lane's 4 taps in one dword.
 * i: conv layout, then 23 PV, 24 channel blocks CB, 25 tap groups TG (taps rounded up to 4, at most
 * EM_DW_MAX_TAPS), 26 wide: pixels per 64-byte step (em_depthwise_vector64; 1 when C % 64 == 0, 64 / C when
 * stride_w is 1 and C divides 64; 0: 16-lane steps) with weights [blocks][TG][4 accumulators][16 lanes][4 taps];
 * ptr: 0 input, 1 weights [CB][TG][16 lanes][4 taps], 2 bias per lane (includes
 * -(zp + 128) sum w), 3 output, 4 mult, 5 shift (per lane), 6 scratch (padded image + 64), 7 double scales,
 * 8 float scales (per lane). */
#define EM_DW_MAX_TAPS 64
EM_VNNI_TARGET static void em_depthwise_int8_vnni(const em_params* p) {
    const int64_t* d = p->i;
    const int8_t* in = (const int8_t*)p->ptr[0];
    const int8_t* w = (const int8_t*)p->ptr[1];
    int8_t* out = (int8_t*)p->ptr[3];
    uint8_t* img = (uint8_t*)p->ptr[6];
    const int64_t C = d[CI_OC], OH = d[CI_OH], OW = d[CI_OW], KW = d[CI_KW];
    const int64_t PV = d[23], CB = d[24], TG = d[25];
    const int64_t IHp = (OH - 1) * d[CI_SH] + (d[CI_KH] - 1) * d[CI_DH] + 1;
    const int64_t IWp = (OW - 1) * d[CI_SW] + (KW - 1) * d[CI_DW] + 1;
    em_vnni_gemm g = {NULL, (const int32_t*)p->ptr[2], (const int32_t*)p->ptr[4], (const int32_t*)p->ptr[5],
                      (const double*)p->ptr[7], (const float*)p->ptr[8], 16 * CB, 0, (int32_t)d[CI_OUTZP],
                      (int32_t)d[CI_AMIN], (int32_t)d[CI_AMAX], (int32_t)d[CI_MODE]};
    int64_t off[EM_DW_MAX_TAPS];
    for (int64_t t = 0; t < 4 * TG; t++)
        off[t] = t < d[CI_KH] * KW ? ((t / KW) * d[CI_DH] * IWp + (t % KW) * d[CI_DW]) * C : 0;
    for (int64_t b = 0; b < d[CI_N]; b++) {
        em_pad_image_u8(in + b * d[CI_IH] * d[CI_IW] * C, d, IHp, IWp, img);
        if (d[26]) {   /* 64-byte steps (em_depthwise_vector64): C / 64 channel blocks, or 64 / C pixels */
            const int64_t step = d[26], blocks = C >= 64 ? C / 64 : 1;
            for (int64_t cb = 0; cb < blocks; cb++) {
                em_mbqm16 q[4];
                for (int k = 0; k < 4; k++) q[k] = em_vnni_consts(&g, 64 * cb + 16 * k);
                for (int64_t oy = 0; oy < OH; oy++)
                for (int64_t ox = 0; ox < OW; ox += step) {
                    const uint8_t* px = img + (oy * d[CI_SH] * IWp + ox * d[CI_SW]) * C + 64 * cb;
                    const int64_t nbytes = step > 1 ? (OW - ox < step ? OW - ox : step) * C : 64;
                    em_depthwise_vector64(px, off, w + cb * TG * 256, TG, &g, 64 * cb,
                                          out + ((b * OH + oy) * OW + ox) * C + 64 * cb, q, nbytes);
                }
            }
            continue;
        }
        for (int64_t cb = 0; cb < CB; cb++) {     /* channel blocks outermost: requant constants derived once */
            const em_mbqm16 q = em_vnni_consts(&g, 16 * cb);
            for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox += PV) {
                const uint8_t* px = img + (oy * d[CI_SH] * IWp + ox * d[CI_SW]) * C + 16 * cb;
                int8_t* o = out + ((b * OH + oy) * OW + ox) * C + 16 * cb;
                const int64_t lanes = PV > 1 ? (OW - ox < PV ? OW - ox : PV) * C : C - 16 * cb;
                em_depthwise_vector16(px, off, w + cb * TG * 64, TG, &g, 16 * cb, o, lanes, &q);
            }
        }
    }
}
/* AVX2 variants (CPUs without VNNI).  ptr: 0 input, 1 packed int16 weights (em_gemm_avx2.h), 2 bias
 * (bias - zp sum w, padded to a multiple of 8), 3 output, 4 mult, 5 shift, 6 scratch, 7 double scales,
 * 8 float scales (padded).  Conv: i as em_conv2d_int8 plus CI_KP; scratch = CI_CHUNK rows of K int8 (im2col,
 * unless direct) then CI_CHUNK rows of Kp int16. */
static void em_conv2d_int8_avx2(const em_params* p) {
    const int64_t* d = p->i;
    const int8_t* in = (const int8_t*)p->ptr[0];
    int8_t* out = (int8_t*)p->ptr[3];
    const int64_t K = d[CI_KH] * d[CI_KW] * d[CI_IC], OC = d[CI_OC], Kp = d[CI_KP];
    const int64_t P = d[CI_OH] * d[CI_OW], chunk = d[CI_CHUNK];
    em_avx2_gemm g = {(const int16_t*)p->ptr[1], (const int32_t*)p->ptr[2], (const int32_t*)p->ptr[4],
                      (const int32_t*)p->ptr[5], (const double*)p->ptr[7], (const float*)p->ptr[8], OC, Kp,
                      (int32_t)d[CI_OUTZP], (int32_t)d[CI_AMIN], (int32_t)d[CI_AMAX], (int32_t)d[CI_MODE]};
    int8_t* col = (int8_t*)p->ptr[6];
    int16_t* rows16 = (int16_t*)((uint8_t*)p->ptr[6] + (d[CI_DIRECT] ? 0 : (chunk * K + 31) / 32 * 32));
    for (int64_t b = 0; b < d[CI_N]; b++) {
        for (int64_t first = 0; first < P; first += chunk) {
            int64_t rows = P - first < chunk ? P - first : chunk;
            if (d[CI_DIRECT]) {
                em_pack_rows_s16(in + (b * P + first) * K, K, rows, K, Kp, rows16);
            } else {
                em_im2col_int8_t(in, d, b, first, rows, (int8_t)d[CI_INZP], col);
                em_pack_rows_s16(col, K, rows, K, Kp, rows16);
            }
            em_gemm_s16_avx2(rows16, Kp, rows, &g, out + (b * P + first) * OC, OC);
        }
    }
}

/* i: 0 rows, 1 K, 2 N, 3 out_zp, 4 act_min, 5 act_max, 6 mode, 7 Kp, 8 chunk rows; scratch chunk x Kp int16 */
static void em_fully_connected_int8_avx2(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t M = d[0], K = d[1], Kp = d[7], chunk = d[8];
    em_avx2_gemm g = {(const int16_t*)p->ptr[1], (const int32_t*)p->ptr[2], (const int32_t*)p->ptr[4],
                      (const int32_t*)p->ptr[5], (const double*)p->ptr[7], (const float*)p->ptr[8], d[2], Kp,
                      (int32_t)d[3], (int32_t)d[4], (int32_t)d[5], (int32_t)d[6]};
    const int8_t* in = (const int8_t*)p->ptr[0];
    int8_t* out = (int8_t*)p->ptr[3];
    int16_t* rows16 = (int16_t*)p->ptr[6];
    for (int64_t first = 0; first < M; first += chunk) {
        int64_t rows = M - first < chunk ? M - first : chunk;
        em_pack_rows_s16(in + first * K, K, rows, K, Kp, rows16);
        em_gemm_s16_avx2(rows16, Kp, rows, &g, out + first * d[2], d[2]);
    }
}
#else
/* never selected: the loader picks these kernels only when the CPU reports the ISA */
static void em_conv2d_int8_avx2(const em_params* p) { (void)p; }
static void em_fully_connected_int8_avx2(const em_params* p) { (void)p; }
static void em_depthwise_int8_vnni(const em_params* p) { (void)p; }
static void em_conv2d_int8_vnni(const em_params* p) { (void)p; }
static void em_fully_connected_int8_vnni(const em_params* p) { (void)p; }
#endif

/* FULLY_CONNECTED: i: 0 rows, 1 K, 2 N, 3 out_zp, 4 act_min, 5 act_max, 6 mode;
 * ptr: 0 input, 1 weights [N][K], 2 bias, 3 output, 4 mult, 5 shift, 6 scratch (unused), 7 double scales,
 * 8 float scales */
static void em_fully_connected_int8(const em_params* p) {
    const int64_t* d = p->i;
    em_requant_cols rq = {(const int32_t*)p->ptr[2], (const int32_t*)p->ptr[4], (const int32_t*)p->ptr[5],
                          (int32_t)d[3], (int32_t)d[4], (int32_t)d[5], (int32_t)d[6], (const double*)p->ptr[7],
                          (const float*)p->ptr[8]};
    em_gemm_s8_requant((const int8_t*)p->ptr[0], d[1], (const int8_t*)p->ptr[1], d[0], d[2], d[1],
                       (int8_t*)p->ptr[3], d[2], &rq);
}

static void em_fully_connected_f32(const em_params* p) {
    const int64_t* d = p->i;
    em_gemm_f32((const float*)p->ptr[0], d[1], (const float*)p->ptr[1], (const float*)p->ptr[2], d[0], d[2], d[1],
                (float*)p->ptr[3], d[2], p->f[0], p->f[1]);
}
#endif
