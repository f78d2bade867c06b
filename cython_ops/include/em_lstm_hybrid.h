/* Hybrid ("dynamic-range") UNIDIRECTIONAL_SEQUENCE_LSTM: float32 input, output and h / c state, int8 weights
 * with one scale per weight tensor, float32 biases -- what TensorFlow's converter emits for
 * optimizations=[Optimize.DEFAULT] without a representative dataset.
 *
 * Written from LiteRT's lstm_eval.cc (EvalHybrid, LstmStepHybrid, CalculateLstmGateHybrid, UpdateLstmCellFloat,
 * CalculateLstmOutputHybrid) and the tensor_utils it calls; one LiteRT step covers one (batch, time) row when
 * the layout is batch-major and all B rows of one time step when it is time-major (a "group" below):
 *   x_q, sx[r], zx[r] = quantize(x row r)     (em_hybrid.h: symmetric, or asymmetric_quantize_inputs)
 *   h_q, sh[r], zh[r] = quantize(h row r)
 *   gate = bias
 *   gate = gate + (float)(Wx_g . x_q - zx * rowsum(Wx_g)) * (sx * wscale_x[g])   skipped if the group's x is 0
 *   gate = gate + (float)(Wh_g . h_q - zh * rowsum(Wh_g)) * (sh * wscale_h[g])   skipped if the group's h is 0
 *   i, f, o = sigmoid(gate);  g = act(gate)
 *   c = f * c;  c = c + g * i;  clipped to +-cell_clip when cell_clip > 0
 *   h = o * act(c)   -- act NONE leaves its output buffer, the cell gate's, unwritten in LiteRT: h = o * g
 * sigmoid and tanh are LiteRT's: tensor_utils::ApplySigmoidToVector / ApplyTanhToVector evaluate Eigen's
 * array().logistic() / .tanh(), which its x86 build (no FMA) runs as
 *   logistic: x = min(x, 16.6355324) / 2; exp(x) as 2^m * P5(r) with Cephes' two-part ln 2 reduction, squared;
 *             e / (1 + e), and 0 below -104
 *   tanh:     x clamped to +-7.90738964; x + x^3 * P(x^2) over Q(x^2), a [9,8] rational minimax fit
 * with every multiply-add rounded twice (checked on the installed ai_edge_litert: bit for bit).  The scalar
 * and the 8-lane forms below are the same operations, so every ISA path gives the same bits.
 * The integer sums are exact (in any order), so Wx.x_q of every row is one GEMM before the recurrence
 * (em_lstm_dots_packed, weights packed by packing.py pack_s8 or, on AVX-512 VNNI, pack_u8s8) and becomes bias + input term in float right away; each step
 * then adds the recurrent term.  Every float operation is the reference's, in its order, without contraction.
 *
 * Layout EM_LSTM_HYBRID:
 * ptr: x f32 [B,T,F] (or [T,B,F] when time_major), y f32 [.., NC] one row per (b, t), h state f32 [B,NC],
 *      c state f32 [B,NC], Wx, Wh ([4*NC, F] and [4*NC, NC], gate order i, f, g, o; pack_s8),
 *      bias f32 [4*NC], row sums int32 [4*NC] of Wx, row sums int32 [4*NC] of Wh,
 *      weight scales f32 [8] (Wx gates i, f, g, o, then Wh gates), scratch,
 *      lanes: uint8 [3][B][NC]: 1 where LiteRT's sigmoid of i, f, o takes Eigen's one-element path, then [B]: 1
 *         where state row b has any such lane, so the vector cells cannot serve it (ops/lstm.py eigen_scalar_lanes)
 * ints: B, T, F, NC, time_major, cell activation (TFLite's: 0 none, 1 relu, 2 relu_n1_to_1, 3 relu6, 4 tanh,
 *       5 sign_bit), asymmetric input quantization (0/1), weight packing (quads): 0 int16 pairs (pack_s8), 1 u8 x s8
 *       quads (pack_u8s8, AVX-512 VNNI)
 * floats: cell clip (0: none)
 * scratch bytes (em_lstm_hybrid_scratch): the input term of every row (T*B * Gp floats, Gp = 4*NC padded to
 *   EM_LSTM_COLS), the quantized rows of x (T*B * F), of h (B * NC), their scales and zero points, the recurrent
 *   sums of one group (B * Gp int32). */
#ifndef EM_LSTM_HYBRID_H
#define EM_LSTM_HYBRID_H
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "em_params.h"
#include "em_isa.h"
#include "em_hybrid.h"
#include "em_vec.h"
#include "em_lstm_dots.h"

enum { EM_LSTM_HYBRID_P_X, EM_LSTM_HYBRID_P_Y, EM_LSTM_HYBRID_P_H_STATE, EM_LSTM_HYBRID_P_C_STATE, EM_LSTM_HYBRID_P_WX,
       EM_LSTM_HYBRID_P_WH, EM_LSTM_HYBRID_P_BIAS, EM_LSTM_HYBRID_P_ROW_SUMS_X, EM_LSTM_HYBRID_P_ROW_SUMS_H,
       EM_LSTM_HYBRID_P_WEIGHT_SCALES, EM_LSTM_HYBRID_P_SCRATCH, EM_LSTM_HYBRID_P_LANES, EM_LSTM_HYBRID_P_COUNT };
enum { EM_LSTM_HYBRID_I_BATCH, EM_LSTM_HYBRID_I_STEPS, EM_LSTM_HYBRID_I_INPUTS, EM_LSTM_HYBRID_I_CELLS,
       EM_LSTM_HYBRID_I_TIME_MAJOR, EM_LSTM_HYBRID_I_ACTIVATION, EM_LSTM_HYBRID_I_ASYMMETRIC, EM_LSTM_HYBRID_I_QUADS,
       EM_LSTM_HYBRID_I_COUNT };
enum { EM_LSTM_HYBRID_F_CELL_CLIP, EM_LSTM_HYBRID_F_COUNT };

static inline int64_t em_lstm_hybrid_gp(int64_t NC) {
    return (4 * NC + EM_LSTM_COLS - 1) / EM_LSTM_COLS * EM_LSTM_COLS;
}

/* Scratch bytes for the layout above; ops/lstm.py asks for the same number through cython_ops.rnn. */
static inline int64_t em_lstm_hybrid_scratch(int64_t B, int64_t T, int64_t F, int64_t NC) {
    const int64_t rows = T * B, Gp = em_lstm_hybrid_gp(NC);
    return 4 * rows * Gp + EM_HY_ALIGN16(rows * F) + EM_HY_ALIGN16(B * NC) + 8 * rows + 8 * B + 4 * B * Gp;
}

static inline int em_lstm_hybrid_all_zero(const float* v, int64_t n) {   /* tensor_utils::IsZeroVector */
    for (int64_t i = 0; i < n; i++)
        if (v[i] != 0.0f) return 0;
    return 1;
}

static inline void em_lstm_hybrid_quantize(const float* x, int64_t n, int asym, int8_t* q, float* scale,
                                           int32_t* zp) {
    *zp = 0;
    if (asym) em_hy_quantize_asym(x, n, q, scale, zp);
    else em_hy_quantize_sym(x, n, q, scale);
}

#define EM_LH_EXP_HI 16.6355324f              /* logistic: exactly 1 from here on */
#define EM_LH_EXP_LO -104.0f                 /* logistic: 0 below */
#define EM_LH_LOG2E 1.44269504088896341f
#define EM_LH_LN2_C1 -0.693359375f
#define EM_LH_LN2_C2 2.12194440e-4f
#define EM_LH_P2 0.49999141693115234375f
#define EM_LH_P3 0.16666877269744873046875f
#define EM_LH_P4 4.1898667812347412109375e-2f
#define EM_LH_P5 8.33471305668354034423828125e-3f
#define EM_LH_TANH_CLAMP 7.90738964080810547f
#define EM_LH_TA0 1.394553628e-8f             /* numerator, in x^2, highest power first */
#define EM_LH_TA1 2.102733560e-5f
#define EM_LH_TA2 3.520756727e-3f
#define EM_LH_TA3 1.340216100e-1f
#define EM_LH_TB0 8.015776984e-7f             /* denominator */
#define EM_LH_TB1 3.326951409e-4f
#define EM_LH_TB2 2.597254514e-2f
#define EM_LH_TB3 4.673548340e-1f

static inline float em_lstm_hybrid_logistic(float x0) {
    float x = x0 < EM_LH_EXP_HI ? x0 : EM_LH_EXP_HI;
    float m, r, r2, p, e;
    union { float f; int32_t i; } two_m;
    if (!(x0 >= EM_LH_EXP_LO)) return x0 < EM_LH_EXP_LO ? 0.0f : x0;   /* 0, or NaN: no out-of-range (int) m */
    x = x * 0.5f;                                        /* exp(x) = exp(x / 2)^2: no denormal 2^m */
    m = floorf(x * EM_LH_LOG2E + 0.5f);
    r = m * EM_LH_LN2_C1 + x;
    r = m * EM_LH_LN2_C2 + r;
    r2 = r * r;
    p = r * (r2 * EM_LH_P5 + EM_LH_P3) + (r2 * EM_LH_P4 + EM_LH_P2);
    p = r2 * p + (r + 1.0f);
    two_m.i = ((int32_t)m + 127) << 23;
    e = p * two_m.f;
    e = e * e;
    return e / (1.0f + e);
}

/* the same function as Eigen evaluates it one element at a time (scalar_logistic_op<float>::operator()) */
static inline float em_lstm_hybrid_logistic_1(float x) {
    const float e = expf(EM_LH_EXP_HI < x ? EM_LH_EXP_HI : x);
    return e / (1.0f + e);
}

static inline float em_lstm_hybrid_tanh(float a) {
    float x = a < EM_LH_TANH_CLAMP ? a : EM_LH_TANH_CLAMP, x2, x3, p, q;
    x = -EM_LH_TANH_CLAMP < x ? x : -EM_LH_TANH_CLAMP;
    x2 = x * x;
    x3 = x2 * x;
    p = ((EM_LH_TA0 * x2 + EM_LH_TA1) * x2 + EM_LH_TA2) * x2 + EM_LH_TA3;
    q = (((EM_LH_TB0 * x2 + EM_LH_TB1) * x2 + EM_LH_TB2) * x2 + EM_LH_TB3) * x2 + 1.0f;
    return (x3 * p + x) / q;
}

static inline float em_lstm_hybrid_sigmoid(float x, int single) {
    return single ? em_lstm_hybrid_logistic_1(x) : em_lstm_hybrid_logistic(x);
}

/* tensor_utils::ApplyActivationToVector for the cell gate and the cell state (NONE is handled by the caller) */
static inline float em_lstm_hybrid_act(float v, int act) {
    float m;
    switch (act) {
        case 1: return 0.0f < v ? v : 0.0f;                                   /* std::max(0, v) */
        case 2: m = 1.0f < v ? 1.0f : v; return -1.0f < m ? m : -1.0f;        /* std::max(-1, std::min(v, 1)) */
        case 3: m = 6.0f < v ? 6.0f : v; return 0.0f < m ? m : 0.0f;          /* std::max(0, std::min(v, 6)) */
        case 5: return signbit(v) ? 1.0f : 0.0f;                              /* std::signbit */
        default: return em_lstm_hybrid_tanh(v);
    }
}

/* cell j of one row: gate holds the 4 pre-activations [i | f | g | o] of NC each; lanes[k * lstride + j] says
 * whether LiteRT's sigmoid k (i, f, o) takes Eigen's one-element path there */
static inline void em_lstm_hybrid_cell(const float* gate, int64_t NC, int64_t j, int act, float clip, float* c,
                                       float* out, const uint8_t* lanes, int64_t lstride) {
    const float vi = em_lstm_hybrid_sigmoid(gate[j], lanes[j]);
    const float vf = em_lstm_hybrid_sigmoid(gate[NC + j], lanes[lstride + j]);
    const float vg = act == 0 ? gate[2 * NC + j] : em_lstm_hybrid_act(gate[2 * NC + j], act);
    const float vo = em_lstm_hybrid_sigmoid(gate[3 * NC + j], lanes[2 * lstride + j]);
    float cv = vf * c[j];
    cv = cv + vg * vi;
    if (clip > 0.0f) {                                   /* CwiseClipping: std::max(std::min(clip, c), -clip) */
        cv = cv < clip ? cv : clip;
        cv = cv < -clip ? -clip : cv;
    }
    c[j] = cv;
    out[j] = vo * (act == 0 ? vg : em_lstm_hybrid_act(cv, act));
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The vector forms (AVX2: 8 lanes, AVX-512: 16) of the logistic, the tanh and the cell loop, one body over
 * em_vec.h's operations: the scalar functions' operations in their order, so the same bits. */
#define EM_LH_SIMD(ISA, TARGET)                                                                               \
TARGET static inline EM_V(ISA, T) em_lstm_hybrid_logistic_##ISA(EM_V(ISA, T) x0) {                          \
    const EM_V(ISA, T) half = EM_V(ISA, SET1)(0.5f), one = EM_V(ISA, SET1)(1.0f);                             \
    EM_V(ISA, T) x = EM_V(ISA, MUL)(EM_V(ISA, MIN)(x0, EM_V(ISA, SET1)(EM_LH_EXP_HI)), half);                 \
    EM_V(ISA, T) m = EM_V(ISA, FLOOR)(EM_V(ISA, ADD)(EM_V(ISA, MUL)(x, EM_V(ISA, SET1)(EM_LH_LOG2E)), half)); \
    EM_V(ISA, T) r = EM_V(ISA, ADD)(EM_V(ISA, MUL)(m, EM_V(ISA, SET1)(EM_LH_LN2_C1)), x);                     \
    r = EM_V(ISA, ADD)(EM_V(ISA, MUL)(m, EM_V(ISA, SET1)(EM_LH_LN2_C2)), r);                                  \
    EM_V(ISA, T) r2 = EM_V(ISA, MUL)(r, r);                                                                   \
    EM_V(ISA, T) pe = EM_V(ISA, ADD)(EM_V(ISA, MUL)(r2, EM_V(ISA, SET1)(EM_LH_P4)), EM_V(ISA, SET1)(EM_LH_P2)); \
    EM_V(ISA, T) po = EM_V(ISA, ADD)(EM_V(ISA, MUL)(r2, EM_V(ISA, SET1)(EM_LH_P5)), EM_V(ISA, SET1)(EM_LH_P3)); \
    EM_V(ISA, T) p = EM_V(ISA, ADD)(EM_V(ISA, MUL)(r, po), pe);                                               \
    p = EM_V(ISA, ADD)(EM_V(ISA, MUL)(r2, p), EM_V(ISA, ADD)(r, one));                                        \
    EM_V(ISA, IT) e2 = EM_V(ISA, ISHL)(EM_V(ISA, IADD)(EM_V(ISA, CVT)(m), EM_V(ISA, ISET1)(127)), 23);        \
    EM_V(ISA, T) e = EM_V(ISA, MUL)(p, EM_V(ISA, AS_F)(e2));                                                  \
    e = EM_V(ISA, MUL)(e, e);                                                                                 \
    EM_V(ISA, T) y = EM_V(ISA, DIV)(e, EM_V(ISA, ADD)(one, e));                                               \
    return EM_V(ISA, LT_ZERO)(x0, EM_V(ISA, SET1)(EM_LH_EXP_LO), y);                                          \
}                                                                                                             \
TARGET static inline EM_V(ISA, T) em_lstm_hybrid_tanh_##ISA(EM_V(ISA, T) a) {                               \
    EM_V(ISA, T) x = EM_V(ISA, MIN)(a, EM_V(ISA, SET1)(EM_LH_TANH_CLAMP));                                    \
    x = EM_V(ISA, MAX)(x, EM_V(ISA, SET1)(-EM_LH_TANH_CLAMP));                                                \
    EM_V(ISA, T) x2 = EM_V(ISA, MUL)(x, x), x3 = EM_V(ISA, MUL)(x2, x);                                       \
    EM_V(ISA, T) p = EM_V(ISA, ADD)(EM_V(ISA, MUL)(EM_V(ISA, SET1)(EM_LH_TA0), x2), EM_V(ISA, SET1)(EM_LH_TA1)); \
    EM_V(ISA, T) q = EM_V(ISA, ADD)(EM_V(ISA, MUL)(EM_V(ISA, SET1)(EM_LH_TB0), x2), EM_V(ISA, SET1)(EM_LH_TB1)); \
    p = EM_V(ISA, ADD)(EM_V(ISA, MUL)(p, x2), EM_V(ISA, SET1)(EM_LH_TA2));                                    \
    q = EM_V(ISA, ADD)(EM_V(ISA, MUL)(q, x2), EM_V(ISA, SET1)(EM_LH_TB2));                                    \
    p = EM_V(ISA, ADD)(EM_V(ISA, MUL)(p, x2), EM_V(ISA, SET1)(EM_LH_TA3));                                    \
    q = EM_V(ISA, ADD)(EM_V(ISA, MUL)(q, x2), EM_V(ISA, SET1)(EM_LH_TB3));                                    \
    q = EM_V(ISA, ADD)(EM_V(ISA, MUL)(q, x2), EM_V(ISA, SET1)(1.0f));                                         \
    return EM_V(ISA, DIV)(EM_V(ISA, ADD)(EM_V(ISA, MUL)(x3, p), x), q);                                       \
}                                                                                                             \
/* cells [0, NC rounded down to L) of one row, tanh activation only */                                        \
TARGET static int64_t em_lstm_hybrid_cells_##ISA(const float* gate, int64_t NC, float clip, float* c,        \
                                                 float* out) {                                                \
    enum { L = EM_V(ISA, LANES) };                                                                            \
    int64_t j;                                                                                                \
    for (j = 0; j + L <= NC; j += L) {                                                                        \
        EM_V(ISA, T) vi = em_lstm_hybrid_logistic_##ISA(EM_V(ISA, LOAD)(gate + j));                           \
        EM_V(ISA, T) vf = em_lstm_hybrid_logistic_##ISA(EM_V(ISA, LOAD)(gate + NC + j));                      \
        EM_V(ISA, T) vg = em_lstm_hybrid_tanh_##ISA(EM_V(ISA, LOAD)(gate + 2 * NC + j));                      \
        EM_V(ISA, T) vo = em_lstm_hybrid_logistic_##ISA(EM_V(ISA, LOAD)(gate + 3 * NC + j));                  \
        EM_V(ISA, T) cv = EM_V(ISA, ADD)(EM_V(ISA, MUL)(vf, EM_V(ISA, LOAD)(c + j)), EM_V(ISA, MUL)(vg, vi));  \
        if (clip > 0.0f) {                                                                                    \
            cv = EM_V(ISA, MIN)(cv, EM_V(ISA, SET1)(clip));                       /* cv < clip ? cv : clip */  \
            cv = EM_V(ISA, MAX)(cv, EM_V(ISA, SET1)(-clip));                                                  \
        }                                                                                                     \
        EM_V(ISA, STORE)(c + j, cv);                                                                          \
        EM_V(ISA, STORE)(out + j, EM_V(ISA, MUL)(vo, em_lstm_hybrid_tanh_##ISA(cv)));                         \
    }                                                                                                         \
    return j;                                                                                                 \
}
EM_LH_SIMD(avx2, __attribute__((target("avx2"))))
EM_LH_SIMD(avx512, __attribute__((target("avx512f"))))
#endif

/* out[j] = base[j] + (float)(a[j] - z * rs[j]) * scale: an integer sum rescaled onto a float term, in this order
 * (16 lanes at a time on AVX-512, 8 on AVX2, the same operations, so the same bits) */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f"))) static int64_t em_lstm_hybrid_scaled_add_avx512(
        const float* base, const int32_t* a, int32_t z, const int32_t* rs, float scale, int64_t n, float* out) {
    const __m512i vz = _mm512_set1_epi32(z);
    const __m512 vs = _mm512_set1_ps(scale);
    int64_t j;
    for (j = 0; j + 16 <= n; j += 16) {
        __m512i s = _mm512_sub_epi32(_mm512_loadu_si512(a + j), _mm512_mullo_epi32(vz, _mm512_loadu_si512(rs + j)));
        _mm512_storeu_ps(out + j, _mm512_add_ps(_mm512_loadu_ps(base + j), _mm512_mul_ps(_mm512_cvtepi32_ps(s), vs)));
    }
    return j;
}
__attribute__((target("avx2"))) static int64_t em_lstm_hybrid_scaled_add_avx2(
        const float* base, const int32_t* a, int32_t z, const int32_t* rs, float scale, int64_t n, float* out) {
    const __m256i vz = _mm256_set1_epi32(z);
    const __m256 vs = _mm256_set1_ps(scale);
    int64_t j;
    for (j = 0; j + 8 <= n; j += 8) {
        __m256i s = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i*)(a + j)),
                                     _mm256_mullo_epi32(vz, _mm256_loadu_si256((const __m256i*)(rs + j))));
        _mm256_storeu_ps(out + j, _mm256_add_ps(_mm256_loadu_ps(base + j), _mm256_mul_ps(_mm256_cvtepi32_ps(s), vs)));
    }
    return j;
}
#endif
static inline void em_lstm_hybrid_scaled_add(const float* base, const int32_t* a, int32_t z, const int32_t* rs,
                                             float scale, int64_t n, float* out) {
    int64_t j = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (em_isa() >= EM_ISA_AVX512) j = em_lstm_hybrid_scaled_add_avx512(base, a, z, rs, scale, n, out);
    else if (em_isa() >= EM_ISA_AVX2) j = em_lstm_hybrid_scaled_add_avx2(base, a, z, rs, scale, n, out);
#endif
    for (; j < n; j++) out[j] = base[j] + (float)(a[j] - z * rs[j]) * scale;
}

static void em_lstm_hybrid(const em_params* p) {
    const float* x = (const float*)p->ptr[EM_LSTM_HYBRID_P_X];
    float* y = (float*)p->ptr[EM_LSTM_HYBRID_P_Y];
    float* hs = (float*)p->ptr[EM_LSTM_HYBRID_P_H_STATE];
    float* cs = (float*)p->ptr[EM_LSTM_HYBRID_P_C_STATE];
    const void* wx = p->ptr[EM_LSTM_HYBRID_P_WX];
    const void* wh = p->ptr[EM_LSTM_HYBRID_P_WH];
    const float* bias = (const float*)p->ptr[EM_LSTM_HYBRID_P_BIAS];
    const int32_t* rsx = (const int32_t*)p->ptr[EM_LSTM_HYBRID_P_ROW_SUMS_X];
    const int32_t* rsh = (const int32_t*)p->ptr[EM_LSTM_HYBRID_P_ROW_SUMS_H];
    const float* wscale = (const float*)p->ptr[EM_LSTM_HYBRID_P_WEIGHT_SCALES];
    const uint8_t* lanes = (const uint8_t*)p->ptr[EM_LSTM_HYBRID_P_LANES];
    const int64_t B = p->i[EM_LSTM_HYBRID_I_BATCH], T = p->i[EM_LSTM_HYBRID_I_STEPS];
    const int64_t F = p->i[EM_LSTM_HYBRID_I_INPUTS], NC = p->i[EM_LSTM_HYBRID_I_CELLS];
    const int time_major = (int)p->i[EM_LSTM_HYBRID_I_TIME_MAJOR], act = (int)p->i[EM_LSTM_HYBRID_I_ACTIVATION];
    const int asym = (int)p->i[EM_LSTM_HYBRID_I_ASYMMETRIC], quads = (int)p->i[EM_LSTM_HYBRID_I_QUADS];
    const int32_t zq = quads ? 128 : 0;          /* the u8 x s8 sums read every quantized value as q + 128 */
    const float clip = p->f[EM_LSTM_HYBRID_F_CELL_CLIP];
    const int64_t Gp = em_lstm_hybrid_gp(NC), rows = T * B;
    /* one LiteRT step: R rows of x (and of h), groups in the order LiteRT runs them */
    const int64_t R = time_major ? B : 1, groups = rows / R;
    float* pre = (float*)p->ptr[EM_LSTM_HYBRID_P_SCRATCH];
    int8_t* qx = (int8_t*)(pre + rows * Gp);
    int8_t* qh = qx + EM_HY_ALIGN16(rows * F);
    float* sx = (float*)(void*)(qh + EM_HY_ALIGN16(B * NC));
    int32_t* zx = (int32_t*)(sx + rows);
    float* sh = (float*)(zx + rows);
    int32_t* zh = (int32_t*)(sh + B);
    int32_t* acc = zh + B;
    int64_t grp, r, j;
    int g;
#if defined(__x86_64__) && defined(__GNUC__)
    const int vec = act == 4 && em_isa() >= EM_ISA_AVX2;
#endif

    /* input term of every row: quantize, one GEMM (int32 in pre's memory), then bias + term in float in place */
    for (r = 0; r < rows; r++) em_lstm_hybrid_quantize(x + r * F, F, asym, qx + r * F, sx + r, zx + r);
    em_lstm_dots_packed(quads, qx, F, wx, rows, Gp, F, (int32_t*)(void*)pre);
    for (grp = 0; grp < groups; grp++) {
        const int skip = em_lstm_hybrid_all_zero(x + grp * R * F, R * F);
        for (r = grp * R; r < (grp + 1) * R; r++) {
            const int32_t* a = (const int32_t*)(const void*)(pre + r * Gp);
            float* o = pre + r * Gp;
            for (g = 0; g < 4; g++) {
                if (skip) memcpy(o + g * NC, bias + g * NC, (size_t)NC * sizeof(float));
                else em_lstm_hybrid_scaled_add(bias + g * NC, a + g * NC, zx[r] + zq, rsx + g * NC, sx[r] * wscale[g],
                                               NC, o + g * NC);
            }
        }
    }

    for (grp = 0; grp < groups; grp++) {
        /* batch-major: group b * T + t is row (b, t) of state b; time-major: group t is rows t*B.. of every state */
        const int64_t s0 = time_major ? 0 : grp / T;
        float* h = hs + s0 * NC;
        float* c = cs + s0 * NC;
        const int rec = !em_lstm_hybrid_all_zero(h, R * NC);
        if (rec) {
            for (r = 0; r < R; r++) em_lstm_hybrid_quantize(h + r * NC, NC, asym, qh + r * NC, sh + r, zh + r);
            em_lstm_dots_packed(quads, qh, NC, wh, R, Gp, NC, acc);
        }
        for (r = 0; r < R; r++) {
            const int64_t row = grp * R + r;
            float* gate = pre + row * Gp;            /* consumed here: becomes the gate activations */
            const int32_t* a = acc + r * Gp;
            float* hr = h + r * NC;
            float* cr = c + r * NC;
            float* out = y + row * NC;
            if (rec)
                for (g = 0; g < 4; g++)
                    em_lstm_hybrid_scaled_add(gate + g * NC, a + g * NC, zh[r] + zq, rsh + g * NC, sh[r] * wscale[4 + g],
                                              NC, gate + g * NC);
            const uint8_t* ln = lanes + (s0 + r) * NC;
            j = 0;
#if defined(__x86_64__) && defined(__GNUC__)
            if (vec && !lanes[3 * B * NC + s0 + r])
                j = em_isa() >= EM_ISA_AVX512 ? em_lstm_hybrid_cells_avx512(gate, NC, clip, cr, out)
                                              : em_lstm_hybrid_cells_avx2(gate, NC, clip, cr, out);
#endif
            for (; j < NC; j++) em_lstm_hybrid_cell(gate, NC, j, act, clip, cr, out, ln, B * NC);
            memcpy(hr, out, (size_t)NC * sizeof(float));
        }
    }
}

#endif
