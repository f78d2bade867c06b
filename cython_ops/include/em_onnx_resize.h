/* ONNX Resize / Upsample along one axis of a float32 tensor seen as [outer, in, inner]: output position j of the
 * axis is the weighted sum of `taps` input positions fixed at load (nearest, linear, cubic and their antialias
 * forms all reduce to such tables; edge positions clamped), or the extrapolation value where
 * tf_crop_and_resize maps it outside the input.  A resize over several axes is one such step per axis (the
 * interpolation is separable).  Sums in float, taps in order. */
#ifndef EM_ONNX_RESIZE_H
#define EM_ONNX_RESIZE_H
#include <stdint.h>
#include "em_params.h"

/* em_onnx_resize_axis, layout EM_ONNX_RESIZE: ptr: input, output, indices (int64 [out * taps]), weights (float
 * [out * taps]), extrapolated (uint8 [out], NULL: none); i: outer, in, inner, out, taps; f: extrapolation value */
enum { EM_ONNX_RESIZE_P_INPUT, EM_ONNX_RESIZE_P_OUTPUT, EM_ONNX_RESIZE_P_INDICES, EM_ONNX_RESIZE_P_WEIGHTS,
       EM_ONNX_RESIZE_P_EXTRAPOLATED, EM_ONNX_RESIZE_P_COUNT };
enum { EM_ONNX_RESIZE_I_OUTER, EM_ONNX_RESIZE_I_IN, EM_ONNX_RESIZE_I_INNER, EM_ONNX_RESIZE_I_OUT,
       EM_ONNX_RESIZE_I_TAPS, EM_ONNX_RESIZE_I_COUNT };
enum { EM_ONNX_RESIZE_F_EXTRAPOLATION, EM_ONNX_RESIZE_F_COUNT };

static void em_onnx_resize_axis(const em_params* p) {
    const float* x = (const float*)p->ptr[EM_ONNX_RESIZE_P_INPUT];
    float* y = (float*)p->ptr[EM_ONNX_RESIZE_P_OUTPUT];
    const int64_t* idx = (const int64_t*)p->ptr[EM_ONNX_RESIZE_P_INDICES];
    const float* w = (const float*)p->ptr[EM_ONNX_RESIZE_P_WEIGHTS];
    const uint8_t* extrapolated = (const uint8_t*)p->ptr[EM_ONNX_RESIZE_P_EXTRAPOLATED];
    const int64_t outer = p->i[EM_ONNX_RESIZE_I_OUTER], in = p->i[EM_ONNX_RESIZE_I_IN];
    const int64_t inner = p->i[EM_ONNX_RESIZE_I_INNER], out = p->i[EM_ONNX_RESIZE_I_OUT];
    const int64_t taps = p->i[EM_ONNX_RESIZE_I_TAPS];
    const float fill = p->f[EM_ONNX_RESIZE_F_EXTRAPOLATION];
    for (int64_t o = 0; o < outer; o++) {
        const float* xo = x + o * in * inner;
        float* yo = y + o * out * inner;
        for (int64_t j = 0; j < out; j++) {
            float* yj = yo + j * inner;
            if (extrapolated && extrapolated[j]) {
                for (int64_t i = 0; i < inner; i++) yj[i] = fill;
                continue;
            }
            const int64_t* ij = idx + j * taps;
            const float* wj = w + j * taps;
            const float* x0 = xo + ij[0] * inner;
            for (int64_t i = 0; i < inner; i++) yj[i] = wj[0] * x0[i];
            for (int64_t t = 1; t < taps; t++) {
                const float* xt = xo + ij[t] * inner;
                const float wt = wj[t];
                for (int64_t i = 0; i < inner; i++) yj[i] += wt * xt[i];
            }
        }
    }
}

#endif
