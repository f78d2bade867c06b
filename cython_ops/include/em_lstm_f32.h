/* UNIDIRECTIONAL_SEQUENCE_LSTM, float32: the kernel, the sigmoid / tanh forms every float recurrent kernel uses
 * (scalar, 8- and 16-lane with the scalar bits, and the AVX-512 FMA forms) and the fused AVX-512 step. */
#ifndef EM_LSTM_F32_H
#define EM_LSTM_F32_H
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "em_params.h"
#include "em_isa.h"
#include "em_vec.h"
#include "em_lstm_dots.h"

/* ----- float32 kernel (LiteRT EvalFloat without CIFG / peephole / projection / layer norm) -----------------
 * ptr: x, y, h state [B, n_cell], c state [B, n_cell], Wx, Wh (packed for em_lstm_fdots, or with the gates
 *      interleaved by unit for em_lstm_fstep_avx512), bias [Gp], 6 reserved slots (NULL), scratch float
 *      [(T*B + 1) * Gp]; Gp = 4*n_cell padded to the column block
 * ints: B, T, F, n_cell, time_major, activation (4 tanh, 0 none: h = o * g as in LiteRT, 1 relu,
 *       2 relu_n1_to_1, 3 relu6), interleaved (1: Wx, Wh and bias interleaved by unit, em_lstm_fstep_avx512;
 *       ops/lstm.py sets it only for tanh on AVX-512)
 * floats: cell clip (0: none)
 * sigmoid and tanh use one polynomial exp (Cephes expf coefficients, range reduction by ln 2, no FMA) in the
 * scalar, 8- and 16-lane forms alike, so they give the same bits on every path (within 2 ulp of libm); the
 * AVX-512 dot products use FMA, so that path's results agree within float tolerance. */
enum { EM_LSTM_F32_P_X, EM_LSTM_F32_P_Y, EM_LSTM_F32_P_H_STATE, EM_LSTM_F32_P_C_STATE, EM_LSTM_F32_P_WX,
       EM_LSTM_F32_P_WH, EM_LSTM_F32_P_BIAS, EM_LSTM_F32_P_RESERVED,
       EM_LSTM_F32_P_RESERVED_LAST = EM_LSTM_F32_P_RESERVED + 5, EM_LSTM_F32_P_SCRATCH, EM_LSTM_F32_P_COUNT };
enum { EM_LSTM_F32_I_BATCH, EM_LSTM_F32_I_STEPS, EM_LSTM_F32_I_INPUTS, EM_LSTM_F32_I_CELLS, EM_LSTM_F32_I_TIME_MAJOR,
       EM_LSTM_F32_I_ACTIVATION, EM_LSTM_F32_I_INTERLEAVED, EM_LSTM_F32_I_COUNT };
enum { EM_LSTM_F32_F_CELL_CLIP, EM_LSTM_F32_F_COUNT };

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
/* The 8- (AVX2) and 16-lane (AVX-512) forms of the polynomials above, one body over em_vec.h's operations: the
 * same operations in the same order, so the same bits (em_lstm_expf_x8 / _x16, ...). */
#define EM_LSTM_F32_SIMD(ISA, TARGET, SFX)                                                                    \
TARGET static inline EM_V(ISA, T) em_lstm_expf_##SFX(EM_V(ISA, T) x) {                                       \
    EM_V(ISA, T) n, r, r2, p;                                                                                 \
    x = EM_V(ISA, MIN)(EM_V(ISA, MAX)(x, EM_V(ISA, SET1)(EM_EXP_LO)), EM_V(ISA, SET1)(EM_EXP_HI));            \
    n = EM_V(ISA, FLOOR)(EM_V(ISA, ADD)(EM_V(ISA, MUL)(x, EM_V(ISA, SET1)(EM_EXP_LOG2E)), EM_V(ISA, SET1)(0.5f))); \
    r = EM_V(ISA, SUB)(x, EM_V(ISA, MUL)(n, EM_V(ISA, SET1)(EM_EXP_LN2_HI)));                                 \
    r = EM_V(ISA, SUB)(r, EM_V(ISA, MUL)(n, EM_V(ISA, SET1)(EM_EXP_LN2_LO)));                                 \
    r2 = EM_V(ISA, MUL)(r, r);                                                                                \
    p = EM_V(ISA, SET1)(EM_EXP_P0);                                                                           \
    p = EM_V(ISA, ADD)(EM_V(ISA, MUL)(p, r), EM_V(ISA, SET1)(EM_EXP_P1));                                     \
    p = EM_V(ISA, ADD)(EM_V(ISA, MUL)(p, r), EM_V(ISA, SET1)(EM_EXP_P2));                                     \
    p = EM_V(ISA, ADD)(EM_V(ISA, MUL)(p, r), EM_V(ISA, SET1)(EM_EXP_P3));                                     \
    p = EM_V(ISA, ADD)(EM_V(ISA, MUL)(p, r), EM_V(ISA, SET1)(EM_EXP_P4));                                     \
    p = EM_V(ISA, ADD)(EM_V(ISA, MUL)(p, r), EM_V(ISA, SET1)(EM_EXP_P5));                                     \
    p = EM_V(ISA, ADD)(EM_V(ISA, MUL)(p, r2), r);                                                             \
    p = EM_V(ISA, ADD)(p, EM_V(ISA, SET1)(1.0f));                                                             \
    return EM_V(ISA, MUL)(p, EM_V(ISA, AS_F)(EM_V(ISA, ISHL)(                                                 \
        EM_V(ISA, IADD)(EM_V(ISA, CVT)(n), EM_V(ISA, ISET1)(127)), 23)));                                     \
}                                                                                                             \
TARGET static inline EM_V(ISA, T) em_lstm_sigmoidf_##SFX(EM_V(ISA, T) x) {                                   \
    const EM_V(ISA, T) one = EM_V(ISA, SET1)(1.0f);                                                           \
    return EM_V(ISA, DIV)(one, EM_V(ISA, ADD)(one, em_lstm_expf_##SFX(EM_V(ISA, SUB)(EM_V(ISA, ZERO)(), x)))); \
}                                                                                                             \
TARGET static inline EM_V(ISA, T) em_lstm_tanhf_##SFX(EM_V(ISA, T) x) {                                      \
    const EM_V(ISA, T) sign = EM_V(ISA, SET1)(-0.0f), one = EM_V(ISA, SET1)(1.0f);                            \
    EM_V(ISA, T) a = EM_V(ISA, ANDNOT)(sign, x);                                                              \
    EM_V(ISA, T) z = EM_V(ISA, MUL)(x, x), q = EM_V(ISA, SET1)(EM_TANH_Q0), small, big;                       \
    q = EM_V(ISA, ADD)(EM_V(ISA, MUL)(q, z), EM_V(ISA, SET1)(EM_TANH_Q1));                                    \
    q = EM_V(ISA, SUB)(EM_V(ISA, MUL)(q, z), EM_V(ISA, SET1)(EM_TANH_Q2));                                    \
    q = EM_V(ISA, ADD)(EM_V(ISA, MUL)(q, z), EM_V(ISA, SET1)(EM_TANH_Q3));                                    \
    q = EM_V(ISA, SUB)(EM_V(ISA, MUL)(q, z), EM_V(ISA, SET1)(EM_TANH_Q4));                                    \
    small = EM_V(ISA, ADD)(x, EM_V(ISA, MUL)(EM_V(ISA, MUL)(x, z), q));                                       \
    big = EM_V(ISA, SUB)(one, EM_V(ISA, DIV)(EM_V(ISA, SET1)(2.0f),                                           \
                                             EM_V(ISA, ADD)(em_lstm_expf_##SFX(EM_V(ISA, ADD)(a, a)), one)));  \
    big = EM_V(ISA, OR)(big, EM_V(ISA, AND)(x, sign));                                                        \
    return EM_V(ISA, LT_SELECT)(a, EM_V(ISA, SET1)(EM_TANH_SMALL), big, small);                               \
}
/* cells [j, j + L) of one step, sigmoid gates and tanh, with LOAD / STORE (whole or masked vectors): c = f.c + i.g
 * (clipped to +-clip when clip > 0), out = o.tanh(c), the scalar cell's operations in its order */
#define EM_LSTM_CELLS_F32(ISA, SFX, LOAD, STORE, GI, GF, GG, GO)                                             \
    {                                                                                                         \
        EM_V(ISA, T) vi = em_lstm_sigmoidf_##SFX(LOAD((GI) + j));                                             \
        EM_V(ISA, T) vf = em_lstm_sigmoidf_##SFX(LOAD((GF) + j));                                             \
        EM_V(ISA, T) vg = em_lstm_tanhf_##SFX(LOAD((GG) + j));                                                \
        EM_V(ISA, T) vo = em_lstm_sigmoidf_##SFX(LOAD((GO) + j));                                             \
        EM_V(ISA, T) cv = EM_V(ISA, ADD)(EM_V(ISA, MUL)(vf, LOAD(c + j)), EM_V(ISA, MUL)(vi, vg));             \
        if (clip > 0.0f) cv = EM_V(ISA, MIN)(EM_V(ISA, MAX)(cv, EM_V(ISA, SET1)(-clip)), EM_V(ISA, SET1)(clip)); \
        STORE(c + j, cv);                                                                                     \
        STORE(out + j, EM_V(ISA, MUL)(vo, em_lstm_tanhf_##SFX(cv)));                                          \
    }
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define EM_AVX2 __attribute__((target("avx2")))
EM_LSTM_F32_SIMD(avx2, EM_AVX2, x8)
/* cells [0, NC rounded down to 8) of one step, tanh activation only */
EM_AVX2 static int64_t em_lstm_cells_f32_avx2(const float* gate, int64_t NC, float clip, float* c, float* out) {
    int64_t j;
    for (j = 0; j + 8 <= NC; j += 8)
        EM_LSTM_CELLS_F32(avx2, x8, EM_V_LOAD_avx2, EM_V_STORE_avx2, gate, gate + NC, gate + 2 * NC, gate + 3 * NC)
    return j;
}

/* 16-lane forms */
#define EM_AVX512F __attribute__((target("avx512f")))
EM_LSTM_F32_SIMD(avx512, EM_AVX512F, x16)
/* every cell of one step, 16 at a time (masked tail), sigmoid gates and tanh: c = f.c + i.g (clipped to
 * +-clip when clip > 0), out = o.tanh(c); the gates' pre-activations at gi, gf, gg, go.  ONNX's int8 LSTM: its
 * float gates then give the scalar path's bits, and so does the int8 state quantized from them (float LSTMs run
 * em_lstm_fstep_avx512 instead, unless only one of two directions has the default activations) */
EM_AVX512F static void em_lstm_cells_f32_avx512(const float* gi, const float* gf, const float* gg, const float* go,
                                               int64_t NC, float clip, float* c, float* out) {
    int64_t j;
    for (j = 0; j < NC; j += 16) {
        const __mmask16 k = NC - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (NC - j)) - 1);
#define EM_LSTM_LOAD_K(q) _mm512_maskz_loadu_ps(k, q)
#define EM_LSTM_STORE_K(q, v) _mm512_mask_storeu_ps(q, k, v)
        EM_LSTM_CELLS_F32(avx512, x16, EM_LSTM_LOAD_K, EM_LSTM_STORE_K, gi, gf, gg, go)
#undef EM_LSTM_LOAD_K
#undef EM_LSTM_STORE_K
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
 * The recurrent GEMV and the cells in one pass over column blocks.  Weights packed by packing.py's
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
    const float* x = (const float*)p->ptr[EM_LSTM_F32_P_X];
    float* y = (float*)p->ptr[EM_LSTM_F32_P_Y];
    float* hs = (float*)p->ptr[EM_LSTM_F32_P_H_STATE];
    float* cs = (float*)p->ptr[EM_LSTM_F32_P_C_STATE];
    const float* wx = (const float*)p->ptr[EM_LSTM_F32_P_WX];
    const float* wh = (const float*)p->ptr[EM_LSTM_F32_P_WH];
    const float* bias = (const float*)p->ptr[EM_LSTM_F32_P_BIAS];
    const int64_t B = p->i[EM_LSTM_F32_I_BATCH], T = p->i[EM_LSTM_F32_I_STEPS], F = p->i[EM_LSTM_F32_I_INPUTS];
    const int64_t NC = p->i[EM_LSTM_F32_I_CELLS];
    const int time_major = (int)p->i[EM_LSTM_F32_I_TIME_MAJOR], act = (int)p->i[EM_LSTM_F32_I_ACTIVATION];
    const int interleaved = (int)p->i[EM_LSTM_F32_I_INTERLEAVED];
    const float clip = p->f[EM_LSTM_F32_F_CELL_CLIP];
    const int64_t G = 4 * NC, Gp = (G + EM_LSTM_COLS - 1) / EM_LSTM_COLS * EM_LSTM_COLS;
    float* pre = (float*)p->ptr[EM_LSTM_F32_P_SCRATCH];
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
            if (interleaved) {                /* ops/lstm.py interleaves only for tanh on AVX-512 */
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
