/* qs8 GEMM micro-kernels for AVX-VNNI (vpdpbusd on 256-bit registers, VEX form: CPUs with AVX-VNNI and no
 * AVX-512), reading the weights em_gemm_vnni.h packs (16-column blocks, 4-deep groups: a block's group is two
 * 32-byte halves of 8 columns) and the same rows (em_gemm_rows, uint8 x + 128): register tiles of 6x16, 4x32 and a
 * 1x32 GEMV; requantization on 8 lanes (em_gemm_avx2.h), exact in every em_requant.h mode.  Also the uint8
 * staging both VNNI forms share (AVX2 code): flipped copies, packed rows and the row sums of a weight zero point. */
#ifndef EM_GEMM_AVXVNNI_H
#define EM_GEMM_AVXVNNI_H
#include <stdint.h>
#include <string.h>
#include "em_gemm.h"
#include "em_gemm_vnni.h"
#include "em_gemm_avx2.h"
#include "em_isa.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define EM_AVXVNNI_TARGET __attribute__((target("avx2,avxvnni")))

/* Copy n int8 as uint8 (x + 128), exactly n bytes each way. */
EM_AVX2_TARGET static inline void em_copy_flip(uint8_t* dst, const int8_t* src, int64_t n) {
    const __m256i sign = _mm256_set1_epi8((char)0x80);
    if (n < 32) {
        for (int64_t k = 0; k < n; k++) dst[k] = (uint8_t)(src[k] ^ 0x80);
        return;
    }
    int64_t k = 0;
    for (; k + 32 < n; k += 32)
        _mm256_storeu_si256((__m256i*)(dst + k), _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)(src + k)), sign));
    _mm256_storeu_si256((__m256i*)(dst + n - 32),
                        _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)(src + n - 32)), sign));
}

/* n bytes of value; stores whole 32-byte vectors (dst needs 32 bytes of slack). */
EM_AVX2_TARGET static inline void em_fill_u8(uint8_t* dst, uint8_t value, int64_t n) {
    const __m256i v = _mm256_set1_epi8((char)value);
    for (; n > 0; n -= 32, dst += 32) _mm256_storeu_si256((__m256i*)dst, v);
}

/* Rows of int8 (row stride lda, K used) -> uint8 rows of Kp (x + 128), zero-filled tail. */
EM_AVX2_TARGET static void em_pack_rows_u8(const int8_t* X, int64_t lda, int64_t M, int64_t K, int64_t Kp,
                                           uint8_t* out) {
    if (K == Kp && lda == K) {   /* rows already contiguous (K % 4 == 0): one flat copy */
        em_copy_flip(out, X, M * K);
        return;
    }
    for (int64_t m = 0; m < M; m++) {
        uint8_t* o = out + m * Kp;
        em_copy_flip(o, X + m * lda, K);
        for (int64_t t = K; t < Kp; t++) o[t] = 0;
    }
}

/* row_corr[m] = -w_zp * (sum of row m's K bytes), rows as em_gemm_rows describes them (seg_bytes bytes of each
 * segment: the taps, not the zero-weight padding after them), sums taken with vpsadbw; int32 wraps like the
 * accumulators, so the corrected sums are exact whenever the reference's int32 sums are. */
EM_AVX2_TARGET static void em_vnni_row_sums(const em_gemm_rows* A, int64_t M, int64_t seg_bytes, int32_t w_zp,
                                            int32_t* row_corr) {
    const __m256i zero = _mm256_setzero_si256();
    int64_t oy = 0, ox = 0;
    if (A->OW) { oy = A->first / A->OW; ox = A->first % A->OW; }
    for (int64_t m = 0; m < M; m++) {
        const uint8_t* row = A->OW ? A->base + oy * A->row_step + ox * A->col_step : A->base + m * A->lda;
        __m256i acc = zero;
        uint64_t tail = 0;
        for (int64_t sg = 0; sg < A->nseg; sg++) {
            const uint8_t* x = row + sg * A->seg_stride;
            int64_t k = 0;
            for (; k + 32 <= seg_bytes; k += 32)
                acc = _mm256_add_epi64(acc, _mm256_sad_epu8(_mm256_loadu_si256((const __m256i*)(x + k)), zero));
            for (; k < seg_bytes; k++) tail += x[k];
        }
        const __m128i h = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        const uint64_t sum = tail + (uint64_t)_mm_cvtsi128_si64(h) + (uint64_t)_mm_extract_epi64(h, 1);
        row_corr[m] = (int32_t)((uint32_t)(-w_zp) * (uint32_t)sum);
        if (A->OW && ++ox == A->OW) { ox = 0; oy++; }
    }
}

/* The em_avx2_gemm view of a VNNI GEMM's requantization (8-lane helpers of em_gemm_avx2.h). */
static inline em_avx2_gemm em_vnni_as_avx2(const em_vnni_gemm* g) {
    em_avx2_gemm a = {NULL, g->bias, g->mult, g->shift, g->scale, g->fscale, g->N, g->Kp, g->out_zp, g->act_min,
                      g->act_max, g->mode};
    return a;
}

/* Requantize 8 sums (bias and row correction included) of columns n .. n + 7 and store the first `cols`. */
EM_AVX2_TARGET static inline void em_avxvnni_store8(__m256i acc, const em_avx2_gemm* a, int64_t n, int8_t* c,
                                                    int64_t cols, const em_mbqm8_lanes* q) {
    const __m256i v = em_avx2_finish8(a->mode == EM_ROUND_DOUBLE ? em_mbqm_lanes_x8(acc, q, 1)
                                                                  : em_avx2_rescale8(acc, a, n), a);
    const __m256i p16 = _mm256_packs_epi32(v, v);
    const __m128i b = _mm_packs_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
    /* b: bytes of lanes 0-3 then 4-7 (each twice): [0-3, 0-3, 4-7, 4-7] -> dwords 0 and 2 */
    const __m128i bytes = _mm_shuffle_epi32(b, 0x08);
    if (cols >= 8) { _mm_storel_epi64((__m128i*)c, bytes); return; }
    int8_t tmp[16];
    _mm_storeu_si128((__m128i*)tmp, bytes);
    memcpy(c, tmp, (size_t)cols);
}

#if EM_HAVE_AVXVNNI
/* One MR x (8 NH) tile: rows m .. m + rows - 1 (rows <= MR; missing rows repeat the last one and are not stored),
 * columns n .. n + 8 NH - 1 (n a multiple of 8; NH halves of 8 columns).  Weights of half h of block b at group k:
 * w + b 16 Kp + k 64 + (h % 2) 32. */
EM_AVXVNNI_TARGET static inline __attribute__((always_inline)) void em_avxvnni_tile(
        const em_gemm_rows* A, int64_t m, int64_t rows, const em_vnni_gemm* g, int64_t n, int8_t* C,
        int64_t ldc, const int MR, const int NH) {
    const int64_t Kp = g->Kp;
    const uint8_t* a[8];
    em_gemm_row_starts(A, m, rows, MR, a);
    const int8_t* wh[4];
    for (int h = 0; h < NH; h++) {
        const int64_t c = n + 8 * h;
        wh[h] = g->w + (c / 16) * 16 * Kp + (c % 16 ? 32 : 0);
    }
    __m256i acc[6][4];
    for (int h = 0; h < NH; h++) {   /* the sums start from the bias (padded columns hold 0) */
        const __m256i bias = _mm256_loadu_si256((const __m256i*)(g->bias + n + 8 * h));
        for (int r = 0; r < MR; r++) acc[r][h] = bias;
        if (g->row_corr)
            for (int r = 0; r < MR; r++)
                acc[r][h] = _mm256_add_epi32(acc[r][h], _mm256_set1_epi32(g->row_corr[m + (r < rows ? r : rows - 1)]));
    }
    int64_t woff = 0;
    for (int64_t sg = 0; sg < A->nseg; sg++) {
        const int64_t off = sg * A->seg_stride;
        for (int64_t k = 0; k < A->seg_groups; k++, woff += 64) {
            __m256i b[4];
            for (int h = 0; h < NH; h++) b[h] = _mm256_loadu_si256((const __m256i*)(wh[h] + woff));
            for (int r = 0; r < MR; r++) {
                int32_t four;
                memcpy(&four, a[r] + off + 4 * k, 4);
                const __m256i av = _mm256_set1_epi32(four);
                for (int h = 0; h < NH; h++) acc[r][h] = _mm256_dpbusd_avx_epi32(acc[r][h], av, b[h]);
            }
        }
    }
    const em_avx2_gemm ag = em_vnni_as_avx2(g);
    for (int h = 0; h < NH; h++) {
        const int64_t c = n + 8 * h;
        if (c >= g->N) break;
        const em_mbqm8_lanes q = em_mbqm8_consts(_mm256_loadu_si256((const __m256i*)(g->mult + c)),
                                                 _mm256_loadu_si256((const __m256i*)(g->shift + c)));
        int r = 0;
        for (; r + 4 <= MR && r + 4 <= rows; r += 4) {     /* four rows narrowed together (em_avx2_narrow_rows) */
            __m256i v[4];
            int8_t* cr[4];
            for (int i = 0; i < 4; i++) {
                v[i] = ag.mode == EM_ROUND_DOUBLE ? em_mbqm_lanes_x8(acc[r + i][h], &q, 1)
                                                  : em_avx2_rescale8(acc[r + i][h], &ag, c);
                cr[i] = C + (m + r + i) * ldc + c;
            }
            em_avx2_narrow_rows(v, 4, &ag, cr, g->N - c, 0);
        }
        for (; r < MR && r < rows; r++)
            em_avxvnni_store8(acc[r][h], &ag, c, C + (m + r) * ldc + c, g->N - c, &q);
    }
}

#define EM_AVXVNNI_PANEL(MR, NH)                                                                           \
    do {                                                                                                   \
        int64_t m = 0;                                                                                     \
        for (; m + (MR) <= M; m += (MR)) em_avxvnni_tile(A, m, (MR), g, n, C, ldc, (MR), (NH));           \
        if (m < M) em_avxvnni_tile(A, m, M - m, g, n, C, ldc, (MR), (NH));                               \
    } while (0)

/* C[M][N] (row stride ldc) = requant(A . W): column panels of 32 (4-row tiles, 8 accumulators) while a panel's
 * weights fit in L1, then 16 (6 rows, 12 accumulators) and a last 8; a GEMV takes 1-row tiles of 32 columns. */
EM_AVXVNNI_TARGET static void em_gemm_avxvnni_rows(const em_gemm_rows* A, int64_t M, const em_vnni_gemm* g,
                                                   int8_t* C, int64_t ldc) {
    const int64_t N8 = (g->N + 7) / 8 * 8, panel_bytes = 16 * g->Kp;
    int64_t n = 0;
    if (M < 3)
        for (; n + 32 <= N8; n += 32) EM_AVXVNNI_PANEL(1, 4);
    if (2 * panel_bytes <= EM_VNNI_L1_WEIGHTS)
        for (; n + 32 <= N8; n += 32) EM_AVXVNNI_PANEL(4, 4);
    for (; n + 16 <= N8; n += 16) EM_AVXVNNI_PANEL(6, 2);
    for (; n < N8; n += 8) EM_AVXVNNI_PANEL(6, 1);
}

/* C[M][N] (row stride ldc) = requant(A[M][Kp] (uint8, x + 128) . W). */
EM_AVXVNNI_TARGET static void em_gemm_u8s8_avxvnni(const uint8_t* A, int64_t M, const em_vnni_gemm* g, int8_t* C,
                                                   int64_t ldc) {
    const em_gemm_rows rows = {A, g->Kp, 0, 0, 0, 1, 0, g->Kp / 4, 0};
    em_gemm_avxvnni_rows(&rows, M, g, C, ldc);
}
#endif  /* EM_HAVE_AVXVNNI */
#endif
#endif
