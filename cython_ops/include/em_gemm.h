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

/* a[r] = where GEMM row m + r starts, r < MR, for a tile of `rows` rows (rows <= MR): the missing rows repeat the last
 * one (the tile computes them and does not store them).  MR is a constant at every call site. */
static inline __attribute__((always_inline)) void em_gemm_row_starts(const em_gemm_rows* A, int64_t m, int64_t rows,
                                                                     const int MR, const uint8_t** a) {
    if (A->OW == 0) {
        for (int r = 0; r < MR; r++) a[r] = A->base + (m + (r < rows ? r : rows - 1)) * A->lda;
        return;
    }
    int64_t oy = (A->first + m) / A->OW, ox = (A->first + m) % A->OW;
    for (int r = 0; r < MR; r++) {
        a[r] = A->base + oy * A->row_step + ox * A->col_step;
        if (r + 1 < rows && ++ox == A->OW) { ox = 0; oy++; }
    }
}

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
/* Requantization of the sums of columns n..n+3 at once in the fixed-point modes (em_requant.h's em_mbqm_neon), the
 * same bits as em_requant_one.  Returns 0, writing nothing, for the other modes and for shifts outside [-31, 30]
 * (the scalar path's edge cases), so that the caller takes em_requant_one. */
static inline int em_requant4_neon(int32x4_t acc, int64_t n, const em_requant_cols* rq, int8_t* out) {
    if (rq->mode != EM_ROUND_DOUBLE && rq->mode != EM_ROUND_SINGLE) return 0;
    const int32x4_t shift = vld1q_s32(rq->shift + n), mult = vld1q_s32(rq->mult + n);
    if (vminvq_s32(shift) < -31 || vmaxvq_s32(shift) > 30) return 0;
    int32x4_t v = em_mbqm_neon(vaddq_s32(acc, vld1q_s32(rq->bias + n)), mult, shift, rq->mode);
    v = vaddq_s32(v, vdupq_n_s32(rq->out_zp));
    v = vmaxq_s32(vminq_s32(v, vdupq_n_s32(rq->act_max)), vdupq_n_s32(rq->act_min));
    const int16x4_t v16 = vmovn_s32(v);
    const uint32_t bytes = vget_lane_u32(vreinterpret_u32_s8(vmovn_s16(vcombine_s16(v16, v16))), 0);
    memcpy(out, &bytes, 4);
    return 1;
}

/* out[c] = requant(acc[c]) for the columns n0..n0+count-1, four at a time where em_requant4_neon can. */
static inline void em_requant_row_neon(const int32_t* acc, int64_t n0, int64_t count, const em_requant_cols* rq,
                                       int8_t* out) {
    int64_t c = 0;
    for (; c + 4 <= count; c += 4)
        if (!em_requant4_neon(vld1q_s32(acc + c), n0 + c, rq, out + c))
            for (int j = 0; j < 4; j++) out[c + j] = em_requant_one(acc[c + j], (int)(n0 + c + j), rq);
    for (; c < count; c++) out[c] = em_requant_one(acc[c], (int)(n0 + c), rq);
}

/* NEON: 4 columns per pass, 16 k at a time; vmull_s8 products fit int16 (|x w| <= 2^14) and vpadalq_s16
 * widens their pair sums into int32, so the sums are exact; the k tail is scalar. */
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
            int32_t t[4];
            vst1q_s32(t, vpaddq_s32(vpaddq_s32(s[0], s[1]), vpaddq_s32(s[2], s[3])));
            for (int j = 0; j < 4; j++)
                for (int64_t kk = k; kk < K; kk++) t[j] += (int32_t)a[kk] * b[j][kk];
            em_requant_row_neon(t, n, cols, rq, c + n);
        }
    }
}

/* The columns n..n+3 of B (the last one repeated past N, those sums are not stored). */
static inline void em_gemm_neon_cols(const int8_t* B, int64_t n, int64_t N, int64_t K, const int8_t* b[4]) {
    for (int j = 0; j < 4; j++) b[j] = B + (n + j < N ? n + j : N - 1) * K;
}

/* Dot product (ARMv8.2 SDOT): a 2-row x 4-column tile (1 x 4 for a last odd row, and for a GEMV), 16 k per step;
 * each SDOT adds four 4-term int8 sums into int32 lanes, so the sums are exact as in the scalar loop; the k tail is
 * scalar. */
__attribute__((target("arch=armv8.2-a+dotprod")))
static void em_gemm_s8_requant_neon_dotprod(const int8_t* A, int64_t lda, const int8_t* B, int64_t M, int64_t N,
                                            int64_t K, int8_t* C, int64_t ldc, const em_requant_cols* rq) {
    for (int64_t m = 0; m < M; m += 2) {
        const int rows = M - m < 2 ? 1 : 2;
        const int8_t* a[2] = {A + m * lda, A + (m + rows - 1) * lda};
        for (int64_t n = 0; n < N; n += 4) {
            const int64_t cols = N - n < 4 ? N - n : 4;
            const int8_t* b[4];
            em_gemm_neon_cols(B, n, N, K, b);
            int32x4_t s[2][4];
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 4; j++) s[i][j] = vdupq_n_s32(0);
            int64_t k = 0;
            if (rows == 2) {
                for (; k + 16 <= K; k += 16) {
                    const int8x16_t a0 = vld1q_s8(a[0] + k), a1 = vld1q_s8(a[1] + k);
                    for (int j = 0; j < 4; j++) {
                        const int8x16_t bv = vld1q_s8(b[j] + k);
                        s[0][j] = vdotq_s32(s[0][j], a0, bv);
                        s[1][j] = vdotq_s32(s[1][j], a1, bv);
                    }
                }
            } else {
                for (; k + 16 <= K; k += 16) {
                    const int8x16_t a0 = vld1q_s8(a[0] + k);
                    for (int j = 0; j < 4; j++) s[0][j] = vdotq_s32(s[0][j], a0, vld1q_s8(b[j] + k));
                }
            }
            for (int i = 0; i < rows; i++) {
                /* pairwise adds leave the four columns' sums in one vector */
                int32_t t[4];
                vst1q_s32(t, vpaddq_s32(vpaddq_s32(s[i][0], s[i][1]), vpaddq_s32(s[i][2], s[i][3])));
                for (int j = 0; j < 4; j++)
                    for (int64_t kk = k; kk < K; kk++) t[j] += (int32_t)a[i][kk] * b[j][kk];
                em_requant_row_neon(t, n, cols, rq, C + (m + i) * ldc + n);
            }
        }
    }
}

/* Two 16-byte rows as the two 2x8 blocks SMMLA reads: [r0 k0-7 | r1 k0-7] and [r0 k8-15 | r1 k8-15]. */
#define EM_I8MM_PAIR(LO, HI, R0, R1)                                                                          \
    const int8x16_t LO = vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(R0), vreinterpretq_s64_s8(R1))); \
    const int8x16_t HI = vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(R0), vreinterpretq_s64_s8(R1)));

/* int8 matrix multiply (ARMv8.6 SMMLA): each SMMLA multiplies a 2x8 block of A (two rows) by a 2x8 block of B
 * (two columns) into a 2x2 int32 tile, [r0c0 r0c1 r1c0 r1c1]; a 2-row x 4-column tile, 16 k per step (the rows
 * and columns paired by 64-bit zips, B being unpacked), exact; the k tail is scalar, a last odd row takes the
 * dot-product kernel (every i8mm core has it). */
__attribute__((target("arch=armv8.6-a+i8mm")))
static void em_gemm_s8_requant_neon_i8mm(const int8_t* A, int64_t lda, const int8_t* B, int64_t M, int64_t N,
                                         int64_t K, int8_t* C, int64_t ldc, const em_requant_cols* rq) {
    int64_t m = 0;
    for (; m + 2 <= M; m += 2) {
        const int8_t* a[2] = {A + m * lda, A + (m + 1) * lda};
        for (int64_t n = 0; n < N; n += 4) {
            const int64_t cols = N - n < 4 ? N - n : 4;
            const int8_t* b[4];
            em_gemm_neon_cols(B, n, N, K, b);
            int32x4_t s01 = vdupq_n_s32(0), s23 = vdupq_n_s32(0);
            int64_t k = 0;
            for (; k + 16 <= K; k += 16) {
                EM_I8MM_PAIR(a_lo, a_hi, vld1q_s8(a[0] + k), vld1q_s8(a[1] + k))
                EM_I8MM_PAIR(b01_lo, b01_hi, vld1q_s8(b[0] + k), vld1q_s8(b[1] + k))
                EM_I8MM_PAIR(b23_lo, b23_hi, vld1q_s8(b[2] + k), vld1q_s8(b[3] + k))
                s01 = vmmlaq_s32(vmmlaq_s32(s01, a_lo, b01_lo), a_hi, b01_hi);
                s23 = vmmlaq_s32(vmmlaq_s32(s23, a_lo, b23_lo), a_hi, b23_hi);
            }
            int32_t t[2][4] = {{vgetq_lane_s32(s01, 0), vgetq_lane_s32(s01, 1), vgetq_lane_s32(s23, 0),
                                vgetq_lane_s32(s23, 1)},
                               {vgetq_lane_s32(s01, 2), vgetq_lane_s32(s01, 3), vgetq_lane_s32(s23, 2),
                                vgetq_lane_s32(s23, 3)}};
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < 4; j++)
                    for (int64_t kk = k; kk < K; kk++) t[i][j] += (int32_t)a[i][kk] * b[j][kk];
                em_requant_row_neon(t[i], n, cols, rq, C + (m + i) * ldc + n);
            }
        }
    }
    if (m < M) em_gemm_s8_requant_neon_dotprod(A + m * lda, lda, B, 1, N, K, C + m * ldc, ldc, rq);
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
    const int isa = em_isa();
    if (isa >= EM_ISA_NEON_I8MM) { em_gemm_s8_requant_neon_i8mm(A, lda, B, M, N, K, C, ldc, rq); return; }
    if (isa >= EM_ISA_NEON_DOTPROD) { em_gemm_s8_requant_neon_dotprod(A, lda, B, M, N, K, C, ldc, rq); return; }
    if (isa >= EM_ISA_NEON) { em_gemm_s8_requant_neon(A, lda, B, M, N, K, C, ldc, rq); return; }
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
