/* EQUAL, NOT_EQUAL, LESS, LESS_EQUAL, GREATER, GREATER_EQUAL (bool outputs) and MAXIMUM, MINIMUM, with
 * broadcasting over a 6-D output.  Quantized int8 / uint8 comparisons compare LiteRT's rescaled values:
 * ((x - zp) << left_shift) times the input's own scale as a fixed-point multiplier (below one), per input.
 *
 * Layout EM_COMPARE:
 * ptr: input 1, input 2, output (bool)
 * i:   output dims (6), input-1 strides, input-2 strides (6 each, 0 where broadcast), element type (EM_DT_*),
 *      comparison (EM_CMP_*), rescale (1: the quantized form), zp1, zp2, m1, s1, m2, s2, left shift, rounding */
#ifndef EM_COMPARE_H
#define EM_COMPARE_H
#include "em_dtype.h"
#include "em_params.h"
#include "em_requant.h"

#define EM_CMP_EQUAL 0
#define EM_CMP_NOT_EQUAL 1
#define EM_CMP_LESS 2
#define EM_CMP_LESS_EQUAL 3
#define EM_CMP_GREATER 4
#define EM_CMP_GREATER_EQUAL 5

enum { EM_COMPARE_P_INPUT1, EM_COMPARE_P_INPUT2, EM_COMPARE_P_OUTPUT, EM_COMPARE_P_COUNT };
enum { EM_COMPARE_I_DIMS, EM_COMPARE_I_DIMS_LAST = EM_COMPARE_I_DIMS + 5, EM_COMPARE_I_STRIDES1,
       EM_COMPARE_I_STRIDES1_LAST = EM_COMPARE_I_STRIDES1 + 5, EM_COMPARE_I_STRIDES2,
       EM_COMPARE_I_STRIDES2_LAST = EM_COMPARE_I_STRIDES2 + 5, EM_COMPARE_I_DTYPE, EM_COMPARE_I_OP,
       EM_COMPARE_I_RESCALE, EM_COMPARE_I_ZP1, EM_COMPARE_I_ZP2, EM_COMPARE_I_MULT1, EM_COMPARE_I_SHIFT1,
       EM_COMPARE_I_MULT2, EM_COMPARE_I_SHIFT2, EM_COMPARE_I_LEFT_SHIFT, EM_COMPARE_I_MODE, EM_COMPARE_I_COUNT };
enum { EM_COMPARE_F_COUNT = 0 };

/* The broadcast walk: `a`, `b` the two elements (type T), `o` the output position. */
#define EM_BROADCAST_PAIRS(T, x1p, x2p, ...)                                                               \
    {                                                                                                      \
        const T* x1 = (const T*)(x1p);                                                                     \
        const T* x2 = (const T*)(x2p);                                                                     \
        int64_t o = 0;                                                                                     \
        for (int64_t i0 = 0; i0 < dims[0]; i0++)                                                           \
        for (int64_t i1 = 0; i1 < dims[1]; i1++)                                                           \
        for (int64_t i2 = 0; i2 < dims[2]; i2++)                                                           \
        for (int64_t i3 = 0; i3 < dims[3]; i3++)                                                           \
        for (int64_t i4 = 0; i4 < dims[4]; i4++) {                                                         \
            const int64_t b1 = i0 * st1[0] + i1 * st1[1] + i2 * st1[2] + i3 * st1[3] + i4 * st1[4];        \
            const int64_t b2 = i0 * st2[0] + i1 * st2[1] + i2 * st2[2] + i3 * st2[3] + i4 * st2[4];        \
            for (int64_t i5 = 0; i5 < dims[5]; i5++, o++) {                                                \
                const T a = x1[b1 + i5 * st1[5]];                                                          \
                const T b = x2[b2 + i5 * st2[5]];                                                          \
                __VA_ARGS__                                                                                \
            }                                                                                              \
        }                                                                                                  \
    }

#define EM_COMPARE_VALUES(a, b)                                                                            \
    (op == EM_CMP_EQUAL ? (a) == (b) : op == EM_CMP_NOT_EQUAL ? (a) != (b) : op == EM_CMP_LESS ? (a) < (b)  \
     : op == EM_CMP_LESS_EQUAL ? (a) <= (b) : op == EM_CMP_GREATER ? (a) > (b) : (a) >= (b))

static void em_compare(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t* dims = d + EM_COMPARE_I_DIMS;
    const int64_t* st1 = d + EM_COMPARE_I_STRIDES1;
    const int64_t* st2 = d + EM_COMPARE_I_STRIDES2;
    const int op = (int)d[EM_COMPARE_I_OP], code = (int)d[EM_COMPARE_I_DTYPE];
    uint8_t* y = (uint8_t*)p->ptr[EM_COMPARE_P_OUTPUT];
    if (d[EM_COMPARE_I_RESCALE]) {
        const int32_t zp1 = (int32_t)d[EM_COMPARE_I_ZP1], zp2 = (int32_t)d[EM_COMPARE_I_ZP2];
        const int32_t m1 = (int32_t)d[EM_COMPARE_I_MULT1], m2 = (int32_t)d[EM_COMPARE_I_MULT2];
        const int s1 = (int)d[EM_COMPARE_I_SHIFT1], s2 = (int)d[EM_COMPARE_I_SHIFT2];
        const int ls = (int)d[EM_COMPARE_I_LEFT_SHIFT], mode = (int)d[EM_COMPARE_I_MODE];
        EM_DT_SWITCH(code, EM_BROADCAST_PAIRS(T, p->ptr[EM_COMPARE_P_INPUT1], p->ptr[EM_COMPARE_P_INPUT2], {
            const int32_t va = em_mbqm(((int32_t)a - zp1) * (1 << ls), m1, s1, mode);
            const int32_t vb = em_mbqm(((int32_t)b - zp2) * (1 << ls), m2, s2, mode);
            y[o] = EM_COMPARE_VALUES(va, vb);
        }))
        return;
    }
    EM_DT_SWITCH(code, EM_BROADCAST_PAIRS(T, p->ptr[EM_COMPARE_P_INPUT1], p->ptr[EM_COMPARE_P_INPUT2],
                                          y[o] = EM_COMPARE_VALUES(a, b);))
}

/* MAXIMUM / MINIMUM, layout EM_MINMAX: `a > b ? a : b` (`<` for the minimum) element by element, as LiteRT:
 * raw values, no requantization (the prepare requires inputs and output to share int8 parameters).
 * ptr: input 1, input 2, output; i: output dims (6), input-1 strides, input-2 strides, element type, maximum (1)
 * or minimum (0) */
enum { EM_MINMAX_P_INPUT1, EM_MINMAX_P_INPUT2, EM_MINMAX_P_OUTPUT, EM_MINMAX_P_COUNT };
enum { EM_MINMAX_I_DIMS, EM_MINMAX_I_DIMS_LAST = EM_MINMAX_I_DIMS + 5, EM_MINMAX_I_STRIDES1,
       EM_MINMAX_I_STRIDES1_LAST = EM_MINMAX_I_STRIDES1 + 5, EM_MINMAX_I_STRIDES2,
       EM_MINMAX_I_STRIDES2_LAST = EM_MINMAX_I_STRIDES2 + 5, EM_MINMAX_I_DTYPE, EM_MINMAX_I_IS_MAX, EM_MINMAX_I_COUNT };
enum { EM_MINMAX_F_COUNT = 0 };

static void em_minmax(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t* dims = d + EM_MINMAX_I_DIMS;
    const int64_t* st1 = d + EM_MINMAX_I_STRIDES1;
    const int64_t* st2 = d + EM_MINMAX_I_STRIDES2;
    const int is_max = d[EM_MINMAX_I_IS_MAX] != 0;
    void* y = p->ptr[EM_MINMAX_P_OUTPUT];
    EM_DT_SWITCH(d[EM_MINMAX_I_DTYPE], EM_BROADCAST_PAIRS(T, p->ptr[EM_MINMAX_P_INPUT1], p->ptr[EM_MINMAX_P_INPUT2],
        ((T*)y)[o] = is_max ? (a > b ? a : b) : (a < b ? a : b);))
}
#endif
