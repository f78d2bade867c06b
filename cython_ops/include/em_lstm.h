/* UNIDIRECTIONAL_SEQUENCE_LSTM kernels: the integer 8x8_16 path and float32.
 *
 * Integer arithmetic written from LiteRT's lstm_eval.cc (EvalInteger8x8_16, CalculateLstmGateInteger8x8_16,
 * UpdateLstmCellInteger, CalculateLstmOutputInteger8x8_16) and the portable tensor_utils it runs:
 *   gate   = sat16( MBQM(Wh.h + bh, Mh) + sat16( MBQM(Wx.x + bx, Mx) ) )     (bx, bh: zero points folded)
 *   i, f, o = logistic(gate as Q3.12) as Q0.15;  g = tanh(gate as Q3.12)     (gemmlowp int16 fixed point)
 *   c      = sat16( RDBP(f*c, 15) + RDBP(i*g, 30 + cell_scale) ), clipped to +-cell_clip
 *   h      = clamp8( MBQM(o * tanh(c as Q(15+cell_scale)), Mhidden) + hidden_zp )
 * The gemmlowp int16 activations are exact functions of one int16, so they are tabulated once at load
 * (em_lstm_fill_table, 65536 entries) and the hot loop only indexes.
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

/* ----- int32 dot products: out[m][n] = sum_k a[m][k] * w[n][k] (a: M x K int8, w: N x K int8) ----- */

#define EM_LSTM_DOTS_BODY                                                                     \
    for (int64_t m = 0; m < M; m++) {                                                         \
        const int8_t* a = A + m * K;                                                          \
        int32_t* o = out + m * N;                                                             \
        int64_t n = 0;                                                                        \
        for (; n + 4 <= N; n += 4) {                                                          \
            const int8_t *w0 = W + n * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;           \
            int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                           \
            for (int64_t k = 0; k < K; k++) {                                                 \
                int32_t av = a[k];                                                            \
                s0 += av * w0[k];                                                             \
                s1 += av * w1[k];                                                             \
                s2 += av * w2[k];                                                             \
                s3 += av * w3[k];                                                             \
            }                                                                                 \
            o[n] = s0; o[n + 1] = s1; o[n + 2] = s2; o[n + 3] = s3;                           \
        }                                                                                     \
        for (; n < N; n++) {                                                                  \
            const int8_t* w0 = W + n * K;                                                     \
            int32_t s0 = 0;                                                                   \
            for (int64_t k = 0; k < K; k++) s0 += (int32_t)a[k] * w0[k];                      \
            o[n] = s0;                                                                        \
        }                                                                                     \
    }

static void em_lstm_dots_scalar(const int8_t* A, const int8_t* W, int64_t M, int64_t N, int64_t K, int32_t* out) {
    EM_LSTM_DOTS_BODY
}
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2")))
static void em_lstm_dots_avx2(const int8_t* A, const int8_t* W, int64_t M, int64_t N, int64_t K, int32_t* out) {
    EM_LSTM_DOTS_BODY
}
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void em_lstm_dots_avx512(const int8_t* A, const int8_t* W, int64_t M, int64_t N, int64_t K, int32_t* out) {
    EM_LSTM_DOTS_BODY
}
#endif

static inline void em_lstm_dots(const int8_t* A, const int8_t* W, int64_t M, int64_t N, int64_t K, int32_t* out) {
#if defined(__x86_64__) && defined(__GNUC__)
    int isa = em_isa();
    if (isa >= EM_ISA_AVX512) { em_lstm_dots_avx512(A, W, M, N, K, out); return; }
    if (isa >= EM_ISA_AVX2) { em_lstm_dots_avx2(A, W, M, N, K, out); return; }
#endif
    em_lstm_dots_scalar(A, W, M, N, K, out);
}

/* ----- the integer kernel ---------------------------------------------------------------------------------
 * ptr: 0 x int8 [B,T,F] (or [T,B,F] when time_major), 1 y int8 [.., n_cell] one row per (b, t),
 *      2 h state int8 [B, n_cell], 3 c state int16 [B, n_cell],
 *      4 Wx int8 [4*n_cell, F], 5 Wh int8 [4*n_cell, n_cell] (gate order i, f, g, o),
 *      6 bias_x int32 [4*n_cell], 7 bias_h int32 [4*n_cell] (zero points folded in),
 *      8 mult int32 [8]: Mx for the 4 gates then Mh, 9 shift int32 [8],
 *      10 sigmoid table (Q3.12 -> Q0.15), 11 tanh table (Q3.12), 12 tanh table for the cell state,
 *      13 scratch: int16 [T*B*4*n_cell] input part, int32 [max(T*B, B) * 4*n_cell] sums
 * ints: 0 B, 1 T, 2 F, 3 n_cell, 4 time_major, 5 cell_shift (30 + cell_scale), 6 cell clip (0: none),
 *       7 hidden mult, 8 hidden shift, 9 hidden zp, 10 rounding mode */
static void em_lstm_int8(const em_params* p) {
    const int8_t* x = (const int8_t*)p->ptr[0];
    int8_t* y = (int8_t*)p->ptr[1];
    int8_t* hs = (int8_t*)p->ptr[2];
    int16_t* cs = (int16_t*)p->ptr[3];
    const int8_t* wx = (const int8_t*)p->ptr[4];
    const int8_t* wh = (const int8_t*)p->ptr[5];
    const int32_t* bx = (const int32_t*)p->ptr[6];
    const int32_t* bh = (const int32_t*)p->ptr[7];
    const int32_t* mult = (const int32_t*)p->ptr[8];
    const int32_t* shift = (const int32_t*)p->ptr[9];
    const int16_t* sig = (const int16_t*)p->ptr[10];
    const int16_t* tanh_g = (const int16_t*)p->ptr[11];
    const int16_t* tanh_c = (const int16_t*)p->ptr[12];
    const int64_t B = p->i[0], T = p->i[1], F = p->i[2], NC = p->i[3];
    const int time_major = (int)p->i[4], cell_shift = (int)p->i[5];
    const int16_t clip = (int16_t)p->i[6];
    const int32_t hm = (int32_t)p->i[7], hsh = (int32_t)p->i[8], hzp = (int32_t)p->i[9];
    const int mode = (int)p->i[10];
    const int64_t G = 4 * NC;
    int16_t* pre = (int16_t*)p->ptr[13];
    int32_t* acc = (int32_t*)(pre + T * B * G);
    int64_t r, n, t, b, j;

    /* input part of every gate for every (row of x): one GEMM, then per-gate requantization to int16 */
    em_lstm_dots(x, wx, T * B, G, F, acc);
    for (r = 0; r < T * B; r++) {
        const int32_t* a = acc + r * G;
        int16_t* o = pre + r * G;
        for (n = 0; n < G; n++) {
            int g = (int)(n / NC);
            o[n] = em_sat16(em_mbqm(a[n] + bx[n], mult[g], shift[g], mode));
        }
    }
    for (t = 0; t < T; t++) {
        for (b = 0; b < B; b++) {
            const int64_t row = time_major ? t * B + b : b * T + t;
            int8_t* h = hs + b * NC;
            int16_t* c = cs + b * NC;
            const int16_t* px = pre + row * G;
            int32_t* a = acc;
            int8_t* out = y + row * NC;
            em_lstm_dots(h, wh, 1, G, NC, a);
            for (j = 0; j < NC; j++) {
                int16_t gi = em_sat16(em_mbqm(a[j] + bh[j], mult[4], shift[4], mode) + px[j]);
                int16_t gf = em_sat16(em_mbqm(a[NC + j] + bh[NC + j], mult[5], shift[5], mode) + px[NC + j]);
                int16_t gg = em_sat16(em_mbqm(a[2 * NC + j] + bh[2 * NC + j], mult[6], shift[6], mode) +
                                      px[2 * NC + j]);
                int16_t go = em_sat16(em_mbqm(a[3 * NC + j] + bh[3 * NC + j], mult[7], shift[7], mode) +
                                      px[3 * NC + j]);
                int16_t vi = sig[(uint16_t)gi], vf = sig[(uint16_t)gf], vo = sig[(uint16_t)go];
                int16_t vg = tanh_g[(uint16_t)gg];
                int16_t c_keep = (int16_t)em_rounding_divide_by_pot((int32_t)vf * c[j], 15);
                int16_t c_new = (int16_t)em_rounding_divide_by_pot((int32_t)vi * vg, cell_shift);
                int16_t cv = em_sat16((int32_t)c_keep + c_new);
                int32_t hv;
                if (clip > 0) cv = cv > clip ? clip : (cv < -clip ? (int16_t)-clip : cv);
                c[j] = cv;
                hv = em_mbqm((int32_t)vo * tanh_c[(uint16_t)cv], hm, hsh, mode) + hzp;
                out[j] = (int8_t)(hv > 127 ? 127 : (hv < -128 ? -128 : hv));
            }
            memcpy(h, out, (size_t)NC);
        }
    }
}

/* ----- float32 kernel (LiteRT EvalFloat without CIFG / peephole / projection / layer norm) -----------------
 * ptr: 0 x, 1 y, 2 h state [B, n_cell], 3 c state [B, n_cell], 4 Wx [4*n_cell, F], 5 Wh [4*n_cell, n_cell],
 *      6 bias [4*n_cell], 13 scratch float [T*B*4*n_cell + 4*n_cell]
 * ints: 0 B, 1 T, 2 F, 3 n_cell, 4 time_major, 5 activation (4 tanh, 0 none, 1 relu, 3 relu6, 6 sigmoid)
 * floats: 0 cell clip (0: none) */
static inline float em_lstm_act_f32(float v, int act) {
    switch (act) {
        case 0: return v;
        case 1: return v < 0.0f ? 0.0f : v;
        case 3: return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
        case 6: return 1.0f / (1.0f + expf(-v));
        default: return tanhf(v);
    }
}

#define EM_LSTM_F32_DOTS_BODY                                                                 \
    for (int64_t m = 0; m < M; m++) {                                                         \
        const float* a = A + m * K;                                                           \
        float* o = out + m * N;                                                               \
        for (int64_t n = 0; n < N; n++) {                                                     \
            const float* w = W + n * K;                                                       \
            float s = 0.0f;                                                                   \
            for (int64_t k = 0; k < K; k++) s += a[k] * w[k];                                 \
            o[n] = s + (bias ? bias[n] : 0.0f) + (add ? add[m * N + n] : 0.0f);               \
        }                                                                                     \
    }

static void em_lstm_f32_dots(const float* A, const float* W, const float* bias, const float* add, int64_t M,
                             int64_t N, int64_t K, float* out) {
    EM_LSTM_F32_DOTS_BODY
}

static void em_lstm_f32(const em_params* p) {
    const float* x = (const float*)p->ptr[0];
    float* y = (float*)p->ptr[1];
    float* hs = (float*)p->ptr[2];
    float* cs = (float*)p->ptr[3];
    const float* wx = (const float*)p->ptr[4];
    const float* wh = (const float*)p->ptr[5];
    const float* bias = (const float*)p->ptr[6];
    const int64_t B = p->i[0], T = p->i[1], F = p->i[2], NC = p->i[3];
    const int time_major = (int)p->i[4], act = (int)p->i[5];
    const float clip = p->f[0];
    const int64_t G = 4 * NC;
    float* pre = (float*)p->ptr[13];
    float* gate = pre + T * B * G;
    int64_t t, b, j;

    em_lstm_f32_dots(x, wx, bias, NULL, T * B, G, F, pre);
    for (t = 0; t < T; t++) {
        for (b = 0; b < B; b++) {
            const int64_t row = time_major ? t * B + b : b * T + t;
            float* h = hs + b * NC;
            float* c = cs + b * NC;
            float* out = y + row * NC;
            em_lstm_f32_dots(h, wh, NULL, pre + row * G, 1, G, NC, gate);
            for (j = 0; j < NC; j++) {
                float vi = 1.0f / (1.0f + expf(-gate[j]));
                float vf = 1.0f / (1.0f + expf(-gate[NC + j]));
                float vg = em_lstm_act_f32(gate[2 * NC + j], act);
                float vo = 1.0f / (1.0f + expf(-gate[3 * NC + j]));
                float cv = vf * c[j] + vi * vg;
                if (clip > 0.0f) cv = cv > clip ? clip : (cv < -clip ? -clip : cv);
                c[j] = cv;
                out[j] = vo * em_lstm_act_f32(cv, act);
            }
            memcpy(h, out, (size_t)NC * sizeof(float));
        }
    }
}
#endif
