/* FULLY_CONNECTED at batch 1 or 2 on AVX2 CPUs without VNNI (em_fully_connected_int8_avx2_gemv): one or two
 * int16 rows times em_gemm_avx2.h's panels of 8 columns x 4 k stored as int8, exact.
 *
 * A weight is read once per row pair, so the loop is bound by fetching and sign-extending the weights: per 16
 * multiply-adds one vpmovsxbw (half a panel's group: 4 columns x 4 k), one vpmaddwd against the row's 4 k
 * broadcast and one vpaddd, nothing else.  Each accumulator lane holds one column's sum over half of a group; a
 * final hadd joins the halves (as em_avx2_tile).  Every accumulator stays in a register (at most 8, plus the
 * broadcast rows and one weight vector, of the 16 ymm registers); a trip takes two groups (64 bytes, one cache
 * line, of each panel) and prefetches as many lines of the next tile's panels, which are contiguous; the tile's
 * sums are requantized and stored together, out of line (em_gemv_store). */
#ifndef EM_GEMV_AVX2_H
#define EM_GEMV_AVX2_H
#include <stdint.h>
#include <string.h>
#include "em_gemm_avx2.h"

#if defined(__x86_64__) && defined(__GNUC__)

/* acc[r][2p + h] += row r's group (av[r]) . half h of panel p's group at w + p * panel + 16 h. */
EM_AVX2_TARGET static inline __attribute__((always_inline)) void em_gemv_group(
        __m256i acc[2][8], const __m256i av[2], const int8_t* w, int64_t panel, const int MR, const int NP) {
    for (int p = 0; p < NP; p++)
        for (int h = 0; h < 2; h++) {
            const __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(w + p * panel + 16 * h)));
            for (int r = 0; r < MR; r++)
                acc[r][2 * p + h] = _mm256_add_epi32(acc[r][2 * p + h], _mm256_madd_epi16(av[r], b));
        }
    /* (an empty asm per accumulator: GCC would otherwise add two groups' products first and hoist a group's
     * loads, which runs out of the 16 registers and spills accumulators to the stack in the loop) */
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < 2 * NP; j++) __asm__("" : "+x"(acc[r][j]));
}

/* Group k (4 int16) of each of MR rows, broadcast to the 4 lane pairs. */
EM_AVX2_TARGET static inline __attribute__((always_inline)) void em_gemv_rows(
        __m256i av[2], const int16_t* const a[2], int64_t k, const int MR) {
    for (int r = 0; r < MR; r++) {
        int64_t four;
        memcpy(&four, a[r] + 4 * k, 8);
        av[r] = _mm256_set1_epi64x(four);
    }
}

/* Requantize 8 int32 sums of columns col .. col + 7 (in column order, bias not added) in g's mode; inlined into
 * the tile (em_avx2_rescale8 is a call, around which every accumulator of the tile's other panels would be saved
 * to the stack: all ymm registers are the caller's to save). */
EM_AVX2_TARGET static inline __attribute__((always_inline)) __m256i em_gemv_requant8(__m256i acc,
                                                                                   const em_avx2_gemm* g,
                                                                                   int64_t col) {
    acc = _mm256_add_epi32(acc, _mm256_loadu_si256((const __m256i*)(g->bias + col)));
    const __m256i m = _mm256_loadu_si256((const __m256i*)(g->mult + col));
    const __m256i shift = _mm256_loadu_si256((const __m256i*)(g->shift + col));
    if (g->mode == EM_ROUND_DOUBLE) {
        const em_mbqm8_lanes q = em_mbqm8_consts(m, shift);
        return em_mbqm_lanes_x8(acc, &q, 1);
    }
    if (g->mode == EM_ROUND_SINGLE) return em_mbqm_single_x8(acc, m, shift);
    if (g->mode == EM_REQUANT_DOUBLE_SCALE) {
        const __m128i lo = em_round_scale_x4(_mm256_castsi256_si128(acc), _mm256_loadu_pd(g->scale + col));
        const __m128i hi = em_round_scale_x4(_mm256_extracti128_si256(acc, 1), _mm256_loadu_pd(g->scale + col + 4));
        return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
    }
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(g->fscale + col));
    f = _mm256_min_ps(_mm256_max_ps(f, _mm256_set1_ps(-1e9f)), _mm256_set1_ps(1e9f));
    return _mm256_cvtps_epi32(f);   /* MXCSR default: round to nearest even */
}

/* The V (1, 2 or 4) requantized vectors v[0 .. V-1] (8 columns each, before the output zero point) as V x 8 bytes
 * in that order: the first `width` bytes are row 0's, the next `width` row 1's (c1, or NULL for one row); of each
 * row the first min(width, cols) bytes are stored.  Saturating packs (+ zero point in int16) keep this exact: a
 * sum beyond int16 saturates to a value that clamps to the same int8. */
EM_AVX2_TARGET static inline __attribute__((always_inline)) void em_gemv_narrow_store(
        __m256i v[4], int V, const em_avx2_gemm* g, int8_t* c0, int8_t* c1, int width, int64_t cols) {
    for (int j = V; j < 4; j++) v[j] = v[0];
    const __m256i zp = _mm256_set1_epi16((int16_t)g->out_zp);
    const __m256i p01 = _mm256_adds_epi16(_mm256_packs_epi32(v[0], v[1]), zp);
    const __m256i p23 = _mm256_adds_epi16(_mm256_packs_epi32(v[2], v[3]), zp);
    __m256i p8 = _mm256_packs_epi16(p01, p23);     /* dwords: v0 v1 v2 v3 first halves | second halves */
    p8 = _mm256_min_epi8(_mm256_max_epi8(p8, _mm256_set1_epi8((char)g->act_min)), _mm256_set1_epi8((char)g->act_max));
    p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    if (cols >= width) {
        if (width == 32) _mm256_storeu_si256((__m256i*)c0, p8);
        else if (width == 16) _mm_storeu_si128((__m128i*)c0, _mm256_castsi256_si128(p8));
        else _mm_storel_epi64((__m128i*)c0, _mm256_castsi256_si128(p8));
        if (c1 && width == 16) _mm_storeu_si128((__m128i*)c1, _mm256_extracti128_si256(p8, 1));
        else if (c1) _mm_storel_epi64((__m128i*)c1, _mm_unpackhi_epi64(_mm256_castsi256_si128(p8),
                                                                       _mm256_castsi256_si128(p8)));
        return;
    }
    int8_t tmp[32];
    _mm256_storeu_si256((__m256i*)tmp, p8);
    memcpy(c0, tmp, (size_t)cols);
    if (c1) memcpy(c1, tmp + width, (size_t)cols);
}

/* Requantize and store a tile's sums (em_gemv_tile: rows x np panels from column n; c1 NULL for one row).  Not
 * inlined: the four modes' code in the tile's epilogue made GCC spill the accumulators inside the loop. */
EM_AVX2_TARGET static __attribute__((noinline)) void em_gemv_store(__m256i sums[4], int rows, int np,
                                                                   const em_avx2_gemm* g, int64_t n, int8_t* c0,
                                                                   int8_t* c1) {
    __m256i v[4];
    for (int r = 0; r < rows; r++)
        for (int p = 0; p < np; p++) v[r * np + p] = em_gemv_requant8(sums[r * np + p], g, n + 8 * p);
    em_gemv_narrow_store(v, rows * np, g, c0, c1, 8 * np, g->N - n);
}

/* MR rows (1 or 2; a[1] == a[0] when rows == 1) x NP panels of 8 columns from column n: sums, requantization
 * (em_gemv_requant8) and the first N - n columns stored at c (row r at c + r ldc). */
EM_AVX2_TARGET static inline __attribute__((always_inline)) void em_gemv_tile(
        const int16_t* const a[2], int64_t rows, const em_avx2_gemm* g, const int8_t* w, int64_t n, int8_t* c,
        int64_t ldc, const int MR, const int NP) {
    const int64_t groups = g->Kp / 4, panel = groups * 32;
    __m256i acc[2][8], av[2];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < 2 * NP; j++) acc[r][j] = _mm256_setzero_si256();
    /* the next tile's panels (contiguous, NP lines per trip of this one's NP streams) */
    const int8_t* next = w + NP * panel;
    int64_t k = 0;
    for (; k + 2 <= groups; k += 2, w += 64, next += 64 * NP) {
        for (int p = 0; p < NP; p++) _mm_prefetch((const char*)(next + 64 * p), _MM_HINT_T0);
        em_gemv_rows(av, a, k, MR);
        em_gemv_group(acc, av, w, panel, MR, NP);
        em_gemv_rows(av, a, k + 1, MR);
        em_gemv_group(acc, av, w + 32, panel, MR, NP);
    }
    if (k < groups) {
        em_gemv_rows(av, a, k, MR);
        em_gemv_group(acc, av, w, panel, MR, NP);
    }
    __m256i sums[4];     /* each row's panels in column order: row 0's NP, then row 1's */
    for (int r = 0; r < MR; r++)
        for (int p = 0; p < NP; p++)
            sums[r * NP + p] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][2 * p], acc[r][2 * p + 1]), 0xD8);
    em_gemv_store(sums, MR, NP, g, n, c, rows == 2 ? c + ldc : NULL);
}

/* C[M][N] (row stride ldc) = requant(A[M][Kp] (int16, row stride lda) . W8), W8 the int8 form of em_gemm_avx2.h's
 * panels (g->w unused): two rows at a time, 16 columns (8 for the last panel when N / 8 is odd); a single row 32
 * columns at a time, then 16 and 8. */
EM_AVX2_TARGET static void em_gemv_s8w_avx2(const int16_t* A, int64_t lda, int64_t M, const em_avx2_gemm* g,
                                           const int8_t* w8, int8_t* C, int64_t ldc) {
    const int64_t panel = (g->Kp / 4) * 32, N = g->N;
    /* the first tile's first lines (the tiles fetch their successors' as they go) */
    const int64_t first = (N < 32 ? N + 7 : 32) / 8 * panel;
    for (int64_t j = 0; j < first && j < 4096; j += 64) _mm_prefetch((const char*)(w8 + j), _MM_HINT_T0);
    for (int64_t m = 0; m < M; m += 2) {
        const int64_t rows = M - m < 2 ? M - m : 2;
        const int16_t* const a[2] = {A + m * lda, A + (m + rows - 1) * lda};
        int8_t* c = C + m * ldc;
        int64_t n = 0;
        if (rows == 1) {
            for (; n + 24 < N; n += 32) em_gemv_tile(a, 1, g, w8 + (n / 8) * panel, n, c + n, ldc, 1, 4);
            if (n + 8 < N) {
                em_gemv_tile(a, 1, g, w8 + (n / 8) * panel, n, c + n, ldc, 1, 2);
                n += 16;
            }
            if (n < N) em_gemv_tile(a, 1, g, w8 + (n / 8) * panel, n, c + n, ldc, 1, 1);
        } else {
            for (; n + 8 < N; n += 16) em_gemv_tile(a, 2, g, w8 + (n / 8) * panel, n, c + n, ldc, 2, 2);
            if (n < N) em_gemv_tile(a, 2, g, w8 + (n / 8) * panel, n, c + n, ldc, 2, 1);
        }
    }
}
#endif
#endif
