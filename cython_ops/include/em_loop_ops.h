/* The small ops WHILE conditions and bodies are made of besides the float math: int32 ADD / SUB / MUL (loop
 * counters), LESS (int32, float32), LOGICAL_AND / OR / NOT on bools, and GATHER with indices known only at run
 * time (reading item i of a TensorList lowered to a tensor).  Scalar bodies: these ops move a few values. */
#ifndef EM_LOOP_OPS_H
#define EM_LOOP_OPS_H
#include <stdint.h>
#include <string.h>
#include "em_params.h"
#include "em_elementwise.h"

/* int32 ADD / SUB / MUL, layout EM_BINARY_I32: the binary pointers and integers (em_elementwise.h), then the
 * fused activation's act_min, act_max.  LiteRT computes in int32; the sums wrap as two's complement here
 * (computed in uint32, so no signed overflow) where LiteRT's overflow is undefined. */
enum { EM_BINARY_I32_P_COUNT = EM_BINARY_P_COUNT };
enum { EM_BINARY_I32_I_ACT_MIN = EM_BINARY_I_COUNT, EM_BINARY_I32_I_ACT_MAX, EM_BINARY_I32_I_COUNT };
enum { EM_BINARY_I32_F_COUNT = 0 };

static inline int32_t em_clamp_act_i32(int32_t v, const em_params* p) {
    const int64_t lo = p->i[EM_BINARY_I32_I_ACT_MIN], hi = p->i[EM_BINARY_I32_I_ACT_MAX];
    return v < lo ? (int32_t)lo : v > hi ? (int32_t)hi : v;
}

static void em_add_int32(const em_params* p) {
    EM_BINARY_LOOP(int32_t, int32_t, { y[o] = em_clamp_act_i32((int32_t)((uint32_t)a + (uint32_t)b), p); })
}
static void em_sub_int32(const em_params* p) {
    EM_BINARY_LOOP(int32_t, int32_t, { y[o] = em_clamp_act_i32((int32_t)((uint32_t)a - (uint32_t)b), p); })
}
static void em_mul_int32(const em_params* p) {
    EM_BINARY_LOOP(int32_t, int32_t, { y[o] = em_clamp_act_i32((int32_t)((uint32_t)a * (uint32_t)b), p); })
}

/* LESS and the logical ops, layout EM_BOOL_BINARY: the binary pointers and integers; the output is bool (one
 * byte, 0 or 1).  LOGICAL_NOT reads input 1 only (input 2 is the same pointer, strides equal). */
enum { EM_BOOL_BINARY_P_COUNT = EM_BINARY_P_COUNT };
enum { EM_BOOL_BINARY_I_COUNT = EM_BINARY_I_COUNT };
enum { EM_BOOL_BINARY_F_COUNT = 0 };

static void em_less_int32(const em_params* p) {
    EM_BINARY_LOOP(int32_t, uint8_t, { y[o] = a < b; })
}
static void em_less_int64(const em_params* p) {
    EM_BINARY_LOOP(int64_t, uint8_t, { y[o] = a < b; })
}
static void em_less_f32(const em_params* p) {
    EM_BINARY_LOOP(float, uint8_t, { y[o] = a < b; })
}
static void em_logical_and(const em_params* p) {
    EM_BINARY_LOOP(uint8_t, uint8_t, { y[o] = (a != 0) & (b != 0); })
}
static void em_logical_or(const em_params* p) {
    EM_BINARY_LOOP(uint8_t, uint8_t, { y[o] = (a != 0) | (b != 0); })
}
static void em_logical_not(const em_params* p) {
    EM_BINARY_LOOP(uint8_t, uint8_t, { (void)b; y[o] = a == 0; })
}

/* GATHER on one axis, indices read at run time: the input viewed as [outer, axis_size, inner bytes], the output
 * as [outer, count, inner bytes]; output block (o, j) = input block (o, indices[j]).  An index outside
 * [0, axis_size) (never 0: the axis is not empty) stores that index in the status word (INT32_MIN when it does
 * not fit in 32 bits) and writes
 * zeros to the whole output instead of reading out of bounds.
 * ptr: input, indices (int32 or int64), output, status (int32); i: outer, axis_size, index_count, inner_bytes,
 * index_bytes (4 or 8) */
enum { EM_GATHER_INDEX_P_INPUT, EM_GATHER_INDEX_P_INDICES, EM_GATHER_INDEX_P_OUTPUT, EM_GATHER_INDEX_P_STATUS,
       EM_GATHER_INDEX_P_COUNT };
enum { EM_GATHER_INDEX_I_OUTER, EM_GATHER_INDEX_I_AXIS_SIZE, EM_GATHER_INDEX_I_INDEX_COUNT,
       EM_GATHER_INDEX_I_INNER_BYTES, EM_GATHER_INDEX_I_INDEX_BYTES, EM_GATHER_INDEX_I_COUNT };
enum { EM_GATHER_INDEX_F_COUNT = 0 };

static inline int64_t em_read_index(const void* indices, int64_t j, int64_t index_bytes) {
    return index_bytes == 8 ? ((const int64_t*)indices)[j] : (int64_t)((const int32_t*)indices)[j];
}

static void em_gather_index(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t outer = d[EM_GATHER_INDEX_I_OUTER], size = d[EM_GATHER_INDEX_I_AXIS_SIZE];
    const int64_t count = d[EM_GATHER_INDEX_I_INDEX_COUNT], inner = d[EM_GATHER_INDEX_I_INNER_BYTES];
    const int64_t ib = d[EM_GATHER_INDEX_I_INDEX_BYTES];
    const void* idx = p->ptr[EM_GATHER_INDEX_P_INDICES];
    const uint8_t* x = (const uint8_t*)p->ptr[EM_GATHER_INDEX_P_INPUT];
    uint8_t* y = (uint8_t*)p->ptr[EM_GATHER_INDEX_P_OUTPUT];
    int32_t* status = (int32_t*)p->ptr[EM_GATHER_INDEX_P_STATUS];
    *status = 0;
    for (int64_t j = 0; j < count; j++) {
        const int64_t v = em_read_index(idx, j, ib);
        if (v < 0 || v >= size) {
            *status = (v > INT32_MIN && v <= INT32_MAX) ? (int32_t)v : INT32_MIN;
            memset(y, 0, (size_t)(outer * count * inner));
            return;
        }
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < count; j++)
            memcpy(y + (o * count + j) * inner, x + (o * size + em_read_index(idx, j, ib)) * inner, (size_t)inner);
}
#endif
