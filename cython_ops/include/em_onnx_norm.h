/* ONNX normalizations over the contiguous rows of a float32 tensor: LayerNormalization, RMSNormalization,
 * InstanceNormalization, GroupNormalization and MeanVarianceNormalization are all
 *     y = (x - mean) * inv_std * scale + bias,   inv_std = 1 / sqrt(var + epsilon)
 * over each row of `cols` elements (RMS: mean taken as 0, var = mean(x^2)).  Mean and variance are summed in
 * double, two passes (onnxruntime sums in float or double depending on the op; the difference stays far below
 * float32's tolerance), the output is computed in float.  scale / bias element of row r, column c:
 *     ((r % row_mod) * row_stride + (c / col_div) * col_stride)
 * so one kernel serves per-element (layer / RMS norm), per-channel (instance norm, group norm) and per-group
 * parameters.  The optional mean and inv_std outputs hold one float per row. */
#ifndef EM_ONNX_NORM_H
#define EM_ONNX_NORM_H
#include <math.h>
#include <stdint.h>
#include "em_params.h"

/* em_onnx_normalize, layout EM_ONNX_NORM: ptr: input, scale, bias (NULL: none), output, mean (NULL: not
 * wanted), inv_std (NULL: not wanted); i: rows, cols, row_mod, row_stride, col_div, col_stride, centered
 * (0: RMS); f: epsilon */
enum { EM_ONNX_NORM_P_INPUT, EM_ONNX_NORM_P_SCALE, EM_ONNX_NORM_P_BIAS, EM_ONNX_NORM_P_OUTPUT, EM_ONNX_NORM_P_MEAN,
       EM_ONNX_NORM_P_INV_STD, EM_ONNX_NORM_P_COUNT };
enum { EM_ONNX_NORM_I_ROWS, EM_ONNX_NORM_I_COLS, EM_ONNX_NORM_I_ROW_MOD, EM_ONNX_NORM_I_ROW_STRIDE,
       EM_ONNX_NORM_I_COL_DIV, EM_ONNX_NORM_I_COL_STRIDE, EM_ONNX_NORM_I_CENTERED, EM_ONNX_NORM_I_COUNT };
enum { EM_ONNX_NORM_F_EPSILON, EM_ONNX_NORM_F_COUNT };

static void em_onnx_normalize(const em_params* p) {
    const float* x = (const float*)p->ptr[EM_ONNX_NORM_P_INPUT];
    const float* scale = (const float*)p->ptr[EM_ONNX_NORM_P_SCALE];
    const float* bias = (const float*)p->ptr[EM_ONNX_NORM_P_BIAS];
    float* y = (float*)p->ptr[EM_ONNX_NORM_P_OUTPUT];
    float* mean_out = (float*)p->ptr[EM_ONNX_NORM_P_MEAN];
    float* inv_out = (float*)p->ptr[EM_ONNX_NORM_P_INV_STD];
    const int64_t rows = p->i[EM_ONNX_NORM_I_ROWS], cols = p->i[EM_ONNX_NORM_I_COLS];
    const int64_t row_mod = p->i[EM_ONNX_NORM_I_ROW_MOD], row_stride = p->i[EM_ONNX_NORM_I_ROW_STRIDE];
    const int64_t col_div = p->i[EM_ONNX_NORM_I_COL_DIV], col_stride = p->i[EM_ONNX_NORM_I_COL_STRIDE];
    const int centered = (int)p->i[EM_ONNX_NORM_I_CENTERED];
    const double eps = (double)p->f[EM_ONNX_NORM_F_EPSILON];
    for (int64_t r = 0; r < rows; r++) {
        const float* xr = x + r * cols;
        float* yr = y + r * cols;
        double mean = 0.0, var = 0.0;
        if (centered) {
            for (int64_t c = 0; c < cols; c++) mean += xr[c];
            mean /= (double)cols;
        }
        for (int64_t c = 0; c < cols; c++) {
            const double d = xr[c] - mean;
            var += d * d;
        }
        var /= (double)cols;
        const float m = (float)mean;
        const float inv = (float)(1.0 / sqrt(var + eps));
        if (mean_out) mean_out[r] = m;
        if (inv_out) inv_out[r] = inv;
        const int64_t base = (r % row_mod) * row_stride;
        if (col_stride == 0) {                      /* one scale and bias for the row */
            const float s = scale[base], b = bias ? bias[base] : 0.0f;
            for (int64_t c = 0; c < cols; c++) yr[c] = (xr[c] - m) * inv * s + b;
        } else if (col_div == 1) {                  /* one per column */
            const float* s = scale + base;
            const float* b = bias ? bias + base : 0;
            for (int64_t c = 0; c < cols; c++) {
                const float v = (xr[c] - m) * inv * s[c * col_stride];
                yr[c] = b ? v + b[c * col_stride] : v;
            }
        } else {
            for (int64_t c = 0; c < cols; c++) {
                const int64_t at = base + (c / col_div) * col_stride;
                const float v = (xr[c] - m) * inv * scale[at];
                yr[c] = bias ? v + bias[at] : v;
            }
        }
    }
}

#endif
