/* Element-wise ops: binary with broadcasting (ADD, SUB, MUL), unary requantizing activations,
 * QUANTIZE / DEQUANTIZE and the float activations. */
#ifndef EM_ELEMENTWISE_H
#define EM_ELEMENTWISE_H
#include <math.h>
#include "em_params.h"
#include "em_requant.h"

/* Binary ops, layout EM_BINARY (the float kernels; ADD / MUL int8 extend it below):
 * ptr: input 1, input 2, output
 * i:   output dims (6-D, leading 1s), input-1 strides, input-2 strides (6 each, 0 where broadcast)
 * f:   act_min, act_max (float kernels) */
enum { EM_BINARY_P_INPUT1, EM_BINARY_P_INPUT2, EM_BINARY_P_OUTPUT, EM_BINARY_P_COUNT };
enum { EM_BINARY_I_DIMS, EM_BINARY_I_DIMS_LAST = EM_BINARY_I_DIMS + 5, EM_BINARY_I_STRIDES1,
       EM_BINARY_I_STRIDES1_LAST = EM_BINARY_I_STRIDES1 + 5, EM_BINARY_I_STRIDES2,
       EM_BINARY_I_STRIDES2_LAST = EM_BINARY_I_STRIDES2 + 5, EM_BINARY_I_COUNT };
enum { EM_BINARY_F_ACT_MIN, EM_BINARY_F_ACT_MAX, EM_BINARY_F_COUNT };

/* ADD / SUB int8, layout EM_ADD: the binary pointers, then tables (scratch of 2 KB for em_add_int8_avx512's
 * tables, or NULL); the binary integers, then zp1, zp2, out_zp, left_shift, m1, s1, m2, s2, m_out, s_out,
 * act_min, act_max, mode, sign of input 2 (+1 ADD, -1 SUB) */
enum { EM_ADD_P_TABLES = EM_BINARY_P_OUTPUT + 1, EM_ADD_P_COUNT };
enum { EM_ADD_I_ZP1 = EM_BINARY_I_COUNT, EM_ADD_I_ZP2, EM_ADD_I_OUT_ZP, EM_ADD_I_LEFT_SHIFT, EM_ADD_I_MULT1,
       EM_ADD_I_SHIFT1, EM_ADD_I_MULT2, EM_ADD_I_SHIFT2, EM_ADD_I_OUT_MULT, EM_ADD_I_OUT_SHIFT, EM_ADD_I_ACT_MIN,
       EM_ADD_I_ACT_MAX, EM_ADD_I_MODE, EM_ADD_I_SIGN, EM_ADD_I_COUNT };
enum { EM_ADD_F_COUNT = 0 };

/* MUL int8, layout EM_MUL: the binary pointers; the binary integers, then zp1, zp2, out_zp, m, s, act_min,
 * act_max, mode */
enum { EM_MUL_P_COUNT = EM_BINARY_P_COUNT };
enum { EM_MUL_I_ZP1 = EM_BINARY_I_COUNT, EM_MUL_I_ZP2, EM_MUL_I_OUT_ZP, EM_MUL_I_MULT, EM_MUL_I_SHIFT,
       EM_MUL_I_ACT_MIN, EM_MUL_I_ACT_MAX, EM_MUL_I_MODE, EM_MUL_I_COUNT };
enum { EM_MUL_F_COUNT = 0 };

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

/* ADD / SUB int8 (layout EM_ADD) */
static void em_add_int8(const em_params* p) {
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

/* The table variant of the loop below (CPUs with AVX-512 VBMI); scratch holds the two tables (2 KB). */
EM_VBMI_TARGET static void em_add_int8_tables(const em_params* p, int64_t n, const em_add_input16* in1,
                                              const em_add_input16* in2, int single, __m512i mo, __m512i sho,
                                              const em_mbqm16* co, __m512i ozp, __m512i amin, __m512i amax,
                                              int sub) {
    const int8_t* x1 = (const int8_t*)p->ptr[EM_BINARY_P_INPUT1];
    const int8_t* x2 = (const int8_t*)p->ptr[EM_BINARY_P_INPUT2];
    int8_t* y = (int8_t*)p->ptr[EM_BINARY_P_OUTPUT];
    uint8_t* t1 = (uint8_t*)p->ptr[EM_ADD_P_TABLES];
    uint8_t* t2 = t1 + 1024;
    em_add_build_table(in1, t1);
    em_add_build_table(in2, t2);
    for (int64_t k = 0; k < n; k += 64) {
        const __mmask64 m = n - k >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (n - k)) - 1;
        __m512i a[4], b[4], r[4];
        em_add_lookup64(_mm512_maskz_loadu_epi8(m, x1 + k), t1, a);
        em_add_lookup64(_mm512_maskz_loadu_epi8(m, x2 + k), t2, b);
        for (int j = 0; j < 4; j++)
            r[j] = em_add_output_x16(sub ? _mm512_sub_epi32(a[j], b[j]) : _mm512_add_epi32(a[j], b[j]), single,
                                     mo, sho, co, ozp, amin, amax);
        const __m512i bytes = _mm512_packs_epi16(_mm512_packs_epi32(r[0], r[1]), _mm512_packs_epi32(r[2], r[3]));
        _mm512_mask_storeu_epi8(y + k, m, bytes);
    }
}

/* ADD / SUB int8 on equal shapes (or one input of a single element), 16 lanes at a time, either rounding mode;
 * layout EM_ADD as em_add_int8, the element count is the product of the output dims; tables: scratch of 2 KB for
 * the tables (EM_ADD_TABLE_MIN elements and more, with VBMI).  The multiplier constants are derived once per call. */
#define EM_ADD_TABLE_MIN 1024
EM_VNNI_TARGET static void em_add_int8_avx512(const em_params* p) {
    const int64_t* q = p->i;
    const int64_t* dims = p->i + EM_BINARY_I_DIMS;
    const int8_t* x1 = (const int8_t*)p->ptr[EM_BINARY_P_INPUT1];
    const int8_t* x2 = (const int8_t*)p->ptr[EM_BINARY_P_INPUT2];
    int8_t* y = (int8_t*)p->ptr[EM_BINARY_P_OUTPUT];
    const int64_t n = dims[0] * dims[1] * dims[2] * dims[3] * dims[4] * dims[5];
    const em_add_input16 in1 = em_add_input_consts(q[EM_ADD_I_ZP1], q[EM_ADD_I_MULT1], q[EM_ADD_I_SHIFT1],
                                                   q[EM_ADD_I_LEFT_SHIFT], q[EM_ADD_I_MODE]);
    const em_add_input16 in2 = em_add_input_consts(q[EM_ADD_I_ZP2], q[EM_ADD_I_MULT2], q[EM_ADD_I_SHIFT2],
                                                   q[EM_ADD_I_LEFT_SHIFT], q[EM_ADD_I_MODE]);
    const __m512i ozp = _mm512_set1_epi32((int32_t)q[EM_ADD_I_OUT_ZP]);
    const __m512i mo = _mm512_set1_epi32((int32_t)q[EM_ADD_I_OUT_MULT]);
    const __m512i sho = _mm512_set1_epi32((int32_t)q[EM_ADD_I_OUT_SHIFT]);
    const __m512i amin = _mm512_set1_epi32((int32_t)q[EM_ADD_I_ACT_MIN]);
    const __m512i amax = _mm512_set1_epi32((int32_t)q[EM_ADD_I_ACT_MAX]);
    const em_mbqm16 co = em_mbqm_consts(mo, sho);
    const int single = q[EM_ADD_I_MODE] == EM_ROUND_SINGLE;
    const int sub = q[EM_ADD_I_SIGN] < 0;
    /* an input of one element (every stride 0) is broadcast: its stage is computed once */
    const int one1 = em_binary_scalar_input(p, 0), one2 = em_binary_scalar_input(p, 1);
    const __m512i c1 = em_add_input_x16(_mm512_set1_epi32(x1[0]), &in1), c2 = em_add_input_x16(_mm512_set1_epi32(x2[0]), &in2);
    if (!one1 && !one2 && n >= EM_ADD_TABLE_MIN && p->ptr[EM_ADD_P_TABLES] != NULL &&
        __builtin_cpu_supports("avx512vbmi")) {
        em_add_int8_tables(p, n, &in1, &in2, single, mo, sho, &co, ozp, amin, amax, sub);
        return;
    }
#define EM_ADD16(K, M)                                                                                     \
    do {                                                                                                   \
        __m512i v1 = one1 ? c1 : em_add_input_x16(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8((M), x1 + (K))), &in1); \
        __m512i v2 = one2 ? c2 : em_add_input_x16(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8((M), x2 + (K))), &in2); \
        __m512i s = sub ? _mm512_sub_epi32(v1, v2) : _mm512_add_epi32(v1, v2);                            \
        __m512i r = em_add_output_x16(s, single, mo, sho, &co, ozp, amin, amax);                          \
        _mm_mask_storeu_epi8(y + (K), (M), _mm512_cvtepi32_epi8(r));                                       \
    } while (0)
    int64_t k = 0;
    for (; k + 32 <= n; k += 32) {     /* two independent 16-lane chains per iteration */
        EM_ADD16(k, (__mmask16)0xFFFF);
        EM_ADD16(k + 16, (__mmask16)0xFFFF);
    }
    for (; k < n; k += 16) EM_ADD16(k, n - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - k)) - 1));
#undef EM_ADD16
}
/* MUL int8 on equal shapes (or one input of a single element), 16 lanes at a time, either rounding mode; layout
 * EM_MUL as em_mul_int8 below */
EM_VNNI_TARGET static void em_mul_int8_avx512(const em_params* p) {
    const int64_t* q = p->i;
    const int64_t* dims = p->i + EM_BINARY_I_DIMS;
    const int8_t* x1 = (const int8_t*)p->ptr[EM_BINARY_P_INPUT1];
    const int8_t* x2 = (const int8_t*)p->ptr[EM_BINARY_P_INPUT2];
    int8_t* y = (int8_t*)p->ptr[EM_BINARY_P_OUTPUT];
    const int64_t n = dims[0] * dims[1] * dims[2] * dims[3] * dims[4] * dims[5];
    const __m512i zp1 = _mm512_set1_epi32((int32_t)q[EM_MUL_I_ZP1]), zp2 = _mm512_set1_epi32((int32_t)q[EM_MUL_I_ZP2]);
    const __m512i ozp = _mm512_set1_epi32((int32_t)q[EM_MUL_I_OUT_ZP]);
    const __m512i m = _mm512_set1_epi32((int32_t)q[EM_MUL_I_MULT]);
    const __m512i sh = _mm512_set1_epi32((int32_t)q[EM_MUL_I_SHIFT]);
    const __m512i amin = _mm512_set1_epi32((int32_t)q[EM_MUL_I_ACT_MIN]);
    const __m512i amax = _mm512_set1_epi32((int32_t)q[EM_MUL_I_ACT_MAX]);
    const em_mbqm16 c = em_mbqm_consts(m, sh);
    const int single = q[EM_MUL_I_MODE] == EM_ROUND_SINGLE;
    const int one1 = em_binary_scalar_input(p, 0), one2 = em_binary_scalar_input(p, 1);
    for (int64_t k = 0; k < n; k += 16) {
        const __mmask16 mk = n - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - k)) - 1);
        __m512i a = _mm512_cvtepi8_epi32(one1 ? _mm_set1_epi8(x1[0]) : _mm_maskz_loadu_epi8(mk, x1 + k));
        __m512i b = _mm512_cvtepi8_epi32(one2 ? _mm_set1_epi8(x2[0]) : _mm_maskz_loadu_epi8(mk, x2 + k));
        __m512i prod = _mm512_mullo_epi32(_mm512_sub_epi32(a, zp1), _mm512_sub_epi32(b, zp2));
        __m512i r = single ? em_mbqm_single_x16(prod, m, sh) : em_mbqm_apply_x16(prod, &c);
        r = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(r, ozp), amin), amax);
        _mm_mask_storeu_epi8(y + k, mk, _mm512_cvtepi32_epi8(r));
    }
}
#else
static void em_add_int8_avx512(const em_params* p) { em_add_int8(p); }
static void em_mul_int8(const em_params* p);
static void em_mul_int8_avx512(const em_params* p) { em_mul_int8(p); }
#endif

/* MUL int8 (layout EM_MUL) */
static void em_mul_int8(const em_params* p) {
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

static void em_quantize_f32_int8(const em_params* p) {
    const float* x = (const float*)p->ptr[EM_QUANTIZE_P_INPUT];
    int8_t* y = (int8_t*)p->ptr[EM_QUANTIZE_P_OUTPUT];
    const float scale = p->f[EM_QUANTIZE_F_SCALE];
    const int32_t zp = (int32_t)p->i[EM_QUANTIZE_I_ZP];
    for (int64_t k = 0; k < p->i[EM_QUANTIZE_I_N]; k++) {
        float r = roundf(x[k] / scale);
        if (r > 1e9f) r = 1e9f;          /* keep the int conversion defined for inf / huge inputs */
        if (r < -1e9f) r = -1e9f;
        if (r != r) r = 0.0f;            /* NaN */
        y[k] = (int8_t)em_clamp_i32((int32_t)r + zp, -128, 127);
    }
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
