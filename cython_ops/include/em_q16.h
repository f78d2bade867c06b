/* gemmlowp FixedPoint<int16, IntegerBits> (fixedpoint.h, int16 instantiation) and the exact int16 logistic / tanh
 * the integer LSTM needs (LiteRT's lstm_eval.cc runs them on the gates as Q3.12 and on the cell state).
 * They are exact functions of one int16.  The portable path tabulates them once at load (em_lstm_fill_table);
 * gemmlowp's logistic(-x) = 1 - logistic(x) and tanh(-x) = -tanh(x) hold bit for bit, so it keeps only the half
 * for |x| (up to where it saturates; edgeml/runtime/ops/lstm.py builds and checks it) and indexes it (em_lstm_lut).  The AVX-512
 * path computes them 32 or 16 lanes at a time instead (em_q16x_* / em_q16y_*, em_lstm_q16x.h: no gathers from
 * 100+ KB of tables), the AVX2 path 16 lanes at a time (em_q16a_*). */
#ifndef EM_Q16_H
#define EM_Q16_H
#include <stdint.h>
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

#if defined(__x86_64__) && defined(__GNUC__)
/* The gemmlowp int16 logistic / tanh computed, not looked up, 32 lanes per vector: their int16
 * SaturatingRoundingDoublingHighMul is vpmulhrsw, since trunc((ab + 1 - 2^14) / 2^15) for ab < 0 and
 * floor((ab + 2^14) / 2^15) for ab >= 0 are both floor((ab + 2^14) / 2^15); the one case where they differ,
 * INT16_MIN * INT16_MIN, cannot occur (every product below has one factor >= 0 or both within [-2^12, 2^12]).
 * rnn.pyx's activation_table_simd runs these functions over all 65536 inputs so that tests compare them with the
 * scalar ones.  gemmlowp FixedPoint<int16> on 32 lanes (em_q16x_*) and 16 lanes (em_q16y_*): em_lstm_q16x.h */
#define EMQ_TARGET EM_VNNI_TARGET
#define EMQ_TESTBIT(v, bit) EMQ(_test_epi16_mask)(v, bit)
#define EMQ_GT(a, b) EMQ(_cmpgt_epi16_mask)(a, b)
#define EMQ_EQ(a, b) EMQ(_cmpeq_epi16_mask)(a, b)
#define EMQ_MULHRS_IF(m, v, c) EMQ(_mask_mulhrs_epi16)(v, m, v, c)
#define EMQ_MOV_IF(m, v, w) EMQ(_mask_mov_epi16)(v, m, w)
#define EMQ_SUB_IF(m, a, b, src) EMQ(_mask_sub_epi16)(src, m, a, b)
#define EMQ_V __m512i
#define EMQ_M __mmask32
#define EMQ(op) _mm512##op
#define EMQ_ZERO _mm512_setzero_si512()
#define EMQ_AND _mm512_and_si512
#define EMQ_FN(name) em_q16x_##name
#include "em_lstm_q16x.h"
#define EMQ_V __m256i
#define EMQ_M __mmask16
#define EMQ(op) _mm256##op
#define EMQ_ZERO _mm256_setzero_si256()
#define EMQ_AND _mm256_and_si256
#define EMQ_FN(name) em_q16y_##name
#include "em_lstm_q16x.h"
#undef EMQ_TARGET
#undef EMQ_TESTBIT
#undef EMQ_GT
#undef EMQ_EQ
#undef EMQ_MULHRS_IF
#undef EMQ_MOV_IF
#undef EMQ_SUB_IF
/* AVX2: lane masks are vectors (all ones / zeros per int16), the masked operations blends; the bit tested is one
 * bit, so (v & bit) == bit says it is set */
#define EMQ_TARGET __attribute__((target("avx2")))
#define EMQ_TESTBIT(v, bit) _mm256_cmpeq_epi16(_mm256_and_si256(v, bit), bit)
#define EMQ_GT(a, b) _mm256_cmpgt_epi16(a, b)
#define EMQ_EQ(a, b) _mm256_cmpeq_epi16(a, b)
#define EMQ_MULHRS_IF(m, v, c) _mm256_blendv_epi8(v, _mm256_mulhrs_epi16(v, c), m)
#define EMQ_MOV_IF(m, v, w) _mm256_blendv_epi8(v, w, m)
#define EMQ_SUB_IF(m, a, b, src) _mm256_blendv_epi8(src, _mm256_sub_epi16(a, b), m)
#define EMQ_V __m256i
#define EMQ_M __m256i
#define EMQ(op) _mm256##op
#define EMQ_ZERO _mm256_setzero_si256()
#define EMQ_AND _mm256_and_si256
#define EMQ_FN(name) em_q16a_##name
#include "em_lstm_q16x.h"
#undef EMQ_TARGET
#undef EMQ_TESTBIT
#undef EMQ_GT
#undef EMQ_EQ
#undef EMQ_MULHRS_IF
#undef EMQ_MOV_IF
#undef EMQ_SUB_IF

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

/* the same with the AVX2 forms (em_q16a_*), 16 lanes */
__attribute__((target("avx2"))) static void em_lstm_fill_table_avx2(int kind, int ibits, int16_t* table) {
    for (int32_t v = INT16_MIN; v <= INT16_MAX; v += 16) {
        const __m256i x = _mm256_add_epi16(_mm256_set1_epi16((int16_t)v),
                                           _mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
        const __m256i y = kind == EM_LSTM_TABLE_LOGISTIC ? em_q16a_logistic(x, ibits) : em_q16a_tanh(x, ibits);
        int16_t tmp[16];
        _mm256_storeu_si256((__m256i*)tmp, y);
        for (int i = 0; i < 16; i++) table[(uint16_t)(int16_t)(v + i)] = tmp[i];
    }
}
#else
static void em_lstm_fill_table_simd(int kind, int ibits, int lanes, int16_t* table) {
    (void)kind; (void)ibits; (void)lanes; (void)table;
}
static void em_lstm_fill_table_avx2(int kind, int ibits, int16_t* table) {
    (void)kind; (void)ibits; (void)table;
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
/* 1 when em_lstm_fill_table_avx2 can run here */
static int em_lstm_avx2_tables(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    return em_isa() >= EM_ISA_AVX2;
#else
    return 0;
#endif
}
#endif
