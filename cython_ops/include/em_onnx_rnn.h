/* ONNX LSTM / GRU / RNN, float32, with onnxruntime's semantics (deep_cpu_lstm.cc, deep_cpu_gru.cc, rnn.cc):
 *   LSTM (gates i o f c):  i = f(Xi + Hi + Pi.c), f = f(Xf + Hf + Pf.c) (input_forget: 1 - i), g = g(Xc + Hc),
 *                          c' = f.c + i.g, o = f(Xo + Ho + Po.c'), h' = o.h(c')
 *   GRU  (gates z r h):    z, r = f(X + H);  h~ = g(Xh + Rh.(r.h) + Rbh)  or, linear_before_reset,
 *                          h~ = g(Xh + r.(Rh.h + Rbh));  h' = (1 - z).h~ + z.h
 *   RNN:                   h' = f(X + R.h)
 * (X = W.x + the biases, H = R.h; clip, when > 0, bounds the input of every activation but LSTM's h.)  The
 * activations f, g, h default to sigmoid, tanh, tanh (RNN's f to tanh); any of onnxruntime's eleven may be
 * chosen per direction (em_rnn_act1).
 * Speed: W.x of every time step and direction is one GEMM (em_lstm_fdots) before the recurrence; each step is
 * one GEMV over the stacked gates (em_lstm_fgemv; GRU without linear_before_reset: two, r.h needs r first) and
 * element-wise passes.  sigmoid / tanh are em_lstm_f32.h's polynomial forms, whose 8- and 16-lane versions give the
 * scalar bits; the other activations run one element at a time on every ISA.  The scalar and AVX2 paths
 * compute the same floats (sums in k order, -ffp-contract=off); the AVX-512 dots use fused multiply-adds, so
 * that path agrees within float tolerance (DESIGN.md: float32 is allclose).
 *
 * Layout EM_ONNX_RNN (both kernels):
 * ptr: X, Y, Y_h, Y_c (LSTM), W packed [D][Gp x F], R packed [D][Rp x H] (GRU: z and r rows),
 *      input bias [D][Gp] followed by (alpha, beta) [D][NF][2] of the NF activations (f, g, h),
 *      GRU: Rh packed [D][Hp x H], GRU: Rbh [D][Hp] (linear_before_reset), initial_h or 0,
 *      initial_c or 0, P [D][3H] or 0, sequence lengths int32 [B] or 0, scratch,
 *      int8 scales and corrections (quant, below), int32 status word (with the sequence lengths)
 * ints: cell (0 LSTM, 1 GRU, 2 RNN), T, B, F, H, D, reverse (D = 1), layout, input_forget, linear_before_reset,
 *       VNNI packing (quads), activation kinds EM_RNN_SIGMOID.. [D][NF] in a block of EM_ONNX_RNN_MAX_ACTS slots
 *       (the unused ones 0), then fused_step: 1 when W, R and the bias are packed with the LSTM gates interleaved
 *       by unit (packing.py interleave_gates, for em_lstm_fstep_avx512)
 * floats: clip (0: none).  Y and Y_h are always given (the reader allocates the unused ones).
 * Layout 0: X [T, B, F], Y [T, D, B, H], states [D, B, H]; layout 1: X [B, T, F], Y [B, T, D, H], states
 * [B, D, H].  Steps past a sequence's length give zeros in Y; Y_h / Y_c hold the state after its last step. */
#ifndef EM_ONNX_RNN_H
#define EM_ONNX_RNN_H
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "em_params.h"
#include "em_isa.h"
#include "em_lstm_dots.h"
#include "em_lstm_f32.h"

#define EM_RNN_LSTM 0
#define EM_RNN_GRU 1
#define EM_RNN_RNN 2
#define EM_ONNX_RNN_MAX_ACTS 6            /* activation kinds: 2 directions x 3 functions (LSTM) at most */

enum { EM_ONNX_RNN_P_X, EM_ONNX_RNN_P_Y, EM_ONNX_RNN_P_Y_H, EM_ONNX_RNN_P_Y_C, EM_ONNX_RNN_P_W, EM_ONNX_RNN_P_R,
       EM_ONNX_RNN_P_BIAS, EM_ONNX_RNN_P_RH, EM_ONNX_RNN_P_RBH, EM_ONNX_RNN_P_INITIAL_H, EM_ONNX_RNN_P_INITIAL_C,
       EM_ONNX_RNN_P_PEEPHOLES, EM_ONNX_RNN_P_SEQUENCE_LENS, EM_ONNX_RNN_P_SCRATCH, EM_ONNX_RNN_P_QUANT,
       EM_ONNX_RNN_P_STATUS, EM_ONNX_RNN_P_COUNT };
enum { EM_ONNX_RNN_I_CELL, EM_ONNX_RNN_I_STEPS, EM_ONNX_RNN_I_BATCH, EM_ONNX_RNN_I_INPUTS, EM_ONNX_RNN_I_HIDDEN,
       EM_ONNX_RNN_I_DIRECTIONS, EM_ONNX_RNN_I_REVERSE, EM_ONNX_RNN_I_LAYOUT, EM_ONNX_RNN_I_INPUT_FORGET,
       EM_ONNX_RNN_I_LINEAR_BEFORE_RESET, EM_ONNX_RNN_I_QUADS, EM_ONNX_RNN_I_ACTIVATIONS,
       EM_ONNX_RNN_I_ACTIVATIONS_LAST = EM_ONNX_RNN_I_ACTIVATIONS + EM_ONNX_RNN_MAX_ACTS - 1, EM_ONNX_RNN_I_FUSED_STEP,
       EM_ONNX_RNN_I_COUNT };
enum { EM_ONNX_RNN_F_CLIP, EM_ONNX_RNN_F_COUNT };

#define EM_RNN_PAD(n) (((n) + EM_LSTM_COLS - 1) / EM_LSTM_COLS * EM_LSTM_COLS)

static inline float em_rnn_clip(float v, float clip) {
    return clip > 0.0f ? (v > clip ? clip : (v < -clip ? -clip : v)) : v;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* v[j] = sigmoid (tanh when odd) of clip(v[j]) for j below n rounded down to 8; returns that count */
EM_AVX2 static int64_t em_rnn_activate_avx2(float* v, int64_t n, float clip, int odd) {
    int64_t j;
    for (j = 0; j + 8 <= n; j += 8) {
        __m256 x = _mm256_loadu_ps(v + j);
        if (clip > 0.0f) x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-clip)), _mm256_set1_ps(clip));
        _mm256_storeu_ps(v + j, odd ? em_lstm_tanhf_x8(x) : em_lstm_sigmoidf_x8(x));
    }
    return j;
}
#endif

/* The AVX-512 passes: fast = 1 (float models) uses em_lstm_f32.h's FMA forms; fast = 0 (int8 models, whose int8
 * state is quantized from these floats) the 16-lane forms with the scalar bits, so that every ISA gives the
 * same int8 state and outputs. */
#if defined(__x86_64__) && defined(__GNUC__)
EM_FMA512 static inline __m512 em_rnn_sigmoid16(__m512 x, int fast) {
    return fast ? em_lstm_sigmoidf_fma16(x) : em_lstm_sigmoidf_x16(x);
}
EM_FMA512 static inline __m512 em_rnn_tanh16(__m512 x, int fast) {
    return fast ? em_lstm_tanhf_fma16(x) : em_lstm_tanhf_x16(x);
}
EM_FMA512 static int64_t em_rnn_activate_avx512(float* v, int64_t n, float clip, int odd, int fast) {
    int64_t j;
    for (j = 0; j + 16 <= n; j += 16) {
        __m512 x = _mm512_loadu_ps(v + j);
        if (clip > 0.0f) x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-clip)), _mm512_set1_ps(clip));
        _mm512_storeu_ps(v + j, odd ? em_rnn_tanh16(x, fast) : em_rnn_sigmoid16(x, fast));
    }
    return j;
}

/* the GRU cell with linear_before_reset and default activations in one pass, in the order of the separate
 * passes of em_onnx_rnn_run: z, r = s(gates); h~ = tanh(xh + r.hh); h' = (1 - z).h~ + z.h */
EM_FMA512 static void em_rnn_gru_cells_avx512(const float* gz, const float* gr, const float* xh, const float* hh,
                                              int64_t H, float* hs, int fast) {
    const __m512 one = _mm512_set1_ps(1.0f);
    int64_t j;
    for (j = 0; j < H; j += 16) {
        const __mmask16 k = H - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (H - j)) - 1);
        __m512 z = em_rnn_sigmoid16(_mm512_maskz_loadu_ps(k, gz + j), fast);
        __m512 r = em_rnn_sigmoid16(_mm512_maskz_loadu_ps(k, gr + j), fast);
        __m512 c = em_rnn_tanh16(_mm512_add_ps(_mm512_maskz_loadu_ps(k, xh + j),
                                               _mm512_mul_ps(r, _mm512_maskz_loadu_ps(k, hh + j))), fast);
        __m512 h = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(one, z), c), _mm512_mul_ps(z, _mm512_maskz_loadu_ps(k, hs + j)));
        _mm512_mask_storeu_ps(hs + j, k, h);
    }
}
#endif

/* activation kinds (ints EM_ONNX_RNN_I_ACTIVATIONS..): onnxruntime's names, with alpha / beta as it reads them
 * (ops/onnx_rnn.py) */
#define EM_RNN_SIGMOID 0
#define EM_RNN_TANH 1
#define EM_RNN_RELU 2
#define EM_RNN_AFFINE 3
#define EM_RNN_LEAKY_RELU 4
#define EM_RNN_THRESHOLDED_RELU 5
#define EM_RNN_SCALED_TANH 6
#define EM_RNN_HARD_SIGMOID 7
#define EM_RNN_ELU 8
#define EM_RNN_SOFTSIGN 9
#define EM_RNN_SOFTPLUS 10

/* one element of the other kinds (onnxruntime's formulas; Elu and Softplus with libm's expf / logf as its
 * std::exp / std::log, ScaledTanh with em_lstm_f32.h's tanh) */
static inline float em_rnn_act1(int kind, float x, float alpha, float beta) {
    switch (kind) {
        case EM_RNN_RELU: return x > 0.0f ? x : 0.0f;
        case EM_RNN_AFFINE: return alpha * x + beta;
        case EM_RNN_LEAKY_RELU: return x >= 0.0f ? x : alpha * x;
        case EM_RNN_THRESHOLDED_RELU: return x > alpha ? x : 0.0f;
        case EM_RNN_SCALED_TANH: return alpha * em_lstm_tanhf(beta * x);
        case EM_RNN_HARD_SIGMOID: {
            float v = alpha * x + beta;
            return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
        }
        case EM_RNN_ELU: return x >= 0.0f ? x : alpha * (expf(x) - 1.0f);
        case EM_RNN_SOFTSIGN: return x / (1.0f + fabsf(x));
        case EM_RNN_SOFTPLUS: return logf(1.0f + expf(x));
        case EM_RNN_TANH: return em_lstm_tanhf(x);
        default: return em_lstm_sigmoidf(x);
    }
}

/* v[j] = act(clip(v[j])) in place; sigmoid and tanh (every default) take the vector paths, the other kinds
 * one element at a time */
static void em_rnn_activate(float* v, int64_t n, float clip, int kind, float alpha, float beta, int fast) {
    int64_t j = 0;
    if (kind != EM_RNN_SIGMOID && kind != EM_RNN_TANH) {
        for (; j < n; j++) v[j] = em_rnn_act1(kind, em_rnn_clip(v[j], clip), alpha, beta);
        return;
    }
    {
        const int odd = kind == EM_RNN_TANH;
        (void)fast;
#if defined(__x86_64__) && defined(__GNUC__)
        if (em_isa() >= EM_ISA_AVX512) j = em_rnn_activate_avx512(v, n, clip, odd, fast);
        if (em_isa() >= EM_ISA_AVX2) j += em_rnn_activate_avx2(v + j, n - j, clip, odd);
#endif
        for (; j < n; j++) {
            float x = em_rnn_clip(v[j], clip);
            v[j] = odd ? em_lstm_tanhf(x) : em_lstm_sigmoidf(x);
        }
    }
}

/* int8 path: h (or r.h) to int8 with the fixed scale 1/127 (|h| < 1: tanh-bounded cells), round half to even */
static void em_rnn_quantize_state(const float* h, int64_t n, int8_t* q) {
    int64_t j;
    for (j = 0; j < n; j++) {
        float v = h[j] * 127.0f;
        v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : (v == v ? v : 0.0f));     /* NaN: 0 */
        v = (v + 12582912.0f) - 12582912.0f;       /* 1.5 * 2^23: rounds half to even, no libm call */
        q[j] = (int8_t)(int)v;
    }
}

/* AVX-512 forms of the state quantization and of the int32 -> float step below: the same float operations in
 * the same order (cvtps rounds half to even like the 1.5 * 2^23 trick), so the same bits */
#if defined(__x86_64__) && defined(__GNUC__)
EM_AVX512F static int64_t em_rnn_quantize_state_avx512(const float* h, int64_t n, int8_t* q) {
    int64_t j;
    for (j = 0; j + 16 <= n; j += 16) {
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(h + j), _mm512_set1_ps(127.0f));
        v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);                     /* NaN: 0 */
        v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
        _mm_storeu_si128((__m128i*)(q + j), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
    }
    return j;
}
EM_AVX512F static int64_t em_rnn_dequantize_sums_avx512(float* out, int64_t Np, const int32_t* corr, const float* scale,
                                                        const float* bias, const float* add) {
    int64_t n;
    for (n = 0; n + 16 <= Np; n += 16) {
        __m512i acc = _mm512_add_epi32(_mm512_loadu_si512(out + n), _mm512_loadu_si512(corr + n));
        __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(scale + n));
        if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + n));
        if (add) v = _mm512_add_ps(v, _mm512_loadu_ps(add + n));
        _mm512_storeu_ps(out + n, v);
    }
    return n;
}
#endif

/* out[0..Np) = R.h (+ bias) (+ add): float weights, or int8 weights on h quantized (int32 sums, then
 * (float)acc * scale[n] in place of the float sum); quantized: 1 int16-pair packing, 2 the VNNI u8 x s8 one */
static void em_rnn_gemv(int quantized, int odd, const float* h, const void* Wd, int64_t Np, int64_t K, const float* scale,
                        const int32_t* corr, const float* bias, const float* add, float* out, int8_t* h8) {
    int64_t n = 0, j = 0;
    if (!quantized) { em_lstm_fgemv(h, (const float*)Wd, bias, add, Np, K, out, odd); return; }
#if defined(__x86_64__) && defined(__GNUC__)
    const int v512 = em_isa() >= EM_ISA_AVX512;
    if (v512) j = em_rnn_quantize_state_avx512(h, K, h8);
#endif
    em_rnn_quantize_state(h + j, K - j, h8 + j);
    em_lstm_dots_packed(quantized == 2, h8, K, Wd, 1, Np, K, (int32_t*)out);
#if defined(__x86_64__) && defined(__GNUC__)
    if (v512) n = em_rnn_dequantize_sums_avx512(out, Np, corr, scale, bias, add);
#endif
    for (; n < Np; n++) {
        float v = (float)(((int32_t*)out)[n] + corr[n]) * scale[n];
        if (bias) v = v + bias[n];
        if (add) v = v + add[n];
        out[n] = v;
    }
}

/* quantized: X int8, W / R / Rh packed (packing.py pack_s8, or pack_u8s8 when quads = 1: AVX-512 VNNI),
 * quant: float scales [D*Gp s_x*s_w | D*Rp s_r/127 | D*Hp s_rh/127 (GRU)] followed by int32 corrections in the
 * same layout: -zp_x * sum_k w for the input (its zero point folded), and -128 * sum_k w everywhere in the VNNI
 * form.
 * Sequence lengths are checked on every run, whether constant or a graph input: a value outside 0..T
 * leaves every output zero and is stored in the status word, which Interpreter.invoke reports; a
 * length of 0 gives zeros in Y, Y_h and Y_c (onnxruntime). */
static void em_onnx_rnn_run(const em_params* p, int quantized) {
    const float* X = (const float*)p->ptr[EM_ONNX_RNN_P_X];
    float* Y = (float*)p->ptr[EM_ONNX_RNN_P_Y];
    float* Yh = (float*)p->ptr[EM_ONNX_RNN_P_Y_H];
    float* Yc = (float*)p->ptr[EM_ONNX_RNN_P_Y_C];
    const char* W = (const char*)p->ptr[EM_ONNX_RNN_P_W];
    const char* R = (const char*)p->ptr[EM_ONNX_RNN_P_R];
    const float* bias = (const float*)p->ptr[EM_ONNX_RNN_P_BIAS];
    const char* Rh = (const char*)p->ptr[EM_ONNX_RNN_P_RH];
    const float* Rbh = (const float*)p->ptr[EM_ONNX_RNN_P_RBH];
    const float* h0 = (const float*)p->ptr[EM_ONNX_RNN_P_INITIAL_H];
    const float* c0 = (const float*)p->ptr[EM_ONNX_RNN_P_INITIAL_C];
    const float* P = (const float*)p->ptr[EM_ONNX_RNN_P_PEEPHOLES];
    const int32_t* lens = (const int32_t*)p->ptr[EM_ONNX_RNN_P_SEQUENCE_LENS];
    const float* qscale = (const float*)p->ptr[EM_ONNX_RNN_P_QUANT];
    int32_t* status = (int32_t*)p->ptr[EM_ONNX_RNN_P_STATUS];
    const int cell = (int)p->i[EM_ONNX_RNN_I_CELL];
    const int64_t T = p->i[EM_ONNX_RNN_I_STEPS], B = p->i[EM_ONNX_RNN_I_BATCH], F = p->i[EM_ONNX_RNN_I_INPUTS];
    const int64_t H = p->i[EM_ONNX_RNN_I_HIDDEN], D = p->i[EM_ONNX_RNN_I_DIRECTIONS];
    const int reverse = (int)p->i[EM_ONNX_RNN_I_REVERSE], layout = (int)p->i[EM_ONNX_RNN_I_LAYOUT];
    const int input_forget = (int)p->i[EM_ONNX_RNN_I_INPUT_FORGET], lbr = (int)p->i[EM_ONNX_RNN_I_LINEAR_BEFORE_RESET];
    const float clip = p->f[EM_ONNX_RNN_F_CLIP];
    const int64_t G = cell == EM_RNN_LSTM ? 4 : (cell == EM_RNN_GRU ? 3 : 1);
    const int64_t Gp = EM_RNN_PAD(G * H), Rp = cell == EM_RNN_GRU ? EM_RNN_PAD(2 * H) : Gp, Hp = EM_RNN_PAD(H);
    const int quads = quantized && (int)p->i[EM_ONNX_RNN_I_QUADS];
    const int64_t NF = cell == EM_RNN_LSTM ? 3 : (cell == EM_RNN_GRU ? 2 : 1);   /* activation functions */
    const float* ab = bias + D * Gp;                  /* [D][NF] (alpha, beta) after the input bias */
    const int32_t* qcorr = quantized ? (const int32_t*)(qscale + D * (Gp + Rp + (cell == EM_RNN_GRU ? Hp : 0))) : NULL;
    /* bytes of one direction's packed matrices: float [Np x K]; int16 [Np x K rounded up to even]; or, quads,
     * int8 [Np x K rounded up to 4] */
#define EM_RNN_PACKED(Np, K) (!quantized ? (Np) * (K) * 4 : (quads ? (Np) * (((K) + 3) / 4 * 4) : (Np) * ((K) + (K) % 2) * 2))
    const int64_t wbytes = EM_RNN_PACKED(Gp, F), rbytes = EM_RNN_PACKED(Rp, H), hbytes = EM_RNN_PACKED(Hp, H);
#undef EM_RNN_PACKED
    const float* rscale = quantized ? qscale + D * Gp : NULL;
    const float* hscale = quantized ? rscale + D * Rp : NULL;
    const int32_t* rcorr = quantized ? qcorr + D * Gp : NULL;
    const int32_t* hcorr = quantized ? rcorr + D * Rp : NULL;
    float* pre = (float*)p->ptr[EM_ONNX_RNN_P_SCRATCH];                  /* [D][T*B][Gp] */
    float* gate = pre + D * T * B * Gp;               /* [Gp] */
    float* hh = gate + Gp;                            /* [Hp] GRU: Rh.(r.h) or Rh.h + Rbh */
    float* rh = hh + Hp;                              /* [Hp] GRU: r.h; LSTM: tanh(c') */
    float* hs = rh + Hp;                              /* [H] */
    float* cs = hs + Hp;                              /* [H] */
    int8_t* h8 = (int8_t*)(cs + Hp);                  /* [Hp] int8 path: the quantized state */
    int64_t d, b, s, t, j;
    const float* hp = NULL;                           /* the fused float LSTM's previous state */
    (void)hp;

    if (lens) {
        *status = 0;
        for (b = 0; b < B; b++)
            if (lens[b] < 0 || lens[b] > T) {
                *status = lens[b];                    /* never 0: the reader names it */
                memset(Y, 0, (size_t)(T * D * B * H) * sizeof(float));
                memset(Yh, 0, (size_t)(D * B * H) * sizeof(float));
                if (cell == EM_RNN_LSTM) memset(Yc, 0, (size_t)(D * B * H) * sizeof(float));
                return;
            }
    }
    for (d = 0; d < D; d++) {
        float* pd = pre + d * T * B * Gp;
        if (!quantized) {
            em_lstm_fdots(X, (const float*)(W + d * wbytes), bias + d * Gp, NULL, T * B, Gp, F, pd);
            continue;
        }
        em_lstm_dots_packed(quads, (const int8_t*)X, F, W + d * wbytes, T * B, Gp, F, (int32_t*)pd);
        for (s = 0; s < T * B; s++) {
            float* row = pd + s * Gp;
            const int32_t* corr = qcorr + d * Gp;
            const float* sc = qscale + d * Gp;
            const float* bi = bias + d * Gp;
            for (j = 0; j < Gp; j++) row[j] = (float)(((int32_t*)row)[j] + corr[j]) * sc[j] + bi[j];
        }
    }
    for (d = 0; d < D; d++) {
        const int back = D == 2 ? (int)d : reverse;
        const void* Rd = R + d * rbytes;
        const void* Rhd = Rh + d * hbytes;
        const float* Pd = P ? P + d * 3 * H : NULL;
        const float* rsd = quantized ? rscale + d * Rp : NULL;
        const float* hsd = quantized ? hscale + d * Hp : NULL;
        const int32_t* rcd = quantized ? rcorr + d * Rp : NULL;
        const int32_t* hcd = quantized ? hcorr + d * Hp : NULL;
        const int mode = quads ? 2 : quantized;
        const int64_t* kind = p->i + EM_ONNX_RNN_I_ACTIVATIONS + d * NF;   /* f, g, h of this direction */
        const float* fab = ab + d * NF * 2, *gab = fab + 2, *hab = fab + 4;
        /* the plain LSTM cell (default activations, no clip / peepholes / coupled forget gate) and the GRU cell
         * with linear_before_reset (default activations, no clip) in one AVX-512 pass each, in the order of the
         * separate passes below; the float LSTM then comes with its gates interleaved (ops/onnx_rnn.py,
         * EM_ONNX_RNN_I_FUSED_STEP) and runs em_lstm_fstep_avx512, GEMV and cells in one */
#if defined(__x86_64__) && defined(__GNUC__)
        const int fused = em_isa() >= EM_ISA_AVX512 && clip == 0.0f && kind[0] == EM_RNN_SIGMOID &&
                          kind[1] == EM_RNN_TANH &&
                          ((cell == EM_RNN_LSTM && !Pd && !input_forget && kind[2] == EM_RNN_TANH) ||
                           (cell == EM_RNN_GRU && lbr));
        const int fstep = (int)p->i[EM_ONNX_RNN_I_FUSED_STEP];
#else
        const int fused = 0;
#endif
        for (b = 0; b < B; b++) {
            const int64_t len = lens ? lens[b] : T;
            const int64_t state = layout ? (b * D + d) * H : (d * B + b) * H;
            if (h0) memcpy(hs, h0 + state, (size_t)H * sizeof(float));
            else memset(hs, 0, (size_t)H * sizeof(float));
            if (c0) memcpy(cs, c0 + state, (size_t)H * sizeof(float));
            else memset(cs, 0, (size_t)H * sizeof(float));
            hp = hs;
            for (s = 0; s < T; s++) {
                t = back ? len - 1 - s : s;
                if (s >= len) {                        /* past the sequence: zeros (onnxruntime) */
                    t = s;
                    memset(Y + (layout ? (b * T + t) * D + d : (t * D + d) * B + b) * H, 0, (size_t)H * sizeof(float));
                    continue;
                }
                {
                    const int64_t row = layout ? b * T + t : t * B + b;
                    const float* xr = pre + (d * T * B + row) * Gp;
                    /* the fused GRU on odd steps: Rh.h first, so each step starts on the matrix the last one ended on */
                    const int gru_swap = cell == EM_RNN_GRU && fused && (s & 1);
#if defined(__x86_64__) && defined(__GNUC__)
                    if (fstep) {                   /* h from the Y row of the step before; hs after the last */
                        float* yrow = Y + (layout ? (b * T + t) * D + d : (t * D + d) * B + b) * H;
                        em_lstm_fstep_avx512(hp, (const float*)Rd, xr, H, 0.0f, cs, yrow, (int)(s & 1));
                        hp = yrow;
                        if (s == len - 1) memcpy(hs, yrow, (size_t)H * sizeof(float));
                        continue;
                    }
#endif
                    if (gru_swap) em_rnn_gemv(mode, 1, hs, Rhd, Hp, H, hsd, hcd, Rbh + d * Hp, NULL, hh, h8);
                    em_rnn_gemv(mode, (int)(s & 1), hs, Rd, Rp, H, rsd, rcd, NULL, xr, gate, h8);
                    if (cell == EM_RNN_LSTM && fused) {
#if defined(__x86_64__) && defined(__GNUC__)
                        em_lstm_cells_f32_avx512(gate, gate + 2 * H, gate + 3 * H, gate + H, H, 0.0f, cs, hs);
#endif
                    } else if (cell == EM_RNN_LSTM) {
                        float *gi = gate, *go = gate + H, *gf = gate + 2 * H, *gc = gate + 3 * H;
                        if (Pd)
                            for (j = 0; j < H; j++) {
                                gi[j] = gi[j] + Pd[j] * cs[j];
                                gf[j] = gf[j] + Pd[2 * H + j] * cs[j];
                            }
                        em_rnn_activate(gi, H, clip, (int)kind[0], fab[0], fab[1], !quantized);
                        if (input_forget) for (j = 0; j < H; j++) gf[j] = 1.0f - gi[j];
                        else em_rnn_activate(gf, H, clip, (int)kind[0], fab[0], fab[1], !quantized);
                        em_rnn_activate(gc, H, clip, (int)kind[1], gab[0], gab[1], !quantized);
                        for (j = 0; j < H; j++) cs[j] = gf[j] * cs[j] + gi[j] * gc[j];
                        if (Pd) for (j = 0; j < H; j++) go[j] = go[j] + Pd[H + j] * cs[j];
                        em_rnn_activate(go, H, clip, (int)kind[0], fab[0], fab[1], !quantized);
                        memcpy(rh, cs, (size_t)H * sizeof(float));
                        em_rnn_activate(rh, H, 0.0f, (int)kind[2], hab[0], hab[1], !quantized);
                        for (j = 0; j < H; j++) hs[j] = go[j] * rh[j];
                    } else if (cell == EM_RNN_GRU && fused) {
#if defined(__x86_64__) && defined(__GNUC__)
                        if (!gru_swap) em_rnn_gemv(mode, 0, hs, Rhd, Hp, H, hsd, hcd, Rbh + d * Hp, NULL, hh, h8);
                        em_rnn_gru_cells_avx512(gate, gate + H, xr + 2 * H, hh, H, hs, !quantized);
#endif
                    } else if (cell == EM_RNN_GRU) {
                        float *gz = gate, *gr = gate + H;
                        const float* xh = xr + 2 * H;
                        em_rnn_activate(gate, 2 * H, clip, (int)kind[0], fab[0], fab[1], !quantized);
                        if (lbr) {
                            em_rnn_gemv(mode, (int)(s & 1), hs, Rhd, Hp, H, hsd, hcd, Rbh + d * Hp, NULL, hh, h8);
                            for (j = 0; j < H; j++) hh[j] = xh[j] + gr[j] * hh[j];
                        } else {
                            for (j = 0; j < H; j++) rh[j] = gr[j] * hs[j];
                            em_rnn_gemv(mode, (int)(s & 1), rh, Rhd, Hp, H, hsd, hcd, NULL, NULL, hh, h8);
                            for (j = 0; j < H; j++) hh[j] = xh[j] + hh[j];
                        }
                        em_rnn_activate(hh, H, clip, (int)kind[1], gab[0], gab[1], !quantized);
                        for (j = 0; j < H; j++) hs[j] = (1.0f - gz[j]) * hh[j] + gz[j] * hs[j];
                    } else {
                        em_rnn_activate(gate, H, clip, (int)kind[0], fab[0], fab[1], !quantized);
                        memcpy(hs, gate, (size_t)H * sizeof(float));
                    }
                    memcpy(Y + (layout ? (b * T + t) * D + d : (t * D + d) * B + b) * H, hs, (size_t)H * sizeof(float));
                }
            }
            if (len == 0) {                            /* no step: zero states (onnxruntime) */
                memset(hs, 0, (size_t)H * sizeof(float));
                memset(cs, 0, (size_t)H * sizeof(float));
            }
            memcpy(Yh + state, hs, (size_t)H * sizeof(float));
            if (cell == EM_RNN_LSTM) memcpy(Yc + state, cs, (size_t)H * sizeof(float));
        }
    }
}

static void em_onnx_rnn_f32(const em_params* p) { em_onnx_rnn_run(p, 0); }
static void em_onnx_rnn_s8(const em_params* p) { em_onnx_rnn_run(p, 1); }
#endif
