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
 *   c = f * c + g * i, clipped to +-cell_clip when cell_clip > 0
 *   h = o * act(c)   -- act NONE leaves its output buffer, the cell gate's, unwritten in LiteRT: h = o * g
 * The cell update is the float LSTM's (em_lstm.h em_lstm_cell_f32 / em_lstm_cells_f32_avx2), with its sigmoid
 * and tanh: one polynomial in every ISA form, within 2 ulp of libm.  LiteRT takes sigmoid and tanh from Eigen's
 * vectorized approximations, whose bits depend on its build (tests/test_lstm_hybrid.py says what follows).
 * The integer sums are exact (in any order), so Wx.x_q of every row is one GEMM before the recurrence
 * (em_lstm_dots, weights packed by rnn.py pack_s8) and becomes bias + input term in float right away; each step
 * then adds the recurrent term.  Every float operation is the reference's, in its order, without contraction.
 *
 * ptr: 0 x f32 [B,T,F] (or [T,B,F] when time_major), 1 y f32 [.., NC] one row per (b, t), 2 h state f32 [B,NC],
 *      3 c state f32 [B,NC], 4 Wx, 5 Wh ([4*NC, F] and [4*NC, NC], gate order i, f, g, o; pack_s8),
 *      6 bias f32 [4*NC], 7 row sums int32 [4*NC] of Wx, 8 row sums int32 [4*NC] of Wh,
 *      9 weight scales f32 [8] (Wx gates i, f, g, o, then Wh gates), 10 scratch
 * ints: 0 B, 1 T, 2 F, 3 NC, 4 time_major, 5 cell activation (0 none, 1 relu, 3 relu6, 4 tanh, 6 sigmoid),
 *       6 asymmetric input quantization (0/1)
 * floats: 0 cell clip (0: none)
 * scratch bytes (em_lstm_hybrid_scratch): the input term of every row (T*B * Gp floats, Gp = 4*NC padded to
 *   EM_LSTM_COLS), the quantized rows of x (T*B * F), of h (B * NC), their scales and zero points, the recurrent
 *   sums of one group (B * Gp int32). */
#ifndef EM_LSTM_HYBRID_H
#define EM_LSTM_HYBRID_H
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "em_params.h"
#include "em_hybrid.h"
#include "em_lstm.h"

static inline int64_t em_lstm_hybrid_gp(int64_t NC) {
    return (4 * NC + EM_LSTM_COLS - 1) / EM_LSTM_COLS * EM_LSTM_COLS;
}

/* Scratch bytes for the layout above; rnn.py asks for the same number through cython_ops.rnn. */
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

static void em_lstm_hybrid(const em_params* p) {
    const float* x = (const float*)p->ptr[0];
    float* y = (float*)p->ptr[1];
    float* hs = (float*)p->ptr[2];
    float* cs = (float*)p->ptr[3];
    const int16_t* wx = (const int16_t*)p->ptr[4];
    const int16_t* wh = (const int16_t*)p->ptr[5];
    const float* bias = (const float*)p->ptr[6];
    const int32_t* rsx = (const int32_t*)p->ptr[7];
    const int32_t* rsh = (const int32_t*)p->ptr[8];
    const float* wscale = (const float*)p->ptr[9];
    const int64_t B = p->i[0], T = p->i[1], F = p->i[2], NC = p->i[3];
    const int time_major = (int)p->i[4], act = (int)p->i[5], asym = (int)p->i[6];
    const float clip = p->f[0];
    const int64_t Gp = em_lstm_hybrid_gp(NC), rows = T * B;
    /* one LiteRT step: R rows of x (and of h), groups in the order LiteRT runs them */
    const int64_t R = time_major ? B : 1, groups = rows / R;
    float* pre = (float*)p->ptr[10];
    int8_t* qx = (int8_t*)(pre + rows * Gp);
    int8_t* qh = qx + EM_HY_ALIGN16(rows * F);
    float* sx = (float*)(void*)(qh + EM_HY_ALIGN16(B * NC));
    int32_t* zx = (int32_t*)(sx + rows);
    float* sh = (float*)(zx + rows);
    int32_t* zh = (int32_t*)(sh + B);
    int32_t* acc = zh + B;
    int64_t grp, r, j;
    int g, vec = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    vec = act == 4 && em_isa() >= EM_ISA_AVX2;
#endif

    /* input term of every row: quantize, one GEMM (int32 in pre's memory), then bias + term in float in place */
    for (r = 0; r < rows; r++) em_lstm_hybrid_quantize(x + r * F, F, asym, qx + r * F, sx + r, zx + r);
    em_lstm_dots(qx, F, wx, rows, Gp, F, (int32_t*)(void*)pre);
    for (grp = 0; grp < groups; grp++) {
        const int skip = em_lstm_hybrid_all_zero(x + grp * R * F, R * F);
        for (r = grp * R; r < (grp + 1) * R; r++) {
            const int32_t* a = (const int32_t*)(const void*)(pre + r * Gp);
            float* o = pre + r * Gp;
            for (g = 0; g < 4; g++) {
                const float scale = sx[r] * wscale[g];
                for (j = g * NC; j < (g + 1) * NC; j++) {
                    float v = bias[j];
                    if (!skip) v = v + (float)(a[j] - zx[r] * rsx[j]) * scale;
                    o[j] = v;
                }
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
            em_lstm_dots(qh, NC, wh, R, Gp, NC, acc);
        }
        for (r = 0; r < R; r++) {
            const int64_t row = grp * R + r;
            float* gate = pre + row * Gp;            /* consumed here: becomes the gate activations */
            const int32_t* a = acc + r * Gp;
            float* hr = h + r * NC;
            float* cr = c + r * NC;
            float* out = y + row * NC;
            if (rec) {
                for (g = 0; g < 4; g++) {
                    const float scale = sh[r] * wscale[4 + g];
                    for (j = g * NC; j < (g + 1) * NC; j++) gate[j] = gate[j] + (float)(a[j] - zh[r] * rsh[j]) * scale;
                }
            }
            j = 0;
#if defined(__x86_64__) && defined(__GNUC__)
            if (vec) j = em_lstm_cells_f32_avx2(gate, NC, clip, cr, out);
#endif
            for (; j < NC; j++) {
                if (act != 0) {
                    em_lstm_cell_f32(gate, NC, j, act, clip, cr, out);
                    continue;
                }
                /* NONE: LiteRT's output step multiplies o by the cell gate left in its buffer, not by c */
                const float vi = em_lstm_sigmoidf(gate[j]), vf = em_lstm_sigmoidf(gate[NC + j]);
                const float vg = gate[2 * NC + j], vo = em_lstm_sigmoidf(gate[3 * NC + j]);
                float cv = vf * cr[j] + vi * vg;
                if (clip > 0.0f) cv = cv > clip ? clip : (cv < -clip ? -clip : cv);
                cr[j] = cv;
                out[j] = vo * vg;
            }
            memcpy(hr, out, (size_t)NC * sizeof(float));
        }
    }
}

#endif
