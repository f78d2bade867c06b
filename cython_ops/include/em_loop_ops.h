/* Small ops of WHILE conditions and bodies: int32 ADD / SUB / MUL (loop counters) and LOGICAL_AND / OR / NOT on
 * bools.  Scalar bodies: these ops move a few values. */
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

/* The logical ops, layout EM_BOOL_BINARY: the binary pointers and integers; the output is bool (one
 * byte, 0 or 1).  LOGICAL_NOT reads input 1 only (input 2 is the same pointer, strides equal). */
enum { EM_BOOL_BINARY_P_COUNT = EM_BINARY_P_COUNT };
enum { EM_BOOL_BINARY_I_COUNT = EM_BINARY_I_COUNT };
enum { EM_BOOL_BINARY_F_COUNT = 0 };

static void em_logical_and(const em_params* p) {
    EM_BINARY_LOOP(uint8_t, uint8_t, { y[o] = (a != 0) & (b != 0); })
}
static void em_logical_or(const em_params* p) {
    EM_BINARY_LOOP(uint8_t, uint8_t, { y[o] = (a != 0) | (b != 0); })
}
static void em_logical_not(const em_params* p) {
    EM_BINARY_LOOP(uint8_t, uint8_t, { (void)b; y[o] = a == 0; })
}

#endif
