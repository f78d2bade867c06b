/* Element-wise ops: binary with broadcasting (ADD, SUB, MUL), unary requantizing activations,
 * QUANTIZE / DEQUANTIZE and the float activations. */
#ifndef EM_ELEMENTWISE_H
#define EM_ELEMENTWISE_H
#include <math.h>
#include <string.h>
#include "em_params.h"
#include "em_requant.h"
#include "em_isa.h"
#include "em_threads.h"
#include "em_lut.h"

/* Binary ops, layout EM_BINARY (the float kernels; ADD / MUL int8 extend it below):
 * ptr: input 1, input 2, output
 * i:   output dims (6-D, leading 1s), input-1 strides, input-2 strides (6 each, 0 where broadcast)
 * f:   act_min, act_max (float kernels) */
enum { EM_BINARY_P_INPUT1, EM_BINARY_P_INPUT2, EM_BINARY_P_OUTPUT, EM_BINARY_P_COUNT };
enum { EM_BINARY_I_DIMS, EM_BINARY_I_DIMS_LAST = EM_BINARY_I_DIMS + 5, EM_BINARY_I_STRIDES1,
       EM_BINARY_I_STRIDES1_LAST = EM_BINARY_I_STRIDES1 + 5, EM_BINARY_I_STRIDES2,
       EM_BINARY_I_STRIDES2_LAST = EM_BINARY_I_STRIDES2 + 5, EM_BINARY_I_COUNT };
enum { EM_BINARY_F_ACT_MIN, EM_BINARY_F_ACT_MAX, EM_BINARY_F_COUNT };

/* ADD / SUB int8, layout EM_ADD: the binary pointers, then tables (scratch of 2 KB per thread for
 * em_add_int8_avx512's tables, or NULL); the binary integers, then zp1, zp2, out_zp, left_shift, m1, s1, m2, s2,
 * m_out, s_out, act_min, act_max, mode, sign of input 2 (+1 ADD, -1 SUB), threads (em_binary_split) */
enum { EM_ADD_P_TABLES = EM_BINARY_P_OUTPUT + 1, EM_ADD_P_COUNT };
enum { EM_ADD_I_ZP1 = EM_BINARY_I_COUNT, EM_ADD_I_ZP2, EM_ADD_I_OUT_ZP, EM_ADD_I_LEFT_SHIFT, EM_ADD_I_MULT1,
       EM_ADD_I_SHIFT1, EM_ADD_I_MULT2, EM_ADD_I_SHIFT2, EM_ADD_I_OUT_MULT, EM_ADD_I_OUT_SHIFT, EM_ADD_I_ACT_MIN,
       EM_ADD_I_ACT_MAX, EM_ADD_I_MODE, EM_ADD_I_SIGN, EM_ADD_I_THREADS, EM_ADD_I_COUNT };
enum { EM_ADD_F_COUNT = 0 };
#define EM_ADD_TABLE_BYTES 2048     /* one thread's em_add_int8_avx512 tables (ops/elementwise.ADD_TABLE_BYTES) */

/* MUL int8, layout EM_MUL: the binary pointers; the binary integers, then zp1, zp2, out_zp, m, s, act_min,
 * act_max, mode, threads (em_binary_split) */
enum { EM_MUL_P_COUNT = EM_BINARY_P_COUNT };
enum { EM_MUL_I_ZP1 = EM_BINARY_I_COUNT, EM_MUL_I_ZP2, EM_MUL_I_OUT_ZP, EM_MUL_I_MULT, EM_MUL_I_SHIFT,
       EM_MUL_I_ACT_MIN, EM_MUL_I_ACT_MAX, EM_MUL_I_MODE, EM_MUL_I_THREADS, EM_MUL_I_COUNT };
enum { EM_MUL_F_COUNT = 0 };

/* ADD / SUB / MUL int8 over threads: a `threads` integer above 1 is set at load only where neither input
 * broadcasts (dims 1, ..., 1, n; both inputs' last stride 1).  The n elements go in contiguous ranges, whole cache
 * lines but the last, one per thread (the same halves a split conv before it wrote, so each thread mostly reads
 * what its own core produced); each range is one call of the same kernel with threads 1, and its em_add_int8_avx512
 * tables in its own EM_ADD_TABLE_BYTES of the scratch.  Every element is computed by the same arithmetic as in
 * one call: the same bytes for any thread count. */
typedef void (*em_kernel_fn)(const em_params* p);
typedef struct { const em_params* p; em_kernel_fn kernel; int64_t threads_slot, tables_slot; } em_binary_split_call;

static void em_binary_split_range(const void* c, int64_t begin, int64_t end, int64_t slice) {
    const em_binary_split_call* call = (const em_binary_split_call*)c;
    em_params q = *call->p;
    for (int j = 0; j < 6; j++) {
        q.i[EM_BINARY_I_DIMS + j] = 1;
        q.i[EM_BINARY_I_STRIDES1 + j] = q.i[EM_BINARY_I_STRIDES2 + j] = 0;
    }
    q.i[EM_BINARY_I_DIMS + 5] = end - begin;
    q.i[EM_BINARY_I_STRIDES1 + 5] = q.i[EM_BINARY_I_STRIDES2 + 5] = 1;
    q.i[call->threads_slot] = 1;
    q.ptr[EM_BINARY_P_INPUT1] = (int8_t*)call->p->ptr[EM_BINARY_P_INPUT1] + begin;
    q.ptr[EM_BINARY_P_INPUT2] = (int8_t*)call->p->ptr[EM_BINARY_P_INPUT2] + begin;
    q.ptr[EM_BINARY_P_OUTPUT] = (int8_t*)call->p->ptr[EM_BINARY_P_OUTPUT] + begin;
    if (call->tables_slot >= 0 && q.ptr[call->tables_slot])
        q.ptr[call->tables_slot] = (uint8_t*)q.ptr[call->tables_slot] + slice * EM_ADD_TABLE_BYTES;
    call->kernel(&q);
}

/* 1 (done) when p asks for more than one thread and has the flat shape the split needs, else 0 (the caller runs
 * the op itself: a layout built by hand with threads > 1 and a broadcast still gets the right bytes).  The ranges
 * are em_threads.h em_parallel_range's: at most `threads` of them (slice < threads: its tables area exists). */
static int em_binary_split(const em_params* p, em_kernel_fn kernel, int64_t threads_slot, int64_t tables_slot) {
    const int64_t threads = p->i[threads_slot];
    const int64_t* dims = p->i + EM_BINARY_I_DIMS;
    if (threads <= 1 || dims[0] != 1 || dims[1] != 1 || dims[2] != 1 || dims[3] != 1 || dims[4] != 1 ||
        p->i[EM_BINARY_I_STRIDES1 + 5] != 1 || p->i[EM_BINARY_I_STRIDES2 + 5] != 1)
        return 0;
    const em_binary_split_call call = {p, kernel, threads_slot, tables_slot};
    em_parallel_range(threads, dims[5], 64, 1, em_binary_split_range, &call);
    return 1;
}
#define EM_ADD_SPLIT(KERNEL) \
    if (p->i[EM_ADD_I_THREADS] > 1 && em_binary_split(p, KERNEL, EM_ADD_I_THREADS, EM_ADD_P_TABLES)) return
#define EM_MUL_SPLIT(KERNEL) \
    if (p->i[EM_MUL_I_THREADS] > 1 && em_binary_split(p, KERNEL, EM_MUL_I_THREADS, -1)) return

#define EM_BINARY_LOOP(T_IN, T_OUT, BODY)                                                          \
    const int64_t* dims = p->i + EM_BINARY_I_DIMS;                                                 \
    const int64_t* st1 = p->i + EM_BINARY_I_STRIDES1;                                              \
    const int64_t* st2 = p->i + EM_BINARY_I_STRIDES2;                                              \
    const T_IN* x1 = (const T_IN*)p->ptr[EM_BINARY_P_INPUT1];                                      \
    const T_IN* x2 = (const T_IN*)p->ptr[EM_BINARY_P_INPUT2];                                      \
    T_OUT* y = (T_OUT*)p->ptr[EM_BINARY_P_OUTPUT];                                                 \
    int64_t o = 0;                                                                                 \
    for (int64_t i0 = 0; i0 < dims[0]; i0++)                                                       \
    for (int64_t i1 = 0; i1 < dims[1]; i1++)                                                       \
    for (int64_t i2 = 0; i2 < dims[2]; i2++)                                                       \
    for (int64_t i3 = 0; i3 < dims[3]; i3++)                                                       \
    for (int64_t i4 = 0; i4 < dims[4]; i4++) {                                                     \
        int64_t b1 = i0 * st1[0] + i1 * st1[1] + i2 * st1[2] + i3 * st1[3] + i4 * st1[4];          \
        int64_t b2 = i0 * st2[0] + i1 * st2[1] + i2 * st2[2] + i3 * st2[3] + i4 * st2[4];          \
        const int64_t s1 = st1[5], s2 = st2[5];                                                    \
        for (int64_t i5 = 0; i5 < dims[5]; i5++, o++) {                                            \
            const T_IN a = x1[b1 + i5 * s1];                                                       \
            const T_IN b = x2[b2 + i5 * s2];                                                       \
            BODY                                                                                   \
        }                                                                                          \
    }

#if defined(__aarch64__)
/* ADD / SUB / MUL int8 on NEON: the innermost dimension 8 elements at a time where each input steps by 1 or 0
 * (broadcast) along it, with em_requant.h's em_mbqm_neon, so the same bits as em_add_int8 / em_mul_int8; other
 * elements go through the same vector arithmetic one lane at a time. */
typedef struct { int32x4_t zp1, zp2, left_shift, m1, s1, m2, s2, m_out, s_out, out_zp, act_min, act_max; int mode, op; }
    em_binary_neon_consts;
enum { EM_BINARY_NEON_ADD, EM_BINARY_NEON_SUB, EM_BINARY_NEON_MUL };

static inline int32x4_t em_binary_int8_neon4(int32x4_t a, int32x4_t b, const em_binary_neon_consts* c) {
    a = vsubq_s32(a, c->zp1);
    b = vsubq_s32(b, c->zp2);
    int32x4_t r;
    if (c->op == EM_BINARY_NEON_MUL) {
        r = em_mbqm_neon(vmulq_s32(a, b), c->m_out, c->s_out, c->mode);
    } else {
        const int32x4_t v1 = em_mbqm_neon(vshlq_s32(a, c->left_shift), c->m1, c->s1, c->mode);
        const int32x4_t v2 = em_mbqm_neon(vshlq_s32(b, c->left_shift), c->m2, c->s2, c->mode);
        r = em_mbqm_neon(c->op == EM_BINARY_NEON_SUB ? vsubq_s32(v1, v2) : vaddq_s32(v1, v2), c->m_out, c->s_out,
                         c->mode);
    }
    return vmaxq_s32(vminq_s32(vaddq_s32(r, c->out_zp), c->act_max), c->act_min);
}

static void em_binary_int8_neon(const em_params* p, const em_binary_neon_consts* c) {
    const int64_t* dims = p->i + EM_BINARY_I_DIMS;
    const int64_t* st1 = p->i + EM_BINARY_I_STRIDES1;
    const int64_t* st2 = p->i + EM_BINARY_I_STRIDES2;
    const int8_t* x1 = (const int8_t*)p->ptr[EM_BINARY_P_INPUT1];
    const int8_t* x2 = (const int8_t*)p->ptr[EM_BINARY_P_INPUT2];
    int8_t* y = (int8_t*)p->ptr[EM_BINARY_P_OUTPUT];
    int64_t o = 0;
    for (int64_t i0 = 0; i0 < dims[0]; i0++)
    for (int64_t i1 = 0; i1 < dims[1]; i1++)
    for (int64_t i2 = 0; i2 < dims[2]; i2++)
    for (int64_t i3 = 0; i3 < dims[3]; i3++)
    for (int64_t i4 = 0; i4 < dims[4]; i4++) {
        const int64_t b1 = i0 * st1[0] + i1 * st1[1] + i2 * st1[2] + i3 * st1[3] + i4 * st1[4];
        const int64_t b2 = i0 * st2[0] + i1 * st2[1] + i2 * st2[2] + i3 * st2[3] + i4 * st2[4];
        const int64_t s1 = st1[5], s2 = st2[5];
        int64_t i5 = 0;
        if ((s1 == 0 || s1 == 1) && (s2 == 0 || s2 == 1)) {
            for (; i5 + 8 <= dims[5]; i5 += 8, o += 8) {
                const int16x8_t a = s1 ? vmovl_s8(vld1_s8(x1 + b1 + i5)) : vdupq_n_s16(x1[b1]);
                const int16x8_t b = s2 ? vmovl_s8(vld1_s8(x2 + b2 + i5)) : vdupq_n_s16(x2[b2]);
                const int32x4_t lo = em_binary_int8_neon4(vmovl_s16(vget_low_s16(a)), vmovl_s16(vget_low_s16(b)), c);
                const int32x4_t hi = em_binary_int8_neon4(vmovl_high_s16(a), vmovl_high_s16(b), c);
                vst1_s8(y + o, vmovn_s16(vcombine_s16(vmovn_s32(lo), vmovn_s32(hi))));
            }
        }
        for (; i5 < dims[5]; i5++, o++) {
            const int32x4_t r = em_binary_int8_neon4(vdupq_n_s32(x1[b1 + i5 * s1]), vdupq_n_s32(x2[b2 + i5 * s2]), c);
            y[o] = (int8_t)vgetq_lane_s32(r, 0);
        }
    }
}

/* ADD / SUB on NEON; 0 (nothing done) where the vector arithmetic does not apply (em_mbqm_neon_applies). */
static int em_add_int8_neon(const em_params* p) {
    const int64_t* q = p->i;
    const int mode = (int)q[EM_ADD_I_MODE];
    if (!em_mbqm_neon_applies(mode, (int32_t)q[EM_ADD_I_SHIFT1]) ||
        !em_mbqm_neon_applies(mode, (int32_t)q[EM_ADD_I_SHIFT2]) ||
        !em_mbqm_neon_applies(mode, (int32_t)q[EM_ADD_I_OUT_SHIFT]) || q[EM_ADD_I_LEFT_SHIFT] < 0 ||
        q[EM_ADD_I_LEFT_SHIFT] > 30)
        return 0;
    const em_binary_neon_consts c = {
        vdupq_n_s32((int32_t)q[EM_ADD_I_ZP1]), vdupq_n_s32((int32_t)q[EM_ADD_I_ZP2]),
        vdupq_n_s32((int32_t)q[EM_ADD_I_LEFT_SHIFT]), vdupq_n_s32((int32_t)q[EM_ADD_I_MULT1]),
        vdupq_n_s32((int32_t)q[EM_ADD_I_SHIFT1]), vdupq_n_s32((int32_t)q[EM_ADD_I_MULT2]),
        vdupq_n_s32((int32_t)q[EM_ADD_I_SHIFT2]), vdupq_n_s32((int32_t)q[EM_ADD_I_OUT_MULT]),
        vdupq_n_s32((int32_t)q[EM_ADD_I_OUT_SHIFT]), vdupq_n_s32((int32_t)q[EM_ADD_I_OUT_ZP]),
        vdupq_n_s32((int32_t)q[EM_ADD_I_ACT_MIN]), vdupq_n_s32((int32_t)q[EM_ADD_I_ACT_MAX]), mode,
        q[EM_ADD_I_SIGN] < 0 ? EM_BINARY_NEON_SUB : EM_BINARY_NEON_ADD};
    em_binary_int8_neon(p, &c);
    return 1;
}

static int em_mul_int8_neon(const em_params* p) {
    const int64_t* q = p->i;
    const int mode = (int)q[EM_MUL_I_MODE];
    if (!em_mbqm_neon_applies(mode, (int32_t)q[EM_MUL_I_SHIFT])) return 0;
    const int32x4_t unused = vdupq_n_s32(0);
    const em_binary_neon_consts c = {
        vdupq_n_s32((int32_t)q[EM_MUL_I_ZP1]), vdupq_n_s32((int32_t)q[EM_MUL_I_ZP2]), unused, unused, unused, unused,
        unused, vdupq_n_s32((int32_t)q[EM_MUL_I_MULT]), vdupq_n_s32((int32_t)q[EM_MUL_I_SHIFT]),
        vdupq_n_s32((int32_t)q[EM_MUL_I_OUT_ZP]), vdupq_n_s32((int32_t)q[EM_MUL_I_ACT_MIN]),
        vdupq_n_s32((int32_t)q[EM_MUL_I_ACT_MAX]), mode, EM_BINARY_NEON_MUL};
    em_binary_int8_neon(p, &c);
    return 1;
}
#endif

/* ADD / SUB int8 (layout EM_ADD) */
static void em_add_int8(const em_params* p) {
    EM_ADD_SPLIT(em_add_int8);
#if defined(__aarch64__)
    if (em_isa() >= EM_ISA_NEON && em_add_int8_neon(p)) return;
#endif
    const int64_t* q = p->i;
    const int32_t zp1 = (int32_t)q[EM_ADD_I_ZP1], zp2 = (int32_t)q[EM_ADD_I_ZP2], ozp = (int32_t)q[EM_ADD_I_OUT_ZP];
    const int32_t ls = (int32_t)q[EM_ADD_I_LEFT_SHIFT];
    const int32_t m1 = (int32_t)q[EM_ADD_I_MULT1], sh1 = (int32_t)q[EM_ADD_I_SHIFT1];
    const int32_t m2 = (int32_t)q[EM_ADD_I_MULT2], sh2 = (int32_t)q[EM_ADD_I_SHIFT2];
    const int32_t mo = (int32_t)q[EM_ADD_I_OUT_MULT], sho = (int32_t)q[EM_ADD_I_OUT_SHIFT];
    const int32_t amin = (int32_t)q[EM_ADD_I_ACT_MIN], amax = (int32_t)q[EM_ADD_I_ACT_MAX];
    const int mode = (int)q[EM_ADD_I_MODE];
    const int sub = q[EM_ADD_I_SIGN] < 0;
    EM_BINARY_LOOP(int8_t, int8_t, {
        int32_t v1 = em_mbqm(((int32_t)a - zp1) * (1 << ls), m1, sh1, mode);
        int32_t v2 = em_mbqm(((int32_t)b - zp2) * (1 << ls), m2, sh2, mode);
        int32_t s = sub ? v1 - v2 : v1 + v2;
        int32_t r = em_mbqm(s, mo, sho, mode) + ozp;
        y[o] = (int8_t)em_clamp_i32(r, amin, amax);
    })
}

/* The float estimate of the vector kernels.  Without its roundings, ADD / SUB's output before the zero point is
 * F = (v1 +- v2) m_out 2^(s_out - 31) with v_k = MBQM((x_k - zp_k) 2^20, m_k, s_k) within 1 of (x_k - zp_k) K_k,
 * and MUL's is F = (x1 - zp1)(x2 - zp2) m 2^(s - 31): both within `margin` of the affine (ADD) or product (MUL)
 * float V = a x1 + b x2 + c (MUL: a (x1 - zp1)(x2 - zp2) + c), c holding the output zero point.  Double rounding
 * rounds F to a multiple of 2^s_out first, then to an integer (ties away), single rounding to the nearest integer
 * (ties up): wherever V is more than margin + 2^(s_out - 1) (double) from a half-integer, the exact output is V
 * rounded to the nearest integer, and the kernels take the exact integer arithmetic only for vectors holding a
 * lane near a tie.  The float error bound: a, b, c each rounded once and at most four roundings of the sums
 * (products exact below 2^24), each within 2^-24 of its magnitude, bounded by r = 128 |a| + 128 |b| + |c|. */
typedef struct { float a, b, c, zp1, zp2, near_tie; int ok; } em_binary_estimate;

/* The estimate is derived on every call: always inlined and without libm (2^e built from its bits, products by it
 * exact), so that it compiles into the caller's AVX encoding; called out of line as SSE code from an AVX-512 kernel
 * it cost a state-transition stall, about 0.1 us per call (more than the arithmetic of a small tensor). */
#define EM_ESTIMATE_INLINE static inline __attribute__((always_inline))
EM_ESTIMATE_INLINE double em_pow2(int e) {
    if (e < -1022) return 0.0;
    const uint64_t bits = (uint64_t)(e + 1023) << 52;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

EM_ESTIMATE_INLINE em_binary_estimate em_binary_estimate_finish(double a, double b, double c, double bound,
                                                               double window) {
    em_binary_estimate e;
    e.a = (float)a;
    e.b = (float)b;
    e.c = (float)c;
    e.zp1 = e.zp2 = 0.0f;
    const double margin = window + (bound * em_pow2(-21));
    e.near_tie = (float)(0.5 - margin);
    /* a wider margin sends too many vectors to the exact arithmetic to gain anything */
    e.ok = margin <= em_pow2(-8) && bound < em_pow2(20);
    return e;
}

EM_ESTIMATE_INLINE em_binary_estimate em_add_estimate(const int64_t* q) {
    em_binary_estimate none = {0};
    const int mode = (int)q[EM_ADD_I_MODE];
    if ((mode != EM_ROUND_DOUBLE && mode != EM_ROUND_SINGLE) || q[EM_ADD_I_LEFT_SHIFT] != 20 ||
        q[EM_ADD_I_SHIFT1] > 0 || q[EM_ADD_I_SHIFT2] > 0 || q[EM_ADD_I_OUT_SHIFT] > 0 || q[EM_ADD_I_OUT_SHIFT] < -31)
        return none;
    const double out = ((double)q[EM_ADD_I_OUT_MULT] * em_pow2((int)q[EM_ADD_I_OUT_SHIFT] - 31));
    const double a = ((double)q[EM_ADD_I_MULT1] * em_pow2(20 + (int)q[EM_ADD_I_SHIFT1] - 31)) * out;
    const double b = (q[EM_ADD_I_SIGN] < 0 ? -1.0 : 1.0) *
                     ((double)q[EM_ADD_I_MULT2] * em_pow2(20 + (int)q[EM_ADD_I_SHIFT2] - 31)) * out;
    const double c = (double)q[EM_ADD_I_OUT_ZP] - a * (double)q[EM_ADD_I_ZP1] - b * (double)q[EM_ADD_I_ZP2];
    const double bound = 128.0 * (fabs(a) + fabs(b)) + fabs(c);
    /* each v_k within 1 of its real value; the output stage's first rounding (double rounding) */
    double window = 2.0 * out;
    if (mode == EM_ROUND_DOUBLE && q[EM_ADD_I_OUT_SHIFT] < 0) window += em_pow2((int)q[EM_ADD_I_OUT_SHIFT] - 1);
    return em_binary_estimate_finish(a, b, c, bound, window);
}

EM_ESTIMATE_INLINE em_binary_estimate em_mul_estimate(const int64_t* q) {
    em_binary_estimate none = {0};
    const int mode = (int)q[EM_MUL_I_MODE];
    if ((mode != EM_ROUND_DOUBLE && mode != EM_ROUND_SINGLE) || q[EM_MUL_I_SHIFT] > 0 || q[EM_MUL_I_SHIFT] < -31)
        return none;
    const double a = ((double)q[EM_MUL_I_MULT] * em_pow2((int)q[EM_MUL_I_SHIFT] - 31));
    const double c = (double)q[EM_MUL_I_OUT_ZP];
    const double window = mode == EM_ROUND_DOUBLE && q[EM_MUL_I_SHIFT] < 0 ? em_pow2((int)q[EM_MUL_I_SHIFT] - 1) : 0.0;
    /* the product (x1 - zp1)(x2 - zp2) is exact in float (|p| <= 255^2) */
    em_binary_estimate e = em_binary_estimate_finish(a, 0.0, c, 65536.0 * fabs(a) + fabs(c), window);
    e.zp1 = (float)q[EM_MUL_I_ZP1];
    e.zp2 = (float)q[EM_MUL_I_ZP2];
    return e;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include "em_gemm_vnni.h"
#define EM_VBMI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi")))

/* 1 when binary input k (0 or 1) is one element broadcast to the output: its stride is 0 wherever the output
 * dim is not 1 */
static inline int em_binary_scalar_input(const em_params* p, int k) {
    const int64_t* st = p->i + (k ? EM_BINARY_I_STRIDES2 : EM_BINARY_I_STRIDES1);
    const int64_t* dims = p->i + EM_BINARY_I_DIMS;
    int j;
    for (j = 0; j < 6; j++)
        if (st[j] != 0 && dims[j] != 1) return 0;
    return 1;
}

/* ADD's per-input constants: rounding mode, left shift, multiplier / shift and the double-rounding constants. */
typedef struct { __m512i zp, m, sh, mh, ml; em_mbqm16 c; int single, small, ls; } em_add_input16;

EM_VNNI_TARGET static inline em_add_input16 em_add_input_consts(int64_t zp, int64_t m, int64_t sh, int64_t ls,
                                                                int64_t mode) {
    em_add_input16 q;
    q.zp = _mm512_set1_epi32((int32_t)zp);
    q.m = _mm512_set1_epi32((int32_t)m);
    q.sh = _mm512_set1_epi32((int32_t)sh);
    q.mh = _mm512_srli_epi32(q.m, 16);
    q.ml = _mm512_and_si512(q.m, _mm512_set1_epi32(0xFFFF));
    q.c = em_mbqm_consts(q.m, q.sh);
    q.ls = (int)ls;
    q.single = mode == EM_ROUND_SINGLE;
    /* double rounding with the reference's left shift of 20 and no multiplier left shift: 32-bit lanes
     * (em_srdhm_shifted20_x16) */
    q.small = !q.single && ls == 20 && sh <= 0;
    return q;
}

/* One input's stage MBQM((x - zp) << ls, m, shift) on 16 int8 values widened to int32. */
EM_VNNI_TARGET static inline __m512i em_add_input_x16(__m512i x, const em_add_input16* q) {
    __m512i d = _mm512_sub_epi32(x, q->zp);
    if (q->small) return em_rdbpot_x16(em_srdhm_shifted20_x16(d, q->mh, q->ml), &q->c);
    d = _mm512_slli_epi32(d, q->ls);
    return q->single ? em_mbqm_single_x16(d, q->m, q->sh) : em_mbqm_apply_x16(d, &q->c);
}

/* Output stage: MBQM(s, m_out, s_out) + out_zp, clamped to the activation range. */
EM_VNNI_TARGET static inline __m512i em_add_output_x16(__m512i s, int single, __m512i mo, __m512i sho,
                                                       const em_mbqm16* co, __m512i ozp, __m512i amin,
                                                       __m512i amax) {
    __m512i r = single ? em_mbqm_single_x16(s, mo, sho) : em_mbqm_apply_x16(s, co);
    return _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(r, ozp), amin), amax);
}

/* An int8 input has 256 values, so each input stage is a 256-entry int32 table, built per call by the very
 * functions the arithmetic loop runs (identical results by construction) and stored as four 256-byte planes
 * (byte k of every entry), for byte permutes (vpermi2b) over 64 elements at a time. */
EM_VNNI_TARGET static void em_add_build_table(const em_add_input16* q, uint8_t* planes) {
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    for (int j = 0; j < 256; j += 16) {
        /* entry j holds the value for the int8 whose byte is j */
        __m512i x = _mm512_srai_epi32(_mm512_slli_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(j)), 24), 24);
        __m512i v = em_add_input_x16(x, q);
        for (int k = 0; k < 4; k++)
            _mm_storeu_si128((__m128i*)(planes + 256 * k + j), _mm512_cvtepi32_epi8(_mm512_srli_epi32(v, 8 * k)));
    }
}

/* 64 table lookups: the four byte planes of the entries at the bytes of idx, interleaved into int32 vectors.
 * The in-lane unpacks leave v[k] holding elements 16 L + 4 k + i in dword i of 128-bit lane L; the saturating
 * packs of the output restore element order (as em_depthwise_vector64). */
EM_VBMI_TARGET static inline void em_add_lookup64(__m512i idx, const uint8_t* planes, __m512i v[4]) {
    const __mmask64 high = _mm512_movepi8_mask(idx);
    __m512i b[4];
    for (int k = 0; k < 4; k++) {
        const uint8_t* t = planes + 256 * k;
        __m512i lo = _mm512_permutex2var_epi8(_mm512_loadu_si512(t), idx, _mm512_loadu_si512(t + 64));
        __m512i hi = _mm512_permutex2var_epi8(_mm512_loadu_si512(t + 128), idx, _mm512_loadu_si512(t + 192));
        b[k] = _mm512_mask_blend_epi8(high, lo, hi);
    }
    const __m512i lo01 = _mm512_unpacklo_epi8(b[0], b[1]), hi01 = _mm512_unpackhi_epi8(b[0], b[1]);
    const __m512i lo23 = _mm512_unpacklo_epi8(b[2], b[3]), hi23 = _mm512_unpackhi_epi8(b[2], b[3]);
    v[0] = _mm512_unpacklo_epi16(lo01, lo23);
    v[1] = _mm512_unpackhi_epi16(lo01, lo23);
    v[2] = _mm512_unpacklo_epi16(hi01, hi23);
    v[3] = _mm512_unpackhi_epi16(hi01, hi23);
}

/* A run in which one input stays on one element is a function of the other input's byte alone: a long one computes
 * its 256 outputs with the run itself (same bits by construction) and becomes a table lookup (em_lut.h). */
#define EM_LUT_RUN_MIN 512
#define EM_RUN_VIA_LUT(RUN, A, ONE1, B, ONE2, Y, N)                                                               \
    do {                                                                                                          \
        if ((ONE1) != (ONE2) && (N) >= EM_LUT_RUN_MIN) {                                                          \
            int8_t iota_[256];                                                                                    \
            uint8_t lut_[256];                                                                                    \
            for (int j_ = 0; j_ < 256; j_++) iota_[j_] = (int8_t)j_;                                              \
            if (ONE2) RUN(iota_, 0, (B), 1, (int8_t*)lut_, 256);                                                  \
            else RUN((A), 1, iota_, 0, (int8_t*)lut_, 256);                                                       \
            em_lut_u8((const uint8_t*)((ONE2) ? (A) : (B)), (uint8_t*)(Y), (N), lut_);                            \
        } else {                                                                                                  \
            RUN((A), (ONE1), (B), (ONE2), (Y), (N));                                                              \
        }                                                                                                         \
    } while (0)

/* ADD / SUB's output stage constants, 16 lanes. */
typedef struct {
    em_add_input16 in1, in2;
    __m512i mo, sho, ozp, amin, amax;
    em_mbqm16 co;
    int single, sub;
} em_add_consts16;

/* One run of the table variant (CPUs with AVX-512 VBMI), 64 elements at a time: t1 / t2 hold the two input
 * stages as tables; a one-element input looks up its broadcast byte. */
EM_VBMI_TARGET static inline void em_add_tables_run(const em_add_consts16* c, const uint8_t* t1, const uint8_t* t2,
                                                    const int8_t* x1, int one1, const int8_t* x2, int one2,
                                                    int8_t* y, int64_t n) {
    for (int64_t k = 0; k < n; k += 64) {
        const __mmask64 m = n - k >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (n - k)) - 1;
        __m512i a[4], b[4], r[4];
        em_add_lookup64(one1 ? _mm512_set1_epi8(x1[0]) : _mm512_maskz_loadu_epi8(m, x1 + k), t1, a);
        em_add_lookup64(one2 ? _mm512_set1_epi8(x2[0]) : _mm512_maskz_loadu_epi8(m, x2 + k), t2, b);
        for (int j = 0; j < 4; j++)
            r[j] = em_add_output_x16(c->sub ? _mm512_sub_epi32(a[j], b[j]) : _mm512_add_epi32(a[j], b[j]),
                                     c->single, c->mo, c->sho, &c->co, c->ozp, c->amin, c->amax);
        const __m512i bytes = _mm512_packs_epi16(_mm512_packs_epi32(r[0], r[1]), _mm512_packs_epi32(r[2], r[3]));
        _mm512_mask_storeu_epi8(y + k, m, bytes);
    }
}

/* The broadcasting walk of the vector kernels: the output's outer five dims in order, each step one run of the
 * innermost dim (dims[5] elements).  Within a run an input either advances with the output (stride 1) or stays on
 * one element (stride 0, or a run of one); the prepare merges dims so that runs are as long as the shapes allow
 * (equal shapes: one run; per-channel: one run per pixel; a scalar: one run).  RUN(x1, one1, x2, one2, y, n).
 * A per-channel operand ([.., C] against a contiguous [.., P, C]) of short runs is instead copied C by C into a
 * buffer of whole periods, and the output walked in runs of that length, both inputs advancing. */
#define EM_PERIODIC_BYTES 2048
static inline int em_binary_periodic_input(const em_params* p) {
    const int64_t* dims = p->i + EM_BINARY_I_DIMS;
    const int64_t c = dims[5];
    if (c < 2 || c > EM_PERIODIC_BYTES / 2) return -1;
    for (int k = 0; k < 2; k++) {
        const int64_t* st = p->i + (k ? EM_BINARY_I_STRIDES1 : EM_BINARY_I_STRIDES2);      /* the other input */
        const int64_t* sp = p->i + (k ? EM_BINARY_I_STRIDES2 : EM_BINARY_I_STRIDES1);      /* the periodic one */
        int64_t natural = 1, ok = sp[5] == 1 && st[5] == 1, outer = 1;
        for (int j = 5; j >= 0 && ok; j--) {
            if (dims[j] != 1 && st[j] != natural) ok = 0;
            if (j < 5 && dims[j] != 1 && sp[j] != 0) ok = 0;
            if (j < 5) outer *= dims[j];
            natural *= dims[j];
        }
        if (ok && outer >= 2) return k;
    }
    return -1;
}

/* A row operand: one input steps along the short innermost dim (stride 1) and is held along dim 4 (stride 0) while
 * the other runs on contiguously through dims 4 and 5 (a per-frame-and-channel gate [T, 1, C] against [T, F, C],
 * [9, 1, 24] against [1, 11, 24]).  Its row is copied along dim 4 into a buffer of up to EM_PERIODIC_BYTES, so each
 * step of the outer four dims becomes runs of whole rows with both inputs advancing.  Returns the input held (0 or
 * 1), or -1. */
#define EM_ROW_RUN_MAX 128      /* longer innermost runs gain nothing from staging */
static inline int em_binary_row_input(const em_params* p) {
    const int64_t* dims = p->i + EM_BINARY_I_DIMS;
    const int64_t c = dims[5];
    if (c < 2 || c > EM_ROW_RUN_MAX || dims[4] < 2) return -1;
    for (int k = 0; k < 2; k++) {
        const int64_t* sp = p->i + (k ? EM_BINARY_I_STRIDES2 : EM_BINARY_I_STRIDES1);      /* the held one */
        const int64_t* st = p->i + (k ? EM_BINARY_I_STRIDES1 : EM_BINARY_I_STRIDES2);      /* the other */
        if (sp[5] == 1 && sp[4] == 0 && st[5] == 1 && st[4] == c) return k;
    }
    return -1;
}

#define EM_BINARY_RUNS(T, RUN)                                                                                    \
    do {                                                                                                          \
        const int64_t* dims_ = p->i + EM_BINARY_I_DIMS;                                                           \
        const int64_t* st1_ = p->i + EM_BINARY_I_STRIDES1;                                                        \
        const int64_t* st2_ = p->i + EM_BINARY_I_STRIDES2;                                                        \
        const T* x1_ = (const T*)p->ptr[EM_BINARY_P_INPUT1];                                                      \
        const T* x2_ = (const T*)p->ptr[EM_BINARY_P_INPUT2];                                                      \
        T* y_ = (T*)p->ptr[EM_BINARY_P_OUTPUT];                                                                   \
        const int64_t inner_ = dims_[5];                                                                          \
        const int periodic_ = em_binary_periodic_input(p);                                                        \
        if (periodic_ >= 0) {                                                                                     \
            T rep_[EM_PERIODIC_BYTES];                                                                            \
            const int64_t len_ = (EM_PERIODIC_BYTES / (int64_t)sizeof(T) / inner_) * inner_;                      \
            const int64_t n_ = dims_[0] * dims_[1] * dims_[2] * dims_[3] * dims_[4] * inner_;                     \
            const T* per_ = periodic_ ? x2_ : x1_;                                                                \
            for (int64_t j_ = 0; j_ < len_; j_ += inner_) memcpy(rep_ + j_, per_, (size_t)inner_ * sizeof(T));    \
            for (int64_t k_ = 0; k_ < n_; k_ += len_) {                                                           \
                const int64_t m_ = n_ - k_ < len_ ? n_ - k_ : len_;                                               \
                if (periodic_) RUN(x1_ + k_, 0, rep_, 0, y_ + k_, m_);                                            \
                else RUN(rep_, 0, x2_ + k_, 0, y_ + k_, m_);                                                      \
            }                                                                                                     \
            break;                                                                                                \
        }                                                                                                         \
        const int held_ = em_binary_row_input(p);                                                                 \
        if (held_ >= 0) {                                                                                         \
            T rows_buf_[EM_PERIODIC_BYTES];                                                                       \
            const int64_t cap_ = (int64_t)(EM_PERIODIC_BYTES / sizeof(T)) / inner_;                               \
            const int64_t rows_ = dims_[4] < cap_ ? dims_[4] : cap_;                                              \
            const T* staged_ = NULL;                                                                              \
            int64_t o_ = 0;                                                                                       \
            for (int64_t i0 = 0; i0 < dims_[0]; i0++)                                                             \
            for (int64_t i1 = 0; i1 < dims_[1]; i1++)                                                             \
            for (int64_t i2 = 0; i2 < dims_[2]; i2++)                                                             \
            for (int64_t i3 = 0; i3 < dims_[3]; i3++, o_ += dims_[4] * inner_) {                                  \
                const T* r1_ = x1_ + i0 * st1_[0] + i1 * st1_[1] + i2 * st1_[2] + i3 * st1_[3];                   \
                const T* r2_ = x2_ + i0 * st2_[0] + i1 * st2_[1] + i2 * st2_[2] + i3 * st2_[3];                   \
                const T* row_ = held_ ? r2_ : r1_;                                                                \
                const T* other_ = held_ ? r1_ : r2_;                                                              \
                if (row_ != staged_) {                                                                            \
                    for (int64_t j_ = 0; j_ < rows_; j_++)                                                        \
                        memcpy(rows_buf_ + j_ * inner_, row_, (size_t)inner_ * sizeof(T));                        \
                    staged_ = row_;                                                                               \
                }                                                                                                 \
                for (int64_t j_ = 0; j_ < dims_[4]; j_ += rows_) {                                                \
                    const int64_t m_ = (dims_[4] - j_ < rows_ ? dims_[4] - j_ : rows_) * inner_;                  \
                    if (held_) RUN(other_ + j_ * inner_, 0, rows_buf_, 0, y_ + o_ + j_ * inner_, m_);             \
                    else RUN(rows_buf_, 0, other_ + j_ * inner_, 0, y_ + o_ + j_ * inner_, m_);                   \
                }                                                                                                 \
            }                                                                                                     \
            break;                                                                                                \
        }                                                                                                         \
        const int one1_ = st1_[5] == 0 || inner_ == 1, one2_ = st2_[5] == 0 || inner_ == 1;                       \
        int64_t o_ = 0;                                                                                           \
        for (int64_t i0 = 0; i0 < dims_[0]; i0++)                                                                 \
        for (int64_t i1 = 0; i1 < dims_[1]; i1++)                                                                 \
        for (int64_t i2 = 0; i2 < dims_[2]; i2++)                                                                 \
        for (int64_t i3 = 0; i3 < dims_[3]; i3++)                                                                 \
        for (int64_t i4 = 0; i4 < dims_[4]; i4++, o_ += inner_) {                                                 \
            const int64_t b1_ = i0 * st1_[0] + i1 * st1_[1] + i2 * st1_[2] + i3 * st1_[3] + i4 * st1_[4];         \
            const int64_t b2_ = i0 * st2_[0] + i1 * st2_[1] + i2 * st2_[2] + i3 * st2_[3] + i4 * st2_[4];         \
            RUN(x1_ + b1_, one1_, x2_ + b2_, one2_, y_ + o_, inner_);                                             \
        }                                                                                                         \
    } while (0)

/* One run of ADD / SUB, 16 lanes at a time (two independent chains per iteration); an input with one* set is one
 * element, whose stage is computed once. */
EM_VNNI_TARGET static inline void em_add_run16(const em_add_consts16* c, const int8_t* x1, int one1,
                                               const int8_t* x2, int one2, int8_t* y, int64_t n) {
    const __m512i c1 = em_add_input_x16(_mm512_set1_epi32(x1[0]), &c->in1);
    const __m512i c2 = em_add_input_x16(_mm512_set1_epi32(x2[0]), &c->in2);
#define EM_ADD16(K, M)                                                                                     \
    do {                                                                                                   \
        __m512i v1 = one1 ? c1 : em_add_input_x16(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8((M), x1 + (K))), &c->in1); \
        __m512i v2 = one2 ? c2 : em_add_input_x16(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8((M), x2 + (K))), &c->in2); \
        __m512i s = c->sub ? _mm512_sub_epi32(v1, v2) : _mm512_add_epi32(v1, v2);                         \
        __m512i r = em_add_output_x16(s, c->single, c->mo, c->sho, &c->co, c->ozp, c->amin, c->amax);      \
        _mm_mask_storeu_epi8(y + (K), (M), _mm512_cvtepi32_epi8(r));                                       \
    } while (0)
    int64_t k = 0;
    for (; k + 32 <= n; k += 32) {
        EM_ADD16(k, (__mmask16)0xFFFF);
        EM_ADD16(k + 16, (__mmask16)0xFFFF);
    }
    for (; k < n; k += 16) EM_ADD16(k, n - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - k)) - 1));
#undef EM_ADD16
}

/* Float estimates (em_binary_estimate) of 16 lanes: V rounded to the nearest integer, and the mask of lanes within
 * the margin of a tie. */
EM_VNNI_TARGET static inline __m512i em_estimate_round_x16(__m512 v, __m512 near_tie, __mmask16* near) {
    const __m512 d = _mm512_reduce_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);   /* v - round(v) */
    *near = _mm512_cmp_ps_mask(_mm512_abs_ps(d), near_tie, _CMP_GT_OQ);
    return _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

EM_VNNI_TARGET static inline __m512 em_int8_to_ps_x16(__m128i bytes) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes));
}

/* 16 lanes of ADD / SUB by the float estimate, from the int8 values b1, b2 (a one-element input's term is in c0);
 * a vector holding a lane near a tie is computed by em_add_run16's exact arithmetic instead.  Clamped int32. */
EM_VNNI_TARGET static inline __m512i em_add_estimate_x16(const em_add_consts16* c, __m512 a, __m512 b, __m512 c0,
                                                         __m512 lim, __m128i b1, int one1, __m128i b2, int one2) {
    __m512 v = c0;
    if (!one1) v = _mm512_fmadd_ps(em_int8_to_ps_x16(b1), a, v);
    if (!one2) v = _mm512_fmadd_ps(em_int8_to_ps_x16(b2), b, v);
    __mmask16 near;
    __m512i r = em_estimate_round_x16(v, lim, &near);
    if (__builtin_expect(near != 0, 0)) {
        const __m512i v1 = em_add_input_x16(_mm512_cvtepi8_epi32(b1), &c->in1);
        const __m512i v2 = em_add_input_x16(_mm512_cvtepi8_epi32(b2), &c->in2);
        return em_add_output_x16(c->sub ? _mm512_sub_epi32(v1, v2) : _mm512_add_epi32(v1, v2), c->single, c->mo,
                                 c->sho, &c->co, c->ozp, c->amin, c->amax);
    }
    return _mm512_min_epi32(_mm512_max_epi32(r, c->amin), c->amax);
}

/* One run of ADD / SUB by the float estimate: 64 elements per step (one 64-byte store), then 16 at a time. */
EM_VNNI_TARGET static inline void em_add_estimate_run16(const em_add_consts16* c, const em_binary_estimate* e,
                                                        const int8_t* x1, int one1, const int8_t* x2, int one2,
                                                        int8_t* y, int64_t n) {
    const __m512 a = _mm512_set1_ps(e->a), b = _mm512_set1_ps(e->b), lim = _mm512_set1_ps(e->near_tie);
    float base = e->c;
    if (one1) base = (float)x1[0] * e->a + base;
    if (one2) base = (float)x2[0] * e->b + base;
    const __m512 c0 = _mm512_set1_ps(base);
    const __m128i s1 = _mm_set1_epi8(x1[0]), s2 = _mm_set1_epi8(x2[0]);
    /* packs leave dword 4 L + j holding group j's lanes 4 L .. 4 L + 3 */
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    int64_t k = 0;
    for (; k + 64 <= n; k += 64) {
        __m512i r[4];
        for (int j = 0; j < 4; j++)
            r[j] = em_add_estimate_x16(c, a, b, c0, lim,
                                       one1 ? s1 : _mm_loadu_si128((const __m128i*)(x1 + k + 16 * j)), one1,
                                       one2 ? s2 : _mm_loadu_si128((const __m128i*)(x2 + k + 16 * j)), one2);
        const __m512i bytes = _mm512_packs_epi16(_mm512_packs_epi32(r[0], r[1]), _mm512_packs_epi32(r[2], r[3]));
        _mm512_storeu_si512((void*)(y + k), _mm512_permutexvar_epi32(order, bytes));
    }
    for (; k < n; k += 16) {
        const __mmask16 mk = n - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - k)) - 1);
        const __m512i r = em_add_estimate_x16(c, a, b, c0, lim, one1 ? s1 : _mm_maskz_loadu_epi8(mk, x1 + k), one1,
                                              one2 ? s2 : _mm_maskz_loadu_epi8(mk, x2 + k), one2);
        _mm_mask_storeu_epi8(y + k, mk, _mm512_cvtepi32_epi8(r));
    }
}

/* ADD / SUB int8 with any broadcast, 16 lanes at a time, either rounding mode; layout EM_ADD as em_add_int8.
 * tables: scratch of 2 KB; EM_ADD_TABLE_MIN elements and more in runs of 64 or more (or per channel) take the table
 * loop (with VBMI). */
#define EM_ADD_TABLE_MIN 1024
EM_VNNI_TARGET static void em_add_int8_avx512(const em_params* p) {
    EM_ADD_SPLIT(em_add_int8_avx512);
    const int64_t* q = p->i;
    const int64_t* dims = p->i + EM_BINARY_I_DIMS;
    const int64_t n = dims[0] * dims[1] * dims[2] * dims[3] * dims[4] * dims[5];
    em_add_consts16 c;
    c.in1 = em_add_input_consts(q[EM_ADD_I_ZP1], q[EM_ADD_I_MULT1], q[EM_ADD_I_SHIFT1], q[EM_ADD_I_LEFT_SHIFT],
                                q[EM_ADD_I_MODE]);
    c.in2 = em_add_input_consts(q[EM_ADD_I_ZP2], q[EM_ADD_I_MULT2], q[EM_ADD_I_SHIFT2], q[EM_ADD_I_LEFT_SHIFT],
                                q[EM_ADD_I_MODE]);
    c.ozp = _mm512_set1_epi32((int32_t)q[EM_ADD_I_OUT_ZP]);
    c.mo = _mm512_set1_epi32((int32_t)q[EM_ADD_I_OUT_MULT]);
    c.sho = _mm512_set1_epi32((int32_t)q[EM_ADD_I_OUT_SHIFT]);
    c.amin = _mm512_set1_epi32((int32_t)q[EM_ADD_I_ACT_MIN]);
    c.amax = _mm512_set1_epi32((int32_t)q[EM_ADD_I_ACT_MAX]);
    c.co = em_mbqm_consts(c.mo, c.sho);
    c.single = q[EM_ADD_I_MODE] == EM_ROUND_SINGLE;
    c.sub = q[EM_ADD_I_SIGN] < 0;
    const em_binary_estimate e = em_add_estimate(q);
    if (e.ok) {
#define EM_ADD_ESTIMATE_RUN16(A, ONE1, B, ONE2, Y, N) em_add_estimate_run16(&c, &e, A, ONE1, B, ONE2, Y, N)
#define EM_ADD_ESTIMATE_RUN16_LUT(A, ONE1, B, ONE2, Y, N) EM_RUN_VIA_LUT(EM_ADD_ESTIMATE_RUN16, A, ONE1, B, ONE2, Y, N)
        EM_BINARY_RUNS(int8_t, EM_ADD_ESTIMATE_RUN16_LUT);
#undef EM_ADD_ESTIMATE_RUN16_LUT
#undef EM_ADD_ESTIMATE_RUN16
        return;
    }
    if ((dims[5] >= 64 || em_binary_periodic_input(p) >= 0 || em_binary_row_input(p) >= 0) && n >= EM_ADD_TABLE_MIN &&
        p->ptr[EM_ADD_P_TABLES] != NULL && __builtin_cpu_supports("avx512vbmi")) {
        uint8_t* t1 = (uint8_t*)p->ptr[EM_ADD_P_TABLES];
        uint8_t* t2 = t1 + 1024;
        em_add_build_table(&c.in1, t1);
        em_add_build_table(&c.in2, t2);
#define EM_ADD_TABLES_RUN(A, ONE1, B, ONE2, Y, N) em_add_tables_run(&c, t1, t2, A, ONE1, B, ONE2, Y, N)
#define EM_ADD_TABLES_RUN_LUT(A, ONE1, B, ONE2, Y, N) EM_RUN_VIA_LUT(EM_ADD_TABLES_RUN, A, ONE1, B, ONE2, Y, N)
        EM_BINARY_RUNS(int8_t, EM_ADD_TABLES_RUN_LUT);
#undef EM_ADD_TABLES_RUN_LUT
#undef EM_ADD_TABLES_RUN
        return;
    }
#define EM_ADD_RUN16(A, ONE1, B, ONE2, Y, N) em_add_run16(&c, A, ONE1, B, ONE2, Y, N)
#define EM_ADD_RUN16_LUT(A, ONE1, B, ONE2, Y, N) EM_RUN_VIA_LUT(EM_ADD_RUN16, A, ONE1, B, ONE2, Y, N)
    EM_BINARY_RUNS(int8_t, EM_ADD_RUN16_LUT);
#undef EM_ADD_RUN16_LUT
#undef EM_ADD_RUN16
}

/* MUL's constants, 16 lanes. */
typedef struct { __m512i zp1, zp2, ozp, m, sh, amin, amax; em_mbqm16 c; int single; } em_mul_consts16;

EM_VNNI_TARGET static inline void em_mul_run16(const em_mul_consts16* c, const int8_t* x1, int one1,
                                               const int8_t* x2, int one2, int8_t* y, int64_t n) {
    for (int64_t k = 0; k < n; k += 16) {
        const __mmask16 mk = n - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - k)) - 1);
        __m512i a = _mm512_cvtepi8_epi32(one1 ? _mm_set1_epi8(x1[0]) : _mm_maskz_loadu_epi8(mk, x1 + k));
        __m512i b = _mm512_cvtepi8_epi32(one2 ? _mm_set1_epi8(x2[0]) : _mm_maskz_loadu_epi8(mk, x2 + k));
        __m512i prod = _mm512_mullo_epi32(_mm512_sub_epi32(a, c->zp1), _mm512_sub_epi32(b, c->zp2));
        __m512i r = c->single ? em_mbqm_single_x16(prod, c->m, c->sh) : em_mbqm_apply_x16(prod, &c->c);
        r = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(r, c->ozp), c->amin), c->amax);
        _mm_mask_storeu_epi8(y + k, mk, _mm512_cvtepi32_epi8(r));
    }
}

/* One run of MUL by the float estimate (as em_add_estimate_run16), 16 lanes at a time. */
EM_VNNI_TARGET static inline void em_mul_estimate_run16(const em_mul_consts16* c, const em_binary_estimate* e,
                                                        const int8_t* x1, int one1, const int8_t* x2, int one2,
                                                        int8_t* y, int64_t n) {
    const __m512 a = _mm512_set1_ps(e->a), c0 = _mm512_set1_ps(e->c), lim = _mm512_set1_ps(e->near_tie);
    const __m512 z1 = _mm512_set1_ps(e->zp1), z2 = _mm512_set1_ps(e->zp2);
    const __m512 d1 = _mm512_set1_ps((float)x1[0] - e->zp1), d2 = _mm512_set1_ps((float)x2[0] - e->zp2);
    for (int64_t k = 0; k < n; k += 16) {
        const __mmask16 mk = n - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - k)) - 1);
        const __m128i b1 = one1 ? _mm_set1_epi8(x1[0]) : _mm_maskz_loadu_epi8(mk, x1 + k);
        const __m128i b2 = one2 ? _mm_set1_epi8(x2[0]) : _mm_maskz_loadu_epi8(mk, x2 + k);
        const __m512 f1 = one1 ? d1 : _mm512_sub_ps(em_int8_to_ps_x16(b1), z1);
        const __m512 f2 = one2 ? d2 : _mm512_sub_ps(em_int8_to_ps_x16(b2), z2);
        __mmask16 near;
        __m512i r = em_estimate_round_x16(_mm512_fmadd_ps(_mm512_mul_ps(f1, f2), a, c0), lim, &near);
        if (near) {
            const __m512i prod = _mm512_mullo_epi32(_mm512_sub_epi32(_mm512_cvtepi8_epi32(b1), c->zp1),
                                                    _mm512_sub_epi32(_mm512_cvtepi8_epi32(b2), c->zp2));
            r = _mm512_add_epi32(c->single ? em_mbqm_single_x16(prod, c->m, c->sh) : em_mbqm_apply_x16(prod, &c->c),
                                 c->ozp);
        }
        r = _mm512_min_epi32(_mm512_max_epi32(r, c->amin), c->amax);
        _mm_mask_storeu_epi8(y + k, mk, _mm512_cvtepi32_epi8(r));
    }
}

/* MUL int8 with any broadcast, 16 lanes at a time, either rounding mode; layout EM_MUL as em_mul_int8 below */
EM_VNNI_TARGET static void em_mul_int8_avx512(const em_params* p) {
    EM_MUL_SPLIT(em_mul_int8_avx512);
    const int64_t* q = p->i;
    em_mul_consts16 c;
    c.zp1 = _mm512_set1_epi32((int32_t)q[EM_MUL_I_ZP1]);
    c.zp2 = _mm512_set1_epi32((int32_t)q[EM_MUL_I_ZP2]);
    c.ozp = _mm512_set1_epi32((int32_t)q[EM_MUL_I_OUT_ZP]);
    c.m = _mm512_set1_epi32((int32_t)q[EM_MUL_I_MULT]);
    c.sh = _mm512_set1_epi32((int32_t)q[EM_MUL_I_SHIFT]);
    c.amin = _mm512_set1_epi32((int32_t)q[EM_MUL_I_ACT_MIN]);
    c.amax = _mm512_set1_epi32((int32_t)q[EM_MUL_I_ACT_MAX]);
    c.c = em_mbqm_consts(c.m, c.sh);
    c.single = q[EM_MUL_I_MODE] == EM_ROUND_SINGLE;
    const em_binary_estimate e = em_mul_estimate(q);
    if (e.ok) {
#define EM_MUL_ESTIMATE_RUN16(A, ONE1, B, ONE2, Y, N) em_mul_estimate_run16(&c, &e, A, ONE1, B, ONE2, Y, N)
#define EM_MUL_ESTIMATE_RUN16_LUT(A, ONE1, B, ONE2, Y, N) EM_RUN_VIA_LUT(EM_MUL_ESTIMATE_RUN16, A, ONE1, B, ONE2, Y, N)
        EM_BINARY_RUNS(int8_t, EM_MUL_ESTIMATE_RUN16_LUT);
#undef EM_MUL_ESTIMATE_RUN16_LUT
#undef EM_MUL_ESTIMATE_RUN16
        return;
    }
#define EM_MUL_RUN16(A, ONE1, B, ONE2, Y, N) em_mul_run16(&c, A, ONE1, B, ONE2, Y, N)
#define EM_MUL_RUN16_LUT(A, ONE1, B, ONE2, Y, N) EM_RUN_VIA_LUT(EM_MUL_RUN16, A, ONE1, B, ONE2, Y, N)
    EM_BINARY_RUNS(int8_t, EM_MUL_RUN16_LUT);
#undef EM_MUL_RUN16_LUT
#undef EM_MUL_RUN16
}

/* ---- AVX2 (also the avx512 path without VNNI): the same runs, 8 lanes, 32 elements per iteration ----------- */
#include "em_gemm_avx2.h"

/* MultiplyByQuantizedMultiplier, double rounding, 8 lanes: per-lane multiplier and shift (left shifts first,
 * then SRDHM, then a rounding right shift, ties away from zero). */
EM_AVX2_TARGET static inline __m256i em_ew_mbqm_double_x8(__m256i x, __m256i m, __m256i shift) {
    const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1);
    const __m256i round = _mm256_set1_epi64x(1LL << 30);
    const __m256i left = _mm256_max_epi32(shift, zero);
    const __m256i right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
    x = _mm256_sllv_epi32(x, left);
    const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, m), round), 31);
    const __m256i odd = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32),
                                                                            _mm256_srli_epi64(m, 32)), round), 31);
    const __m256i v = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
    const __m256i threshold = _mm256_add_epi32(_mm256_srli_epi32(mask, 1), _mm256_srli_epi32(v, 31));
    const __m256i up = _mm256_cmpgt_epi32(_mm256_and_si256(v, mask), threshold);   /* -1 where rounding up */
    return _mm256_sub_epi32(_mm256_srav_epi32(v, right), up);
}

/* One input's stage of ADD, 8 lanes: the 32-bit form for double rounding with left shift 20 and no multiplier
 * left shift (as em_srdhm_shifted20_x16 + em_rdbpot_x16), else the general MBQM. */
typedef struct { __m256i zp, m, sh, mh, ml, hpos, corr, right; int single, small, ls; } em_add_input8;

EM_AVX2_TARGET static inline em_add_input8 em_add_input_consts8(int64_t zp, int64_t m, int64_t sh, int64_t ls,
                                                                 int64_t mode) {
    em_add_input8 q;
    const int32_t e = sh < 0 ? (int32_t)-sh : 0;
    q.zp = _mm256_set1_epi32((int32_t)zp);
    q.m = _mm256_set1_epi32((int32_t)m);
    q.sh = _mm256_set1_epi32((int32_t)sh);
    q.mh = _mm256_set1_epi32((int32_t)((uint32_t)m >> 16));
    q.ml = _mm256_set1_epi32((int32_t)(m & 0xFFFF));
    q.right = _mm256_set1_epi32(e);
    q.hpos = _mm256_set1_epi32(e > 0 ? (int32_t)1 << (e - 1) : 0);
    q.corr = _mm256_set1_epi32(e > 0 ? -1 : 0);
    q.ls = (int)ls;
    q.single = mode == EM_ROUND_SINGLE;
    q.small = !q.single && ls == 20 && sh <= 0;
    return q;
}

EM_AVX2_TARGET static inline __m256i em_add_input_x8(__m256i x, const em_add_input8* q) {
    __m256i d = _mm256_sub_epi32(x, q->zp);
    if (q->small) {
        const __m256i low = _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(d, q->ml),
                                                               _mm256_set1_epi32(1 << 10)), 11);
        const __m256i v = _mm256_add_epi32(_mm256_slli_epi32(_mm256_mullo_epi32(d, q->mh), 5), low);
        const __m256i t = _mm256_add_epi32(_mm256_add_epi32(v, q->hpos), _mm256_and_si256(_mm256_srai_epi32(v, 31),
                                                                                          q->corr));
        return _mm256_srav_epi32(t, q->right);
    }
    d = _mm256_slli_epi32(d, q->ls);
    return q->single ? em_mbqm_single_x8(d, q->m, q->sh) : em_ew_mbqm_double_x8(d, q->m, q->sh);
}

/* Four 8-lane int32 vectors of elements 0-7, 8-15, 16-23, 24-31 to 32 int8 in order (saturating packs). */
EM_AVX2_TARGET static inline __m256i em_pack32_x8(__m256i r0, __m256i r1, __m256i r2, __m256i r3) {
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(r0, r1), _mm256_packs_epi32(r2, r3));
    return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* A run in blocks of 32: BLOCK(a, b, out) maps two 32-byte vectors to 32 output bytes; a tail goes through 32-byte
 * buffers.  A one-element input is broadcast to every byte of its vector. */
#define EM_AVX2_RUN32(BLOCK)                                                                                  \
    do {                                                                                                      \
        if (n <= 0) break;                         /* x1[0] / x2[0] below would read past an empty run */     \
        const __m256i s1_ = _mm256_set1_epi8((char)x1[0]), s2_ = _mm256_set1_epi8((char)x2[0]);              \
        int64_t k_ = 0;                                                                                       \
        for (; k_ + 32 <= n; k_ += 32) {                                                                      \
            const __m256i a_ = one1 ? s1_ : _mm256_loadu_si256((const __m256i*)(x1 + k_));                  \
            const __m256i b_ = one2 ? s2_ : _mm256_loadu_si256((const __m256i*)(x2 + k_));                  \
            _mm256_storeu_si256((__m256i*)(y + k_), BLOCK(c, a_, b_));                                       \
        }                                                                                                     \
        if (k_ < n) {                                                                                         \
            int8_t ba_[32], bb_[32], by_[32];                                                                 \
            for (int64_t j_ = 0; j_ < 32; j_++) {                                                             \
                ba_[j_] = one1 ? x1[0] : (k_ + j_ < n ? x1[k_ + j_] : 0);                                     \
                bb_[j_] = one2 ? x2[0] : (k_ + j_ < n ? x2[k_ + j_] : 0);                                     \
            }                                                                                                 \
            _mm256_storeu_si256((__m256i*)by_, BLOCK(c, _mm256_loadu_si256((const __m256i*)ba_),              \
                                                     _mm256_loadu_si256((const __m256i*)bb_)));               \
            for (int64_t j_ = 0; k_ + j_ < n; j_++) y[k_ + j_] = by_[j_];                                     \
        }                                                                                                     \
    } while (0)

typedef struct {
    em_add_input8 in1, in2;
    __m256i mo, sho, ozp, amin, amax;
    int single, sub;
} em_add_consts8;

EM_AVX2_TARGET static inline __m256i em_add_block32(const em_add_consts8* c, __m256i a, __m256i b) {
    __m256i r[4];
    for (int j = 0; j < 4; j++) {
        const __m128i ha = j < 2 ? _mm256_castsi256_si128(a) : _mm256_extracti128_si256(a, 1);
        const __m128i hb = j < 2 ? _mm256_castsi256_si128(b) : _mm256_extracti128_si256(b, 1);
        const __m256i va = em_add_input_x8(_mm256_cvtepi8_epi32(j & 1 ? _mm_srli_si128(ha, 8) : ha), &c->in1);
        const __m256i vb = em_add_input_x8(_mm256_cvtepi8_epi32(j & 1 ? _mm_srli_si128(hb, 8) : hb), &c->in2);
        const __m256i s = c->sub ? _mm256_sub_epi32(va, vb) : _mm256_add_epi32(va, vb);
        const __m256i o = c->single ? em_mbqm_single_x8(s, c->mo, c->sho) : em_ew_mbqm_double_x8(s, c->mo, c->sho);
        r[j] = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(o, c->ozp), c->amin), c->amax);
    }
    return em_pack32_x8(r[0], r[1], r[2], r[3]);
}

EM_AVX2_TARGET static inline void em_add_run8(const em_add_consts8* c, const int8_t* x1, int one1,
                                              const int8_t* x2, int one2, int8_t* y, int64_t n) {
    EM_AVX2_RUN32(em_add_block32);
}

/* 8 lanes of a float estimate (em_binary_estimate) rounded to the nearest integer; near collects the lanes within
 * the margin of a tie (all bits set). */
EM_AVX2_TARGET static inline __m256i em_estimate_round_x8(__m256 v, __m256 lim, __m256* near) {
    const __m256 rounded = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 d = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, rounded));
    *near = _mm256_or_ps(*near, _mm256_cmp_ps(d, lim, _CMP_GT_OQ));
    return _mm256_cvttps_epi32(rounded);
}

EM_AVX2_TARGET static inline __m256 em_int8_to_ps_x8(__m128i bytes) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes));
}

/* Group j (0-3) of the 32 bytes of v, as 8 int8 in the low half of a 128-bit vector. */
EM_AVX2_TARGET static inline __m128i em_bytes8_x8(__m256i v, int j) {
    const __m128i h = j < 2 ? _mm256_castsi256_si128(v) : _mm256_extracti128_si256(v, 1);
    return j & 1 ? _mm_srli_si128(h, 8) : h;
}

typedef struct { em_add_consts8 exact; __m256 a, b, c0, lim; __m256i amin, amax; } em_add_estimate8;

/* 32 elements of ADD / SUB by the float estimate (no FMA: products and sums rounded apart, within the bound);
 * a block holding a lane near a tie is computed by em_add_block32 instead. */
EM_AVX2_TARGET static inline __m256i em_add_estimate_block32(const em_add_estimate8* c, __m256i a, __m256i b) {
    __m256i r[4];
    __m256 near = _mm256_setzero_ps();
    for (int j = 0; j < 4; j++) {
        __m256 v = _mm256_add_ps(_mm256_mul_ps(em_int8_to_ps_x8(em_bytes8_x8(a, j)), c->a), c->c0);
        v = _mm256_add_ps(_mm256_mul_ps(em_int8_to_ps_x8(em_bytes8_x8(b, j)), c->b), v);
        r[j] = em_estimate_round_x8(v, c->lim, &near);
    }
    if (__builtin_expect(_mm256_movemask_ps(near) != 0, 0)) return em_add_block32(&c->exact, a, b);
    return _mm256_min_epi8(_mm256_max_epi8(em_pack32_x8(r[0], r[1], r[2], r[3]), c->amin), c->amax);
}

EM_AVX2_TARGET static inline void em_add_estimate_run8(const em_add_estimate8* c, const int8_t* x1, int one1,
                                                       const int8_t* x2, int one2, int8_t* y, int64_t n) {
    EM_AVX2_RUN32(em_add_estimate_block32);
}

/* ADD / SUB int8 with any broadcast on AVX2, either rounding mode; layout EM_ADD (tables not read). */
EM_AVX2_TARGET static void em_add_int8_avx2(const em_params* p) {
    EM_ADD_SPLIT(em_add_int8_avx2);
    const int64_t* q = p->i;
    em_add_consts8 c;
    c.in1 = em_add_input_consts8(q[EM_ADD_I_ZP1], q[EM_ADD_I_MULT1], q[EM_ADD_I_SHIFT1], q[EM_ADD_I_LEFT_SHIFT],
                                 q[EM_ADD_I_MODE]);
    c.in2 = em_add_input_consts8(q[EM_ADD_I_ZP2], q[EM_ADD_I_MULT2], q[EM_ADD_I_SHIFT2], q[EM_ADD_I_LEFT_SHIFT],
                                 q[EM_ADD_I_MODE]);
    c.ozp = _mm256_set1_epi32((int32_t)q[EM_ADD_I_OUT_ZP]);
    c.mo = _mm256_set1_epi32((int32_t)q[EM_ADD_I_OUT_MULT]);
    c.sho = _mm256_set1_epi32((int32_t)q[EM_ADD_I_OUT_SHIFT]);
    c.amin = _mm256_set1_epi32((int32_t)q[EM_ADD_I_ACT_MIN]);
    c.amax = _mm256_set1_epi32((int32_t)q[EM_ADD_I_ACT_MAX]);
    c.single = q[EM_ADD_I_MODE] == EM_ROUND_SINGLE;
    c.sub = q[EM_ADD_I_SIGN] < 0;
    const em_binary_estimate e = em_add_estimate(q);
    if (e.ok) {
        const em_add_estimate8 ce = {c, _mm256_set1_ps(e.a), _mm256_set1_ps(e.b), _mm256_set1_ps(e.c),
                                     _mm256_set1_ps(e.near_tie), _mm256_set1_epi8((char)q[EM_ADD_I_ACT_MIN]),
                                     _mm256_set1_epi8((char)q[EM_ADD_I_ACT_MAX])};
        /* long one-element runs too: here the estimate is as fast as the run's table (EM_RUN_VIA_LUT) */
#define EM_ADD_ESTIMATE_RUN8(A, ONE1, B, ONE2, Y, N) em_add_estimate_run8(&ce, A, ONE1, B, ONE2, Y, N)
        EM_BINARY_RUNS(int8_t, EM_ADD_ESTIMATE_RUN8);
#undef EM_ADD_ESTIMATE_RUN8
        return;
    }
#define EM_ADD_RUN8(A, ONE1, B, ONE2, Y, N) em_add_run8(&c, A, ONE1, B, ONE2, Y, N)
#define EM_ADD_RUN8_LUT(A, ONE1, B, ONE2, Y, N) EM_RUN_VIA_LUT(EM_ADD_RUN8, A, ONE1, B, ONE2, Y, N)
    EM_BINARY_RUNS(int8_t, EM_ADD_RUN8_LUT);
#undef EM_ADD_RUN8_LUT
#undef EM_ADD_RUN8
}

typedef struct { __m256i zp1, zp2, ozp, m, sh, amin, amax; int single; } em_mul_consts8;

EM_AVX2_TARGET static inline __m256i em_mul_block32(const em_mul_consts8* c, __m256i a, __m256i b) {
    __m256i r[4];
    for (int j = 0; j < 4; j++) {
        const __m128i ha = j < 2 ? _mm256_castsi256_si128(a) : _mm256_extracti128_si256(a, 1);
        const __m128i hb = j < 2 ? _mm256_castsi256_si128(b) : _mm256_extracti128_si256(b, 1);
        const __m256i va = _mm256_sub_epi32(_mm256_cvtepi8_epi32(j & 1 ? _mm_srli_si128(ha, 8) : ha), c->zp1);
        const __m256i vb = _mm256_sub_epi32(_mm256_cvtepi8_epi32(j & 1 ? _mm_srli_si128(hb, 8) : hb), c->zp2);
        const __m256i prod = _mm256_mullo_epi32(va, vb);
        const __m256i o = c->single ? em_mbqm_single_x8(prod, c->m, c->sh) : em_ew_mbqm_double_x8(prod, c->m, c->sh);
        r[j] = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(o, c->ozp), c->amin), c->amax);
    }
    return em_pack32_x8(r[0], r[1], r[2], r[3]);
}

EM_AVX2_TARGET static inline void em_mul_run8(const em_mul_consts8* c, const int8_t* x1, int one1,
                                              const int8_t* x2, int one2, int8_t* y, int64_t n) {
    EM_AVX2_RUN32(em_mul_block32);
}

typedef struct { em_mul_consts8 exact; __m256 a, c0, lim, zp1, zp2; __m256i amin, amax; } em_mul_estimate8;

/* 32 elements of MUL by the float estimate (the product of the two differences is exact in float); a block
 * holding a lane near a tie is computed by em_mul_block32 instead. */
EM_AVX2_TARGET static inline __m256i em_mul_estimate_block32(const em_mul_estimate8* c, __m256i a, __m256i b) {
    __m256i r[4];
    __m256 near = _mm256_setzero_ps();
    for (int j = 0; j < 4; j++) {
        const __m256 d1 = _mm256_sub_ps(em_int8_to_ps_x8(em_bytes8_x8(a, j)), c->zp1);
        const __m256 d2 = _mm256_sub_ps(em_int8_to_ps_x8(em_bytes8_x8(b, j)), c->zp2);
        r[j] = em_estimate_round_x8(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(d1, d2), c->a), c->c0), c->lim, &near);
    }
    if (__builtin_expect(_mm256_movemask_ps(near) != 0, 0)) return em_mul_block32(&c->exact, a, b);
    return _mm256_min_epi8(_mm256_max_epi8(em_pack32_x8(r[0], r[1], r[2], r[3]), c->amin), c->amax);
}

/* Eight int8 at x widened to float, less the zero point. */
EM_AVX2_TARGET static inline __m256 em_diff_ps_x8(const int8_t* x, __m256 zp) {
    return _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)x))), zp);
}

EM_AVX2_TARGET static inline void em_mul_estimate_run8(const em_mul_estimate8* c, const int8_t* x1, int one1,
                                                       const int8_t* x2, int one2, int8_t* y, int64_t n) {
    if (!one1 && !one2) {
        /* both inputs advancing: em_mul_estimate_block32's arithmetic on groups of 8 widened straight from memory
         * (no byte extraction from 32-byte vectors) */
        int64_t k = 0;
        for (; k + 32 <= n; k += 32) {
            __m256i r[4];
            __m256 near = _mm256_setzero_ps();
            for (int j = 0; j < 4; j++) {
                const __m256 d1 = em_diff_ps_x8(x1 + k + 8 * j, c->zp1), d2 = em_diff_ps_x8(x2 + k + 8 * j, c->zp2);
                r[j] = em_estimate_round_x8(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(d1, d2), c->a), c->c0), c->lim,
                                            &near);
            }
            __m256i out;
            if (__builtin_expect(_mm256_movemask_ps(near) != 0, 0))
                out = em_mul_block32(&c->exact, _mm256_loadu_si256((const __m256i*)(x1 + k)),
                                     _mm256_loadu_si256((const __m256i*)(x2 + k)));
            else
                out = _mm256_min_epi8(_mm256_max_epi8(em_pack32_x8(r[0], r[1], r[2], r[3]), c->amin), c->amax);
            _mm256_storeu_si256((__m256i*)(y + k), out);
        }
        x1 += k;
        x2 += k;
        y += k;
        n -= k;
    }
    EM_AVX2_RUN32(em_mul_estimate_block32);
}

/* MUL int8 with any broadcast on AVX2, either rounding mode; layout EM_MUL. */
EM_AVX2_TARGET static void em_mul_int8_avx2(const em_params* p) {
    EM_MUL_SPLIT(em_mul_int8_avx2);
    const int64_t* q = p->i;
    em_mul_consts8 c;
    c.zp1 = _mm256_set1_epi32((int32_t)q[EM_MUL_I_ZP1]);
    c.zp2 = _mm256_set1_epi32((int32_t)q[EM_MUL_I_ZP2]);
    c.ozp = _mm256_set1_epi32((int32_t)q[EM_MUL_I_OUT_ZP]);
    c.m = _mm256_set1_epi32((int32_t)q[EM_MUL_I_MULT]);
    c.sh = _mm256_set1_epi32((int32_t)q[EM_MUL_I_SHIFT]);
    c.amin = _mm256_set1_epi32((int32_t)q[EM_MUL_I_ACT_MIN]);
    c.amax = _mm256_set1_epi32((int32_t)q[EM_MUL_I_ACT_MAX]);
    c.single = q[EM_MUL_I_MODE] == EM_ROUND_SINGLE;
    const em_binary_estimate e = em_mul_estimate(q);
    if (e.ok) {
        const em_mul_estimate8 ce = {c, _mm256_set1_ps(e.a), _mm256_set1_ps(e.c), _mm256_set1_ps(e.near_tie),
                                     _mm256_set1_ps(e.zp1), _mm256_set1_ps(e.zp2),
                                     _mm256_set1_epi8((char)q[EM_MUL_I_ACT_MIN]),
                                     _mm256_set1_epi8((char)q[EM_MUL_I_ACT_MAX])};
#define EM_MUL_ESTIMATE_RUN8(A, ONE1, B, ONE2, Y, N) em_mul_estimate_run8(&ce, A, ONE1, B, ONE2, Y, N)
#define EM_MUL_ESTIMATE_RUN8_LUT(A, ONE1, B, ONE2, Y, N) EM_RUN_VIA_LUT(EM_MUL_ESTIMATE_RUN8, A, ONE1, B, ONE2, Y, N)
        EM_BINARY_RUNS(int8_t, EM_MUL_ESTIMATE_RUN8_LUT);
#undef EM_MUL_ESTIMATE_RUN8_LUT
#undef EM_MUL_ESTIMATE_RUN8
        return;
    }
#define EM_MUL_RUN8(A, ONE1, B, ONE2, Y, N) em_mul_run8(&c, A, ONE1, B, ONE2, Y, N)
#define EM_MUL_RUN8_LUT(A, ONE1, B, ONE2, Y, N) EM_RUN_VIA_LUT(EM_MUL_RUN8, A, ONE1, B, ONE2, Y, N)
    EM_BINARY_RUNS(int8_t, EM_MUL_RUN8_LUT);
#undef EM_MUL_RUN8_LUT
#undef EM_MUL_RUN8
}
#else
static void em_add_int8_avx512(const em_params* p) { em_add_int8(p); }
static void em_add_int8_avx2(const em_params* p) { em_add_int8(p); }
static void em_mul_int8(const em_params* p);
static void em_mul_int8_avx512(const em_params* p) { em_mul_int8(p); }
static void em_mul_int8_avx2(const em_params* p) { em_mul_int8(p); }
#endif

/* MUL int8 (layout EM_MUL) */
static void em_mul_int8(const em_params* p) {
    EM_MUL_SPLIT(em_mul_int8);
#if defined(__aarch64__)
    if (em_isa() >= EM_ISA_NEON && em_mul_int8_neon(p)) return;
#endif
    const int64_t* q = p->i;
    const int32_t zp1 = (int32_t)q[EM_MUL_I_ZP1], zp2 = (int32_t)q[EM_MUL_I_ZP2], ozp = (int32_t)q[EM_MUL_I_OUT_ZP];
    const int32_t m = (int32_t)q[EM_MUL_I_MULT], sh = (int32_t)q[EM_MUL_I_SHIFT];
    const int32_t amin = (int32_t)q[EM_MUL_I_ACT_MIN], amax = (int32_t)q[EM_MUL_I_ACT_MAX];
    const int mode = (int)q[EM_MUL_I_MODE];
    EM_BINARY_LOOP(int8_t, int8_t, {
        int32_t prod = ((int32_t)a - zp1) * ((int32_t)b - zp2);
        int32_t r = em_mbqm(prod, m, sh, mode) + ozp;
        y[o] = (int8_t)em_clamp_i32(r, amin, amax);
    })
}

/* float binary (layout EM_BINARY) */
static void em_add_f32(const em_params* p) {
    EM_BINARY_LOOP(float, float, { y[o] = em_clamp_f32(a + b, p->f[EM_BINARY_F_ACT_MIN], p->f[EM_BINARY_F_ACT_MAX]); })
}
static void em_sub_f32(const em_params* p) {
    EM_BINARY_LOOP(float, float, { y[o] = em_clamp_f32(a - b, p->f[EM_BINARY_F_ACT_MIN], p->f[EM_BINARY_F_ACT_MAX]); })
}
static void em_mul_f32(const em_params* p) {
    EM_BINARY_LOOP(float, float, { y[o] = em_clamp_f32(a * b, p->f[EM_BINARY_F_ACT_MIN], p->f[EM_BINARY_F_ACT_MAX]); })
}

/* Unary int8 -> int8 requantization y = clamp(out_zp + MBQM(x - in_zp, m, s)); RELU family, int8 QUANTIZE.
 * ptr: input, output; i: n, in_zp, out_zp, m, s, act_min, act_max, mode */
enum { EM_REQUANTIZE_P_INPUT, EM_REQUANTIZE_P_OUTPUT, EM_REQUANTIZE_P_COUNT };
enum { EM_REQUANTIZE_I_N, EM_REQUANTIZE_I_IN_ZP, EM_REQUANTIZE_I_OUT_ZP, EM_REQUANTIZE_I_MULT, EM_REQUANTIZE_I_SHIFT,
       EM_REQUANTIZE_I_ACT_MIN, EM_REQUANTIZE_I_ACT_MAX, EM_REQUANTIZE_I_MODE, EM_REQUANTIZE_I_COUNT };
enum { EM_REQUANTIZE_F_COUNT = 0 };

static void em_requantize_int8(const em_params* p) {
    const int64_t* q = p->i;
    const int8_t* x = (const int8_t*)p->ptr[EM_REQUANTIZE_P_INPUT];
    int8_t* y = (int8_t*)p->ptr[EM_REQUANTIZE_P_OUTPUT];
    const int32_t izp = (int32_t)q[EM_REQUANTIZE_I_IN_ZP], ozp = (int32_t)q[EM_REQUANTIZE_I_OUT_ZP];
    const int32_t m = (int32_t)q[EM_REQUANTIZE_I_MULT], sh = (int32_t)q[EM_REQUANTIZE_I_SHIFT];
    const int32_t amin = (int32_t)q[EM_REQUANTIZE_I_ACT_MIN], amax = (int32_t)q[EM_REQUANTIZE_I_ACT_MAX];
    const int mode = (int)q[EM_REQUANTIZE_I_MODE];
    for (int64_t k = 0; k < q[EM_REQUANTIZE_I_N]; k++)
        y[k] = (int8_t)em_clamp_i32(ozp + em_mbqm((int32_t)x[k] - izp, m, sh, mode), amin, amax);
}

/* LEAKY_RELU int8: ptr: input, output; i: n, in_zp, out_zp, m_identity, s_identity, m_alpha, s_alpha, mode */
enum { EM_LEAKY_RELU_P_INPUT, EM_LEAKY_RELU_P_OUTPUT, EM_LEAKY_RELU_P_COUNT };
enum { EM_LEAKY_RELU_I_N, EM_LEAKY_RELU_I_IN_ZP, EM_LEAKY_RELU_I_OUT_ZP, EM_LEAKY_RELU_I_MULT_IDENTITY,
       EM_LEAKY_RELU_I_SHIFT_IDENTITY, EM_LEAKY_RELU_I_MULT_ALPHA, EM_LEAKY_RELU_I_SHIFT_ALPHA, EM_LEAKY_RELU_I_MODE,
       EM_LEAKY_RELU_I_COUNT };
enum { EM_LEAKY_RELU_F_COUNT = 0 };

static void em_leaky_relu_int8(const em_params* p) {
    const int64_t* q = p->i;
    const int8_t* x = (const int8_t*)p->ptr[EM_LEAKY_RELU_P_INPUT];
    int8_t* y = (int8_t*)p->ptr[EM_LEAKY_RELU_P_OUTPUT];
    const int mode = (int)q[EM_LEAKY_RELU_I_MODE];
    for (int64_t k = 0; k < q[EM_LEAKY_RELU_I_N]; k++) {
        int32_t v = (int32_t)x[k] - (int32_t)q[EM_LEAKY_RELU_I_IN_ZP];
        int32_t r = v >= 0
            ? em_mbqm(v, (int32_t)q[EM_LEAKY_RELU_I_MULT_IDENTITY], (int)q[EM_LEAKY_RELU_I_SHIFT_IDENTITY], mode)
            : em_mbqm(v, (int32_t)q[EM_LEAKY_RELU_I_MULT_ALPHA], (int)q[EM_LEAKY_RELU_I_SHIFT_ALPHA], mode);
        y[k] = (int8_t)em_clamp_i32(r + (int32_t)q[EM_LEAKY_RELU_I_OUT_ZP], -128, 127);
    }
}

/* QUANTIZE float -> int8: ptr: input, output; i: n, zp; f: scale.  x / scale divided in float32 and rounded half
 * away from zero, as LiteRT's AffineQuantize does. */
enum { EM_QUANTIZE_P_INPUT, EM_QUANTIZE_P_OUTPUT, EM_QUANTIZE_P_COUNT };
enum { EM_QUANTIZE_I_N, EM_QUANTIZE_I_ZP, EM_QUANTIZE_I_COUNT };
enum { EM_QUANTIZE_F_SCALE, EM_QUANTIZE_F_COUNT };

/* The same with a status word, for Interpreter.run()'s float inputs: layout EM_QUANTIZE_CHECKED, the quantize
 * slots, then status (int32: 1 when some input is not finite, else 0). */
enum { EM_QUANTIZE_CHECKED_P_STATUS = EM_QUANTIZE_P_COUNT, EM_QUANTIZE_CHECKED_P_COUNT };
enum { EM_QUANTIZE_CHECKED_I_COUNT = EM_QUANTIZE_I_COUNT };
enum { EM_QUANTIZE_CHECKED_F_COUNT = EM_QUANTIZE_F_COUNT };

/* The portable body; returns 1 when some x is not finite (inf - inf and NaN - NaN are NaN). */
static int em_quantize_f32_int8_scalar(const float* x, int8_t* y, int64_t n, float scale, int32_t zp) {
    int bad = 0;
    for (int64_t k = 0; k < n; k++) {
        const float v = x[k];
        bad |= !(v - v == 0.0f);
        float r = roundf(v / scale);
        if (r > 1e9f) r = 1e9f;          /* keep the int conversion defined for inf / huge inputs */
        if (r < -1e9f) r = -1e9f;
        if (r != r) r = 0.0f;            /* NaN */
        y[k] = (int8_t)em_clamp_i32((int32_t)r + zp, -128, 127);
    }
    return bad;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* 16 lanes: the same float division, roundf as trunc + (remainder >= 0.5) - (remainder <= -0.5) (the remainder is
 * exact), NaN to 0, saturating narrowing. */
EM_VNNI_TARGET static int em_quantize_f32_int8_avx512(const float* x, int8_t* y, int64_t n, float scale, int32_t zp) {
    const __m512 s = _mm512_set1_ps(scale), half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    const __m512 big = _mm512_set1_ps(1e9f);
    const __m512i z = _mm512_set1_epi32(zp);
    __mmask16 bad = 0;
    for (int64_t k = 0; k < n; k += 16) {
        const __mmask16 m = n - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - k)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + k);
        bad |= _mm512_mask_cmp_ps_mask(m, _mm512_sub_ps(v, v), _mm512_setzero_ps(), _CMP_NEQ_UQ);
        const __m512 q = _mm512_div_ps(v, s);
        __m512 t = _mm512_roundscale_ps(q, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        const __m512 d = _mm512_sub_ps(q, t);
        t = _mm512_mask_add_ps(t, _mm512_cmp_ps_mask(d, half, _CMP_GE_OQ), t, one);
        t = _mm512_mask_sub_ps(t, _mm512_cmp_ps_mask(d, _mm512_sub_ps(_mm512_setzero_ps(), half), _CMP_LE_OQ), t, one);
        t = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(t, t, _CMP_ORD_Q), t);
        t = _mm512_min_ps(_mm512_max_ps(t, _mm512_sub_ps(_mm512_setzero_ps(), big)), big);
        const __m512i r = _mm512_add_epi32(_mm512_cvttps_epi32(t), z);
        _mm_mask_storeu_epi8(y + k, m, _mm512_cvtsepi32_epi8(r));
    }
    return bad != 0;
}

EM_AVX2_TARGET static inline __m256i em_quantize_x8(__m256 v, __m256 s, __m256i z, __m256* bad) {
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f), big = _mm256_set1_ps(1e9f);
    *bad = _mm256_or_ps(*bad, _mm256_cmp_ps(_mm256_sub_ps(v, v), _mm256_setzero_ps(), _CMP_NEQ_UQ));
    const __m256 q = _mm256_div_ps(v, s);
    __m256 t = _mm256_round_ps(q, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 d = _mm256_sub_ps(q, t);
    t = _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(d, half, _CMP_GE_OQ), one));
    t = _mm256_sub_ps(t, _mm256_and_ps(_mm256_cmp_ps(d, _mm256_sub_ps(_mm256_setzero_ps(), half), _CMP_LE_OQ), one));
    t = _mm256_and_ps(t, _mm256_cmp_ps(t, t, _CMP_ORD_Q));
    t = _mm256_min_ps(_mm256_max_ps(t, _mm256_sub_ps(_mm256_setzero_ps(), big)), big);
    return _mm256_add_epi32(_mm256_cvttps_epi32(t), z);
}

EM_AVX2_TARGET static int em_quantize_f32_int8_avx2(const float* x, int8_t* y, int64_t n, float scale, int32_t zp) {
    const __m256 s = _mm256_set1_ps(scale);
    const __m256i z = _mm256_set1_epi32(zp);
    __m256 bad = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= n; k += 32) {
        const __m256i r0 = em_quantize_x8(_mm256_loadu_ps(x + k), s, z, &bad);
        const __m256i r1 = em_quantize_x8(_mm256_loadu_ps(x + k + 8), s, z, &bad);
        const __m256i r2 = em_quantize_x8(_mm256_loadu_ps(x + k + 16), s, z, &bad);
        const __m256i r3 = em_quantize_x8(_mm256_loadu_ps(x + k + 24), s, z, &bad);
        _mm256_storeu_si256((__m256i*)(y + k), em_pack32_x8(r0, r1, r2, r3));
    }
    return (_mm256_movemask_ps(bad) != 0) | em_quantize_f32_int8_scalar(x + k, y + k, n - k, scale, zp);
}
#endif

static int em_quantize_f32_int8_any(const float* x, int8_t* y, int64_t n, float scale, int32_t zp) {
#if defined(__x86_64__) && defined(__GNUC__)
    const int isa = em_isa();
    if (isa == EM_ISA_AVX512VNNI) return em_quantize_f32_int8_avx512(x, y, n, scale, zp);
    if (isa >= EM_ISA_AVX2) return em_quantize_f32_int8_avx2(x, y, n, scale, zp);
#endif
    return em_quantize_f32_int8_scalar(x, y, n, scale, zp);
}

static void em_quantize_f32_int8(const em_params* p) {
    em_quantize_f32_int8_any((const float*)p->ptr[EM_QUANTIZE_P_INPUT], (int8_t*)p->ptr[EM_QUANTIZE_P_OUTPUT],
                             p->i[EM_QUANTIZE_I_N], p->f[EM_QUANTIZE_F_SCALE], (int32_t)p->i[EM_QUANTIZE_I_ZP]);
}

static void em_quantize_f32_int8_checked(const em_params* p) {
    *(int32_t*)p->ptr[EM_QUANTIZE_CHECKED_P_STATUS] = em_quantize_f32_int8_any(
        (const float*)p->ptr[EM_QUANTIZE_P_INPUT], (int8_t*)p->ptr[EM_QUANTIZE_P_OUTPUT], p->i[EM_QUANTIZE_I_N],
        p->f[EM_QUANTIZE_F_SCALE], (int32_t)p->i[EM_QUANTIZE_I_ZP]);
}

/* DEQUANTIZE int8 -> float: ptr: input, output; i: n, zp; f: scale. */
enum { EM_DEQUANTIZE_P_INPUT, EM_DEQUANTIZE_P_OUTPUT, EM_DEQUANTIZE_P_COUNT };
enum { EM_DEQUANTIZE_I_N, EM_DEQUANTIZE_I_ZP, EM_DEQUANTIZE_I_COUNT };
enum { EM_DEQUANTIZE_F_SCALE, EM_DEQUANTIZE_F_COUNT };

static void em_dequantize_int8_f32(const em_params* p) {
    const int8_t* x = (const int8_t*)p->ptr[EM_DEQUANTIZE_P_INPUT];
    float* y = (float*)p->ptr[EM_DEQUANTIZE_P_OUTPUT];
    const double scale = (double)p->f[EM_DEQUANTIZE_F_SCALE];
    const int32_t zp = (int32_t)p->i[EM_DEQUANTIZE_I_ZP];
    for (int64_t k = 0; k < p->i[EM_DEQUANTIZE_I_N]; k++) y[k] = (float)(scale * (double)((int32_t)x[k] - zp));
}

/* Float unary activations: ptr: input, output; i: n, kind (EM_ACT_*); f: act_min, act_max, alpha */
enum { EM_UNARY_F32_P_INPUT, EM_UNARY_F32_P_OUTPUT, EM_UNARY_F32_P_COUNT };
enum { EM_UNARY_F32_I_N, EM_UNARY_F32_I_KIND, EM_UNARY_F32_I_COUNT };
enum { EM_UNARY_F32_F_ACT_MIN, EM_UNARY_F32_F_ACT_MAX, EM_UNARY_F32_F_ALPHA, EM_UNARY_F32_F_COUNT };

enum { EM_ACT_CLAMP = 0, EM_ACT_LEAKY = 1, EM_ACT_LOGISTIC = 2, EM_ACT_TANH = 3, EM_ACT_HARD_SWISH = 4 };
static void em_unary_f32(const em_params* p) {
    const float* x = (const float*)p->ptr[EM_UNARY_F32_P_INPUT];
    float* y = (float*)p->ptr[EM_UNARY_F32_P_OUTPUT];
    const int64_t n = p->i[EM_UNARY_F32_I_N];
    switch ((int)p->i[EM_UNARY_F32_I_KIND]) {
    case EM_ACT_CLAMP:
        for (int64_t k = 0; k < n; k++)
            y[k] = em_clamp_f32(x[k], p->f[EM_UNARY_F32_F_ACT_MIN], p->f[EM_UNARY_F32_F_ACT_MAX]);
        break;
    case EM_ACT_LEAKY:
        for (int64_t k = 0; k < n; k++) y[k] = x[k] > 0.0f ? x[k] : x[k] * p->f[EM_UNARY_F32_F_ALPHA];
        break;
    case EM_ACT_LOGISTIC:
        for (int64_t k = 0; k < n; k++) {
            float v = x[k];
            if (v > 16.619047164916992188f) y[k] = 1.0f;
            else if (v < -9.0f) y[k] = expf(v);
            else y[k] = 1.0f / (1.0f + expf(-v));
        }
        break;
    case EM_ACT_TANH:
        for (int64_t k = 0; k < n; k++) y[k] = tanhf(x[k]);
        break;
    case EM_ACT_HARD_SWISH:
        for (int64_t k = 0; k < n; k++) {
            float v = x[k], r = v + 3.0f;
            r = r < 0.0f ? 0.0f : (r > 6.0f ? 6.0f : r);
            y[k] = v * r / 6.0f;
        }
        break;
    }
}

/* SOFTMAX float over the last axis: ptr: input, output; i: rows, depth; f: beta */
enum { EM_SOFTMAX_F32_P_INPUT, EM_SOFTMAX_F32_P_OUTPUT, EM_SOFTMAX_F32_P_COUNT };
enum { EM_SOFTMAX_F32_I_ROWS, EM_SOFTMAX_F32_I_DEPTH, EM_SOFTMAX_F32_I_COUNT };
enum { EM_SOFTMAX_F32_F_BETA, EM_SOFTMAX_F32_F_COUNT };

static void em_softmax_f32(const em_params* p) {
    const float* x = (const float*)p->ptr[EM_SOFTMAX_F32_P_INPUT];
    float* y = (float*)p->ptr[EM_SOFTMAX_F32_P_OUTPUT];
    const int64_t rows = p->i[EM_SOFTMAX_F32_I_ROWS], depth = p->i[EM_SOFTMAX_F32_I_DEPTH];
    const float beta = p->f[EM_SOFTMAX_F32_F_BETA];
    for (int64_t r = 0; r < rows; r++) {
        const float* xr = x + r * depth;
        float* yr = y + r * depth;
        float mx = xr[0];
        for (int64_t c = 1; c < depth; c++) mx = xr[c] > mx ? xr[c] : mx;
        float sum = 0.0f;
        for (int64_t c = 0; c < depth; c++) { yr[c] = expf((xr[c] - mx) * beta); sum += yr[c]; }
        for (int64_t c = 0; c < depth; c++) yr[c] = yr[c] / sum;
    }
}
#endif
