/* RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR on NHWC tensors, as LiteRT's reference kernels compute them.
 * Each output row's and column's source pixels and weights are computed once at load
 * (edgeml/runtime/ops/resize.py); the kernels only interpolate or copy.
 *
 * Bilinear, layout EM_RESIZE:
 * ptr: input, output, y_index (int32 [out_h][2]: y0, y1), x_index (int32 [out_w][2]: x0, x1),
 *      y_weight, x_weight (float [n]: the fraction input_y - y0 for the float kernels; int32 [n]: the 10-bit
 *      fraction input_y - 1024 * y0 for the integer kernel)
 * i:   batch, in_h, in_w, depth, out_h, out_w, element type (EM_DT_*), rounding mode */
#ifndef EM_RESIZE_H
#define EM_RESIZE_H
#include <string.h>
#include "em_dtype.h"
#include "em_params.h"
#include "em_requant.h"

enum { EM_RESIZE_P_INPUT, EM_RESIZE_P_OUTPUT, EM_RESIZE_P_Y_INDEX, EM_RESIZE_P_X_INDEX, EM_RESIZE_P_Y_WEIGHT,
       EM_RESIZE_P_X_WEIGHT, EM_RESIZE_P_COUNT };
enum { EM_RESIZE_I_BATCH, EM_RESIZE_I_IN_H, EM_RESIZE_I_IN_W, EM_RESIZE_I_DEPTH, EM_RESIZE_I_OUT_H, EM_RESIZE_I_OUT_W,
       EM_RESIZE_I_DTYPE, EM_RESIZE_I_MODE, EM_RESIZE_I_COUNT };
enum { EM_RESIZE_F_COUNT = 0 };

/* The four source pixels of output (b, y, x): T* p00 (y0, x0), p10 (y1, x0), p01 (y0, x1), p11 (y1, x1). */
#define EM_RESIZE_LOOP(T, ...)                                                                            \
    {                                                                                                      \
        const int64_t* d = p->i;                                                                           \
        const int64_t ih = d[EM_RESIZE_I_IN_H], iw = d[EM_RESIZE_I_IN_W], c = d[EM_RESIZE_I_DEPTH];        \
        const int64_t oh = d[EM_RESIZE_I_OUT_H], ow = d[EM_RESIZE_I_OUT_W];                                \
        const int32_t* yi = (const int32_t*)p->ptr[EM_RESIZE_P_Y_INDEX];                                   \
        const int32_t* xi = (const int32_t*)p->ptr[EM_RESIZE_P_X_INDEX];                                   \
        const T* in = (const T*)p->ptr[EM_RESIZE_P_INPUT];                                                 \
        T* out = (T*)p->ptr[EM_RESIZE_P_OUTPUT];                                                           \
        for (int64_t b = 0; b < d[EM_RESIZE_I_BATCH]; b++) {                                               \
            const T* image = in + b * ih * iw * c;                                                         \
            for (int64_t y = 0; y < oh; y++) {                                                             \
                const T* row0 = image + yi[2 * y] * iw * c;                                                \
                const T* row1 = image + yi[2 * y + 1] * iw * c;                                            \
                for (int64_t x = 0; x < ow; x++, out += c) {                                               \
                    const T* p00 = row0 + xi[2 * x] * c;                                                   \
                    const T* p01 = row0 + xi[2 * x + 1] * c;                                               \
                    const T* p10 = row1 + xi[2 * x] * c;                                                   \
                    const T* p11 = row1 + xi[2 * x + 1] * c;                                               \
                    __VA_ARGS__                                                                            \
                }                                                                                          \
            }                                                                                              \
        }                                                                                                  \
    }

/* float32: a * (1 - dy) * (1 - dx) + b * dy * (1 - dx) + c * (1 - dy) * dx + d * dy * dx, left to right */
static void em_resize_bilinear_f32(const em_params* p) {
    const float* wy = (const float*)p->ptr[EM_RESIZE_P_Y_WEIGHT];
    const float* wx = (const float*)p->ptr[EM_RESIZE_P_X_WEIGHT];
    EM_RESIZE_LOOP(float, {
        const float dy = wy[y], dx = wx[x];
        for (int64_t k = 0; k < c; k++)
            out[k] = p00[k] * (1.0f - dy) * (1.0f - dx) + p10[k] * dy * (1.0f - dx) +
                     p01[k] * (1.0f - dy) * dx + p11[k] * dy * dx;
    })
}

/* uint8: LiteRT's reference takes the float template for uint8 (the integer one serves int8 / int16 only):
 * the same float sum plus 0.5, truncated */
static void em_resize_bilinear_u8(const em_params* p) {
    const float* wy = (const float*)p->ptr[EM_RESIZE_P_Y_WEIGHT];
    const float* wx = (const float*)p->ptr[EM_RESIZE_P_X_WEIGHT];
    EM_RESIZE_LOOP(uint8_t, {
        const float dy = wy[y], dx = wx[x];
        for (int64_t k = 0; k < c; k++)
            out[k] = (uint8_t)((float)p00[k] * (1.0f - dy) * (1.0f - dx) + (float)p10[k] * dy * (1.0f - dx) +
                               (float)p01[k] * (1.0f - dy) * dx + (float)p11[k] * dy * dx + 0.5f);
    })
}

/* int8 / int16 / uint16 (ResizeBilinearInteger): weights in 1/1024, the 2^-20 sum rounded half away from zero
 * (double rounding builds) or half up (single rounding) */
#define EM_RESIZE_INTEGER_BODY                                                                             \
    {                                                                                                      \
        const int64_t fy = wy[y], fx = wx[x];                                                              \
        for (int64_t k = 0; k < c; k++) {                                                                  \
            const int64_t s = (int64_t)p00[k] * (1024 - fy) * (1024 - fx) + (int64_t)p10[k] * fy * (1024 - fx) \
                              + (int64_t)p01[k] * (1024 - fy) * fx + (int64_t)p11[k] * fy * fx;            \
            out[k] = single ? (T)((s + (1 << 19)) >> 20) : (T)((s + (s > 0 ? (1 << 19) : -(1 << 19))) / (1 << 20)); \
        }                                                                                                  \
    }

static void em_resize_bilinear_int(const em_params* p) {
    const int32_t* wy = (const int32_t*)p->ptr[EM_RESIZE_P_Y_WEIGHT];
    const int32_t* wx = (const int32_t*)p->ptr[EM_RESIZE_P_X_WEIGHT];
    const int single = p->i[EM_RESIZE_I_MODE] == EM_ROUND_SINGLE;
    switch (p->i[EM_RESIZE_I_DTYPE]) {
    case EM_DT_I8: { typedef int8_t T; EM_RESIZE_LOOP(T, EM_RESIZE_INTEGER_BODY) } break;
    case EM_DT_I16: { typedef int16_t T; EM_RESIZE_LOOP(T, EM_RESIZE_INTEGER_BODY) } break;
    case EM_DT_U16: { typedef uint16_t T; EM_RESIZE_LOOP(T, EM_RESIZE_INTEGER_BODY) } break;
    }
}

/* Nearest neighbour, layout EM_NEAREST: every output pixel copies the input pixel of its row's and column's
 * source.  ptr: input, output, y_index (int32 [out_h]), x_index (int32 [out_w]);
 * i: batch, in_h, in_w, pixel bytes (depth * element size), out_h, out_w */
enum { EM_NEAREST_P_INPUT, EM_NEAREST_P_OUTPUT, EM_NEAREST_P_Y_INDEX, EM_NEAREST_P_X_INDEX, EM_NEAREST_P_COUNT };
enum { EM_NEAREST_I_BATCH, EM_NEAREST_I_IN_H, EM_NEAREST_I_IN_W, EM_NEAREST_I_PIXEL_BYTES, EM_NEAREST_I_OUT_H,
       EM_NEAREST_I_OUT_W, EM_NEAREST_I_COUNT };
enum { EM_NEAREST_F_COUNT = 0 };

static void em_resize_nearest(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t ih = d[EM_NEAREST_I_IN_H], iw = d[EM_NEAREST_I_IN_W], px = d[EM_NEAREST_I_PIXEL_BYTES];
    const int32_t* yi = (const int32_t*)p->ptr[EM_NEAREST_P_Y_INDEX];
    const int32_t* xi = (const int32_t*)p->ptr[EM_NEAREST_P_X_INDEX];
    const uint8_t* in = (const uint8_t*)p->ptr[EM_NEAREST_P_INPUT];
    uint8_t* out = (uint8_t*)p->ptr[EM_NEAREST_P_OUTPUT];
    for (int64_t b = 0; b < d[EM_NEAREST_I_BATCH]; b++) {
        const uint8_t* image = in + b * ih * iw * px;
        for (int64_t y = 0; y < d[EM_NEAREST_I_OUT_H]; y++) {
            const uint8_t* row = image + yi[y] * iw * px;
            for (int64_t x = 0; x < d[EM_NEAREST_I_OUT_W]; x++, out += px) memcpy(out, row + xi[x] * px, (size_t)px);
        }
    }
}
#endif
