/* Data movement: copy (RESHAPE, SQUEEZE, EXPAND_DIMS), strided gather (TRANSPOSE, STRIDED_SLICE, SLICE),
 * PAD, CONCATENATION (also PACK) and ONNX ReverseSequence.  Element size is a parameter: one kernel serves every
 * dtype. */
#ifndef EM_SHAPE_H
#define EM_SHAPE_H
#include <string.h>
#include "em_params.h"
#include "em_lut.h"

/* ptr: input, output; i: bytes */
enum { EM_COPY_P_INPUT, EM_COPY_P_OUTPUT, EM_COPY_P_COUNT };
enum { EM_COPY_I_BYTES, EM_COPY_I_COUNT };
enum { EM_COPY_F_COUNT = 0 };

static void em_copy(const em_params* p) {
    if (p->ptr[EM_COPY_P_INPUT] != p->ptr[EM_COPY_P_OUTPUT])
        memmove(p->ptr[EM_COPY_P_OUTPUT], p->ptr[EM_COPY_P_INPUT], (size_t)p->i[EM_COPY_I_BYTES]);
}

/* A row of n bytes; rows of a few bytes (channel slices of NHWC pixels) by two overlapping fixed-size copies, which
 * compile to plain loads and stores: a memcpy call per row costs more than the row (and a byte loop becomes one). */
static inline void em_copy_row(uint8_t* dst, const uint8_t* src, int64_t n) {
    if (n > 32) { memcpy(dst, src, (size_t)n); return; }
    if (n > 16) { memcpy(dst, src, 16); memcpy(dst + n - 16, src + n - 16, 16); return; }
    if (n > 8) { memcpy(dst, src, 8); memcpy(dst + n - 8, src + n - 8, 8); return; }
    if (n > 4) { memcpy(dst, src, 4); memcpy(dst + n - 4, src + n - 4, 4); return; }
    if (n > 2) { memcpy(dst, src, 2); memcpy(dst + n - 2, src + n - 2, 2); return; }
    if (n > 0) { dst[0] = src[0]; dst[n - 1] = src[n - 1]; }
}

/* y[o] = x[start + sum idx_k * stride_k] over the 6-D output index, in output order.
 * ptr: input, output; i: itemsize, output dims (6), input strides (6, elements, may be negative), start */
enum { EM_GATHER_P_INPUT, EM_GATHER_P_OUTPUT, EM_GATHER_P_COUNT };
enum { EM_GATHER_I_ITEMSIZE, EM_GATHER_I_DIMS, EM_GATHER_I_DIMS_LAST = EM_GATHER_I_DIMS + 5, EM_GATHER_I_STRIDES,
       EM_GATHER_I_STRIDES_LAST = EM_GATHER_I_STRIDES + 5, EM_GATHER_I_START, EM_GATHER_I_COUNT };
enum { EM_GATHER_F_COUNT = 0 };

#define EM_GATHER_LOOP(T)                                                                                         \
    {                                                                                                             \
        const T* x = (const T*)p->ptr[EM_GATHER_P_INPUT];                                                         \
        T* y = (T*)p->ptr[EM_GATHER_P_OUTPUT];                                                                    \
        int64_t o = 0;                                                                                            \
        for (int64_t i0 = 0; i0 < dims[0]; i0++)                                                                  \
        for (int64_t i1 = 0; i1 < dims[1]; i1++)                                                                  \
        for (int64_t i2 = 0; i2 < dims[2]; i2++)                                                                  \
        for (int64_t i3 = 0; i3 < dims[3]; i3++)                                                                  \
        for (int64_t i4 = 0; i4 < dims[4]; i4++) {                                                                \
            int64_t base = d[EM_GATHER_I_START] + i0 * st[0] + i1 * st[1] + i2 * st[2] + i3 * st[3] + i4 * st[4]; \
            for (int64_t i5 = 0; i5 < dims[5]; i5++) y[o++] = x[base + i5 * st[5]];                               \
        }                                                                                                         \
    }

/* The innermost two output dims a transposed pair (input stride 1 on dim 4, as NCHW -> NHWC): blocks of 64 along
 * dim 4 read contiguously from each of the dims[5] input rows, written interleaved; the same y as the loop above. */
#define EM_GATHER_T2D(T)                                                                                          \
    {                                                                                                             \
        const T* x = (const T*)p->ptr[EM_GATHER_P_INPUT];                                                         \
        T* y = (T*)p->ptr[EM_GATHER_P_OUTPUT];                                                                    \
        const int64_t inner = dims[5], plane = dims[4] * dims[5];                                                 \
        int64_t o = 0;                                                                                            \
        for (int64_t i0 = 0; i0 < dims[0]; i0++)                                                                  \
        for (int64_t i1 = 0; i1 < dims[1]; i1++)                                                                  \
        for (int64_t i2 = 0; i2 < dims[2]; i2++)                                                                  \
        for (int64_t i3 = 0; i3 < dims[3]; i3++, o += plane) {                                                    \
            const int64_t base = d[EM_GATHER_I_START] + i0 * st[0] + i1 * st[1] + i2 * st[2] + i3 * st[3];        \
            for (int64_t a0 = 0; a0 < dims[4]; a0 += 64) {                                                        \
                const int64_t an = dims[4] - a0 < 64 ? dims[4] - a0 : 64;                                         \
                const T* src = x + base + a0;                                                                     \
                T* dst = y + o + a0 * inner;                                                                      \
                if (inner == 3) {          /* NCHW -> NHWC of an RGB image: three rows interleaved */             \
                    const T *r0 = src, *r1 = src + st[5], *r2 = src + 2 * st[5];                                  \
                    for (int64_t a = 0; a < an; a++, dst += 3) {                                                  \
                        dst[0] = r0[a]; dst[1] = r1[a]; dst[2] = r2[a];                                           \
                    }                                                                                             \
                } else {                                                                                          \
                    for (int64_t b = 0; b < inner; b++)                                                           \
                        for (int64_t a = 0; a < an; a++) dst[a * inner + b] = src[b * st[5] + a];                 \
                }                                                                                                 \
            }                                                                                                     \
        }                                                                                                         \
    }

static void em_gather_strided(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t* dims = d + EM_GATHER_I_DIMS;
    const int64_t* st = d + EM_GATHER_I_STRIDES;
    if (st[4] == 1 && st[5] != 1 && dims[4] >= 16 && dims[5] <= 64) {
        switch (d[EM_GATHER_I_ITEMSIZE]) {
        case 1: EM_GATHER_T2D(uint8_t) return;
        case 2: EM_GATHER_T2D(uint16_t) return;
        case 4: EM_GATHER_T2D(uint32_t) return;
        case 8: EM_GATHER_T2D(uint64_t) return;
        }
    }
    if (st[5] == 1) {      /* contiguous innermost runs (STRIDED_SLICE, SPLIT, most TRANSPOSEs): one copy each */
        const int64_t isz = d[EM_GATHER_I_ITEMSIZE];
        const uint8_t* x = (const uint8_t*)p->ptr[EM_GATHER_P_INPUT];
        uint8_t* y = (uint8_t*)p->ptr[EM_GATHER_P_OUTPUT];
        const size_t row = (size_t)(dims[5] * isz);
        int64_t o = 0;
        for (int64_t i0 = 0; i0 < dims[0]; i0++)
        for (int64_t i1 = 0; i1 < dims[1]; i1++)
        for (int64_t i2 = 0; i2 < dims[2]; i2++)
        for (int64_t i3 = 0; i3 < dims[3]; i3++)
        for (int64_t i4 = 0; i4 < dims[4]; i4++, o += (int64_t)row) {
            const int64_t base = d[EM_GATHER_I_START] + i0 * st[0] + i1 * st[1] + i2 * st[2] + i3 * st[3] + i4 * st[4];
            em_copy_row(y + o, x + base * isz, (int64_t)row);
        }
        return;
    }
    switch (d[EM_GATHER_I_ITEMSIZE]) {
    case 1: EM_GATHER_LOOP(uint8_t) break;
    case 2: EM_GATHER_LOOP(uint16_t) break;
    case 4: EM_GATHER_LOOP(uint32_t) break;
    case 8: EM_GATHER_LOOP(uint64_t) break;
    }
}

/* PAD: fill the output with the pad value, then copy each contiguous input row into place.
 * ptr: input, output, pad value (one element)
 * i:   itemsize, input dims (6-D), output strides (6, elements; the last one is not read), offset of the input
 *      origin in the output, output elements */
enum { EM_PAD_P_INPUT, EM_PAD_P_OUTPUT, EM_PAD_P_VALUE, EM_PAD_P_COUNT };
enum { EM_PAD_I_ITEMSIZE, EM_PAD_I_DIMS, EM_PAD_I_DIMS_LAST = EM_PAD_I_DIMS + 5, EM_PAD_I_OUT_STRIDES,
       EM_PAD_I_OUT_STRIDES_LAST = EM_PAD_I_OUT_STRIDES + 5, EM_PAD_I_ORIGIN, EM_PAD_I_OUT_COUNT, EM_PAD_I_COUNT };
enum { EM_PAD_F_COUNT = 0 };

static void em_pad(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t* dims = d + EM_PAD_I_DIMS;
    const int64_t* ost = d + EM_PAD_I_OUT_STRIDES;
    const int64_t isz = d[EM_PAD_I_ITEMSIZE];
    uint8_t* y = (uint8_t*)p->ptr[EM_PAD_P_OUTPUT];
    const uint8_t* x = (const uint8_t*)p->ptr[EM_PAD_P_INPUT];
    const uint8_t* pv = (const uint8_t*)p->ptr[EM_PAD_P_VALUE];
    if (isz == 1) memset(y, pv[0], (size_t)d[EM_PAD_I_OUT_COUNT]);
    else for (int64_t k = 0; k < d[EM_PAD_I_OUT_COUNT]; k++) memcpy(y + k * isz, pv, (size_t)isz);
    const size_t row = (size_t)(dims[5] * isz);
    int64_t src = 0;
    for (int64_t i0 = 0; i0 < dims[0]; i0++)
    for (int64_t i1 = 0; i1 < dims[1]; i1++)
    for (int64_t i2 = 0; i2 < dims[2]; i2++)
    for (int64_t i3 = 0; i3 < dims[3]; i3++)
    for (int64_t i4 = 0; i4 < dims[4]; i4++, src += (int64_t)row) {
        int64_t dst = d[EM_PAD_I_ORIGIN] + i0 * ost[0] + i1 * ost[1] + i2 * ost[2] + i3 * ost[3] + i4 * ost[4];
        memcpy(y + dst * isz, x + src, row);
    }
}

/* CONCATENATION: ptr: output, inputs (EM_CONCAT_MAX_INPUTS slots, the first n used); i: n (inputs, at most
 * EM_CONCAT_MAX_INPUTS), outer count, output row bytes, row bytes of each input (EM_CONCAT_MAX_INPUTS slots) */
#define EM_CONCAT_MAX_INPUTS 14
enum { EM_CONCAT_P_OUTPUT, EM_CONCAT_P_INPUTS, EM_CONCAT_P_INPUTS_LAST = EM_CONCAT_P_INPUTS + EM_CONCAT_MAX_INPUTS - 1,
       EM_CONCAT_P_COUNT };
enum { EM_CONCAT_I_N, EM_CONCAT_I_OUTER, EM_CONCAT_I_OUT_ROW_BYTES, EM_CONCAT_I_ROW_BYTES,
       EM_CONCAT_I_ROW_BYTES_LAST = EM_CONCAT_I_ROW_BYTES + EM_CONCAT_MAX_INPUTS - 1, EM_CONCAT_I_COUNT };
enum { EM_CONCAT_F_COUNT = 0 };

static void em_concat(const em_params* p) {
    const int64_t* d = p->i;
    uint8_t* y = (uint8_t*)p->ptr[EM_CONCAT_P_OUTPUT];
    const int64_t n = d[EM_CONCAT_I_N], outer = d[EM_CONCAT_I_OUTER], out_row = d[EM_CONCAT_I_OUT_ROW_BYTES];
    const uint8_t* src[EM_CONCAT_MAX_INPUTS];
    int64_t rb[EM_CONCAT_MAX_INPUTS];
    for (int64_t k = 0; k < n; k++) {      /* in locals: a byte store may alias p, which would reload them */
        src[k] = (const uint8_t*)p->ptr[EM_CONCAT_P_INPUTS + k];
        rb[k] = d[EM_CONCAT_I_ROW_BYTES + k];
    }
    if (out_row <= 64) {    /* short rows: input by input, each one's rows by a copy of one fixed size */
        int64_t column = 0;
        for (int64_t k = 0; k < n; k++) {
            const uint8_t* x = src[k];
            uint8_t* dst = y + column;
            const int64_t r = rb[k];
            switch (r) {
            case 1: for (int64_t o = 0; o < outer; o++) dst[o * out_row] = x[o]; break;
            case 2: for (int64_t o = 0; o < outer; o++) memcpy(dst + o * out_row, x + 2 * o, 2); break;
            case 3: for (int64_t o = 0; o < outer; o++) {
                        memcpy(dst + o * out_row, x + 3 * o, 2); dst[o * out_row + 2] = x[3 * o + 2];
                    } break;
            case 4: for (int64_t o = 0; o < outer; o++) memcpy(dst + o * out_row, x + 4 * o, 4); break;
            case 8: for (int64_t o = 0; o < outer; o++) memcpy(dst + o * out_row, x + 8 * o, 8); break;
            case 16: for (int64_t o = 0; o < outer; o++) memcpy(dst + o * out_row, x + 16 * o, 16); break;
            default: for (int64_t o = 0; o < outer; o++) em_copy_row(dst + o * out_row, x + r * o, r); break;
            }
            column += r;
        }
        return;
    }
    for (int64_t o = 0; o < outer; o++) {
        uint8_t* dst = y + o * out_row;
        for (int64_t k = 0; k < n; k++) {
            em_copy_row(dst, src[k] + o * rb[k], rb[k]);
            dst += rb[k];
        }
    }
}

/* CONCATENATION of uint8 inputs (held as int8) whose scale or zero point differ from the output's: LiteRT's
 * ConcatenationWithScaling, as one 256-entry table per input (stored byte -> output byte, built at load).  The
 * concat layout, then tables (256 bytes per input of the step) and lut_mask (bit k: input k goes through its
 * table; the others are copied, as LiteRT copies inputs quantized like the output). */
enum { EM_CONCAT_LUT_P_TABLES = EM_CONCAT_P_COUNT, EM_CONCAT_LUT_P_COUNT };
enum { EM_CONCAT_LUT_I_LUT_MASK = EM_CONCAT_I_COUNT, EM_CONCAT_LUT_I_COUNT };
enum { EM_CONCAT_LUT_F_COUNT = 0 };

static void em_concat_lut(const em_params* p) {
    const int64_t* d = p->i;
    const uint8_t* tables = (const uint8_t*)p->ptr[EM_CONCAT_LUT_P_TABLES];
    uint8_t* y = (uint8_t*)p->ptr[EM_CONCAT_P_OUTPUT];
    for (int64_t o = 0; o < d[EM_CONCAT_I_OUTER]; o++) {
        uint8_t* dst = y + o * d[EM_CONCAT_I_OUT_ROW_BYTES];
        for (int64_t k = 0; k < d[EM_CONCAT_I_N]; k++) {
            const int64_t rb = d[EM_CONCAT_I_ROW_BYTES + k];
            const uint8_t* src = (const uint8_t*)p->ptr[EM_CONCAT_P_INPUTS + k] + o * rb;
            if ((d[EM_CONCAT_LUT_I_LUT_MASK] >> k) & 1) {
                em_lut_u8(src, dst, rb, tables + 256 * k);
            } else {
                memcpy(dst, src, (size_t)rb);
            }
            dst += rb;
        }
    }
}

/* ONNX ReverseSequence on [d0, d1, inner] with batch and time on axes 0 / 1: y[b, t] = x[b, n - 1 - t] for
 * t < n = lens[b] (clamped to [0, steps]), else x[b, t].  ptr: input, output, lens (int64, one per batch row);
 * i: batch, steps, batch stride bytes, time stride bytes, inner bytes */
enum { EM_REVSEQ_P_INPUT, EM_REVSEQ_P_OUTPUT, EM_REVSEQ_P_LENS, EM_REVSEQ_P_COUNT };
enum { EM_REVSEQ_I_BATCH, EM_REVSEQ_I_STEPS, EM_REVSEQ_I_BATCH_STRIDE, EM_REVSEQ_I_TIME_STRIDE, EM_REVSEQ_I_INNER_BYTES,
       EM_REVSEQ_I_COUNT };
enum { EM_REVSEQ_F_COUNT = 0 };

static void em_reverse_sequence(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t* lens = (const int64_t*)p->ptr[EM_REVSEQ_P_LENS];
    const uint8_t* x = (const uint8_t*)p->ptr[EM_REVSEQ_P_INPUT];
    uint8_t* y = (uint8_t*)p->ptr[EM_REVSEQ_P_OUTPUT];
    for (int64_t b = 0; b < d[EM_REVSEQ_I_BATCH]; b++) {
        const int64_t n = lens[b] < 0 ? 0 : lens[b] > d[EM_REVSEQ_I_STEPS] ? d[EM_REVSEQ_I_STEPS] : lens[b];
        for (int64_t t = 0; t < d[EM_REVSEQ_I_STEPS]; t++) {
            const int64_t src = t < n ? n - 1 - t : t;
            memcpy(y + b * d[EM_REVSEQ_I_BATCH_STRIDE] + t * d[EM_REVSEQ_I_TIME_STRIDE],
                   x + b * d[EM_REVSEQ_I_BATCH_STRIDE] + src * d[EM_REVSEQ_I_TIME_STRIDE],
                   (size_t)d[EM_REVSEQ_I_INNER_BYTES]);
        }
    }
}
#endif
