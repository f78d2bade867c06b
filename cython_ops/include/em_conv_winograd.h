/* int8 CONV_2D 3x3, stride 1, dilation 1 on AVX2 CPUs without VNNI: integer Winograd F(2x2, 3x3), exact.
 *
 * AVX2 multiplies 16 int8 pairs per two instructions (vpmaddwd + vpaddd) whatever the tiling, so the 3x3 convs
 * that dominate ResNet-like models are bound by multiplications; F(2x2, 3x3) needs 16 per 2x2 outputs and input
 * channel instead of 36.  Every quantity stays an integer:
 *   U = G' g G'^T with G' = 2 G = [[2,0,0],[1,1,1],[1,-1,1],[0,0,2]] (weights, at load): |U| <= 9 * 127 = 1143;
 *   V = B^T d B with B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]] on the int8 input d: |V| <= 4 * 128 = 512;
 *   M = sum over input channels of U * V (vpmaddwd: pair sums <= 2 * 1143 * 512, exact in int32);
 *   4 y = A^T M A with A^T = [[1,1,1,0],[0,1,-1,-1]], so y = (A^T M A) >> 2 exactly.
 * The int32 sums may wrap, but the final 4 y = 4 sum w x fits int32 (|y| <= 9 * IC * 128 * 128, IC <= 3600 checked
 * at load) and wrapping arithmetic is exact modulo 2^32, so y is the direct conv's sum bit for bit.  Padding taps
 * hold in_zp and the bias holds -in_zp sum w (em_gemm_avx2.h), as in the direct AVX2 conv; requantization is
 * em_avx2_store8's, so outputs equal the other paths' exactly. */
#ifndef EM_CONV_WINOGRAD_H
#define EM_CONV_WINOGRAD_H
#include "em_params.h"
#include "em_conv.h"
#include "em_im2col.h"
#include "em_gemm_avx2.h"
#include "em_threads.h"

/* Layout: the AVX2 conv's (em_conv.h EM_CONV_AVX2): pointers with 1 the transformed weights U, 16 positions x
 * panels of 8 columns x ICp / 4 groups x 8 x 4 int16 (em_gemm_avx2.h's panel order per position), 2 the bias
 * (bias - in_zp sum w), per-column arrays padded to 8; EM_CONV_AVX2_I_KP = ICp (IC rounded up to 4), threads
 * (slices of tile rows) and slice_bytes (em_winograd_slice_bytes). */

/* Tiles of 2x2 outputs per column and row. */
static inline int64_t em_winograd_tiles_w(const int64_t* d) { return (d[EM_CONV_I_OW] + 1) / 2; }
static inline int64_t em_winograd_tiles_h(const int64_t* d) { return (d[EM_CONV_I_OH] + 1) / 2; }

/* Scratch of one slice: the padded int16 image ((2 TH + 2) x (2 TW + 2) pixels of IC rounded up to 16 channels,
 * + 64 bytes), one tile row's V
 * (16 x TW x ICp int16) and M (4 tiles x 16 positions x 8 int32), each in whole 64-byte lines. */
static inline int64_t em_winograd_pixel_stride(const int64_t* d) { return (d[EM_CONV_I_IC] + 15) / 16 * 16; }
static inline int64_t em_winograd_image_bytes(const int64_t* d) {
    const int64_t rows = 2 * em_winograd_tiles_h(d) + 2, cols = 2 * em_winograd_tiles_w(d) + 2;
    return (rows * cols * em_winograd_pixel_stride(d) * 2 + 64 + 63) / 64 * 64;
}
static inline int64_t em_winograd_v_bytes(const int64_t* d, int64_t ICp) {
    return (16 * em_winograd_tiles_w(d) * ICp * 2 + 63) / 64 * 64;
}
static inline int64_t em_winograd_slice_bytes(const int64_t* d, int64_t ICp) {
    return em_winograd_image_bytes(d) + em_winograd_v_bytes(d, ICp) + 4 * 16 * 8 * 4;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* B^T x B for one 4x4 patch of 16 lanes (input channels): x[i][j] -> v[4 i + j]. */
EM_AVX2_TARGET static inline void em_winograd_input16(const __m256i x[16], __m256i v[16]) {
    __m256i t[16];
    for (int j = 0; j < 4; j++) {      /* B^T along the patch's rows */
        t[0 + j] = _mm256_sub_epi16(x[0 + j], x[8 + j]);
        t[4 + j] = _mm256_add_epi16(x[4 + j], x[8 + j]);
        t[8 + j] = _mm256_sub_epi16(x[8 + j], x[4 + j]);
        t[12 + j] = _mm256_sub_epi16(x[4 + j], x[12 + j]);
    }
    for (int i = 0; i < 4; i++) {      /* then along its columns */
        v[4 * i + 0] = _mm256_sub_epi16(t[4 * i + 0], t[4 * i + 2]);
        v[4 * i + 1] = _mm256_add_epi16(t[4 * i + 1], t[4 * i + 2]);
        v[4 * i + 2] = _mm256_sub_epi16(t[4 * i + 2], t[4 * i + 1]);
        v[4 * i + 3] = _mm256_sub_epi16(t[4 * i + 1], t[4 * i + 3]);
    }
}

/* The image as int16 padded with in_zp (top-left at (-pad_top, -pad_left)) to IHp x IWp pixels of ICs channels
 * (IC rounded up to 16, so that the input transform reads whole vectors; the extra channels hold in_zp too and
 * meet zero weights). */
EM_AVX2_TARGET static void em_winograd_pad_image(const int8_t* img, const int64_t* d, int64_t IHp, int64_t IWp,
                                                 int64_t ICs, int16_t* out) {
    const int64_t IH = d[EM_CONV_I_IH], IW = d[EM_CONV_I_IW], IC = d[EM_CONV_I_IC];
    const int64_t PT = d[EM_CONV_I_PAD_TOP], PL = d[EM_CONV_I_PAD_LEFT];
    if (ICs == IC) { em_pad_image_s16(img, d, IHp, IWp, out); return; }
    const __m256i pad = _mm256_set1_epi16((int16_t)d[EM_CONV_I_IN_ZP]);
    for (int64_t r = 0; r < IHp; r++)
        for (int64_t c = 0; c < IWp; c++) {
            int16_t* o = out + (r * IWp + c) * ICs;
            const int64_t iy = r - PT, ix = c - PL;
            for (int64_t k = 0; k < ICs; k += 16) _mm256_storeu_si256((__m256i*)(o + k), pad);
            if (iy < 0 || iy >= IH || ix < 0 || ix >= IW) continue;
            const int8_t* src = img + (iy * IW + ix) * IC;
            int64_t k = 0;
            for (; k + 16 <= IC; k += 16) {
                const __m128i bytes = _mm_loadu_si128((const __m128i*)(src + k));
                _mm256_storeu_si256((__m256i*)(o + k), _mm256_cvtepi8_epi16(bytes));
            }
            for (; k < IC; k++) o[k] = src[k];
        }
}

/* V of the tiles of tile row ty: V[pos][tx][ICp] from the padded int16 image (pixels of ICs channels), channels
 * 16 at a time; ICp - IC tail lanes meet zero weights. */
EM_AVX2_TARGET static void em_winograd_input_row(const int16_t* img, int64_t IWp, int64_t ICs, int64_t ICp,
                                                 int64_t TW, int64_t ty, int16_t* V) {
    const int64_t row = IWp * ICs;
    for (int64_t tx = 0; tx < TW; tx++) {
        const int16_t* base = img + (2 * ty) * row + (2 * tx) * ICs;
        for (int64_t c = 0; c < ICp; c += 16) {
            __m256i x[16], v[16];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    x[4 * i + j] = _mm256_loadu_si256((const __m256i*)(base + i * row + j * ICs + c));
            em_winograd_input16(x, v);
            const int64_t keep = ICp - c < 16 ? ICp - c : 16;      /* a multiple of 4 lanes: whole dwords */
            const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)(keep / 2)),
                                                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            for (int p = 0; p < 16; p++) {
                int16_t* dst = V + (p * TW + tx) * ICp + c;
                if (keep == 16) _mm256_storeu_si256((__m256i*)dst, v[p]);
                else _mm256_maskstore_epi32((int*)dst, mask, v[p]);
            }
        }
    }
}

/* M for tiles tx .. tx + MR - 1 (rows == MR) and the 8 columns of panel n: for each of the 16 positions, V[pos]
 * (rows of ICp int16) times U[pos]'s panel, as em_avx2_tile sums. */
EM_AVX2_TARGET static inline __attribute__((always_inline)) void em_winograd_products(
        const int16_t* V, int64_t TW, int64_t ICp, int64_t tx, int64_t rows, const int16_t* U, int64_t npanels,
        int64_t n, int32_t* M, const int MR) {
    const int64_t groups = ICp / 4;
    for (int p = 0; p < 16; p++) {
        const int16_t* w = U + ((int64_t)p * npanels + n / 8) * groups * 32;
        const int16_t* a[4];
        for (int r = 0; r < MR; r++) a[r] = V + (p * TW + tx + (r < rows ? r : rows - 1)) * ICp;
        __m256i acc[4][2];
        for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int64_t k = 0; k < groups; k++, w += 32) {
            const __m256i b0 = _mm256_loadu_si256((const __m256i*)w);
            const __m256i b1 = _mm256_loadu_si256((const __m256i*)(w + 16));
            for (int r = 0; r < MR; r++) {
                int64_t four;
                memcpy(&four, a[r] + 4 * k, 8);
                const __m256i av = _mm256_set1_epi64x(four);
                acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(av, b0));
                acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(av, b1));
            }
        }
        for (int r = 0; r < MR; r++)     /* columns in hadd order [0 1 4 5 | 2 3 6 7]: the outputs are permuted */
            _mm256_storeu_si256((__m256i*)(M + (r * 16 + p) * 8), _mm256_hadd_epi32(acc[r][0], acc[r][1]));
    }
}

/* 4 y = A^T M A for one tile's 8 columns (M in hadd order), y = that >> 2, requantized and stored where the outputs
 * exist. */
EM_AVX2_TARGET static inline void em_winograd_output(const int32_t* M, const em_avx2_gemm* g, int64_t n,
                                                     int8_t* out, int64_t oy, int64_t ox, int64_t OH, int64_t OW,
                                                     int64_t OC, const em_mbqm8_lanes* q) {
    __m256i m[16], t[8];
    for (int p = 0; p < 16; p++) m[p] = _mm256_loadu_si256((const __m256i*)(M + p * 8));
    for (int j = 0; j < 4; j++) {
        t[j] = _mm256_add_epi32(_mm256_add_epi32(m[j], m[4 + j]), m[8 + j]);
        t[4 + j] = _mm256_sub_epi32(_mm256_sub_epi32(m[4 + j], m[8 + j]), m[12 + j]);
    }
    for (int r = 0; r < 2 && oy + r < OH; r++) {
        const __m256i* tr = t + 4 * r;
        const __m256i y0 = _mm256_add_epi32(_mm256_add_epi32(tr[0], tr[1]), tr[2]);
        const __m256i y1 = _mm256_sub_epi32(_mm256_sub_epi32(tr[1], tr[2]), tr[3]);
        /* y = 4 y >> 2, columns back in order */
        const __m256i s0 = _mm256_permute4x64_epi64(_mm256_srai_epi32(y0, 2), 0xD8);
        int8_t* o = out + ((oy + r) * OW + ox) * OC + n;
        if (ox + 1 < OW) em_avx2_store8x2(s0, _mm256_permute4x64_epi64(_mm256_srai_epi32(y1, 2), 0xD8), g, n, o,
                                          o + OC, g->N - n, q);
        else em_avx2_store8(s0, g, n, o, g->N - n, q);
    }
}

/* One slice of the Winograd conv: its share of every image's tile rows. */
EM_AVX2_TARGET static void em_conv2d_winograd_slice(const void* ctx, int64_t slice, int64_t nslices) {
    const em_params* p = (const em_params*)ctx;
    const int64_t* d = p->i;
    const int64_t IC = d[EM_CONV_I_IC], OC = d[EM_CONV_I_OC], OH = d[EM_CONV_I_OH], OW = d[EM_CONV_I_OW];
    const int64_t ICp = d[EM_CONV_AVX2_I_KP], TH = em_winograd_tiles_h(d), TW = em_winograd_tiles_w(d);
    const int64_t IHp = 2 * TH + 2, IWp = 2 * TW + 2, npanels = (OC + 7) / 8, ICs = em_winograd_pixel_stride(d);
    const int64_t t0 = TH * slice / nslices, t1 = TH * (slice + 1) / nslices;
    if (t1 <= t0 || d[EM_CONV_AVX2_I_SLICE_BYTES] < em_winograd_slice_bytes(d, ICp)) return;   /* (a loader bug) */
    uint8_t* scratch = (uint8_t*)p->ptr[EM_CONV_P_SCRATCH] + slice * d[EM_CONV_AVX2_I_SLICE_BYTES];
    int16_t* img16 = (int16_t*)scratch;
    int16_t* V = (int16_t*)(scratch + em_winograd_image_bytes(d));
    int32_t* M = (int32_t*)(scratch + em_winograd_image_bytes(d) + em_winograd_v_bytes(d, ICp));
    const int16_t* U = (const int16_t*)p->ptr[EM_CONV_P_WEIGHTS];
    em_avx2_gemm g = em_conv_avx2_gemm(p, U, OC, ICp);
    for (int64_t b = 0; b < d[EM_CONV_I_N]; b++) {
        const int8_t* img = (const int8_t*)p->ptr[EM_CONV_P_INPUT] + b * d[EM_CONV_I_IH] * d[EM_CONV_I_IW] * IC;
        int8_t* out = (int8_t*)p->ptr[EM_CONV_P_OUTPUT] + b * OH * OW * OC;
        em_winograd_pad_image(img, d, IHp, IWp, ICs, img16);
        for (int64_t ty = t0; ty < t1; ty++) {
            em_winograd_input_row(img16, IWp, ICs, ICp, TW, ty, V);
            for (int64_t n = 0; n < OC; n += 8) {
                const em_mbqm8_lanes q = em_mbqm8_consts(_mm256_loadu_si256((const __m256i*)(g.mult + n)),
                                                         _mm256_loadu_si256((const __m256i*)(g.shift + n)));
                for (int64_t tx = 0; tx < TW; tx += 4) {
                    const int64_t rows = TW - tx < 4 ? TW - tx : 4;
                    switch (rows) {     /* as many tiles as are left: no products of repeated tiles */
                        case 4: em_winograd_products(V, TW, ICp, tx, 4, U, npanels, n, M, 4); break;
                        case 3: em_winograd_products(V, TW, ICp, tx, 3, U, npanels, n, M, 3); break;
                        case 2: em_winograd_products(V, TW, ICp, tx, 2, U, npanels, n, M, 2); break;
                        default: em_winograd_products(V, TW, ICp, tx, 1, U, npanels, n, M, 1); break;
                    }
                    for (int64_t r = 0; r < rows; r++)
                        em_winograd_output(M + r * 16 * 8, &g, n, out, 2 * ty, 2 * (tx + r), OH, OW, OC, &q);
                }
            }
        }
    }
}

static void em_conv2d_int8_avx2_winograd(const em_params* p) {
    em_parallel_run(p->i[EM_CONV_AVX2_I_THREADS] > 1 ? p->i[EM_CONV_AVX2_I_THREADS] : 1, em_conv2d_winograd_slice, p);
}
#else
static void em_conv2d_int8_avx2_winograd(const em_params* p) { (void)p; }   /* never selected (em_isa.h) */
#endif
#endif
