/* com.microsoft QLinearAdd and QLinearSoftmax with onnxruntime's arithmetic (see shared NUMERICS.md). */
#ifndef EM_ONNX_QLINEAR_H
#define EM_ONNX_QLINEAR_H

#include <math.h>
#include <stdint.h>
#include "em_params.h"
#include "em_requant.h"

/* com.microsoft QLinearAdd as MLAS computes it (AVX2 kernel): in the tensors' own integer domain (uint8
 * values are x + 128 here), v = fma(a, ratio_a, fma(b, ratio_b, fixed)), rounded to nearest even, saturated.
 * When one operand is a single element, its term is folded into `fixed` with a separate multiply and add.
 * ptr: a, b, output (int8 in the IR); i: n, a is one element, b is one element, offset added to a, to b (128
 * for uint8), output offset; f: ratio_a, ratio_b, fixed part. */
enum { EM_QLINEAR_ADD_P_A, EM_QLINEAR_ADD_P_B, EM_QLINEAR_ADD_P_OUTPUT, EM_QLINEAR_ADD_P_COUNT };
enum { EM_QLINEAR_ADD_I_N, EM_QLINEAR_ADD_I_A_ONE, EM_QLINEAR_ADD_I_B_ONE, EM_QLINEAR_ADD_I_A_OFFSET,
       EM_QLINEAR_ADD_I_B_OFFSET, EM_QLINEAR_ADD_I_OUT_OFFSET, EM_QLINEAR_ADD_I_COUNT };
enum { EM_QLINEAR_ADD_F_RATIO_A, EM_QLINEAR_ADD_F_RATIO_B, EM_QLINEAR_ADD_F_FIXED, EM_QLINEAR_ADD_F_COUNT };

static void em_onnx_qlinear_add(const em_params* p) {
    const int8_t* a = (const int8_t*)p->ptr[EM_QLINEAR_ADD_P_A];
    const int8_t* b = (const int8_t*)p->ptr[EM_QLINEAR_ADD_P_B];
    int8_t* y = (int8_t*)p->ptr[EM_QLINEAR_ADD_P_OUTPUT];
    const int64_t n = p->i[EM_QLINEAR_ADD_I_N];
    const int a_one = (int)p->i[EM_QLINEAR_ADD_I_A_ONE], b_one = (int)p->i[EM_QLINEAR_ADD_I_B_ONE];
    const int32_t a_off = (int32_t)p->i[EM_QLINEAR_ADD_I_A_OFFSET], b_off = (int32_t)p->i[EM_QLINEAR_ADD_I_B_OFFSET];
    const int32_t y_off = (int32_t)p->i[EM_QLINEAR_ADD_I_OUT_OFFSET];
    const float ra = p->f[EM_QLINEAR_ADD_F_RATIO_A], rb = p->f[EM_QLINEAR_ADD_F_RATIO_B];
    float fixed = p->f[EM_QLINEAR_ADD_F_FIXED];
    if (a_one) fixed = fixed + (float)(a[0] + a_off) * ra;
    if (b_one) fixed = fixed + (float)(b[0] + b_off) * rb;
    for (int64_t k = 0; k < n; k++) {
        float v = fixed;
        if (!b_one) v = fmaf((float)(b[k] + b_off), rb, v);
        if (!a_one) v = fmaf((float)(a[k] + a_off), ra, v);
        v = v < -1e9f ? -1e9f : (v > 1e9f ? 1e9f : v);
        int32_t q = (int32_t)nearbyintf(v) - y_off;
        y[k] = (int8_t)em_clamp_i32(q, -128, 127);
    }
}

/* com.microsoft QLinearSoftmax over the last axis (onnxruntime's lookup-table arithmetic).
 * ptr: input (int8; uint8 tensors as x - 128), output, table float[256] with table[255 - (max - x)] = e^(...);
 * i: rows, depth, unsigned (1: the ONNX tensor is uint8), output zero point in the ONNX type;
 * f: inv_scale, floor(1 / y_scale).  Only the upper end saturates (the quotient is never negative). */
enum { EM_QLINEAR_SOFTMAX_P_INPUT, EM_QLINEAR_SOFTMAX_P_OUTPUT, EM_QLINEAR_SOFTMAX_P_TABLE,
       EM_QLINEAR_SOFTMAX_P_COUNT };
enum { EM_QLINEAR_SOFTMAX_I_ROWS, EM_QLINEAR_SOFTMAX_I_DEPTH, EM_QLINEAR_SOFTMAX_I_UNSIGNED,
       EM_QLINEAR_SOFTMAX_I_OUT_ZP, EM_QLINEAR_SOFTMAX_I_COUNT };
enum { EM_QLINEAR_SOFTMAX_F_INV_SCALE, EM_QLINEAR_SOFTMAX_F_COUNT };

static void em_onnx_qlinear_softmax(const em_params* p) {
    const int8_t* x = (const int8_t*)p->ptr[EM_QLINEAR_SOFTMAX_P_INPUT];
    int8_t* y = (int8_t*)p->ptr[EM_QLINEAR_SOFTMAX_P_OUTPUT];
    const float* table = (const float*)p->ptr[EM_QLINEAR_SOFTMAX_P_TABLE];
    const int64_t rows = p->i[EM_QLINEAR_SOFTMAX_I_ROWS], depth = p->i[EM_QLINEAR_SOFTMAX_I_DEPTH];
    const int is_unsigned = (int)p->i[EM_QLINEAR_SOFTMAX_I_UNSIGNED];
    const int32_t zp = (int32_t)p->i[EM_QLINEAR_SOFTMAX_I_OUT_ZP];
    const float y_scale = p->f[EM_QLINEAR_SOFTMAX_F_INV_SCALE];
    for (int64_t r = 0; r < rows; r++, x += depth, y += depth) {
        int32_t xmax = -128;
        for (int64_t k = 0; k < depth; k++) xmax = x[k] > xmax ? x[k] : xmax;
        const float* shifted = table + 255 - xmax;
        float sum = 0.0f;
        for (int64_t k = 0; k < depth; k++) sum += shifted[x[k]];
        if (sum == 0.0f) {                    /* cannot happen: the maximum's entry is positive */
            for (int64_t k = 0; k < depth; k++) y[k] = 0;
            continue;
        }
        for (int64_t k = 0; k < depth; k++) {
            float q = nearbyintf((shifted[x[k]] * y_scale) / sum);
            q = q > 1e9f ? 1e9f : q;
            if (is_unsigned) {
                uint32_t v = (uint32_t)(int32_t)q + (uint32_t)zp;
                v = v > 255u ? 255u : v;
                y[k] = (int8_t)(v - 128u);
            } else {
                int32_t v = (int32_t)q + zp;
                y[k] = (int8_t)(v > 127 ? 127 : v);
            }
        }
    }
}

#endif
