/* Data movement: copy (RESHAPE, SQUEEZE, EXPAND_DIMS), strided gather (TRANSPOSE, STRIDED_SLICE, SLICE),
 * PAD, CONCATENATION (also PACK) and ONNX ReverseSequence.  Element size is a parameter: one kernel serves every
 * dtype. */
#ifndef EM_SHAPE_H
#define EM_SHAPE_H
#include <string.h>
#include "em_params.h"

/* i: 0 bytes; ptr: 0 in, 1 out */
static void em_copy(const em_params* p) {
    if (p->ptr[0] != p->ptr[1]) memmove(p->ptr[1], p->ptr[0], (size_t)p->i[0]);
}

#define EM_GATHER_LOOP(T)                                                                        \
    {                                                                                            \
        const T* x = (const T*)p->ptr[0];                                                        \
        T* y = (T*)p->ptr[1];                                                                    \
        int64_t o = 0;                                                                           \
        for (int64_t i0 = 0; i0 < d[1]; i0++)                                                    \
        for (int64_t i1 = 0; i1 < d[2]; i1++)                                                    \
        for (int64_t i2 = 0; i2 < d[3]; i2++)                                                    \
        for (int64_t i3 = 0; i3 < d[4]; i3++)                                                    \
        for (int64_t i4 = 0; i4 < d[5]; i4++) {                                                  \
            int64_t base = d[13] + i0 * d[7] + i1 * d[8] + i2 * d[9] + i3 * d[10] + i4 * d[11];   \
            for (int64_t i5 = 0; i5 < d[6]; i5++) y[o++] = x[base + i5 * d[12]];                 \
        }                                                                                        \
    }

/* y[o] = x[start + sum idx_k * stride_k] over the 6-D output index, in output order.
 * i: 0 itemsize, 1-6 output dims, 7-12 input strides (elements, may be negative), 13 start; ptr 0 in, 1 out */
static void em_gather_strided(const em_params* p) {
    const int64_t* d = p->i;
    switch (d[0]) {
    case 1: EM_GATHER_LOOP(uint8_t) break;
    case 2: EM_GATHER_LOOP(uint16_t) break;
    case 4: EM_GATHER_LOOP(uint32_t) break;
    case 8: EM_GATHER_LOOP(uint64_t) break;
    }
}

/* PAD: fill the output with the pad value, then copy each contiguous input row into place.
 * i: 0 itemsize, 1-6 input dims (6-D), 7-12 output strides (elements), 13 offset of input origin in output,
 *    14 output elements; ptr: 0 in, 1 out, 2 pad value (one element) */
static void em_pad(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t isz = d[0];
    uint8_t* y = (uint8_t*)p->ptr[1];
    const uint8_t* x = (const uint8_t*)p->ptr[0];
    const uint8_t* pv = (const uint8_t*)p->ptr[2];
    if (isz == 1) memset(y, pv[0], (size_t)d[14]);
    else for (int64_t k = 0; k < d[14]; k++) memcpy(y + k * isz, pv, (size_t)isz);
    const size_t row = (size_t)(d[6] * isz);
    int64_t src = 0;
    for (int64_t i0 = 0; i0 < d[1]; i0++)
    for (int64_t i1 = 0; i1 < d[2]; i1++)
    for (int64_t i2 = 0; i2 < d[3]; i2++)
    for (int64_t i3 = 0; i3 < d[4]; i3++)
    for (int64_t i4 = 0; i4 < d[5]; i4++, src += (int64_t)row) {
        int64_t dst = d[13] + i0 * d[7] + i1 * d[8] + i2 * d[9] + i3 * d[10] + i4 * d[11];
        memcpy(y + dst * isz, x + src, row);
    }
}

/* CONCATENATION: i: 0 inputs (<= 14), 1 outer count, 2 output row bytes, 3.. row bytes of each input;
 * ptr: 0 out, 1.. inputs */
static void em_concat(const em_params* p) {
    const int64_t* d = p->i;
    uint8_t* y = (uint8_t*)p->ptr[0];
    for (int64_t o = 0; o < d[1]; o++) {
        uint8_t* dst = y + o * d[2];
        for (int64_t k = 0; k < d[0]; k++) {
            const int64_t rb = d[3 + k];
            memcpy(dst, (const uint8_t*)p->ptr[1 + k] + o * rb, (size_t)rb);
            dst += rb;
        }
    }
}

/* ONNX ReverseSequence on [d0, d1, inner] with batch and time on axes 0 / 1: y[b, t] = x[b, n - 1 - t] for
 * t < n = lens[b] (clamped to [0, steps]), else x[b, t].  i: 0 batch, 1 steps, 2 batch stride bytes,
 * 3 time stride bytes, 4 inner bytes; ptr: 0 in, 1 out, 2 lens (int64, one per batch row) */
static void em_reverse_sequence(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t* lens = (const int64_t*)p->ptr[2];
    const uint8_t* x = (const uint8_t*)p->ptr[0];
    uint8_t* y = (uint8_t*)p->ptr[1];
    for (int64_t b = 0; b < d[0]; b++) {
        const int64_t n = lens[b] < 0 ? 0 : lens[b] > d[1] ? d[1] : lens[b];
        for (int64_t t = 0; t < d[1]; t++) {
            const int64_t src = t < n ? n - 1 - t : t;
            memcpy(y + b * d[2] + t * d[3], x + b * d[2] + src * d[3], (size_t)d[4]);
        }
    }
}
#endif
