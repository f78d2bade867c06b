/* FULLY_CONNECTED at batch 1 or 2 on AVX2 CPUs without VNNI (em_fully_connected_int8_avx2_gemv): one or two
 * int16 rows times em_gemm_avx2.h's panels of 8 columns x 4 k stored as int8, exact.
 *
 * A weight is read once per row pair, so the loop is bound by fetching and sign-extending the weights, not by
 * vpmaddwd: per 16 multiply-adds one vpmovsxbw (half a panel's group: 4 columns x 4 k), one vpmaddwd against
 * the row's 4 k broadcast, one vpaddd, nothing else.  Each accumulator lane holds one
 * column's sum over half of a group, a final hadd joins the halves (as em_avx2_tile).  The loop is written so
 * that every accumulator stays in a register (at most 8 + the broadcast rows + one weight vector of the 16
 * ymm registers) and takes two groups (64 bytes of a panel, one cache line) per trip, so the prefetch of each
 * panel's line 1 KiB ahead needs no test. */
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

/* MR rows (1 or 2; a[1] == a[0] when rows == 1) x NP panels of 8 columns from column n: sums, requantization
 * (em_avx2_store8 / em_avx2_store8x2) and the first N - n columns stored at c (row r at c + r ldc). */
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
    for (int p = 0; p < NP; p++) {
        const int64_t col = n + 8 * p, cols = g->N - col;
        const em_mbqm8_lanes q = em_mbqm8_consts(_mm256_loadu_si256((const __m256i*)(g->mult + col)),
                                                 _mm256_loadu_si256((const __m256i*)(g->shift + col)));
        __m256i s[2];
        for (int r = 0; r < MR; r++)
            s[r] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][2 * p], acc[r][2 * p + 1]), 0xD8);
        if (MR == 2 && rows == 2) em_avx2_store8x2(s[0], s[1], g, col, c + 8 * p, c + 8 * p + ldc, cols, &q);
        else em_avx2_store8(s[0], g, col, c + 8 * p, cols, &q);
    }
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
