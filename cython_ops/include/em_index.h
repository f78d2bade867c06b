/* Index and shape ops: GATHER, GATHER_ND (indices that may arrive at run time: each one is range-checked, a bad
 * one is reported in a status word and its slice written as zeros, never read out of bounds), TILE, FILL,
 * CAST and SELECT / SELECT_V2 with broadcasting.  SLICE and BROADCAST_TO are strided gathers (em_shape.h). */
#ifndef EM_INDEX_H
#define EM_INDEX_H
#include <math.h>
#include <string.h>
#include "em_dtype.h"
#include "em_params.h"

/* The status word of a run-time index check: [0] nonzero once an index is out of range, [1] that index. */
static inline void em_index_fault(int64_t* status, int64_t index) {
    if (!status[0]) {
        status[0] = 1;
        status[1] = index;
    }
}

/* GATHER, layout EM_GATHER_INDICES: input viewed as [batch][outer][axis][block bytes], indices as
 * [batch][count]; output [batch][outer][count][block bytes].
 * ptr: input, indices, output, status (int64 [2]); i: batch, outer, axis size, count, block bytes, index type */
enum { EM_GATHER_INDICES_P_INPUT, EM_GATHER_INDICES_P_INDICES, EM_GATHER_INDICES_P_OUTPUT,
       EM_GATHER_INDICES_P_STATUS, EM_GATHER_INDICES_P_COUNT };
enum { EM_GATHER_INDICES_I_BATCH, EM_GATHER_INDICES_I_OUTER, EM_GATHER_INDICES_I_AXIS_SIZE,
       EM_GATHER_INDICES_I_INDICES, EM_GATHER_INDICES_I_BLOCK_BYTES, EM_GATHER_INDICES_I_INDEX_TYPE,
       EM_GATHER_INDICES_I_COUNT };
enum { EM_GATHER_INDICES_F_COUNT = 0 };

static void em_gather_indices(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t batch = d[EM_GATHER_INDICES_I_BATCH], outer = d[EM_GATHER_INDICES_I_OUTER];
    const int64_t axis = d[EM_GATHER_INDICES_I_AXIS_SIZE], n = d[EM_GATHER_INDICES_I_INDICES];
    const int64_t block = d[EM_GATHER_INDICES_I_BLOCK_BYTES];
    const int code = (int)d[EM_GATHER_INDICES_I_INDEX_TYPE];
    const uint8_t* x = (const uint8_t*)p->ptr[EM_GATHER_INDICES_P_INPUT];
    const void* idx = p->ptr[EM_GATHER_INDICES_P_INDICES];
    uint8_t* y = (uint8_t*)p->ptr[EM_GATHER_INDICES_P_OUTPUT];
    int64_t* status = (int64_t*)p->ptr[EM_GATHER_INDICES_P_STATUS];
    status[0] = 0;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t o = 0; o < outer; o++) {
            const uint8_t* src = x + (b * outer + o) * axis * block;
            for (int64_t k = 0; k < n; k++, y += block) {
                const int64_t i = em_read_index(idx, b * n + k, code);
                if (i < 0 || i >= axis) {
                    em_index_fault(status, i);
                    memset(y, 0, (size_t)block);
                } else {
                    memcpy(y, src + i * block, (size_t)block);
                }
            }
        }
}

/* GATHER_ND, layout EM_GATHER_ND: `slices` index tuples of `depth` indices into the leading dims of params, each
 * selecting `slice bytes` contiguous bytes.  ptr: params, indices, output, status (int64 [2]);
 * i: slices, depth, slice bytes, index type, dims (6, the first `depth` used), strides (6, bytes) */
enum { EM_GATHER_ND_P_PARAMS, EM_GATHER_ND_P_INDICES, EM_GATHER_ND_P_OUTPUT, EM_GATHER_ND_P_STATUS,
       EM_GATHER_ND_P_COUNT };
enum { EM_GATHER_ND_I_SLICES, EM_GATHER_ND_I_DEPTH, EM_GATHER_ND_I_SLICE_BYTES, EM_GATHER_ND_I_INDEX_TYPE,
       EM_GATHER_ND_I_DIMS, EM_GATHER_ND_I_DIMS_LAST = EM_GATHER_ND_I_DIMS + 5, EM_GATHER_ND_I_STRIDES,
       EM_GATHER_ND_I_STRIDES_LAST = EM_GATHER_ND_I_STRIDES + 5, EM_GATHER_ND_I_COUNT };
enum { EM_GATHER_ND_F_COUNT = 0 };

static void em_gather_nd(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t depth = d[EM_GATHER_ND_I_DEPTH], bytes = d[EM_GATHER_ND_I_SLICE_BYTES];
    const int64_t* dims = d + EM_GATHER_ND_I_DIMS;
    const int64_t* strides = d + EM_GATHER_ND_I_STRIDES;
    const int code = (int)d[EM_GATHER_ND_I_INDEX_TYPE];
    const uint8_t* x = (const uint8_t*)p->ptr[EM_GATHER_ND_P_PARAMS];
    const void* idx = p->ptr[EM_GATHER_ND_P_INDICES];
    uint8_t* y = (uint8_t*)p->ptr[EM_GATHER_ND_P_OUTPUT];
    int64_t* status = (int64_t*)p->ptr[EM_GATHER_ND_P_STATUS];
    status[0] = 0;
    for (int64_t s = 0; s < d[EM_GATHER_ND_I_SLICES]; s++, y += bytes) {
        int64_t offset = 0;
        int ok = 1;
        for (int64_t j = 0; j < depth; j++) {
            const int64_t i = em_read_index(idx, s * depth + j, code);
            if (i < 0 || i >= dims[j]) {
                em_index_fault(status, i);
                ok = 0;
                break;
            }
            offset += i * strides[j];
        }
        if (ok) memcpy(y, x + offset, (size_t)bytes);
        else memset(y, 0, (size_t)bytes);
    }
}

/* TILE, layout EM_TILE: output coordinate k of dim j reads input coordinate k mod in_dims[j].
 * ptr: input, output; i: element size, output dims (6), input dims (6), input strides (6, elements) */
enum { EM_TILE_P_INPUT, EM_TILE_P_OUTPUT, EM_TILE_P_COUNT };
enum { EM_TILE_I_ITEMSIZE, EM_TILE_I_OUT_DIMS, EM_TILE_I_OUT_DIMS_LAST = EM_TILE_I_OUT_DIMS + 5, EM_TILE_I_IN_DIMS,
       EM_TILE_I_IN_DIMS_LAST = EM_TILE_I_IN_DIMS + 5, EM_TILE_I_IN_STRIDES,
       EM_TILE_I_IN_STRIDES_LAST = EM_TILE_I_IN_STRIDES + 5, EM_TILE_I_COUNT };
enum { EM_TILE_F_COUNT = 0 };

static void em_tile(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t* od = d + EM_TILE_I_OUT_DIMS;
    const int64_t* id = d + EM_TILE_I_IN_DIMS;
    const int64_t* st = d + EM_TILE_I_IN_STRIDES;
    const int64_t isz = d[EM_TILE_I_ITEMSIZE];
    const uint8_t* x = (const uint8_t*)p->ptr[EM_TILE_P_INPUT];
    uint8_t* y = (uint8_t*)p->ptr[EM_TILE_P_OUTPUT];
    if (id[5] == 0) return;                     /* empty input: the output is empty too */
    for (int64_t i0 = 0; i0 < od[0]; i0++)
    for (int64_t i1 = 0; i1 < od[1]; i1++)
    for (int64_t i2 = 0; i2 < od[2]; i2++)
    for (int64_t i3 = 0; i3 < od[3]; i3++)
    for (int64_t i4 = 0; i4 < od[4]; i4++) {
        const uint8_t* row = x + isz * ((i0 % id[0]) * st[0] + (i1 % id[1]) * st[1] + (i2 % id[2]) * st[2] +
                                        (i3 % id[3]) * st[3] + (i4 % id[4]) * st[4]);
        const size_t run = (size_t)(id[5] * isz);
        for (int64_t i5 = 0; i5 < od[5]; i5 += id[5], y += run) memcpy(y, row, run);
    }
}

/* FILL, layout EM_FILL: count copies of one element.  ptr: value, output; i: count, element size */
enum { EM_FILL_P_VALUE, EM_FILL_P_OUTPUT, EM_FILL_P_COUNT };
enum { EM_FILL_I_ELEMENTS, EM_FILL_I_ITEMSIZE, EM_FILL_I_COUNT };
enum { EM_FILL_F_COUNT = 0 };

static void em_fill(const em_params* p) {
    const int64_t isz = p->i[EM_FILL_I_ITEMSIZE];
    uint8_t* y = (uint8_t*)p->ptr[EM_FILL_P_OUTPUT];
    for (int64_t k = 0; k < p->i[EM_FILL_I_ELEMENTS]; k++) memcpy(y + k * isz, p->ptr[EM_FILL_P_VALUE], (size_t)isz);
}

/* CAST, layout EM_CAST: float to integer saturates (NaN gives the type's maximum), as LiteRT's CAST; to bool is
 * `!= 0`; integer to integer wraps.  ptr: input, output; i: elements, input type, output type (EM_DT_*) */
enum { EM_CAST_P_INPUT, EM_CAST_P_OUTPUT, EM_CAST_P_COUNT };
enum { EM_CAST_I_ELEMENTS, EM_CAST_I_FROM, EM_CAST_I_TO, EM_CAST_I_COUNT };
enum { EM_CAST_F_COUNT = 0 };

/* float -> integer of [lo, hi]; `top` is the largest float not above hi (hi itself may round up in float) */
#define EM_SATURATE(v, TO, lo, hi, top) \
    (isnan(v) ? (TO)(hi) : (v) < (float)(lo) ? (TO)(lo) : (v) > (top) ? (TO)(hi) : (TO)(v))

static inline int64_t em_cast_f32_to_int(float v, int to) {
    switch (to) {
    case EM_DT_I8: return EM_SATURATE(v, int8_t, INT8_MIN, INT8_MAX, 127.0f);
    case EM_DT_U8: return EM_SATURATE(v, uint8_t, 0, UINT8_MAX, 255.0f);
    case EM_DT_I16: return EM_SATURATE(v, int16_t, INT16_MIN, INT16_MAX, 32767.0f);
    case EM_DT_U16: return EM_SATURATE(v, uint16_t, 0, UINT16_MAX, 65535.0f);
    case EM_DT_I32: return EM_SATURATE(v, int32_t, INT32_MIN, INT32_MAX, 2147483520.0f);
    default: return EM_SATURATE(v, int64_t, INT64_MIN, INT64_MAX, 9223371487098961920.0f);
    }
}

static void em_cast(const em_params* p) {
    const int64_t n = p->i[EM_CAST_I_ELEMENTS];
    const int from = (int)p->i[EM_CAST_I_FROM], to = (int)p->i[EM_CAST_I_TO];
    const void* x = p->ptr[EM_CAST_P_INPUT];
    void* y = p->ptr[EM_CAST_P_OUTPUT];
    if (from == EM_DT_F32) {
        const float* xf = (const float*)x;
        if (to == EM_DT_F32) { memmove(y, x, (size_t)n * sizeof(float)); return; }
        if (to == EM_DT_BOOL) { for (int64_t k = 0; k < n; k++) ((uint8_t*)y)[k] = xf[k] != 0.0f; return; }
        EM_DT_SWITCH(to, for (int64_t k = 0; k < n; k++) ((T*)y)[k] = (T)em_cast_f32_to_int(xf[k], to);)
        return;
    }
    /* from an integer or bool: read as int64, then convert */
    for (int64_t k = 0; k < n; k++) {
        int64_t v = 0;
        EM_DT_SWITCH(from, v = (int64_t)((const T*)x)[k];)
        if (from == EM_DT_BOOL) v = v != 0;
        switch (to) {
        case EM_DT_F32: ((float*)y)[k] = (float)v; break;
        case EM_DT_BOOL: ((uint8_t*)y)[k] = v != 0; break;
        default: EM_DT_SWITCH(to, ((T*)y)[k] = (T)v;)
        }
    }
}

/* SELECT / SELECT_V2, layout EM_SELECT: y = condition ? x : y-input over the broadcast 6-D output.
 * ptr: condition (bool), x, y, output; i: element size, output dims (6), condition / x / y strides (6 each) */
enum { EM_SELECT_P_CONDITION, EM_SELECT_P_X, EM_SELECT_P_Y, EM_SELECT_P_OUTPUT, EM_SELECT_P_COUNT };
enum { EM_SELECT_I_ITEMSIZE, EM_SELECT_I_DIMS, EM_SELECT_I_DIMS_LAST = EM_SELECT_I_DIMS + 5, EM_SELECT_I_COND_STRIDES,
       EM_SELECT_I_COND_STRIDES_LAST = EM_SELECT_I_COND_STRIDES + 5, EM_SELECT_I_X_STRIDES,
       EM_SELECT_I_X_STRIDES_LAST = EM_SELECT_I_X_STRIDES + 5, EM_SELECT_I_Y_STRIDES,
       EM_SELECT_I_Y_STRIDES_LAST = EM_SELECT_I_Y_STRIDES + 5, EM_SELECT_I_COUNT };
enum { EM_SELECT_F_COUNT = 0 };

#define EM_SELECT_LOOP(T)                                                                                    \
    {                                                                                                        \
        const T* a = (const T*)p->ptr[EM_SELECT_P_X];                                                        \
        const T* b = (const T*)p->ptr[EM_SELECT_P_Y];                                                        \
        T* out = (T*)p->ptr[EM_SELECT_P_OUTPUT];                                                             \
        int64_t o = 0;                                                                                       \
        for (int64_t i0 = 0; i0 < dims[0]; i0++)                                                             \
        for (int64_t i1 = 0; i1 < dims[1]; i1++)                                                             \
        for (int64_t i2 = 0; i2 < dims[2]; i2++)                                                             \
        for (int64_t i3 = 0; i3 < dims[3]; i3++)                                                             \
        for (int64_t i4 = 0; i4 < dims[4]; i4++) {                                                           \
            const int64_t bc = i0 * sc[0] + i1 * sc[1] + i2 * sc[2] + i3 * sc[3] + i4 * sc[4];               \
            const int64_t bx = i0 * sx[0] + i1 * sx[1] + i2 * sx[2] + i3 * sx[3] + i4 * sx[4];               \
            const int64_t by = i0 * sy[0] + i1 * sy[1] + i2 * sy[2] + i3 * sy[3] + i4 * sy[4];               \
            for (int64_t i5 = 0; i5 < dims[5]; i5++, o++)                                                    \
                out[o] = cond[bc + i5 * sc[5]] ? a[bx + i5 * sx[5]] : b[by + i5 * sy[5]];                    \
        }                                                                                                    \
    }

static void em_select(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t* dims = d + EM_SELECT_I_DIMS;
    const int64_t* sc = d + EM_SELECT_I_COND_STRIDES;
    const int64_t* sx = d + EM_SELECT_I_X_STRIDES;
    const int64_t* sy = d + EM_SELECT_I_Y_STRIDES;
    const uint8_t* cond = (const uint8_t*)p->ptr[EM_SELECT_P_CONDITION];
    switch (d[EM_SELECT_I_ITEMSIZE]) {
    case 1: EM_SELECT_LOOP(uint8_t) break;
    case 2: EM_SELECT_LOOP(uint16_t) break;
    case 4: EM_SELECT_LOOP(uint32_t) break;
    case 8: EM_SELECT_LOOP(uint64_t) break;
    }
}
#endif
