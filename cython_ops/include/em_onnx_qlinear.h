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
 * ptr: 0 a, 1 b, 2 y (int8 in the IR); i: 0 n, 1 a is one element, 2 b is one element, 3 offset added to
 * a, 4 to b (128 for uint8), 5 output offset; f: 0 ratio_a, 1 ratio_b, 2 fixed part. */
static void em_onnx_qlinear_add(const em_params* p) {
    const int8_t* a = (const int8_t*)p->ptr[0];
    const int8_t* b = (const int8_t*)p->ptr[1];
    int8_t* y = (int8_t*)p->ptr[2];
    const int64_t n = p->i[0];
    const int a_one = (int)p->i[1], b_one = (int)p->i[2];
    const int32_t a_off = (int32_t)p->i[3], b_off = (int32_t)p->i[4], y_off = (int32_t)p->i[5];
    const float ra = p->f[0], rb = p->f[1];
    float fixed = p->f[2];
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
 * ptr: 0 x (int8; uint8 tensors as x - 128), 1 y, 2 table float[256] with table[255 - (max - x)] = e^(...);
 * i: 0 rows, 1 depth, 2 unsigned (1: the ONNX tensor is uint8), 3 output zero point in the ONNX type;
 * f: 0 floor(1 / y_scale).  Only the upper end saturates (the quotient is never negative). */
static void em_onnx_qlinear_softmax(const em_params* p) {
    const int8_t* x = (const int8_t*)p->ptr[0];
    int8_t* y = (int8_t*)p->ptr[1];
    const float* table = (const float*)p->ptr[2];
    const int64_t rows = p->i[0], depth = p->i[1];
    const int is_unsigned = (int)p->i[2];
    const int32_t zp = (int32_t)p->i[3];
    const float y_scale = p->f[0];
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
