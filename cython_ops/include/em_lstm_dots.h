/* The dot products of the recurrent kernels (LSTM int8 / float / hybrid, ONNX LSTM / GRU / RNN): int8 weights
 * packed as int16 pairs (em_lstm_dots: AVX2 vpmaddwd, AVX-512 VNNI vpdpwssd) or as u8 x s8 quads (vpdpbusd), and
 * float weights packed k-major in column blocks (em_lstm_fdots, the recurrent GEMV em_lstm_fgemv).  The loops are
 * written for the compiler to vectorize and built per ISA (em_isa.h). */
#ifndef EM_LSTM_DOTS_H
#define EM_LSTM_DOTS_H
#include <stdint.h>
#include <string.h>
#include "em_isa.h"
#include "em_gemm_vnni.h"

/* ----- int8 dot products with int32 results: out[m][n] = sum_k a[m][k] * w[n][k] --------------------------
 * Weights are packed at load (packing.py pack_s8) into blocks of EM_LSTM_COLS columns; within a block, for each pair of
 * k, the int16 pairs (w[n][2k], w[n][2k+1]) of the 64 columns: one vpmaddwd per 8 columns and k pair.  K is
 * padded to even, N to a multiple of EM_LSTM_COLS, with zeros; out rows have the padded width. */
#define EM_LSTM_COLS 64

static void em_lstm_dots_scalar(const int8_t* A, int64_t lda, const int16_t* W, int64_t M, int64_t Np, int64_t K,
                                int32_t* out) {
    const int64_t K2 = (K + 1) / 2;
    int64_t m, blk, k2, c;
    for (m = 0; m < M; m++) {
        const int8_t* a = A + m * lda;
        for (blk = 0; blk < Np / EM_LSTM_COLS; blk++) {
            int32_t acc[EM_LSTM_COLS] = {0};
            const int16_t* w = W + blk * K2 * EM_LSTM_COLS * 2;
            for (k2 = 0; k2 < K2; k2++, w += EM_LSTM_COLS * 2) {
                int32_t a0 = a[2 * k2], a1 = 2 * k2 + 1 < K ? a[2 * k2 + 1] : 0;
                for (c = 0; c < EM_LSTM_COLS; c++) acc[c] += a0 * w[2 * c] + a1 * w[2 * c + 1];
            }
            memcpy(out + m * Np + blk * EM_LSTM_COLS, acc, sizeof acc);
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define EM_LSTM_DOTS_SIMD(NAME, TARGET, MADD_ACC)                                                        \
    TARGET static void NAME(const int8_t* A, int64_t lda, const int16_t* W, int64_t M, int64_t Np, int64_t K, \
                            int32_t* out) {                                                              \
        const int64_t K2 = (K + 1) / 2;                                                                  \
        int64_t m, blk, k2;                                                                              \
        for (m = 0; m < M; m++) {                                                                        \
            const int8_t* a = A + m * lda;                                                               \
            for (blk = 0; blk < Np / EM_LSTM_COLS; blk++) {                                              \
                __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, \
                        c7 = c0;                                                                         \
                const int16_t* w = W + blk * K2 * EM_LSTM_COLS * 2;                                      \
                for (k2 = 0; k2 < K2; k2++, w += EM_LSTM_COLS * 2) {                                     \
                    int32_t a0 = a[2 * k2], a1 = 2 * k2 + 1 < K ? a[2 * k2 + 1] : 0;                     \
                    __m256i b = _mm256_set1_epi32((int32_t)(((uint32_t)(uint16_t)a1 << 16) | (uint16_t)a0)); \
                    const __m256i* wv = (const __m256i*)w;                                               \
                    MADD_ACC(c0, _mm256_loadu_si256(wv + 0), b);                                         \
                    MADD_ACC(c1, _mm256_loadu_si256(wv + 1), b);                                         \
                    MADD_ACC(c2, _mm256_loadu_si256(wv + 2), b);                                         \
                    MADD_ACC(c3, _mm256_loadu_si256(wv + 3), b);                                         \
                    MADD_ACC(c4, _mm256_loadu_si256(wv + 4), b);                                         \
                    MADD_ACC(c5, _mm256_loadu_si256(wv + 5), b);                                         \
                    MADD_ACC(c6, _mm256_loadu_si256(wv + 6), b);                                         \
                    MADD_ACC(c7, _mm256_loadu_si256(wv + 7), b);                                         \
                }                                                                                        \
                {                                                                                        \
                    __m256i* o = (__m256i*)(out + m * Np + blk * EM_LSTM_COLS);                          \
                    _mm256_storeu_si256(o + 0, c0); _mm256_storeu_si256(o + 1, c1);                      \
                    _mm256_storeu_si256(o + 2, c2); _mm256_storeu_si256(o + 3, c3);                      \
                    _mm256_storeu_si256(o + 4, c4); _mm256_storeu_si256(o + 5, c5);                      \
                    _mm256_storeu_si256(o + 6, c6); _mm256_storeu_si256(o + 7, c7);                      \
                }                                                                                        \
            }                                                                                            \
        }                                                                                                \
    }
#define EM_MADD_AVX2(acc, w, b) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(w, b))
#define EM_MADD_VNNI(acc, w, b) acc = _mm256_dpwssd_epi32(acc, w, b)
EM_LSTM_DOTS_SIMD(em_lstm_dots_avx2, __attribute__((target("avx2"))), EM_MADD_AVX2)
EM_LSTM_DOTS_SIMD(em_lstm_dots_vnni, __attribute__((target("avx2,avx512f,avx512vl,avx512vnni"))), EM_MADD_VNNI)
#endif

static inline void em_lstm_dots(const int8_t* A, int64_t lda, const int16_t* W, int64_t M, int64_t Np, int64_t K,
                                int32_t* out) {
#if defined(__x86_64__) && defined(__GNUC__)
    int isa = em_isa();
    if (isa >= EM_ISA_AVX512VNNI) { em_lstm_dots_vnni(A, lda, W, M, Np, K, out); return; }
    if (isa >= EM_ISA_AVX2) { em_lstm_dots_avx2(A, lda, W, M, Np, K, out); return; }
#endif
    em_lstm_dots_scalar(A, lda, W, M, Np, K, out);
}

/* u8 x s8 variant for AVX-512 VNNI (vpdpbusd): activations read as a + 128 (uint8), weights packed by packing.py
 * pack_u8s8 as [N/64][K/4][64][4] int8; the caller's biases carry -128 * sum_k w[n][k]. */
#if defined(__x86_64__) && defined(__GNUC__)
/* the sums of NB consecutive column blocks for one row: 4 * NB independent accumulators (NB is a constant at
 * every call, so the loops unroll) */
EM_VNNI_TARGET static inline __attribute__((always_inline)) void em_lstm_u8s8_blocks(
        const int8_t* a, int64_t K, const int8_t* W, int64_t bstride, const int NB, int32_t* o) {
    const int64_t K4 = (K + 3) / 4;
    __m512i c[16];
    int64_t k4;
    int i;
    for (i = 0; i < 4 * NB; i++) c[i] = _mm512_setzero_si512();
    for (k4 = 0; k4 < K4; k4++) {
        uint32_t q = 0x80808080u;
        const int64_t k = 4 * k4;
        const int8_t* w = W + k4 * EM_LSTM_COLS * 4;
        if (k + 4 <= K) {
            memcpy(&q, a + k, 4);
            q ^= 0x80808080u;
        } else {
            int64_t r;
            for (r = 0; k + r < K; r++) q = (q & ~(0xFFu << (8 * r))) | ((uint32_t)(uint8_t)(a[k + r] ^ 0x80) << (8 * r));
        }
        const __m512i b = _mm512_set1_epi32((int32_t)q);
        for (i = 0; i < 4 * NB; i++)
            c[i] = _mm512_dpbusd_epi32(c[i], b, _mm512_loadu_si512(w + (i >> 2) * bstride + 64 * (i & 3)));
    }
    for (i = 0; i < 4 * NB; i++) _mm512_storeu_si512(o + 16 * i, c[i]);
}

EM_VNNI_TARGET static void em_lstm_dots_u8s8(const int8_t* A, int64_t lda, const int8_t* W, int64_t M, int64_t Np,
                                             int64_t K, int32_t* out) {
    const int64_t nblk = Np / EM_LSTM_COLS, bstride = (K + 3) / 4 * EM_LSTM_COLS * 4;
    int64_t m, blk;
    for (m = 0; m < M; m++) {
        const int8_t* a = A + m * lda;
        for (blk = 0; blk < nblk;) {
            const int64_t left = nblk - blk;
            const int8_t* w = W + blk * bstride;
            int32_t* o = out + m * Np + blk * EM_LSTM_COLS;
            if (left >= 4) { em_lstm_u8s8_blocks(a, K, w, bstride, 4, o); blk += 4; }
            else if (left == 3) { em_lstm_u8s8_blocks(a, K, w, bstride, 3, o); blk += 3; }
            else if (left == 2) { em_lstm_u8s8_blocks(a, K, w, bstride, 2, o); blk += 2; }
            else { em_lstm_u8s8_blocks(a, K, w, bstride, 1, o); blk += 1; }
        }
    }
}

#if EM_HAVE_AVXVNNI
/* The same packing on AVX-VNNI (VEX vpdpbusd on 256 bits): a 64-column block's 256 bytes per k4 are eight loads of
 * 8 columns x 4 k, one accumulator each (eight, with the broadcast and a load: no spills). */
__attribute__((target("avx2,avxvnni"))) static void em_lstm_dots_u8s8_avxvnni(
        const int8_t* A, int64_t lda, const int8_t* W, int64_t M, int64_t Np, int64_t K, int32_t* out) {
    const int64_t nblk = Np / EM_LSTM_COLS, K4 = (K + 3) / 4, bstride = K4 * EM_LSTM_COLS * 4;
    for (int64_t m = 0; m < M; m++) {
        const int8_t* a = A + m * lda;
        for (int64_t blk = 0; blk < nblk; blk++) {
            const int8_t* wb = W + blk * bstride;
            __m256i c[8];
            for (int i = 0; i < 8; i++) c[i] = _mm256_setzero_si256();
            for (int64_t k4 = 0; k4 < K4; k4++) {
                uint32_t q = 0x80808080u;            /* padding k read as a + 128 = 128 against zero weights */
                const int64_t k = 4 * k4;
                const int8_t* w = wb + k4 * EM_LSTM_COLS * 4;
                if (k + 4 <= K) {
                    memcpy(&q, a + k, 4);
                    q ^= 0x80808080u;
                } else {
                    for (int64_t r = 0; k + r < K; r++)
                        q = (q & ~(0xFFu << (8 * r))) | ((uint32_t)(uint8_t)(a[k + r] ^ 0x80) << (8 * r));
                }
                const __m256i bq = _mm256_set1_epi32((int32_t)q);
                for (int i = 0; i < 8; i++)
                    c[i] = _mm256_dpbusd_avx_epi32(c[i], bq, _mm256_loadu_si256((const __m256i*)(w + 32 * i)));
            }
            int32_t* o = out + m * Np + blk * EM_LSTM_COLS;
            for (int i = 0; i < 8; i++) _mm256_storeu_si256((__m256i*)(o + 8 * i), c[i]);
        }
    }
}
#endif
#endif

/* the int8 sums in either packing: quads = the (AVX-512 or AVX-) VNNI u8 x s8 form (pack_u8s8: activations read as a + 128,
 * so the caller subtracts 128 * sum_k w), else the int16 pairs (pack_s8) */
static inline void em_lstm_dots_packed(int quads, const int8_t* A, int64_t lda, const void* W, int64_t M, int64_t Np,
                                       int64_t K, int32_t* out) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (quads) {           /* kernels.CONFIG.lstm_u8s8: the avx512vnni and avxvnni paths */
#if EM_HAVE_AVXVNNI
        if (em_isa() < EM_ISA_AVX512VNNI) {
            em_lstm_dots_u8s8_avxvnni(A, lda, (const int8_t*)W, M, Np, K, out);
            return;
        }
#endif
        em_lstm_dots_u8s8(A, lda, (const int8_t*)W, M, Np, K, out);
        return;
    }
#endif
    (void)quads;
    em_lstm_dots(A, lda, (const int16_t*)W, M, Np, K, out);
}

/* ----- float dot products, vectorized over columns so each sum still runs in k order (as the scalar loop) -----
 * Weights packed as blocks of EM_LSTM_COLS columns, k-major inside a block: w[blk][k][c].
 * out[m][n] = (sum_k a[m][k] * w[n][k] + bias[n]) + add[m][n]  (bias, add optional) */
static void em_lstm_fdots_scalar(const float* A, const float* W, const float* bias, const float* add, int64_t M,
                                 int64_t Np, int64_t K, float* out) {
    int64_t m, blk, k, c;
    for (m = 0; m < M; m++) {
        const float* a = A + m * K;
        for (blk = 0; blk < Np / EM_LSTM_COLS; blk++) {
            float acc[EM_LSTM_COLS];
            const float* w = W + blk * K * EM_LSTM_COLS;
            int64_t n0 = blk * EM_LSTM_COLS;
            for (c = 0; c < EM_LSTM_COLS; c++) acc[c] = 0.0f;
            for (k = 0; k < K; k++, w += EM_LSTM_COLS)
                for (c = 0; c < EM_LSTM_COLS; c++) acc[c] = acc[c] + a[k] * w[c];
            for (c = 0; c < EM_LSTM_COLS; c++) {
                float v = acc[c];
                if (bias) v = v + bias[n0 + c];
                if (add) v = v + add[m * Np + n0 + c];
                out[m * Np + n0 + c] = v;
            }
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2")))
static void em_lstm_fdots_avx2(const float* A, const float* W, const float* bias, const float* add, int64_t M,
                               int64_t Np, int64_t K, float* out) {
    int64_t m, blk, k, i;
    for (m = 0; m < M; m++) {
        const float* a = A + m * K;
        for (blk = 0; blk < Np / EM_LSTM_COLS; blk++) {
            __m256 c[8];
            const float* w = W + blk * K * EM_LSTM_COLS;
            int64_t n0 = blk * EM_LSTM_COLS;
            for (i = 0; i < 8; i++) c[i] = _mm256_setzero_ps();
            for (k = 0; k < K; k++, w += EM_LSTM_COLS) {
                __m256 b = _mm256_set1_ps(a[k]);
                for (i = 0; i < 8; i++) c[i] = _mm256_add_ps(c[i], _mm256_mul_ps(_mm256_loadu_ps(w + 8 * i), b));
            }
            for (i = 0; i < 8; i++) {
                __m256 v = c[i];
                if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + n0 + 8 * i));
                if (add) v = _mm256_add_ps(v, _mm256_loadu_ps(add + m * Np + n0 + 8 * i));
                _mm256_storeu_ps(out + m * Np + n0 + 8 * i, v);
            }
        }
    }
}
#endif

/* AVX-512 with fused multiply-adds (float results are allclose, not bit-exact, across paths: DESIGN.md).
 * One row (the recurrent GEMV): NB column blocks at once, each column's sum split over PH interleaved k phases
 * so that at least 8 chains are in flight (one block alone would wait on the FMA latency for every k); the
 * phases are added at the end.  Four or more rows (the input projection of every step): 4 rows x one block,
 * the block's weights staying in L1 while the row groups go by. */
#if defined(__x86_64__) && defined(__GNUC__)
#define EM_FMA512 __attribute__((target("avx512f,fma")))
EM_FMA512 static inline __attribute__((always_inline)) void em_lstm_fdots_row(
        const float* a, const float* W, int64_t bstride, int64_t K, const int NB, const int PH, const float* bias,
        const float* add, float* o, int rev) {
    __m512 c[16];
    int64_t g, k;
    const int64_t groups = K / PH;
    int i, ph;
    for (i = 0; i < 4 * NB * PH; i++) c[i] = _mm512_setzero_ps();
    for (g = 0; g < groups; g++) {
        const int64_t k0 = (rev ? groups - 1 - g : g) * PH, kp = rev ? k0 - 4 * PH : k0 + 4 * PH;
        if (rev && kp >= 0)                   /* the hardware prefetcher does not follow a descending walk */
            for (ph = 0; ph < PH; ph++)
                for (i = 0; i < 4 * NB; i++)          /* a block's row: 64 floats, 4 lines */
                    _mm_prefetch((const char*)(W + (i >> 2) * bstride + (kp + ph) * EM_LSTM_COLS + 16 * (i & 3)), _MM_HINT_T0);
        for (ph = 0; ph < PH; ph++) {
            const __m512 b = _mm512_set1_ps(a[k0 + ph]);
            const float* w = W + (k0 + ph) * EM_LSTM_COLS;
            for (i = 0; i < 4 * NB; i++)
                c[ph * 4 * NB + i] = _mm512_fmadd_ps(_mm512_loadu_ps(w + (i >> 2) * bstride + 16 * (i & 3)), b,
                                                     c[ph * 4 * NB + i]);
        }
    }
    for (k = groups * PH; k < K; k++) {
        const __m512 b = _mm512_set1_ps(a[k]);
        const float* w = W + k * EM_LSTM_COLS;
        for (i = 0; i < 4 * NB; i++)
            c[i] = _mm512_fmadd_ps(_mm512_loadu_ps(w + (i >> 2) * bstride + 16 * (i & 3)), b, c[i]);
    }
    for (i = 0; i < 4 * NB; i++) {
        __m512 v = c[i];
        for (ph = 1; ph < PH; ph++) v = _mm512_add_ps(v, c[ph * 4 * NB + i]);
        if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + 16 * i));
        if (add) v = _mm512_add_ps(v, _mm512_loadu_ps(add + 16 * i));
        _mm512_storeu_ps(o + 16 * i, v);
    }
}

EM_FMA512 static void em_lstm_fdots_avx512(const float* A, const float* W, const float* bias, const float* add,
                                          int64_t M, int64_t Np, int64_t K, float* out, int rev) {
    const int64_t nblk = Np / EM_LSTM_COLS, bstride = K * EM_LSTM_COLS;
    int64_t m = 0, blk, k;
    int i, r;
    for (blk = 0; M >= 4 && blk < nblk; blk++) {
        const float* wb = W + blk * bstride;
        const int64_t n0 = blk * EM_LSTM_COLS;
        for (m = 0; m + 4 <= M; m += 4) {
            __m512 c[16];
            for (i = 0; i < 16; i++) c[i] = _mm512_setzero_ps();
            for (k = 0; k < K; k++) {
                const float* w = wb + k * EM_LSTM_COLS;
                const __m512 w0 = _mm512_loadu_ps(w), w1 = _mm512_loadu_ps(w + 16), w2 = _mm512_loadu_ps(w + 32),
                             w3 = _mm512_loadu_ps(w + 48);
                for (r = 0; r < 4; r++) {
                    const __m512 b = _mm512_set1_ps(A[(m + r) * K + k]);
                    c[4 * r + 0] = _mm512_fmadd_ps(w0, b, c[4 * r + 0]);
                    c[4 * r + 1] = _mm512_fmadd_ps(w1, b, c[4 * r + 1]);
                    c[4 * r + 2] = _mm512_fmadd_ps(w2, b, c[4 * r + 2]);
                    c[4 * r + 3] = _mm512_fmadd_ps(w3, b, c[4 * r + 3]);
                }
            }
            for (r = 0; r < 4; r++)
                for (i = 0; i < 4; i++) {
                    __m512 v = c[4 * r + i];
                    if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + n0 + 16 * i));
                    if (add) v = _mm512_add_ps(v, _mm512_loadu_ps(add + (m + r) * Np + n0 + 16 * i));
                    _mm512_storeu_ps(out + (m + r) * Np + n0 + 16 * i, v);
                }
        }
    }
    for (; m < M; m++) {                      /* single rows: the recurrent GEMV, and the rows left over */
        const float* a = A + m * K;
        for (blk = 0; blk < nblk;) {
            const int64_t left = nblk - blk, n0 = blk * EM_LSTM_COLS;
            const float* w = W + blk * bstride;
            const float* bi = bias ? bias + n0 : NULL;
            const float* ad = add ? add + m * Np + n0 : NULL;
            float* o = out + m * Np + n0;
            if (left >= 4) { em_lstm_fdots_row(a, w, bstride, K, 4, 1, bi, ad, o, rev); blk += 4; }
            else if (left == 3) { em_lstm_fdots_row(a, w, bstride, K, 3, 1, bi, ad, o, rev); blk += 3; }
            else if (left == 2) { em_lstm_fdots_row(a, w, bstride, K, 2, 2, bi, ad, o, rev); blk += 2; }
            else { em_lstm_fdots_row(a, w, bstride, K, 1, 4, bi, ad, o, rev); blk += 1; }
        }
    }
}
#endif

static inline void em_lstm_fdots(const float* A, const float* W, const float* bias, const float* add, int64_t M,
                                 int64_t Np, int64_t K, float* out) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (em_isa() >= EM_ISA_AVX512) { em_lstm_fdots_avx512(A, W, bias, add, M, Np, K, out, 0); return; }
    if (em_isa() >= EM_ISA_AVX2) { em_lstm_fdots_avx2(A, W, bias, add, M, Np, K, out); return; }
#endif
    em_lstm_fdots_scalar(A, W, bias, add, M, Np, K, out);
}

/* The recurrent GEMV, out = W.h (+ bias) (+ add), for step parity `odd`.  Wide recurrent matrices (64 units:
 * 64 KB of float weights) do not fit L1, and a GEMV that reads them in the same order every step finds none of
 * them there.  On AVX-512 odd steps walk k from last to first (with software prefetch): each step starts on the
 * rows the step before ended on, still in L1 (about 20% faster at 64 units).  The order of each column's sum
 * then alternates with the step, within float rounding. */
static inline void em_lstm_fgemv(const float* h, const float* W, const float* bias, const float* add, int64_t Np,
                                 int64_t K, float* out, int odd) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (em_isa() >= EM_ISA_AVX512) { em_lstm_fdots_avx512(h, W, bias, add, 1, Np, K, out, odd); return; }
#endif
    (void)odd;
    em_lstm_fdots(h, W, bias, add, 1, Np, K, out);
}
#endif
