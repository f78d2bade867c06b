/* DEPTHWISE_CONV_2D, int8 and float32, NHWC, and the integer heart shared by the int8 and hybrid kernels
 * (em_depthwise_accumulate_s8); the AVX-512 VNNI kernel reads a padded uint8 copy of the image (em_im2col.h).
 * em_depthwise_int8 / em_depthwise_f32 read the conv layout EM_CONV (em_im2col.h). */
#ifndef EM_DEPTHWISE_H
#define EM_DEPTHWISE_H
#include <stdint.h>
#include "em_params.h"
#include "em_gemm.h"
#include "em_gemm_vnni.h"
#include "em_im2col.h"

/* VNNI depthwise (em_depthwise_int8_vnni, below): the conv layout's pointers, with 1 the weights
 * [CB][TG][16 lanes][4 taps] (or, for 64-byte steps, [blocks][TG][4 accumulators][16 lanes][4 taps]), 2 the bias
 * per lane (includes -(zp + 128) sum w), 4 / 5 / 7 / 8 the requantization per lane, 6 the scratch (padded image
 * + 64); its integers, then PV (pixels per 16-lane vector), CB (channel blocks of 16), TG (tap groups: taps
 * rounded up to 4, at most EM_DW_MAX_TAPS) and wide (pixels per 64-byte step, em_depthwise_vector64: 1 when
 * C % 64 == 0, 64 / C when stride_w is 1 and C divides 64; 0: 16-lane steps), and w_zp, the weights' zero point
 * (uint8 models; 0 otherwise): then each lane also sums its taps' bytes (vpdpbusd with ones) and adds -w_zp times
 * that sum, the bias holding + taps (zp + 128) w_zp (em_gemm_vnni.h). */
enum { EM_DEPTHWISE_VNNI_I_PV = EM_CONV_I_CHUNK + 1, EM_DEPTHWISE_VNNI_I_CB, EM_DEPTHWISE_VNNI_I_TG,
       EM_DEPTHWISE_VNNI_I_WIDE, EM_DEPTHWISE_VNNI_I_W_ZP, EM_DEPTHWISE_VNNI_I_COUNT };
enum { EM_DEPTHWISE_VNNI_P_COUNT = EM_CONV_P_COUNT, EM_DEPTHWISE_VNNI_F_COUNT = 0 };

/* acc[oc] += sum over the taps of one output pixel that fall inside the image of w[tap][oc] * (x - zp).
 * img: one NHWC image (IH x IW x IC); w: [KH*KW][OC] with oc = ic * DM + m; (y0, x0): the window's top-left
 * input position (may be negative); (dh, dw): dilation. Padding taps are skipped, as the reference does.
 * The _s16 form reads int16 weights w - w_zp (uint8 models' asymmetric weights). */
#define EM_DEPTHWISE_ACCUMULATE(NAME, WT)                                                                     \
static inline void NAME(const int8_t* img, const WT* w, int64_t IH, int64_t IW, int64_t IC, int64_t OC,       \
                        int64_t KH, int64_t KW, int64_t DM, int64_t y0, int64_t x0, int64_t dh, int64_t dw,   \
                        int32_t zp, int32_t* acc) {                                                           \
    for (int64_t ky = 0; ky < KH; ky++) {                                                                     \
        const int64_t iy = y0 + ky * dh;                                                                      \
        if (iy < 0 || iy >= IH) continue;                                                                     \
        for (int64_t kx = 0; kx < KW; kx++) {                                                                 \
            const int64_t ix = x0 + kx * dw;                                                                  \
            if (ix < 0 || ix >= IW) continue;                                                                 \
            const int8_t* x = img + (iy * IW + ix) * IC;                                                      \
            const WT* wr = w + (ky * KW + kx) * OC;                                                           \
            if (DM == 1) {                                                                                    \
                for (int64_t c = 0; c < OC; c++) acc[c] += (int32_t)wr[c] * ((int32_t)x[c] - zp);             \
            } else {                                                                                          \
                for (int64_t ic = 0; ic < IC; ic++) {                                                         \
                    const int32_t xv = (int32_t)x[ic] - zp;                                                   \
                    for (int64_t m = 0; m < DM; m++) acc[ic * DM + m] += (int32_t)wr[ic * DM + m] * xv;       \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
}
EM_DEPTHWISE_ACCUMULATE(em_depthwise_accumulate_s8, int8_t)
EM_DEPTHWISE_ACCUMULATE(em_depthwise_accumulate_s16, int16_t)

/* Depthwise: weights [KH][KW][OC], output channel oc = ic * DM + m; scratch holds OC int32/float sums. */
#define EM_DEPTHWISE_INT8_BODY(WT, ACCUMULATE)                                                                \
    const int64_t* d = p->i;                                                                                  \
    const int8_t* in = (const int8_t*)p->ptr[EM_CONV_P_INPUT];                                                \
    const WT* w = (const WT*)p->ptr[EM_CONV_P_WEIGHTS];                                                       \
    int8_t* out = (int8_t*)p->ptr[EM_CONV_P_OUTPUT];                                                          \
    int32_t* acc = (int32_t*)p->ptr[EM_CONV_P_SCRATCH];                                                       \
    em_requant_cols rq = {(const int32_t*)p->ptr[EM_CONV_P_BIAS], (const int32_t*)p->ptr[EM_CONV_P_MULT],     \
                          (const int32_t*)p->ptr[EM_CONV_P_SHIFT], (int32_t)d[EM_CONV_I_OUT_ZP],              \
                          (int32_t)d[EM_CONV_I_ACT_MIN], (int32_t)d[EM_CONV_I_ACT_MAX], (int32_t)d[EM_CONV_I_MODE], \
                          (const double*)p->ptr[EM_CONV_P_DOUBLE_SCALES],                                     \
                          (const float*)p->ptr[EM_CONV_P_FLOAT_SCALES]};                                      \
    const int64_t IH = d[EM_CONV_I_IH], IW = d[EM_CONV_I_IW], IC = d[EM_CONV_I_IC], OH = d[EM_CONV_I_OH];     \
    const int64_t OW = d[EM_CONV_I_OW], OC = d[EM_CONV_I_OC];                                                 \
    const int64_t KH = d[EM_CONV_I_KH], KW = d[EM_CONV_I_KW], DM = d[EM_CONV_I_DM];                           \
    const int32_t in_zp = (int32_t)d[EM_CONV_I_IN_ZP];                                                        \
    for (int64_t b = 0; b < d[EM_CONV_I_N]; b++)                                                              \
    for (int64_t oy = 0; oy < OH; oy++)                                                                       \
    for (int64_t ox = 0; ox < OW; ox++) {                                                                     \
        for (int64_t c = 0; c < OC; c++) acc[c] = 0;                                                          \
        ACCUMULATE(in + b * IH * IW * IC, w, IH, IW, IC, OC, KH, KW, DM,                                      \
                   oy * d[EM_CONV_I_SH] - d[EM_CONV_I_PAD_TOP], ox * d[EM_CONV_I_SW] - d[EM_CONV_I_PAD_LEFT], \
                   d[EM_CONV_I_DH], d[EM_CONV_I_DW], in_zp, acc);                                             \
        int8_t* o = out + ((b * OH + oy) * OW + ox) * OC;                                                     \
        for (int64_t c = 0; c < OC; c++) o[c] = em_requant_one(acc[c], (int)c, &rq);                          \
    }

static void em_depthwise_int8(const em_params* p) { EM_DEPTHWISE_INT8_BODY(int8_t, em_depthwise_accumulate_s8) }

/* em_depthwise_int8 with int16 weights w - w_zp (uint8 models' asymmetric weights). */
static void em_depthwise_int8_w16(const em_params* p) { EM_DEPTHWISE_INT8_BODY(int16_t, em_depthwise_accumulate_s16) }

static void em_depthwise_f32(const em_params* p) {
    const int64_t* d = p->i;
    const float* in = (const float*)p->ptr[EM_CONV_P_INPUT];
    const float* w = (const float*)p->ptr[EM_CONV_P_WEIGHTS];
    const float* bias = (const float*)p->ptr[EM_CONV_P_BIAS];
    float* out = (float*)p->ptr[EM_CONV_P_OUTPUT];
    float* acc = (float*)p->ptr[EM_CONV_P_SCRATCH];
    const int64_t IH = d[EM_CONV_I_IH], IW = d[EM_CONV_I_IW], IC = d[EM_CONV_I_IC], OH = d[EM_CONV_I_OH];
    const int64_t OW = d[EM_CONV_I_OW], OC = d[EM_CONV_I_OC];
    const int64_t KH = d[EM_CONV_I_KH], KW = d[EM_CONV_I_KW], DM = d[EM_CONV_I_DM];
    for (int64_t b = 0; b < d[EM_CONV_I_N]; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t ox = 0; ox < OW; ox++) {
        for (int64_t c = 0; c < OC; c++) acc[c] = 0.0f;
        for (int64_t ky = 0; ky < KH; ky++) {
            int64_t iy = oy * d[EM_CONV_I_SH] - d[EM_CONV_I_PAD_TOP] + ky * d[EM_CONV_I_DH];
            if (iy < 0 || iy >= IH) continue;
            for (int64_t kx = 0; kx < KW; kx++) {
                int64_t ix = ox * d[EM_CONV_I_SW] - d[EM_CONV_I_PAD_LEFT] + kx * d[EM_CONV_I_DW];
                if (ix < 0 || ix >= IW) continue;
                const float* x = in + ((b * IH + iy) * IW + ix) * IC;
                const float* wr = w + (ky * KW + kx) * OC;
                for (int64_t ic = 0; ic < IC; ic++)
                    for (int64_t m = 0; m < DM; m++) acc[ic * DM + m] += x[ic] * wr[ic * DM + m];
            }
        }
        float* o = out + ((b * OH + oy) * OW + ox) * OC;
        for (int64_t c = 0; c < OC; c++)
            o[c] = em_clamp_f32(acc[c] + (bias ? bias[c] : 0.0f), p->f[EM_CONV_F_ACT_MIN], p->f[EM_CONV_F_ACT_MAX]);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
/* Ones for the byte sums of tap group tg (weights with a zero point): 1 in the byte of each real tap, 0 in the
 * padding taps past `taps` (their offsets read tap 0). */
EM_VNNI_TARGET static inline __m512i em_depthwise_ones(int64_t tg, int64_t taps) {
    const int64_t real = taps - 4 * tg;
    return real >= 4 ? _mm512_set1_epi8(1) : _mm512_set1_epi32((int32_t)((1u << (8 * real)) - 1) & 0x01010101);
}

/* One output vector of the depthwise kernel below: 16 lanes, TG groups of 4 taps at px + off[t]; w_zp != 0: the
 * lanes' tap sums times -w_zp are added (taps: the real taps of the TG groups). */
EM_VNNI_TARGET static inline __attribute__((always_inline)) void em_depthwise_vector16(
        const uint8_t* px, const int64_t* off, const int8_t* w, int64_t TG, const em_vnni_gemm* g, int64_t lane0,
        int8_t* o, int64_t lanes, const em_mbqm16* q, int32_t w_zp, int64_t taps) {
    /* dword 4L + t <- dword 4t + L: lane L gets bytes 4L..4L+3 of each tap; then byte 4i + t <- byte 4t + i */
    const __m512i gather = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    const __m512i interleave = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    __m512i acc = _mm512_setzero_si512(), sums = _mm512_setzero_si512();
    for (int64_t tg = 0; tg < TG; tg++, off += 4, w += 64) {
        __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i*)(px + off[0])));
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i*)(px + off[1])), 1);
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i*)(px + off[2])), 2);
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i*)(px + off[3])), 3);
        v = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(gather, v), interleave);
        acc = _mm512_dpbusd_epi32(acc, v, _mm512_loadu_si512(w));
        if (w_zp) sums = _mm512_dpbusd_epi32(sums, v, em_depthwise_ones(tg, taps));
    }
    if (w_zp) acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(sums, _mm512_set1_epi32(-w_zp)));
    __mmask16 cols = lanes >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << lanes) - 1);
    em_vnni_store16_q(acc, g, lane0, o, cols, q);
}

/* Depthwise on 64 channels at once (C % 64 == 0): four taps' 64-byte rows are interleaved by two rounds of
 * in-lane unpacks, which leave accumulator k holding channels 16 L + 4 k + i in dword i of 128-bit lane L; the
 * weights and per-lane requantization are packed in that order, and saturating packs of the four requantized
 * vectors (already in [-128, 127]) restore channel order for one 64-byte store. */
EM_VNNI_TARGET static inline __attribute__((always_inline)) void em_depthwise_vector64(
        const uint8_t* px, const int64_t* off, const int8_t* w, int64_t TG, const em_vnni_gemm* g, int64_t lane0,
        int8_t* o, const em_mbqm16* q, int64_t nbytes, int32_t w_zp, int64_t taps) {
    __m512i acc[4], sums[4];
    for (int k = 0; k < 4; k++) {
        acc[k] = _mm512_loadu_si512(g->bias + lane0 + 16 * k);
        sums[k] = _mm512_setzero_si512();
    }
    for (int64_t tg = 0; tg < TG; tg++, off += 4, w += 256) {
        const __m512i t0 = _mm512_loadu_si512(px + off[0]), t1 = _mm512_loadu_si512(px + off[1]);
        const __m512i t2 = _mm512_loadu_si512(px + off[2]), t3 = _mm512_loadu_si512(px + off[3]);
        const __m512i lo01 = _mm512_unpacklo_epi8(t0, t1), hi01 = _mm512_unpackhi_epi8(t0, t1);
        const __m512i lo23 = _mm512_unpacklo_epi8(t2, t3), hi23 = _mm512_unpackhi_epi8(t2, t3);
        const __m512i v0 = _mm512_unpacklo_epi16(lo01, lo23), v1 = _mm512_unpackhi_epi16(lo01, lo23);
        const __m512i v2 = _mm512_unpacklo_epi16(hi01, hi23), v3 = _mm512_unpackhi_epi16(hi01, hi23);
        acc[0] = _mm512_dpbusd_epi32(acc[0], v0, _mm512_loadu_si512(w));
        acc[1] = _mm512_dpbusd_epi32(acc[1], v1, _mm512_loadu_si512(w + 64));
        acc[2] = _mm512_dpbusd_epi32(acc[2], v2, _mm512_loadu_si512(w + 128));
        acc[3] = _mm512_dpbusd_epi32(acc[3], v3, _mm512_loadu_si512(w + 192));
        if (w_zp) {
            const __m512i ones = em_depthwise_ones(tg, taps);
            sums[0] = _mm512_dpbusd_epi32(sums[0], v0, ones);
            sums[1] = _mm512_dpbusd_epi32(sums[1], v1, ones);
            sums[2] = _mm512_dpbusd_epi32(sums[2], v2, ones);
            sums[3] = _mm512_dpbusd_epi32(sums[3], v3, ones);
        }
    }
    if (w_zp) {
        const __m512i neg_zp = _mm512_set1_epi32(-w_zp);
        for (int k = 0; k < 4; k++) acc[k] = _mm512_add_epi32(acc[k], _mm512_mullo_epi32(sums[k], neg_zp));
    }
    __m512i v[4];
    for (int k = 0; k < 4; k++) v[k] = em_vnni_requant16(acc[k], g, lane0 + 16 * k, &q[k]);
    const __m512i bytes = _mm512_packs_epi16(_mm512_packs_epi32(v[0], v[1]), _mm512_packs_epi32(v[2], v[3]));
    if (nbytes >= 64) _mm512_storeu_si512(o, bytes);
    else _mm512_mask_storeu_epi8(o, ((__mmask64)-1) >> (64 - nbytes), bytes);
}

/* Depthwise (depth multiplier 1) with vpdpbusd over 4 taps at a time.  The input is first copied to a padded
 * uint8 image (em_pad_image_u8), so every tap is a plain load and padding taps cancel against the bias.  A vector
 * holds 16 lanes: 16 channels of one output pixel, or, when stride_w is 1 and C divides 16, all C channels of
 * PV = 16 / C neighbouring pixels (their taps are 16 contiguous bytes).  Four taps' 16 bytes go into the four
 * 128-bit lanes, then a dword permute and an in-lane byte shuffle put each lane's 4 taps in one dword.
 * Parameters: layout EM_DEPTHWISE_VNNI (top of this file). */
#define EM_DW_MAX_TAPS 64
EM_VNNI_TARGET static void em_depthwise_int8_vnni(const em_params* p) {
    const int64_t* d = p->i;
    const int8_t* in = (const int8_t*)p->ptr[EM_CONV_P_INPUT];
    const int8_t* w = (const int8_t*)p->ptr[EM_CONV_P_WEIGHTS];
    int8_t* out = (int8_t*)p->ptr[EM_CONV_P_OUTPUT];
    uint8_t* img = (uint8_t*)p->ptr[EM_CONV_P_SCRATCH];
    const int64_t C = d[EM_CONV_I_OC], OH = d[EM_CONV_I_OH], OW = d[EM_CONV_I_OW], KW = d[EM_CONV_I_KW];
    const int64_t PV = d[EM_DEPTHWISE_VNNI_I_PV], CB = d[EM_DEPTHWISE_VNNI_I_CB], TG = d[EM_DEPTHWISE_VNNI_I_TG];
    const int64_t IHp = (OH - 1) * d[EM_CONV_I_SH] + (d[EM_CONV_I_KH] - 1) * d[EM_CONV_I_DH] + 1;
    const int64_t IWp = (OW - 1) * d[EM_CONV_I_SW] + (KW - 1) * d[EM_CONV_I_DW] + 1;
    em_vnni_gemm g = {NULL, (const int32_t*)p->ptr[EM_CONV_P_BIAS], (const int32_t*)p->ptr[EM_CONV_P_MULT],
                      (const int32_t*)p->ptr[EM_CONV_P_SHIFT], (const double*)p->ptr[EM_CONV_P_DOUBLE_SCALES],
                      (const float*)p->ptr[EM_CONV_P_FLOAT_SCALES], 16 * CB, 0, (int32_t)d[EM_CONV_I_OUT_ZP],
                      (int32_t)d[EM_CONV_I_ACT_MIN], (int32_t)d[EM_CONV_I_ACT_MAX], (int32_t)d[EM_CONV_I_MODE]};
    const int32_t w_zp = (int32_t)d[EM_DEPTHWISE_VNNI_I_W_ZP];
    const int64_t taps = d[EM_CONV_I_KH] * KW;
    int64_t off[EM_DW_MAX_TAPS];
    for (int64_t t = 0; t < 4 * TG; t++)
        off[t] = t < d[EM_CONV_I_KH] * KW ? ((t / KW) * d[EM_CONV_I_DH] * IWp + (t % KW) * d[EM_CONV_I_DW]) * C : 0;
    for (int64_t b = 0; b < d[EM_CONV_I_N]; b++) {
        em_pad_image_u8(in + b * d[EM_CONV_I_IH] * d[EM_CONV_I_IW] * C, d, IHp, IWp, img);
        if (d[EM_DEPTHWISE_VNNI_I_WIDE]) {   /* 64-byte steps (em_depthwise_vector64): C / 64 channel blocks, or
                                              * 64 / C pixels */
            const int64_t step = d[EM_DEPTHWISE_VNNI_I_WIDE], blocks = C >= 64 ? C / 64 : 1;
            for (int64_t cb = 0; cb < blocks; cb++) {
                em_mbqm16 q[4];
                for (int k = 0; k < 4; k++) q[k] = em_vnni_consts(&g, 64 * cb + 16 * k);
                for (int64_t oy = 0; oy < OH; oy++)
                for (int64_t ox = 0; ox < OW; ox += step) {
                    const uint8_t* px = img + (oy * d[EM_CONV_I_SH] * IWp + ox * d[EM_CONV_I_SW]) * C + 64 * cb;
                    const int64_t nbytes = step > 1 ? (OW - ox < step ? OW - ox : step) * C : 64;
                    em_depthwise_vector64(px, off, w + cb * TG * 256, TG, &g, 64 * cb,
                                          out + ((b * OH + oy) * OW + ox) * C + 64 * cb, q, nbytes, w_zp, taps);
                }
            }
            continue;
        }
        for (int64_t cb = 0; cb < CB; cb++) {     /* channel blocks outermost: requant constants derived once */
            const em_mbqm16 q = em_vnni_consts(&g, 16 * cb);
            for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox += PV) {
                const uint8_t* px = img + (oy * d[EM_CONV_I_SH] * IWp + ox * d[EM_CONV_I_SW]) * C + 16 * cb;
                int8_t* o = out + ((b * OH + oy) * OW + ox) * C + 16 * cb;
                const int64_t lanes = PV > 1 ? (OW - ox < PV ? OW - ox : PV) * C : C - 16 * cb;
                em_depthwise_vector16(px, off, w + cb * TG * 64, TG, &g, 16 * cb, o, lanes, &q, w_zp, taps);
            }
        }
    }
}
#else
/* never selected: the loader picks this kernel only when the CPU reports the ISA */
static void em_depthwise_int8_vnni(const em_params* p) { (void)p; }
#endif
#endif
