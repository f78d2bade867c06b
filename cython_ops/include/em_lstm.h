/* UNIDIRECTIONAL_SEQUENCE_LSTM kernels: the integer 8x8_16 path and float32.
 *
 * Integer arithmetic written from LiteRT's lstm_eval.cc (EvalInteger8x8_16, CalculateLstmGateInteger8x8_16,
 * UpdateLstmCellInteger, CalculateLstmOutputInteger8x8_16) and the portable tensor_utils it runs:
 *   gate   = sat16( MBQM(Wh.h + bh, Mh) + sat16( MBQM(Wx.x + bx, Mx) ) )     (bx, bh: zero points folded)
 *   i, f, o = logistic(gate as Q3.12) as Q0.15;  g = tanh(gate as Q3.12)     (gemmlowp int16 fixed point)
 *   c      = sat16( RDBP(f*c, 15) + RDBP(i*g, 30 + cell_scale) ), clipped to +-cell_clip
 *   h      = clamp8( MBQM(o * tanh(c as Q(15+cell_scale)), Mhidden) + hidden_zp )
 * The gemmlowp int16 activations are exact functions of one int16.  The portable path tabulates them once at
 * load (em_lstm_fill_table); gemmlowp's logistic(-x) = 1 - logistic(x) and tanh(-x) = -tanh(x) hold bit for bit,
 * so it keeps only the half for |x| (up to where it saturates; rnn.py builds and checks it) and indexes it.  The
 * AVX-512 path computes them 32 lanes at a time instead (em_q16x_*: no gathers from 100+ KB of tables).
 * Speed: Wx.x for every time step is one GEMM before the recurrence (int16 results in scratch); each step
 * then runs one GEMV over the four stacked gates and the fused element-wise update.  The dot-product loops
 * are written for the compiler to vectorize and built per ISA (em_isa.h). */
#ifndef EM_LSTM_H
#define EM_LSTM_H
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "em_params.h"
#include "em_requant.h"
#include "em_isa.h"
#include "em_gemm_vnni.h"

/* ----- gemmlowp FixedPoint<int16, IntegerBits> helpers (fixedpoint.h, int16 instantiation) ----- */

static inline int16_t em_q16_wrap(int32_t v) { return (int16_t)(uint16_t)(uint32_t)v; }
static inline int16_t em_q16_add(int16_t a, int16_t b) { return em_q16_wrap((int32_t)a + b); }
static inline int16_t em_q16_sub(int16_t a, int16_t b) { return em_q16_wrap((int32_t)a - b); }
static inline int16_t em_q16_neg(int16_t a) { return em_q16_wrap(-(int32_t)a); }
static inline int16_t em_q16_sat_add(int16_t a, int16_t b) {
    int32_t s = (int32_t)a + b;
    return (int16_t)(s > INT16_MAX ? INT16_MAX : (s < INT16_MIN ? INT16_MIN : s));
}
static inline int16_t em_q16_mul(int16_t a, int16_t b) {   /* SaturatingRoundingDoublingHighMul */
    int32_t ab, nudge;
    if (a == INT16_MIN && b == INT16_MIN) return INT16_MAX;
    ab = (int32_t)a * (int32_t)b;
    nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    return (int16_t)((ab + nudge) / (1 << 15));
}
static inline int16_t em_q16_rdbp(int16_t x, int e) {      /* RoundingDivideByPOT */
    int16_t mask = (int16_t)((1 << e) - 1);
    int16_t rem = (int16_t)(x & mask);
    int16_t thr = em_q16_add((int16_t)(mask >> 1), (int16_t)(x < 0 ? 1 : 0));
    return em_q16_add((int16_t)(x >> e), (int16_t)(rem > thr ? 1 : 0));
}
static inline int16_t em_q16_mul_pot(int16_t x, int e) {   /* SaturatingRoundingMultiplyByPOT<e> */
    int32_t thr;
    if (e == 0) return x;
    if (e < 0) return em_q16_rdbp(x, -e);
    thr = (1 << (15 - e)) - 1;
    if (x > thr) return INT16_MAX;
    if (x < -thr) return INT16_MIN;
    return em_q16_wrap((int32_t)((uint32_t)(int32_t)x << e));
}
/* an int32 gemmlowp constant rescaled to int16 (RescaleConstantInitializer) */
static inline int16_t em_q16_const(int32_t v) { return (int16_t)em_rounding_divide_by_pot(v, 16); }

static int16_t em_q16_exp_neg_quarter(int16_t a) {          /* exp(a), a in [-1/4, 0), Q0.15 */
    const int16_t c = em_q16_const(1895147668), third = em_q16_const(715827883);
    int16_t x = em_q16_add(a, (int16_t)(1 << 12));
    int16_t x2 = em_q16_mul(x, x), x3 = em_q16_mul(x2, x), x4 = em_q16_mul(x2, x2);
    int16_t x4_4 = em_q16_mul_pot(x4, -2);
    int16_t poly = em_q16_mul_pot(em_q16_add(em_q16_mul(em_q16_add(x4_4, x3), third), x2), -1);
    return em_q16_sat_add(c, em_q16_mul(c, em_q16_add(x, poly)));
}

static int16_t em_q16_exp_on_negative(int16_t a, int ibits) {
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int fbits = 15 - ibits;
    const int16_t quarter = (int16_t)(1 << (fbits - 2));
    const int16_t mask = (int16_t)(quarter - 1);
    int16_t amq = em_q16_sub((int16_t)(a & mask), quarter);
    int16_t result = em_q16_exp_neg_quarter(em_q16_mul_pot(amq, ibits));
    int16_t rem = em_q16_sub(amq, a);
    int k;
    for (k = -2; k <= 4; k++) {
        if (ibits > k) {
            int sh = fbits + k;
            if (rem & (int16_t)(1 << sh)) result = em_q16_mul(result, em_q16_const(barrel[k + 2]));
        }
    }
    if (ibits > 5) {
        int16_t clamp = (int16_t)-(1 << (36 - ibits - 16));  /* -32.0 rescaled to int16 */
        if (a < clamp) result = 0;
    }
    if (a == 0) result = INT16_MAX;
    return result;
}

static int16_t em_q16_newton(int16_t half_den) {            /* x ~ 1 / half_den, Q2.13 */
    const int16_t c48 = em_q16_const(1515870810), cm32 = em_q16_const(-1010580540);
    const int16_t one2 = (int16_t)(1 << 13);
    int16_t x = em_q16_add(c48, em_q16_mul(half_den, cm32));
    int i;
    for (i = 0; i < 3; i++) {
        int16_t hdx = em_q16_mul(half_den, x);
        int16_t om = em_q16_sub(one2, hdx);
        x = em_q16_add(x, em_q16_mul_pot(em_q16_mul(x, om), 2));
    }
    return x;
}

static inline int16_t em_q16_half_sum(int16_t a, int16_t b) {
    int32_t s = (int32_t)a + b;
    return (int16_t)((s + (s >= 0 ? 1 : -1)) / 2);
}

/* gemmlowp::logistic on FixedPoint<int16, ibits> -> Q0.15 */
static int16_t em_q16_logistic(int16_t a, int ibits) {
    int16_t abs_a, e, pos;
    if (a == 0) return em_q16_const(1 << 30);
    abs_a = a > 0 ? a : em_q16_neg(a);
    e = em_q16_exp_on_negative(em_q16_neg(abs_a), ibits);
    pos = em_q16_mul_pot(em_q16_newton(em_q16_half_sum(e, INT16_MAX)), 1);
    return a > 0 ? pos : em_q16_sub(INT16_MAX, pos);
}

/* gemmlowp::tanh on FixedPoint<int16, ibits> -> Q0.15 */
static int16_t em_q16_tanh(int16_t a, int ibits) {
    int16_t n, e, t;
    if (a == 0) return 0;
    n = a < 0 ? a : em_q16_neg(a);
    e = em_q16_exp_on_negative(n, ibits + 1);              /* exp(2n): same raw value, one more integer bit */
    t = em_q16_mul_pot(em_q16_sub(em_q16_newton(em_q16_half_sum(e, INT16_MAX)), (int16_t)(1 << 13)), 2);
    return a < 0 ? em_q16_neg(t) : t;
}

#define EM_LSTM_TABLE_LOGISTIC 0
#define EM_LSTM_TABLE_TANH 1
/* table[(uint16)x] = f(x) for every int16 x; f is logistic or tanh read with `ibits` integer bits */
static void em_lstm_fill_table(int kind, int ibits, int16_t* table) {
    int32_t v;
    for (v = INT16_MIN; v <= INT16_MAX; v++)
        table[(uint16_t)(int16_t)v] = kind == EM_LSTM_TABLE_LOGISTIC ? em_q16_logistic((int16_t)v, ibits)
                                                                     : em_q16_tanh((int16_t)v, ibits);
}

static inline int16_t em_sat16(int32_t v) {
    return (int16_t)(v > INT16_MAX ? INT16_MAX : (v < INT16_MIN ? INT16_MIN : v));
}

/* f(x) from the |x| half table: H[min(|x|, limit)], mirrored for x < 0 (odd: -y, logistic: 1 - y) */
static inline int16_t em_lstm_lut(const int16_t* H, int32_t limit, int odd, int16_t x) {
    int32_t a = x < 0 ? -(int32_t)x : x;
    int16_t y = H[a > limit ? limit : a];
    return x < 0 ? (int16_t)(odd ? -y : INT16_MAX - y) : y;
}

/* ----- int8 dot products with int32 results: out[m][n] = sum_k a[m][k] * w[n][k] --------------------------
 * Weights are packed at load (rnn.py pack_s8) into blocks of EM_LSTM_COLS columns; within a block, for each pair of
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

/* u8 x s8 variant for AVX-512 VNNI (vpdpbusd): activations read as a + 128 (uint8), weights packed by rnn.py
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
#endif

/* the int8 sums in either packing: quads = the AVX-512 VNNI u8 x s8 form (pack_u8s8: activations read as a + 128,
 * so the caller subtracts 128 * sum_k w), else the int16 pairs (pack_s8) */
static inline void em_lstm_dots_packed(int quads, const int8_t* A, int64_t lda, const void* W, int64_t M, int64_t Np,
                                       int64_t K, int32_t* out) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (quads) { em_lstm_dots_u8s8(A, lda, (const int8_t*)W, M, Np, K, out); return; }
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

/* ----- the element-wise part of one step on AVX-512 (double-rounding mode only) ---------------------------
 * Same arithmetic as the scalar loop in em_lstm_int8.  The gemmlowp int16 logistic / tanh are computed, not
 * looked up, 32 lanes per vector: their int16 SaturatingRoundingDoublingHighMul is vpmulhrsw, since
 * trunc((ab + 1 - 2^14) / 2^15) for ab < 0 and floor((ab + 2^14) / 2^15) for ab >= 0 are both
 * floor((ab + 2^14) / 2^15); the one case where they differ, INT16_MIN * INT16_MIN, cannot occur (every product
 * below has one factor >= 0 or both within [-2^12, 2^12]).  rnn.pyx's activation_table_simd runs these
 * functions over all 65536 inputs so that tests compare them with the scalar ones. */
#if defined(__x86_64__) && defined(__GNUC__)
EM_VNNI_TARGET static inline __m512i em_lstm_sat16_x16(__m512i v) {
    return _mm512_min_epi32(_mm512_max_epi32(v, _mm512_set1_epi32(INT16_MIN)), _mm512_set1_epi32(INT16_MAX));
}
EM_VNNI_TARGET static inline __m512i em_lstm_rdbp_x16(__m512i x, int e) {
    const __m512i mask = _mm512_set1_epi32((int32_t)((1LL << e) - 1)), one = _mm512_set1_epi32(1);
    __m512i rem = _mm512_and_si512(x, mask);
    __m512i thr = _mm512_srai_epi32(mask, 1);
    thr = _mm512_mask_add_epi32(thr, _mm512_cmplt_epi32_mask(x, _mm512_setzero_si512()), thr, one);
    __m512i q = _mm512_sra_epi32(x, _mm_cvtsi32_si128(e));
    return _mm512_mask_add_epi32(q, _mm512_cmpgt_epi32_mask(rem, thr), q, one);
}
EM_VNNI_TARGET static inline __m512i em_lstm_trunc16_x16(__m512i v) {   /* (int16_t) cast */
    return _mm512_srai_epi32(_mm512_slli_epi32(v, 16), 16);
}

/* gemmlowp FixedPoint<int16> on 32 lanes (em_q16x_*) and 16 lanes (em_q16y_*): em_lstm_q16x.h */
#define EMQ_V __m512i
#define EMQ_M __mmask32
#define EMQ(op) _mm512##op
#define EMQ_ZERO _mm512_setzero_si512()
#define EMQ_AND _mm512_and_si512
#define EMQ_FN(name) em_q16x_##name
#include "em_lstm_q16x.h"
#undef EMQ_V
#undef EMQ_M
#undef EMQ
#undef EMQ_ZERO
#undef EMQ_AND
#undef EMQ_FN
#define EMQ_V __m256i
#define EMQ_M __mmask16
#define EMQ(op) _mm256##op
#define EMQ_ZERO _mm256_setzero_si256()
#define EMQ_AND _mm256_and_si256
#define EMQ_FN(name) em_q16y_##name
#include "em_lstm_q16x.h"
#undef EMQ_V
#undef EMQ_M
#undef EMQ
#undef EMQ_ZERO
#undef EMQ_AND
#undef EMQ_FN

/* 32 int32 lanes (two vectors) -> 32 int16 lanes, saturating */
EM_VNNI_TARGET static inline __m512i em_lstm_pack16(__m512i lo, __m512i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtsepi32_epi16(lo)), _mm512_cvtsepi32_epi16(hi), 1);
}
EM_VNNI_TARGET static inline __m512i em_lstm_half32(__m512i v, int half) {     /* int16 lanes -> int32 */
    return _mm512_cvtepi16_epi32(half ? _mm512_extracti64x4_epi64(v, 1) : _mm512_castsi512_si256(v));
}

/* the input part of every gate for one row: pre[n] = sat16(MBQM(acc[n] + bx[n], gate multiplier)) */
EM_VNNI_TARGET static void em_lstm_requant_row_vnni(const int32_t* acc, int64_t NC, const int32_t* bx,
                                                    const em_mbqm16* q, int16_t* pre) {
    int64_t j;
    int g;
    for (g = 0; g < 4; g++)
        for (j = 0; j < NC; j += 16) {
            const __mmask16 k = NC - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (NC - j)) - 1);
            const int64_t n = g * NC + j;
            __m512i a = _mm512_add_epi32(_mm512_maskz_loadu_epi32(k, acc + n), _mm512_maskz_loadu_epi32(k, bx + n));
            _mm256_mask_storeu_epi16(pre + n, k, _mm512_cvtsepi32_epi16(em_mbqm_apply_x16(a, q + g)));
        }
}

EM_VNNI_TARGET static void em_lstm_step_consts(const int32_t* mult, const int32_t* shift, int32_t hm, int32_t hsh,
                                               em_mbqm16* qx, em_mbqm16* qh) {
    int g;
    for (g = 0; g < 4; g++) qx[g] = em_mbqm_consts(_mm512_set1_epi32(mult[g]), _mm512_set1_epi32(shift[g]));
    for (g = 0; g < 5; g++)
        qh[g] = em_mbqm_consts(_mm512_set1_epi32(g < 4 ? mult[4 + g] : hm), _mm512_set1_epi32(g < 4 ? shift[4 + g] : hsh));
}

/* one step's cells, 32 at a time; q: the recurrent multipliers of the 4 gates, then the hidden one */
EM_VNNI_TARGET static void em_lstm_cells_vnni(const int32_t* a, const int32_t* bh, const int16_t* px,
                                              const em_mbqm16* q, int64_t NC, int cell_shift, int cell_ibits,
                                              int16_t clip, int32_t hzp, int stale_tanh, int16_t* c, int8_t* out) {
    int64_t j;
    for (j = 0; j < NC; j += 32) {
        const int64_t left = NC - j;
        const __mmask32 k32 = left >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << left) - 1);
        __mmask16 k16[2];
        __m512i gate[4], vi, vf, vg, vo, c16, th16, cnew[2];
        int g, h;
        k16[0] = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        k16[1] = left >= 32 ? (__mmask16)0xFFFF : (left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0);
        for (g = 0; g < 4; g++) {
            const int64_t n = g * NC + j;
            __m512i part[2];
            for (h = 0; h < 2; h++) {
                __m512i acc = _mm512_add_epi32(_mm512_maskz_loadu_epi32(k16[h], a + n + 16 * h),
                                               _mm512_maskz_loadu_epi32(k16[h], bh + n + 16 * h));
                part[h] = em_mbqm_apply_x16(acc, q + g);
            }
            /* sat16(MBQM(..) + sat16-ed input part): both terms fit int32, the pack saturates */
            __m512i x16 = _mm512_maskz_loadu_epi16(k32, px + n);
            gate[g] = em_lstm_pack16(_mm512_add_epi32(part[0], em_lstm_half32(x16, 0)),
                                     _mm512_add_epi32(part[1], em_lstm_half32(x16, 1)));
        }
        vi = em_q16x_logistic(gate[0], 3);
        vf = em_q16x_logistic(gate[1], 3);
        vg = em_q16x_tanh(gate[2], 3);
        vo = em_q16x_logistic(gate[3], 3);
        c16 = _mm512_maskz_loadu_epi16(k32, c + j);
        for (h = 0; h < 2; h++) {
            __m512i keep = em_lstm_trunc16_x16(em_lstm_rdbp_x16(
                _mm512_mullo_epi32(em_lstm_half32(vf, h), em_lstm_half32(c16, h)), 15));
            __m512i add = em_lstm_trunc16_x16(em_lstm_rdbp_x16(
                _mm512_mullo_epi32(em_lstm_half32(vi, h), em_lstm_half32(vg, h)), cell_shift));
            __m512i cv = em_lstm_sat16_x16(_mm512_add_epi32(keep, add));
            if (clip > 0)
                cv = _mm512_min_epi32(_mm512_max_epi32(cv, _mm512_set1_epi32(-clip)), _mm512_set1_epi32(clip));
            cnew[h] = cv;
        }
        c16 = em_lstm_pack16(cnew[0], cnew[1]);
        _mm512_mask_storeu_epi16(c + j, k32, c16);
        th16 = stale_tanh ? vi : em_q16x_tanh(c16, cell_ibits);
        for (h = 0; h < 2; h++) {
            __m512i hv = _mm512_mullo_epi32(em_lstm_half32(vo, h), em_lstm_half32(th16, h));
            hv = _mm512_add_epi32(em_mbqm_apply_x16(hv, q + 4), _mm512_set1_epi32(hzp));
            hv = _mm512_min_epi32(_mm512_max_epi32(hv, _mm512_set1_epi32(-128)), _mm512_set1_epi32(127));
            _mm_mask_storeu_epi8(out + j + 16 * h, k16[h], _mm512_cvtepi32_epi8(hv));
        }
    }
}

/* the same for at most 16 cells: one vector of 16 int32 lanes, the activations on 16 int16 lanes (em_q16y_*),
 * so small layers do not pay for 32 */
EM_VNNI_TARGET static void em_lstm_cells16_vnni(const int32_t* a, const int32_t* bh, const int16_t* px,
                                                const em_mbqm16* q, int64_t NC, int cell_shift, int cell_ibits,
                                                int16_t clip, int32_t hzp, int stale_tanh, int16_t* c, int8_t* out) {
    const __mmask16 k = NC >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << NC) - 1);
    __m256i gate[4], vi, vf, vg, vo, c16, th16;
    __m512i keep, add, cv, hv;
    int g;
    for (g = 0; g < 4; g++) {
        const int64_t n = g * NC;
        __m512i acc = _mm512_add_epi32(_mm512_maskz_loadu_epi32(k, a + n), _mm512_maskz_loadu_epi32(k, bh + n));
        gate[g] = _mm512_cvtsepi32_epi16(_mm512_add_epi32(em_mbqm_apply_x16(acc, q + g),
                                                          _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(k, px + n))));
    }
    vi = em_q16y_logistic(gate[0], 3);
    vf = em_q16y_logistic(gate[1], 3);
    vg = em_q16y_tanh(gate[2], 3);
    vo = em_q16y_logistic(gate[3], 3);
    c16 = _mm256_maskz_loadu_epi16(k, c);
    keep = em_lstm_trunc16_x16(em_lstm_rdbp_x16(_mm512_mullo_epi32(_mm512_cvtepi16_epi32(vf), _mm512_cvtepi16_epi32(c16)), 15));
    add = em_lstm_trunc16_x16(em_lstm_rdbp_x16(_mm512_mullo_epi32(_mm512_cvtepi16_epi32(vi), _mm512_cvtepi16_epi32(vg)),
                                               cell_shift));
    cv = em_lstm_sat16_x16(_mm512_add_epi32(keep, add));
    if (clip > 0) cv = _mm512_min_epi32(_mm512_max_epi32(cv, _mm512_set1_epi32(-clip)), _mm512_set1_epi32(clip));
    c16 = _mm512_cvtsepi32_epi16(cv);
    _mm256_mask_storeu_epi16(c, k, c16);
    th16 = stale_tanh ? vi : em_q16y_tanh(c16, cell_ibits);
    hv = _mm512_mullo_epi32(_mm512_cvtepi16_epi32(vo), _mm512_cvtepi16_epi32(th16));
    hv = _mm512_add_epi32(em_mbqm_apply_x16(hv, q + 4), _mm512_set1_epi32(hzp));
    hv = _mm512_min_epi32(_mm512_max_epi32(hv, _mm512_set1_epi32(-128)), _mm512_set1_epi32(127));
    _mm_mask_storeu_epi8(out, k, _mm512_cvtepi32_epi8(hv));
}

/* f(x) for every int16 x (indexed by uint16(x)) with the 32-lane (lanes = 32) or 16-lane forms: for tests against
 * em_lstm_fill_table */
EM_VNNI_TARGET static void em_lstm_fill_table_simd(int kind, int ibits, int lanes, int16_t* table) {
    int32_t v;
    for (v = INT16_MIN; v <= INT16_MAX; v += 32) {
        __m512i x = _mm512_add_epi16(_mm512_set1_epi16((int16_t)v),
                                     _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,
                                                      15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0));
        __m512i y;
        int16_t tmp[32];
        int i;
        if (lanes == 32) {
            y = kind == EM_LSTM_TABLE_LOGISTIC ? em_q16x_logistic(x, ibits) : em_q16x_tanh(x, ibits);
        } else {
            __m256i lo = _mm512_castsi512_si256(x), hi = _mm512_extracti64x4_epi64(x, 1);
            lo = kind == EM_LSTM_TABLE_LOGISTIC ? em_q16y_logistic(lo, ibits) : em_q16y_tanh(lo, ibits);
            hi = kind == EM_LSTM_TABLE_LOGISTIC ? em_q16y_logistic(hi, ibits) : em_q16y_tanh(hi, ibits);
            y = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        }
        _mm512_storeu_si512(tmp, y);
        for (i = 0; i < 32; i++) table[(uint16_t)(int16_t)(v + i)] = tmp[i];
    }
}
#else
static void em_lstm_fill_table_simd(int kind, int ibits, int lanes, int16_t* table) {
    (void)kind; (void)ibits; (void)lanes; (void)table;
}
#endif
/* 1 when em_lstm_fill_table_simd can run here */
static int em_lstm_simd_tables(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    return em_isa() >= EM_ISA_AVX512VNNI;
#else
    return 0;
#endif
}

/* ----- the integer kernel ---------------------------------------------------------------------------------
 * ptr: 0 x int8 [B,T,F] (or [T,B,F] when time_major), 1 y int8 [.., n_cell] one row per (b, t),
 *      2 h state int8 [B, n_cell], 3 c state int16 [B, n_cell],
 *      4 Wx [4*n_cell, F], 5 Wh [4*n_cell, n_cell] (gate order i, f, g, o), packed for em_lstm_dots,
 *      6 bias_x int32 [4*n_cell], 7 bias_h int32 [4*n_cell] (zero points folded in),
 *      8 mult int32 [8]: Mx for the 4 gates then Mh, 9 shift int32 [8],
 *      10 sigmoid, 11 tanh (Q3.12 -> Q0.15), 12 tanh of the cell state: |x| half tables (em_lstm_lut),
 *      13 scratch: int16 [T*B*4*n_cell] input part, int32 [Gp] sums (Gp: 4*n_cell padded)
 * ints: 0 B, 1 T, 2 F, 3 n_cell, 4 time_major, 5 cell_shift (30 + cell_scale), 6 cell clip (0: none),
 *       7 hidden mult, 8 hidden shift, 9 hidden zp, 10 rounding mode,
 *       13..15 last index of the three half tables (where they saturate),
 *       12 weight layout: 0 int16 pairs (em_lstm_dots), 1 u8 x s8 quads (em_lstm_dots_u8s8, AVX-512 VNNI)
 *       11 stale_tanh: LiteRT's ApplyTanh has no variant for the cell state's integer bits (15 + cell_scale
 *          outside 0..6) and leaves its output buffer, the input gate's scratch, unwritten: h = o * i. */
static void em_lstm_int8(const em_params* p) {
    const int8_t* x = (const int8_t*)p->ptr[0];
    int8_t* y = (int8_t*)p->ptr[1];
    int8_t* hs = (int8_t*)p->ptr[2];
    int16_t* cs = (int16_t*)p->ptr[3];
    const int16_t* wx = (const int16_t*)p->ptr[4];
    const int16_t* wh = (const int16_t*)p->ptr[5];
    const int32_t* bx = (const int32_t*)p->ptr[6];
    const int32_t* bh = (const int32_t*)p->ptr[7];
    const int32_t* mult = (const int32_t*)p->ptr[8];
    const int32_t* shift = (const int32_t*)p->ptr[9];
    const int16_t* sig = (const int16_t*)p->ptr[10];
    const int16_t* tanh_g = (const int16_t*)p->ptr[11];
    const int16_t* tanh_c = (const int16_t*)p->ptr[12];
    const int32_t lim[3] = {(int32_t)p->i[13], (int32_t)p->i[14], (int32_t)p->i[15]};
    const int64_t B = p->i[0], T = p->i[1], F = p->i[2], NC = p->i[3];
    const int time_major = (int)p->i[4], cell_shift = (int)p->i[5];
    const int16_t clip = (int16_t)p->i[6];
    const int32_t hm = (int32_t)p->i[7], hsh = (int32_t)p->i[8], hzp = (int32_t)p->i[9];
    const int mode = (int)p->i[10], stale_tanh = (int)p->i[11], quads = (int)p->i[12];
    const int64_t G = 4 * NC, Gp = (G + EM_LSTM_COLS - 1) / EM_LSTM_COLS * EM_LSTM_COLS;
    int16_t* pre = (int16_t*)p->ptr[13];
    int32_t* acc = (int32_t*)(pre + T * B * G);
    int64_t r, n, t, b, j;

    /* input part of every gate for every row of x (all steps), requantized to int16 row by row, so the int32
     * sums need one row of scratch */
#if defined(__x86_64__) && defined(__GNUC__)
    const int vec = mode == EM_ROUND_DOUBLE && em_isa() >= EM_ISA_AVX512VNNI;
#else
    const int vec = 0;                        /* (em_isa() is EM_ISA_NEON here, numerically above the x86 paths) */
#endif
#if defined(__x86_64__) && defined(__GNUC__)
    /* the vector path's multiplier constants, derived once: the input part's 4 gates, the recurrent part's 4
     * gates and the hidden one */
    const int cell_ibits = stale_tanh ? 0 : cell_shift - 15;
    em_mbqm16 qx[4], qh[5];
    if (vec) em_lstm_step_consts(mult, shift, hm, hsh, qx, qh);
#endif
    for (r = 0; r < T * B; r++) {
        int16_t* o = pre + r * G;
        int g;
        em_lstm_dots_packed(quads, x + r * F, F, wx, 1, Gp, F, acc);
#if defined(__x86_64__) && defined(__GNUC__)
        if (vec) { em_lstm_requant_row_vnni(acc, NC, bx, qx, o); continue; }
#endif
        for (g = 0; g < 4; g++)
            for (n = g * NC; n < (g + 1) * NC; n++) o[n] = em_sat16(em_mbqm(acc[n] + bx[n], mult[g], shift[g], mode));
    }
    for (t = 0; t < T; t++) {
        for (b = 0; b < B; b++) {
            const int64_t row = time_major ? t * B + b : b * T + t;
            int8_t* h = hs + b * NC;
            int16_t* c = cs + b * NC;
            const int16_t* px = pre + row * G;
            int32_t* a = acc;
            int8_t* out = y + row * NC;
            em_lstm_dots_packed(quads, h, NC, wh, 1, Gp, NC, a);
#if defined(__x86_64__) && defined(__GNUC__)
            if (vec) {
                if (NC <= 16) em_lstm_cells16_vnni(a, bh, px, qh, NC, cell_shift, cell_ibits, clip, hzp, stale_tanh, c, out);
                else em_lstm_cells_vnni(a, bh, px, qh, NC, cell_shift, cell_ibits, clip, hzp, stale_tanh, c, out);
                memcpy(h, out, (size_t)NC);
                continue;
            }
#endif
            for (j = 0; j < NC; j++) {
                int16_t gi = em_sat16(em_mbqm(a[j] + bh[j], mult[4], shift[4], mode) + px[j]);
                int16_t gf = em_sat16(em_mbqm(a[NC + j] + bh[NC + j], mult[5], shift[5], mode) + px[NC + j]);
                int16_t gg = em_sat16(em_mbqm(a[2 * NC + j] + bh[2 * NC + j], mult[6], shift[6], mode) +
                                      px[2 * NC + j]);
                int16_t go = em_sat16(em_mbqm(a[3 * NC + j] + bh[3 * NC + j], mult[7], shift[7], mode) +
                                      px[3 * NC + j]);
                int16_t vi = em_lstm_lut(sig, lim[0], 0, gi), vf = em_lstm_lut(sig, lim[0], 0, gf);
                int16_t vo = em_lstm_lut(sig, lim[0], 0, go), vg = em_lstm_lut(tanh_g, lim[1], 1, gg);
                int16_t c_keep = (int16_t)em_rounding_divide_by_pot((int32_t)vf * c[j], 15);
                int16_t c_new = (int16_t)em_rounding_divide_by_pot((int32_t)vi * vg, cell_shift);
                int16_t cv = em_sat16((int32_t)c_keep + c_new);
                int32_t hv;
                if (clip > 0) cv = cv > clip ? clip : (cv < -clip ? (int16_t)-clip : cv);
                c[j] = cv;
                hv = em_mbqm((int32_t)vo * (stale_tanh ? vi : em_lstm_lut(tanh_c, lim[2], 1, cv)), hm, hsh, mode) + hzp;
                out[j] = (int8_t)(hv > 127 ? 127 : (hv < -128 ? -128 : hv));
            }
            memcpy(h, out, (size_t)NC);
        }
    }
}

/* ----- float32 kernel (LiteRT EvalFloat without CIFG / peephole / projection / layer norm) -----------------
 * ptr: 0 x, 1 y, 2 h state [B, n_cell], 3 c state [B, n_cell], 4 Wx, 5 Wh (packed for em_lstm_fdots),
 *      6 bias [Gp], 13 scratch float [(T*B + 1) * Gp]; Gp = 4*n_cell padded to the column block
 * ints: 0 B, 1 T, 2 F, 3 n_cell, 4 time_major, 5 activation (4 tanh, 0 none: h = o * g as in LiteRT, 1 relu,
 *       2 relu_n1_to_1, 3 relu6)
 * floats: 0 cell clip (0: none)
 * sigmoid and tanh use one polynomial exp (Cephes expf coefficients, range reduction by ln 2, no FMA) in the
 * scalar, 8- and 16-lane forms alike, so they give the same bits on every path (within 2 ulp of libm); the
 * AVX-512 dot products use FMA, so that path's results agree within float tolerance. */
/* the polynomial's constants, shared by every ISA form (em_onnx_rnn.h has the 16-lane one) */
#define EM_EXP_LOG2E (1.44269504088896341f)
#define EM_EXP_LN2_HI (0.693359375f)
#define EM_EXP_LN2_LO (-2.12194440e-4f)
#define EM_EXP_P0 (1.9875691500E-4f)
#define EM_EXP_P1 (1.3981999507E-3f)
#define EM_EXP_P2 (8.3334519073E-3f)
#define EM_EXP_P3 (4.1665795894E-2f)
#define EM_EXP_P4 (1.6666665459E-1f)
#define EM_EXP_P5 (5.0000001201E-1f)
#define EM_TANH_Q0 (-5.70498872745E-3f)
#define EM_TANH_Q1 (2.06390887954E-2f)
#define EM_TANH_Q2 (5.37397155531E-2f)
#define EM_TANH_Q3 (1.33314422036E-1f)
#define EM_TANH_Q4 (3.33332819422E-1f)
#define EM_TANH_SMALL (0.625f)
#define EM_EXP_HI 88.3762626647949f
#define EM_EXP_LO -87.3365478515625f

static inline float em_lstm_expf(float x) {
    float n, r, r2, p;
    union { float f; int32_t i; } e;
    x = x > EM_EXP_HI ? EM_EXP_HI : (x < EM_EXP_LO ? EM_EXP_LO : x);
    n = floorf(x * EM_EXP_LOG2E + 0.5f);
    r = x - n * EM_EXP_LN2_HI;
    r = r - n * EM_EXP_LN2_LO;
    r2 = r * r;
    p = EM_EXP_P0;
    p = p * r + EM_EXP_P1;
    p = p * r + EM_EXP_P2;
    p = p * r + EM_EXP_P3;
    p = p * r + EM_EXP_P4;
    p = p * r + EM_EXP_P5;
    p = p * r2 + r;
    p = p + 1.0f;
    e.i = ((int32_t)n + 127) << 23;
    return p * e.f;
}
static inline float em_lstm_sigmoidf(float x) { return 1.0f / (1.0f + em_lstm_expf(-x)); }
static inline float em_lstm_tanhf(float x) {
    float a = x < 0.0f ? -x : x, t;
    if (a < EM_TANH_SMALL) {               /* odd polynomial near 0, where 1 - 2 / (e^2x + 1) cancels */
        float z = x * x, q = EM_TANH_Q0;
        q = q * z + EM_TANH_Q1;
        q = q * z - EM_TANH_Q2;
        q = q * z + EM_TANH_Q3;
        q = q * z - EM_TANH_Q4;
        return x + x * z * q;
    }
    t = 1.0f - 2.0f / (em_lstm_expf(2.0f * a) + 1.0f);
    return x < 0.0f ? -t : t;
}

static inline float em_lstm_act_f32(float v, int act) {
    switch (act) {
        case 0: return v;
        case 1: return v < 0.0f ? 0.0f : v;
        case 2: return v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v);
        case 3: return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
        default: return em_lstm_tanhf(v);
    }
}

static inline void em_lstm_cell_f32(const float* gate, int64_t NC, int64_t j, int act, float clip, float* c,
                                    float* out) {
    float vi = em_lstm_sigmoidf(gate[j]);
    float vf = em_lstm_sigmoidf(gate[NC + j]);
    float vg = em_lstm_act_f32(gate[2 * NC + j], act);
    float vo = em_lstm_sigmoidf(gate[3 * NC + j]);
    float cv = vf * c[j] + vi * vg;
    if (clip > 0.0f) cv = cv > clip ? clip : (cv < -clip ? -clip : cv);
    c[j] = cv;
    /* NONE: LiteRT's ApplyActivationToVector writes nothing, and its output product reads the scratch that still
     * holds the cell gate: h = o * g */
    out[j] = vo * (act == 0 ? vg : em_lstm_act_f32(cv, act));
}

#if defined(__x86_64__) && defined(__GNUC__)
#define EM_AVX2 __attribute__((target("avx2")))
EM_AVX2 static inline __m256 em_lstm_expf_x8(__m256 x) {
    __m256 n, r, r2, p;
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EM_EXP_LO)), _mm256_set1_ps(EM_EXP_HI));
    n = _mm256_floor_ps(_mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(EM_EXP_LOG2E)), _mm256_set1_ps(0.5f)));
    r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(EM_EXP_LN2_HI)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(EM_EXP_LN2_LO)));
    r2 = _mm256_mul_ps(r, r);
    p = _mm256_set1_ps(EM_EXP_P0);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(EM_EXP_P1));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(EM_EXP_P2));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(EM_EXP_P3));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(EM_EXP_P4));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(EM_EXP_P5));
    p = _mm256_add_ps(_mm256_mul_ps(p, r2), r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
EM_AVX2 static inline __m256 em_lstm_sigmoidf_x8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, em_lstm_expf_x8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}
EM_AVX2 static inline __m256 em_lstm_tanhf_x8(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    __m256 a = _mm256_andnot_ps(sign, x);
    __m256 z = _mm256_mul_ps(x, x), q = _mm256_set1_ps(EM_TANH_Q0), small, big;
    q = _mm256_add_ps(_mm256_mul_ps(q, z), _mm256_set1_ps(EM_TANH_Q1));
    q = _mm256_sub_ps(_mm256_mul_ps(q, z), _mm256_set1_ps(EM_TANH_Q2));
    q = _mm256_add_ps(_mm256_mul_ps(q, z), _mm256_set1_ps(EM_TANH_Q3));
    q = _mm256_sub_ps(_mm256_mul_ps(q, z), _mm256_set1_ps(EM_TANH_Q4));
    small = _mm256_add_ps(x, _mm256_mul_ps(_mm256_mul_ps(x, z), q));
    big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f),
                                           _mm256_add_ps(em_lstm_expf_x8(_mm256_add_ps(a, a)), one)));
    big = _mm256_or_ps(big, _mm256_and_ps(x, sign));
    return _mm256_blendv_ps(big, small, _mm256_cmp_ps(a, _mm256_set1_ps(EM_TANH_SMALL), _CMP_LT_OQ));
}
/* cells [0, NC rounded down to 8) of one step, tanh activation only */
EM_AVX2 static int64_t em_lstm_cells_f32_avx2(const float* gate, int64_t NC, float clip, float* c, float* out) {
    int64_t j;
    for (j = 0; j + 8 <= NC; j += 8) {
        __m256 vi = em_lstm_sigmoidf_x8(_mm256_loadu_ps(gate + j));
        __m256 vf = em_lstm_sigmoidf_x8(_mm256_loadu_ps(gate + NC + j));
        __m256 vg = em_lstm_tanhf_x8(_mm256_loadu_ps(gate + 2 * NC + j));
        __m256 vo = em_lstm_sigmoidf_x8(_mm256_loadu_ps(gate + 3 * NC + j));
        __m256 cv = _mm256_add_ps(_mm256_mul_ps(vf, _mm256_loadu_ps(c + j)), _mm256_mul_ps(vi, vg));
        if (clip > 0.0f) cv = _mm256_min_ps(_mm256_max_ps(cv, _mm256_set1_ps(-clip)), _mm256_set1_ps(clip));
        _mm256_storeu_ps(c + j, cv);
        _mm256_storeu_ps(out + j, _mm256_mul_ps(vo, em_lstm_tanhf_x8(cv)));
    }
    return j;
}

/* 16-lane forms of the same polynomials: the same operations in the same order, so the same bits */
#define EM_AVX512F __attribute__((target("avx512f")))
EM_AVX512F static inline __m512 em_lstm_expf_x16(__m512 x) {
    __m512 n, r, r2, p;
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(EM_EXP_LO)), _mm512_set1_ps(EM_EXP_HI));
    n = _mm512_roundscale_ps(_mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(EM_EXP_LOG2E)), _mm512_set1_ps(0.5f)),
                             _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    r = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(EM_EXP_LN2_HI)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(EM_EXP_LN2_LO)));
    r2 = _mm512_mul_ps(r, r);
    p = _mm512_set1_ps(EM_EXP_P0);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(EM_EXP_P1));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(EM_EXP_P2));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(EM_EXP_P3));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(EM_EXP_P4));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(EM_EXP_P5));
    p = _mm512_add_ps(_mm512_mul_ps(p, r2), r);
    p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
    return _mm512_mul_ps(p, _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23)));
}
EM_AVX512F static inline __m512 em_lstm_sigmoidf_x16(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, em_lstm_expf_x16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}
EM_AVX512F static inline __m512 em_lstm_tanhf_x16(__m512 x) {
    const __m512i sign = _mm512_set1_epi32((int32_t)0x80000000u);
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 a = _mm512_castsi512_ps(_mm512_andnot_si512(sign, _mm512_castps_si512(x)));
    __m512 z = _mm512_mul_ps(x, x), q = _mm512_set1_ps(EM_TANH_Q0), small, big;
    q = _mm512_add_ps(_mm512_mul_ps(q, z), _mm512_set1_ps(EM_TANH_Q1));
    q = _mm512_sub_ps(_mm512_mul_ps(q, z), _mm512_set1_ps(EM_TANH_Q2));
    q = _mm512_add_ps(_mm512_mul_ps(q, z), _mm512_set1_ps(EM_TANH_Q3));
    q = _mm512_sub_ps(_mm512_mul_ps(q, z), _mm512_set1_ps(EM_TANH_Q4));
    small = _mm512_add_ps(x, _mm512_mul_ps(_mm512_mul_ps(x, z), q));
    big = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(em_lstm_expf_x16(_mm512_add_ps(a, a)), one)));
    big = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(big), _mm512_and_si512(_mm512_castps_si512(x), sign)));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(EM_TANH_SMALL), _CMP_LT_OQ), big, small);
}
/* every cell of one step, 16 at a time (masked tail), sigmoid gates and tanh: c = f.c + i.g (clipped to
 * +-clip when clip > 0), out = o.tanh(c); the gates' pre-activations at gi, gf, gg, go.  ONNX's int8 LSTM: its
 * float gates then give the scalar path's bits, and so does the int8 state quantized from them (float LSTMs run
 * em_lstm_fstep_avx512 instead, unless only one of two directions has the default activations) */
EM_AVX512F static void em_lstm_cells_f32_avx512(const float* gi, const float* gf, const float* gg, const float* go,
                                               int64_t NC, float clip, float* c, float* out) {
    int64_t j;
    for (j = 0; j < NC; j += 16) {
        const __mmask16 k = NC - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (NC - j)) - 1);
        __m512 vi = em_lstm_sigmoidf_x16(_mm512_maskz_loadu_ps(k, gi + j));
        __m512 vf = em_lstm_sigmoidf_x16(_mm512_maskz_loadu_ps(k, gf + j));
        __m512 vg = em_lstm_tanhf_x16(_mm512_maskz_loadu_ps(k, gg + j));
        __m512 vo = em_lstm_sigmoidf_x16(_mm512_maskz_loadu_ps(k, go + j));
        __m512 cv = _mm512_add_ps(_mm512_mul_ps(vf, _mm512_maskz_loadu_ps(k, c + j)), _mm512_mul_ps(vi, vg));
        if (clip > 0.0f) cv = _mm512_min_ps(_mm512_max_ps(cv, _mm512_set1_ps(-clip)), _mm512_set1_ps(clip));
        _mm512_mask_storeu_ps(c + j, k, cv);
        _mm512_mask_storeu_ps(out + j, k, _mm512_mul_ps(vo, em_lstm_tanhf_x16(cv)));
    }
}

/* ----- the AVX-512 float activations ------------------------------------------------------------------------
 * sigmoid: em_lstm_expf's polynomial evaluated with fused multiply-adds, 2^n applied by vscalefps, and 1 / d as
 * a 14-bit reciprocal estimate refined by one Newton step (y' = y + y (1 - d y)): half the instructions and no
 * division.  tanh: the odd / even rational approximation x P(x^2) / Q(x^2) on x clamped to +-7.9988 (the
 * coefficients of Eigen's fast float tanh), with the same reciprocal: no exp, about half the dependent steps
 * of 1 - 2 / (e^2x + 1), which matters in an LSTM where c' = f.c + i.tanh(g) and h = o.tanh(c') lie on the
 * chain from one step to the next (fused 64-unit step: 555 -> 507 ns).  Accuracy, measured by
 * tests/test_lstm.py on every float step of 2^-12 in [-20, 20] and at the extremes: sigmoid within 3 ulp,
 * tanh within 5 (4.8 ulp, 2.8e-7 absolute, near |x| = 6.85; em_lstm_tanhf is within 1.3 ulp).  This ISA's float path
 * is allclose, not bit-exact, to the others (DESIGN.md). */
#define EM_TANH_RAT_CLAMP 7.99881172180175781f
#define EM_TANH_A1 4.89352455891786e-03f
#define EM_TANH_A3 6.37261928875436e-04f
#define EM_TANH_A5 1.48572235717979e-05f
#define EM_TANH_A7 5.12229709037114e-08f
#define EM_TANH_A9 -8.60467152213735e-11f
#define EM_TANH_A11 2.00018790482477e-13f
#define EM_TANH_A13 -2.76076847742355e-16f
#define EM_TANH_B0 4.89352518554385e-03f
#define EM_TANH_B2 2.26843463243900e-03f
#define EM_TANH_B4 1.18534705686654e-04f
#define EM_TANH_B6 1.19825839466702e-06f
EM_FMA512 static inline __m512 em_lstm_expf_fma16(__m512 x) {
    __m512 n, r, p;
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(EM_EXP_LO)), _mm512_set1_ps(EM_EXP_HI));
    n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(EM_EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EM_EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EM_EXP_LN2_LO), r);
    p = _mm512_fmadd_ps(_mm512_set1_ps(EM_EXP_P0), r, _mm512_set1_ps(EM_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EM_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EM_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EM_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EM_EXP_P5));
    p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}
EM_FMA512 static inline __m512 em_lstm_recip_fma16(__m512 d) {        /* d in [1, 2.5e38] */
    const __m512 y = _mm512_rcp14_ps(d);
    return _mm512_fmadd_ps(_mm512_fnmadd_ps(d, y, _mm512_set1_ps(1.0f)), y, y);
}
EM_FMA512 static inline __m512 em_lstm_sigmoidf_fma16(__m512 x) {
    return em_lstm_recip_fma16(_mm512_add_ps(_mm512_set1_ps(1.0f), em_lstm_expf_fma16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}
EM_FMA512 static inline __m512 em_lstm_tanhf_fma16(__m512 x) {
    const __m512 lim = _mm512_set1_ps(EM_TANH_RAT_CLAMP);
    const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_sub_ps(_mm512_setzero_ps(), lim)), lim);
    const __m512 z = _mm512_mul_ps(xc, xc);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(EM_TANH_A13), z, _mm512_set1_ps(EM_TANH_A11)), q, y;
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(EM_TANH_A9));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(EM_TANH_A7));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(EM_TANH_A5));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(EM_TANH_A3));
    p = _mm512_mul_ps(_mm512_fmadd_ps(p, z, _mm512_set1_ps(EM_TANH_A1)), xc);
    q = _mm512_fmadd_ps(_mm512_set1_ps(EM_TANH_B6), z, _mm512_set1_ps(EM_TANH_B4));
    q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(EM_TANH_B2));
    q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(EM_TANH_B0));
    y = _mm512_rcp14_ps(q);
    return _mm512_mul_ps(p, _mm512_fmadd_ps(_mm512_fnmadd_ps(q, y, _mm512_set1_ps(1.0f)), y, y));
}
/* sigmoid (odd = 0) or tanh (odd = 1) of n floats, 16 at a time (masked tail): tests measure the forms above */
EM_FMA512 static void em_lstm_activate_fma16(const float* x, int64_t n, int odd, float* y) {
    int64_t j;
    for (j = 0; j < n; j += 16) {
        const __mmask16 k = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(k, x + j);
        _mm512_mask_storeu_ps(y + j, k, odd ? em_lstm_tanhf_fma16(v) : em_lstm_sigmoidf_fma16(v));
    }
}

/* ----- one float LSTM step with the gates interleaved by unit (AVX-512) ------------------------------------
 * The recurrent GEMV and the cells in one pass over column blocks.  Weights packed by rnn.py's
 * interleave_gates: column block b (64 columns, k-major as for em_lstm_fdots) holds the i, f, g, o columns of
 * units 16b..16b+15, so a block's cells run as soon as its 64 sums exist, among the loads of the next block,
 * instead of in a pass of their own after the whole GEMV.  A 64-unit layer's recurrent matrix (64 KB of
 * float32) does not fit L1; odd steps take the blocks last to first, so each step starts on the blocks the one
 * before ended on, still in L1.  Sums: two k phases of fused multiply-adds, added, then pre (W.x + bias of this
 * step, in the same interleaved order); allclose to the scalar path (DESIGN.md).  Units past NC (the last
 * block's padding) are computed on zero weights and never stored.  h (the previous state, NC floats) must not
 * alias hout. */
EM_FMA512 static void em_lstm_fstep_avx512(const float* h, const float* W, const float* pre, int64_t NC, float clip,
                                          float* c, float* hout, int odd) {
    const int64_t nb = (NC + 15) / 16;
    int64_t s, k;
    for (s = 0; s < nb; s++) {
        const int64_t blk = odd ? nb - 1 - s : s, j = 16 * blk;
        const float* w = W + blk * NC * EM_LSTM_COLS;
        const float* x = pre + blk * EM_LSTM_COLS;
        const __mmask16 m = NC - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (NC - j)) - 1);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, e0 = a0, e1 = a0, e2 = a0, e3 = a0;
        __m512 vi, vf, vg, vo, cv;
        for (k = 0; k + 2 <= NC; k += 2, w += 2 * EM_LSTM_COLS) {
            const __m512 b0 = _mm512_set1_ps(h[k]), b1 = _mm512_set1_ps(h[k + 1]);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w), b0, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 16), b0, a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 32), b0, a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 48), b0, a3);
            e0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 64), b1, e0);
            e1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 80), b1, e1);
            e2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 96), b1, e2);
            e3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 112), b1, e3);
        }
        if (k < NC) {
            const __m512 b0 = _mm512_set1_ps(h[k]);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w), b0, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 16), b0, a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 32), b0, a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 48), b0, a3);
        }
        vi = em_lstm_sigmoidf_fma16(_mm512_add_ps(_mm512_add_ps(a0, e0), _mm512_loadu_ps(x)));
        vf = em_lstm_sigmoidf_fma16(_mm512_add_ps(_mm512_add_ps(a1, e1), _mm512_loadu_ps(x + 16)));
        vg = em_lstm_tanhf_fma16(_mm512_add_ps(_mm512_add_ps(a2, e2), _mm512_loadu_ps(x + 32)));
        vo = em_lstm_sigmoidf_fma16(_mm512_add_ps(_mm512_add_ps(a3, e3), _mm512_loadu_ps(x + 48)));
        cv = _mm512_fmadd_ps(vf, _mm512_maskz_loadu_ps(m, c + j), _mm512_mul_ps(vi, vg));
        if (clip > 0.0f) cv = _mm512_min_ps(_mm512_max_ps(cv, _mm512_set1_ps(-clip)), _mm512_set1_ps(clip));
        _mm512_mask_storeu_ps(c + j, m, cv);
        _mm512_mask_storeu_ps(hout + j, m, _mm512_mul_ps(vo, em_lstm_tanhf_fma16(cv)));
    }
}
#endif

static void em_lstm_f32(const em_params* p) {
    const float* x = (const float*)p->ptr[0];
    float* y = (float*)p->ptr[1];
    float* hs = (float*)p->ptr[2];
    float* cs = (float*)p->ptr[3];
    const float* wx = (const float*)p->ptr[4];
    const float* wh = (const float*)p->ptr[5];
    const float* bias = (const float*)p->ptr[6];
    const int64_t B = p->i[0], T = p->i[1], F = p->i[2], NC = p->i[3];
    const int time_major = (int)p->i[4], act = (int)p->i[5], interleaved = (int)p->i[6];
    const float clip = p->f[0];
    const int64_t G = 4 * NC, Gp = (G + EM_LSTM_COLS - 1) / EM_LSTM_COLS * EM_LSTM_COLS;
    float* pre = (float*)p->ptr[13];
    float* gate = pre + T * B * Gp;
    int64_t t, b, j;
    int vec = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    vec = act == 4 && em_isa() >= EM_ISA_AVX2;
#endif

    em_lstm_fdots(x, wx, bias, NULL, T * B, Gp, F, pre);
    for (t = 0; t < T; t++) {
        for (b = 0; b < B; b++) {
            const int64_t row = time_major ? t * B + b : b * T + t;
            float* h = hs + b * NC;
            float* c = cs + b * NC;
            float* out = y + row * NC;
            j = 0;
#if defined(__x86_64__) && defined(__GNUC__)
            if (interleaved) {                /* rnn.py interleaves only for tanh on AVX-512 */
                /* the state is the output row of the step before; the h tensor is written after the last */
                const float* hp = t == 0 ? h : y + (time_major ? (t - 1) * B + b : b * T + t - 1) * NC;
                em_lstm_fstep_avx512(hp, wh, pre + row * Gp, NC, clip, c, out, (int)(t & 1));
                if (t == T - 1) memcpy(h, out, (size_t)NC * sizeof(float));
                continue;
            }
#endif
            em_lstm_fgemv(h, wh, NULL, pre + row * Gp, Gp, NC, gate, (int)(t & 1));
#if defined(__x86_64__) && defined(__GNUC__)
            if (vec) j = em_lstm_cells_f32_avx2(gate, NC, clip, c, out);
#endif
            for (; j < NC; j++) em_lstm_cell_f32(gate, NC, j, act, clip, c, out);
            memcpy(h, out, (size_t)NC * sizeof(float));
        }
    }
}

/* sigmoid (odd = 0) or tanh (odd = 1) of n floats by the forms the float kernels use on this machine's path
 * (the AVX-512 FMA forms, or the scalar / AVX2 ones with the scalar bits); tests measure their accuracy */
static void em_lstm_activate_f32(const float* x, int64_t n, int odd, float* y) {
    int64_t j;
#if defined(__x86_64__) && defined(__GNUC__)
    if (em_isa() >= EM_ISA_AVX512) { em_lstm_activate_fma16(x, n, odd, y); return; }
#endif
    for (j = 0; j < n; j++) y[j] = odd ? em_lstm_tanhf(x[j]) : em_lstm_sigmoidf(x[j]);
}
#endif
