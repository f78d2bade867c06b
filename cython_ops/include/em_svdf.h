/* SVDF (singular value decomposition filter, TFLite keyword-spotting models): a FULLY_CONNECTED factored into a
 * feature projection and a filter over the last `memory` projections of each filter, kept in a state that
 * persists across invokes.  Written from LiteRT's svdf.cc and reference_ops::{EvalIntegerSVDF, EvalFloatSVDF,
 * EvalHybridSVDF}:
 *   state[b, f, :] shifts left by one (the whole buffer moves one element, as std::copy there; the last
 *                  column of every filter is then overwritten)
 *   state[b, f, M-1] = project(x[b], weights_feature[f])
 *   s[b, f]        = sum_m weights_time[f, m] * state[b, f, m]
 *   y[b, u]        = act(sum_{k < rank} s[b, u * rank + k] + bias[u])
 * int8 (EvalIntegerSVDF): project = clamp_int16(MBQM(sum_c w * (x - x_zp), m1, s1)); the sums in int32; y =
 *   clamp_int8(MBQM(sum + bias, m2, s2) + y_zp) -- LiteRT's Prepare demands RELU but its integer kernel applies
 *   no activation beyond the int8 range, nor this.  Sums wrap as two's complement (uint32) where LiteRT's int32
 *   overflow is undefined.
 * float (EvalFloatSVDF): the float sums in index order; act is ApplyActivationToVector (TANH: LiteRT's Eigen
 *   tanh, em_lstm_hybrid.h).
 * hybrid (EvalHybridSVDF): x quantized per batch row (em_hybrid.h: symmetric, or asymmetric_quantize_inputs),
 *   project = (float)(dot(w, q) - zp * rowsum(w)) * (scale * weights_feature_scale), all products skipped when
 *   every input is 0; weights_time dequantized at load (int8 * scale in float); the rest as float.
 * Layout EM_SVDF:
 * ptr: input, weights_feature (int8 or float [F, I]), weights_time (int16 for int8, float otherwise [F, M]),
 *      bias (int32 / float [U], or NULL), state (int16 / float [B, F, M]), output, scratch, row_sums (int32 [F]:
 *      hybrid asymmetric only)
 * i:   batch, inputs, filters, units, rank, memory, input_zp, output_zp, mult1, shift1, mult2, shift2, mode
 *      (rounding), activation (TFLite's: 0 none, 1 relu, 2 relu_n1_to_1, 3 relu6, 4 tanh, 5 sign_bit),
 *      asymmetric (hybrid)
 * f:   feature_scale (hybrid)
 * scratch bytes: 4 * B * F, and for the hybrid form EM_HY_ALIGN16(B * I) + 8 * B more */
#ifndef EM_SVDF_H
#define EM_SVDF_H
#include <stdint.h>
#include <string.h>
#include "em_params.h"
#include "em_requant.h"
#include "em_hybrid.h"
#include "em_lstm_hybrid.h"

enum { EM_SVDF_P_INPUT, EM_SVDF_P_WEIGHTS_FEATURE, EM_SVDF_P_WEIGHTS_TIME, EM_SVDF_P_BIAS, EM_SVDF_P_STATE,
       EM_SVDF_P_OUTPUT, EM_SVDF_P_SCRATCH, EM_SVDF_P_ROW_SUMS, EM_SVDF_P_COUNT };
enum { EM_SVDF_I_BATCH, EM_SVDF_I_INPUTS, EM_SVDF_I_FILTERS, EM_SVDF_I_UNITS, EM_SVDF_I_RANK, EM_SVDF_I_MEMORY,
       EM_SVDF_I_INPUT_ZP, EM_SVDF_I_OUTPUT_ZP, EM_SVDF_I_MULT1, EM_SVDF_I_SHIFT1, EM_SVDF_I_MULT2, EM_SVDF_I_SHIFT2,
       EM_SVDF_I_MODE, EM_SVDF_I_ACTIVATION, EM_SVDF_I_ASYMMETRIC, EM_SVDF_I_COUNT };
enum { EM_SVDF_F_FEATURE_SCALE, EM_SVDF_F_COUNT };

static void em_svdf_int8(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t B = d[EM_SVDF_I_BATCH], I = d[EM_SVDF_I_INPUTS], F = d[EM_SVDF_I_FILTERS];
    const int64_t U = d[EM_SVDF_I_UNITS], R = d[EM_SVDF_I_RANK], M = d[EM_SVDF_I_MEMORY];
    const int32_t xzp = (int32_t)d[EM_SVDF_I_INPUT_ZP], yzp = (int32_t)d[EM_SVDF_I_OUTPUT_ZP];
    const int mode = (int)d[EM_SVDF_I_MODE];
    const int8_t* x = (const int8_t*)p->ptr[EM_SVDF_P_INPUT];
    const int8_t* wf = (const int8_t*)p->ptr[EM_SVDF_P_WEIGHTS_FEATURE];
    const int16_t* wt = (const int16_t*)p->ptr[EM_SVDF_P_WEIGHTS_TIME];
    const int32_t* bias = (const int32_t*)p->ptr[EM_SVDF_P_BIAS];
    int16_t* state = (int16_t*)p->ptr[EM_SVDF_P_STATE];
    int8_t* y = (int8_t*)p->ptr[EM_SVDF_P_OUTPUT];
    int32_t* s = (int32_t*)p->ptr[EM_SVDF_P_SCRATCH];
    if (B * F * M > 1) memmove(state, state + 1, (size_t)(B * F * M - 1) * sizeof(int16_t));
    for (int64_t b = 0; b < B; b++) {
        const int8_t* xb = x + b * I;
        for (int64_t f = 0; f < F; f++) {
            const int8_t* w = wf + f * I;
            uint32_t acc = 0;
            for (int64_t c = 0; c < I; c++) acc += (uint32_t)((int32_t)w[c] * ((int32_t)xb[c] - xzp));
            int32_t v = em_mbqm((int32_t)acc, (int32_t)d[EM_SVDF_I_MULT1], (int)d[EM_SVDF_I_SHIFT1], mode);
            v = v < -32768 ? -32768 : (v > 32767 ? 32767 : v);
            state[(b * F + f) * M + M - 1] = (int16_t)v;
        }
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t f = 0; f < F; f++) {
            const int16_t* st = state + (b * F + f) * M;
            uint32_t acc = 0;
            for (int64_t m = 0; m < M; m++) acc += (uint32_t)((int32_t)wt[f * M + m] * (int32_t)st[m]);
            s[b * F + f] = (int32_t)acc;
        }
    for (int64_t b = 0; b < B; b++)
        for (int64_t u = 0; u < U; u++) {
            uint32_t acc = 0;
            for (int64_t k = 0; k < R; k++) acc += (uint32_t)s[b * F + u * R + k];
            if (bias) acc += (uint32_t)bias[u];
            int32_t v = em_mbqm((int32_t)acc, (int32_t)d[EM_SVDF_I_MULT2], (int)d[EM_SVDF_I_SHIFT2], mode) + yzp;
            y[b * U + u] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
        }
}

/* The float steps after the projections (in s[b * F + f], already in the state's last column):
 * ApplyTimeWeightsBiasAndActivation. */
static void em_svdf_time_f32(const em_params* p, const float* wt, float* s) {
    const int64_t* d = p->i;
    const int64_t B = d[EM_SVDF_I_BATCH], F = d[EM_SVDF_I_FILTERS], U = d[EM_SVDF_I_UNITS];
    const int64_t R = d[EM_SVDF_I_RANK], M = d[EM_SVDF_I_MEMORY];
    const int act = (int)d[EM_SVDF_I_ACTIVATION];
    const float* state = (const float*)p->ptr[EM_SVDF_P_STATE];
    const float* bias = (const float*)p->ptr[EM_SVDF_P_BIAS];
    float* y = (float*)p->ptr[EM_SVDF_P_OUTPUT];
    for (int64_t b = 0; b < B; b++)
        for (int64_t f = 0; f < F; f++) {
            const float* st = state + (b * F + f) * M;
            float acc = 0.0f;
            for (int64_t m = 0; m < M; m++) acc += wt[f * M + m] * st[m];
            s[b * F + f] = acc;
        }
    for (int64_t b = 0; b < B; b++)
        for (int64_t u = 0; u < U; u++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < R; k++) acc += s[b * F + u * R + k];
            if (bias) acc += bias[u];
            y[b * U + u] = act == 0 ? acc : em_lstm_hybrid_act(acc, act);
        }
}

static void em_svdf_shift_f32(const em_params* p, float* state) {
    const int64_t n = p->i[EM_SVDF_I_BATCH] * p->i[EM_SVDF_I_FILTERS] * p->i[EM_SVDF_I_MEMORY];
    if (n > 1) memmove(state, state + 1, (size_t)(n - 1) * sizeof(float));
}

static void em_svdf_f32(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t B = d[EM_SVDF_I_BATCH], I = d[EM_SVDF_I_INPUTS], F = d[EM_SVDF_I_FILTERS];
    const int64_t M = d[EM_SVDF_I_MEMORY];
    const float* x = (const float*)p->ptr[EM_SVDF_P_INPUT];
    const float* wf = (const float*)p->ptr[EM_SVDF_P_WEIGHTS_FEATURE];
    float* state = (float*)p->ptr[EM_SVDF_P_STATE];
    float* s = (float*)p->ptr[EM_SVDF_P_SCRATCH];
    em_svdf_shift_f32(p, state);
    for (int64_t b = 0; b < B; b++)
        for (int64_t f = 0; f < F; f++) {
            float acc = 0.0f;
            for (int64_t c = 0; c < I; c++) acc += wf[f * I + c] * x[b * I + c];
            s[b * F + f] = 0.0f + acc;       /* accumulated onto cleared scratch, as LiteRT (-0 becomes +0) */
            state[(b * F + f) * M + M - 1] = s[b * F + f];
        }
    em_svdf_time_f32(p, (const float*)p->ptr[EM_SVDF_P_WEIGHTS_TIME], s);
}

static void em_svdf_hybrid(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t B = d[EM_SVDF_I_BATCH], I = d[EM_SVDF_I_INPUTS], F = d[EM_SVDF_I_FILTERS];
    const int64_t M = d[EM_SVDF_I_MEMORY];
    const int asym = (int)d[EM_SVDF_I_ASYMMETRIC];
    const float* x = (const float*)p->ptr[EM_SVDF_P_INPUT];
    const int8_t* wf = (const int8_t*)p->ptr[EM_SVDF_P_WEIGHTS_FEATURE];
    const int32_t* row_sums = (const int32_t*)p->ptr[EM_SVDF_P_ROW_SUMS];
    float* state = (float*)p->ptr[EM_SVDF_P_STATE];
    float* s = (float*)p->ptr[EM_SVDF_P_SCRATCH];
    int8_t* q = (int8_t*)(s + B * F);
    float* scales = (float*)(q + EM_HY_ALIGN16(B * I));
    int32_t* zps = (int32_t*)(scales + B);
    em_svdf_shift_f32(p, state);
    for (int64_t i = 0; i < B * F; i++) s[i] = 0.0f;
    if (!em_lstm_hybrid_all_zero(x, B * I)) {
        for (int64_t b = 0; b < B; b++) {
            em_lstm_hybrid_quantize(x + b * I, I, asym, q + b * I, &scales[b], &zps[b]);
            scales[b] = scales[b] * p->f[EM_SVDF_F_FEATURE_SCALE];
        }
        for (int64_t b = 0; b < B; b++)
            for (int64_t f = 0; f < F; f++) {
                uint32_t acc = 0;
                for (int64_t c = 0; c < I; c++) acc += (uint32_t)((int32_t)wf[f * I + c] * (int32_t)q[b * I + c]);
                if (asym) acc -= (uint32_t)row_sums[f] * (uint32_t)zps[b];
                s[b * F + f] = s[b * F + f] + (float)(int32_t)acc * scales[b];
            }
    }
    for (int64_t i = 0; i < B * F; i++) state[i * M + M - 1] = s[i];
    em_svdf_time_f32(p, (const float*)p->ptr[EM_SVDF_P_WEIGHTS_TIME], s);
}
#endif
