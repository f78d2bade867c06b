/* Element-wise arithmetic that only ONNX models need (onnxruntime's semantics, see shared NUMERICS.md).
 *
 * QuantizeLinear: y = saturate(round_half_to_even(x / scale) + zp), the division in float32 as MLAS
 * does.  uint8 tensors live in the IR as int8 with zero point - 128; the sign-bit flip converts at the
 * graph boundary.  Clip on integers is a clamp (exact: rounding is monotone).
 */
#ifndef EM_ONNX_H
#define EM_ONNX_H

#include <math.h>
#include <stdint.h>
#include "em_params.h"
#include "em_requant.h"

/* QuantizeLinear float -> int8: i: 0 n, 1 zp, 2 lo, 3 hi; f: 0 scale */
static void em_onnx_quantize_linear(const em_params* p) {
    const float* x = (const float*)p->ptr[0];
    int8_t* y = (int8_t*)p->ptr[1];
    const float scale = p->f[0];
    const int32_t zp = (int32_t)p->i[1], lo = (int32_t)p->i[2], hi = (int32_t)p->i[3];
    for (int64_t k = 0; k < p->i[0]; k++) {
        float r = x[k] / scale;
        r = r < -1e9f ? -1e9f : (r > 1e9f ? 1e9f : r);
        if (r != r) r = 0.0f;                /* NaN quantizes to the zero point, as MLAS's conversion does */
        y[k] = (int8_t)em_clamp_i32((int32_t)nearbyintf(r) + zp, lo, hi);
    }
}

/* uint8 <-> int8 with zero point - 128: i: 0 n bytes */
static void em_onnx_flip_sign_bit(const em_params* p) {
    const uint8_t* x = (const uint8_t*)p->ptr[0];
    uint8_t* y = (uint8_t*)p->ptr[1];
    for (int64_t k = 0; k < p->i[0]; k++) y[k] = x[k] ^ 0x80u;
}

/* Clamp int8: i: 0 n, 1 lo, 2 hi */
static void em_onnx_clamp_int8(const em_params* p) {
    const int8_t* x = (const int8_t*)p->ptr[0];
    int8_t* y = (int8_t*)p->ptr[1];
    const int32_t lo = (int32_t)p->i[1], hi = (int32_t)p->i[2];
    for (int64_t k = 0; k < p->i[0]; k++) y[k] = (int8_t)em_clamp_i32(x[k], lo, hi);
}

/* com.microsoft QLinearSoftmax over the last axis (onnxruntime's lookup-table arithmetic).
 * ptr: 0 x (int8; uint8 tensors as x - 128), 1 y, 2 table float[256] with table[255 - (max - x)] = e^(...);
 * i: 0 rows, 1 depth, 2 unsigned (1: the ONNX tensor is uint8), 3 output zero point in the ONNX type;
 * f: 0 floor(1 / y_scale).  Saturation copies onnxruntime: only values above 255 are clipped, and the
 * int8 variant then truncates to 8 bits (so 128 + zp wraps), as its kernel does. */
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
                v = v > 255 ? 255 : v;
                y[k] = (int8_t)(uint8_t)(uint32_t)v;
            }
        }
    }
}

#endif
