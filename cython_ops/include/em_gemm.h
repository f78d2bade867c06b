/* int8 GEMM with fused requantization: out[m][n] = requant(sum_k a[m][k] * b[n][k] + bias[n]).
 * a: M rows of K int8 (activations), b: N rows of K int8 (weights, packed at load), both K-contiguous.
 * The zero-point correction is folded into bias at load (bias[n] -= zp * sum_k b[n][k]).
 * The scalar loops are written so that compilers vectorize the K loop; ISA-specific micro-kernels
 * plug in behind em_gemm_s8_requant. */
#ifndef EM_GEMM_H
#define EM_GEMM_H
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "em_requant.h"

/* Where the vector GEMMs (em_gemm_vnni.h, em_gemm_avxvnni.h, em_gemm_avx2.h) find row m of A and how its K values
 * are laid out.  Plain GEMM (OW == 0): row m at base + m * lda bytes.  Implicit convolution (OW > 0): output pixel
 * m = (oy, ox) reads the window at base + oy * row_step + ox * col_step of an image already padded as the conv
 * needs.  K is nseg segments (window rows) of seg_groups groups of 4 values, seg_stride bytes apart; the weights
 * follow the same order. */
typedef struct {
    const uint8_t* base;
    int64_t lda, OW, row_step, col_step;
    int64_t nseg, seg_stride, seg_groups;
    int64_t first;          /* implicit convolution: GEMM row m is output pixel first + m */
} em_gemm_rows;

/* Per-column requantization; mode is one of em_requant.h's EM_ROUND_* / EM_REQUANT_* (see there). */
typedef struct {
    const int32_t* bias;   /* N, zero-point corrected */
    const int32_t* mult;   /* N, fixed-point modes */
    const int32_t* shift;  /* N, fixed-point modes */
    int32_t out_zp, act_min, act_max, mode;
    const double* scale;   /* N, for EM_REQUANT_DOUBLE_SCALE */
    const float* fscale;   /* N, for EM_REQUANT_FLOAT */
} em_requant_cols;

static inline int8_t em_requant_one(int32_t acc, int n, const em_requant_cols* rq) {
    int32_t v;
    if (rq->mode == EM_REQUANT_DOUBLE_SCALE) {
        double r = round((double)(acc + rq->bias[n]) * rq->scale[n]);
        r = r > 1e9 ? 1e9 : (r < -1e9 ? -1e9 : r);
        v = (int32_t)r + rq->out_zp;
    } else if (rq->mode == EM_REQUANT_FLOAT) {
        v = em_requant_float(acc + rq->bias[n], rq->fscale[n]) + rq->out_zp;
    } else {
        v = em_mbqm(acc + rq->bias[n], rq->mult[n], (int)rq->shift[n], rq->mode) + rq->out_zp;
    }
    return (int8_t)em_clamp_i32(v, rq->act_min, rq->act_max);
}

#define EM_GEMM_BODY_T(WT)                                                                    \
    for (int64_t m = 0; m < M; m++) {                                                         \
        const int8_t* a = A + m * lda;                                                        \
        int8_t* c = C + m * ldc;                                                              \
        int64_t n = 0;                                                                        \
        for (; n + 4 <= N; n += 4) {                                                          \
            const WT* b0 = B + (n + 0) * K;                                                   \
            const WT* b1 = B + (n + 1) * K;                                                   \
            const WT* b2 = B + (n + 2) * K;                                                   \
            const WT* b3 = B + (n + 3) * K;                                                   \
            int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                           \
            for (int64_t k = 0; k < K; k++) {                                                 \
                int32_t av = a[k];                                                            \
                s0 += av * b0[k];                                                             \
                s1 += av * b1[k];                                                             \
                s2 += av * b2[k];                                                             \
                s3 += av * b3[k];                                                             \
            }                                                                                 \
            c[n + 0] = em_requant_one(s0, (int)n + 0, rq);                                    \
            c[n + 1] = em_requant_one(s1, (int)n + 1, rq);                                    \
            c[n + 2] = em_requant_one(s2, (int)n + 2, rq);                                    \
            c[n + 3] = em_requant_one(s3, (int)n + 3, rq);                                    \
        }                                                                                     \
        for (; n < N; n++) {                                                                  \
            const WT* b0 = B + n * K;                                                         \
            int32_t s0 = 0;                                                                   \
            for (int64_t k = 0; k < K; k++) s0 += (int32_t)a[k] * b0[k];                      \
            c[n] = em_requant_one(s0, (int)n, rq);                                            \
        }                                                                                     \
    }

#define EM_GEMM_BODY EM_GEMM_BODY_T(int8_t)

static void em_gemm_s8_requant_scalar(const int8_t* A, int64_t lda, const int8_t* B, int64_t M, int64_t N,
                                      int64_t K, int8_t* C, int64_t ldc, const em_requant_cols* rq) {
    EM_GEMM_BODY
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2")))
static void em_gemm_s8_requant_avx2(const int8_t* A, int64_t lda, const int8_t* B, int64_t M, int64_t N,
                                    int64_t K, int8_t* C, int64_t ldc, const em_requant_cols* rq) {
    EM_GEMM_BODY
}
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void em_gemm_s8_requant_avx512(const int8_t* A, int64_t lda, const int8_t* B, int64_t M, int64_t N,
                                      int64_t K, int8_t* C, int64_t ldc, const em_requant_cols* rq) {
    EM_GEMM_BODY
}
#endif

#if defined(__aarch64__)
#include <arm_neon.h>
/* NEON: 4 columns per pass, 16 k at a time; vmull_s8 products fit int16 (|x w| <= 2^14) and vpadalq_s16
 * widens their pair sums into int32, so the sums are exact; requantization is the portable scalar one. */
static void em_gemm_s8_requant_neon(const int8_t* A, int64_t lda, const int8_t* B, int64_t M, int64_t N,
                                    int64_t K, int8_t* C, int64_t ldc, const em_requant_cols* rq) {
    for (int64_t m = 0; m < M; m++) {
        const int8_t* a = A + m * lda;
        int8_t* c = C + m * ldc;
        for (int64_t n = 0; n < N; n += 4) {
            const int64_t cols = N - n < 4 ? N - n : 4;
            const int8_t* b[4];
            for (int j = 0; j < 4; j++) b[j] = B + (n + (j < cols ? j : cols - 1)) * K;
            int32x4_t s[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
            int64_t k = 0;
            for (; k + 16 <= K; k += 16) {
                const int8x16_t av = vld1q_s8(a + k);
                for (int j = 0; j < 4; j++) {
                    const int8x16_t bv = vld1q_s8(b[j] + k);
                    s[j] = vpadalq_s16(s[j], vmull_s8(vget_low_s8(av), vget_low_s8(bv)));
                    s[j] = vpadalq_s16(s[j], vmull_high_s8(av, bv));
                }
            }
            for (int j = 0; j < cols; j++) {
                int32_t t = vaddvq_s32(s[j]);
                for (int64_t kk = k; kk < K; kk++) t += (int32_t)a[kk] * b[j][kk];
                c[n + j] = em_requant_one(t, (int)(n + j), rq);
            }
        }
    }
}
#endif

#include "em_isa.h"

static inline void em_gemm_s8_requant(const int8_t* A, int64_t lda, const int8_t* B, int64_t M, int64_t N,
                                      int64_t K, int8_t* C, int64_t ldc, const em_requant_cols* rq) {
#if defined(__x86_64__) && defined(__GNUC__)
    int isa = em_isa();
    if (isa >= EM_ISA_AVX512) { em_gemm_s8_requant_avx512(A, lda, B, M, N, K, C, ldc, rq); return; }
    if (isa >= EM_ISA_AVX2) { em_gemm_s8_requant_avx2(A, lda, B, M, N, K, C, ldc, rq); return; }
#endif
#if defined(__aarch64__)
    if (em_isa() == EM_ISA_NEON) { em_gemm_s8_requant_neon(A, lda, B, M, N, K, C, ldc, rq); return; }
#endif
    em_gemm_s8_requant_scalar(A, lda, B, M, N, K, C, ldc, rq);
}

/* The same GEMM with int16 weights: b holds w - w_zp (in [-255, 255]) for weights with a zero point (uint8
 * models' asymmetric weights), so the sums stay exact; the input zero point is folded into bias as above. */
static void em_gemm_s8s16_requant_scalar(const int8_t* A, int64_t lda, const int16_t* B, int64_t M, int64_t N,
                                         int64_t K, int8_t* C, int64_t ldc, const em_requant_cols* rq) {
    EM_GEMM_BODY_T(int16_t)
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2")))
static void em_gemm_s8s16_requant_avx2(const int8_t* A, int64_t lda, const int16_t* B, int64_t M, int64_t N,
                                       int64_t K, int8_t* C, int64_t ldc, const em_requant_cols* rq) {
    EM_GEMM_BODY_T(int16_t)
}
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void em_gemm_s8s16_requant_avx512(const int8_t* A, int64_t lda, const int16_t* B, int64_t M, int64_t N,
                                         int64_t K, int8_t* C, int64_t ldc, const em_requant_cols* rq) {
    EM_GEMM_BODY_T(int16_t)
}
#endif

static inline void em_gemm_s8s16_requant(const int8_t* A, int64_t lda, const int16_t* B, int64_t M, int64_t N,
                                         int64_t K, int8_t* C, int64_t ldc, const em_requant_cols* rq) {
#if defined(__x86_64__) && defined(__GNUC__)
    int isa = em_isa();
    if (isa >= EM_ISA_AVX512) { em_gemm_s8s16_requant_avx512(A, lda, B, M, N, K, C, ldc, rq); return; }
    if (isa >= EM_ISA_AVX2) { em_gemm_s8s16_requant_avx2(A, lda, B, M, N, K, C, ldc, rq); return; }
#endif
    em_gemm_s8s16_requant_scalar(A, lda, B, M, N, K, C, ldc, rq);
}

/* float GEMM: out[m][n] = act(sum_k a[m][k] * b[n][k] + bias[n]); sums in k order, as the reference does.
 * Eight columns at a time as eight independent chains (the same sums, without waiting on one add's latency
 * per multiply). */
#define EM_GEMM_F32_COLS 8
static void em_gemm_f32(const float* A, int64_t lda, const float* B, const float* bias, int64_t M, int64_t N,
                        int64_t K, float* C, int64_t ldc, float act_min, float act_max) {
    for (int64_t m = 0; m < M; m++) {
        const float* a = A + m * lda;
        float* c = C + m * ldc;
        int64_t n = 0;
        for (; n + EM_GEMM_F32_COLS <= N; n += EM_GEMM_F32_COLS) {
            float s[EM_GEMM_F32_COLS];
            const float* b = B + n * K;
            int j;
            for (j = 0; j < EM_GEMM_F32_COLS; j++) s[j] = 0.0f;
            for (int64_t k = 0; k < K; k++)
                for (j = 0; j < EM_GEMM_F32_COLS; j++) s[j] += a[k] * b[j * K + k];
            for (j = 0; j < EM_GEMM_F32_COLS; j++) {
                float v = s[j];
                if (bias) v += bias[n + j];
                c[n + j] = em_clamp_f32(v, act_min, act_max);
            }
        }
        for (; n < N; n++) {
            const float* b = B + n * K;
            float s = 0.0f;
            for (int64_t k = 0; k < K; k++) s += a[k] * b[k];
            if (bias) s += bias[n];
            c[n] = em_clamp_f32(s, act_min, act_max);
        }
    }
}
#endif
