/* qs8 GEMM micro-kernels for AVX-512 VNNI: register tiles of 8x16, 6x32, 3x64 and 1x64 outputs, K in groups of
 * 4 (vpdpbusd), rows read plainly or as an implicit convolution (em_gemm_rows); requantization vectorized and
 * exact in every em_requant.h mode.
 *
 * vpdpbusd multiplies unsigned by signed bytes, so activations are stored as x + 128 (uint8); the extra
 * 128 * sum(w) is folded into the bias at load, as is the input zero point:
 *   sum w (x - zp) + bias = sum w (x + 128) + [bias - (zp + 128) sum w].
 * Weights are packed at load into blocks of 16 columns: for each k-group of 4, 64 bytes w[n+j][k..k+3].
 * Columns are padded to a multiple of 16 and K to a multiple of 4 with zero weights.
 * Weights with a zero point w_zp (uint8 models): sum (w - w_zp)(x - zp) = sum w (x + 128) - w_zp sum (x + 128)
 * + [K (zp + 128) w_zp - (zp + 128) sum w]; the bracket goes into the bias at load, the row term -w_zp sum (x + 128)
 * is the same for every column of a row: em_vnni_row_sums computes it per call into row_corr. */
#ifndef EM_GEMM_VNNI_H
#define EM_GEMM_VNNI_H
#include <stdint.h>
#include <string.h>
#include "em_gemm.h"

typedef struct {
    const int8_t* w;        /* packed, Np x Kp */
    const int32_t* bias;    /* Np, includes -(zp + 128) * sum w */
    const int32_t* mult;    /* Np */
    const int32_t* shift;   /* Np */
    const double* scale;    /* Np, EM_REQUANT_DOUBLE_SCALE only */
    const float* fscale;    /* Np, EM_REQUANT_FLOAT only */
    int64_t N, Kp;
    int32_t out_zp, act_min, act_max, mode;
    const int32_t* row_corr;   /* NULL, or one int32 per row of the call added to all its columns (see above) */
} em_vnni_gemm;

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define EM_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

/* TFLite's MultiplyByQuantizedMultiplier (double rounding) on 16 lanes, with the per-lane constants derived
 * from (multiplier, shift) once (em_mbqm_consts) and reused for every row.  With m >= 0 (no saturation case)
 * SRDHM's nudge-then-truncate equals v = floor((P + 2^30) / 2^31), P = x*m, for either sign, and
 * RoundingDivideByPOT(v, e) = floor((v + 2^(e-1) - [v < 0]) / 2^e) for e >= 1 (v for e = 0).  Since
 * floor(floor(A / 2^31) / 2^e) = floor(A / 2^(31+e)) and v < 0 exactly when P < -2^30, both roundings fold into
 * one 64-bit add and one shift:  (P + 2^30 + [e > 0] (2^(30+e) - 2^31 [P < -2^30])) >> (31 + e)
 * (|P| <= 2^62, so no overflow; e <= 31 as quantize_multiplier guarantees). */
/* The per-lane constants of em_mbqm_apply_x16, in the order packing.mbqm_lanes16 writes them for the kernels that
 * read them from a table built at load (64 bytes each: int32 lanes m, m_odd (odd lanes' multipliers in the even
 * dwords), left; int64 lanes add_e, add_o, neg_e, neg_o, sh_e, sh_o). */
typedef struct {
    __m512i m, m_odd, left;                          /* multiplier (and its odd lanes moved low), left shift */
    __m512i add_e, add_o, neg_e, neg_o, sh_e, sh_o;  /* 64-bit even / odd lanes: 2^30 + 2^(30+e), -2^31, 31 + e */
} em_mbqm16_lanes;

typedef struct {
    em_mbqm16_lanes l;
    __m512i right, hpos, corr;        /* 32-bit RoundingDivideByPOT: e, 2^(e-1) or 0, -1 or 0 (e > 0) */
    int any_left;                     /* some lane shifts left (most models: none, so the shift is skipped) */
    /* em_vnni_short_store16's constants (em_vnni_short_consts; only where fast is set): 64-bit even / odd lanes
     * 2^31 + [e > 0] 2^(31+e) + zp 2^(32+e), and the lanes with e > 0 */
    __m512i k2_e, k2_o;
    __mmask16 e_pos;
    int fast;
} em_mbqm16;

EM_VNNI_TARGET static inline em_mbqm16 em_mbqm_consts(__m512i m, __m512i shift) {
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    em_mbqm16 q;
    q.l.m = m;
    q.l.m_odd = _mm512_srli_epi64(m, 32);
    q.l.left = _mm512_max_epi32(shift, zero);
    q.right = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
    q.any_left = _mm512_test_epi32_mask(q.l.left, q.l.left) != 0;
    q.fast = 0;
    const __mmask16 e32 = _mm512_cmpgt_epi32_mask(q.right, zero);
    q.hpos = _mm512_maskz_sllv_epi32(e32, one, _mm512_sub_epi32(q.right, one));
    q.corr = _mm512_maskz_mov_epi32(e32, _mm512_set1_epi32(-1));
    const __m512i e_even = _mm512_and_si512(q.right, _mm512_set1_epi64(0xFFFFFFFFLL));
    const __m512i e_odd = _mm512_srli_epi64(q.right, 32);
    const __m512i base = _mm512_set1_epi64(1LL << 30), e30 = _mm512_set1_epi64(30), e31 = _mm512_set1_epi64(31);
    const __mmask8 ke = _mm512_cmpgt_epi64_mask(e_even, zero), ko = _mm512_cmpgt_epi64_mask(e_odd, zero);
    q.l.add_e = _mm512_mask_add_epi64(base, ke, base, _mm512_sllv_epi64(_mm512_set1_epi64(1), _mm512_add_epi64(e_even, e30)));
    q.l.add_o = _mm512_mask_add_epi64(base, ko, base, _mm512_sllv_epi64(_mm512_set1_epi64(1), _mm512_add_epi64(e_odd, e30)));
    q.l.neg_e = _mm512_maskz_mov_epi64(ke, _mm512_set1_epi64(-(1LL << 31)));
    q.l.neg_o = _mm512_maskz_mov_epi64(ko, _mm512_set1_epi64(-(1LL << 31)));
    q.l.sh_e = _mm512_add_epi64(e_even, e31);
    q.l.sh_o = _mm512_add_epi64(e_odd, e31);
    return q;
}

EM_VNNI_TARGET static inline __m512i em_mbqm_lanes_x16(__m512i x, const em_mbqm16_lanes* q, int any_left) {
    const __m512i below = _mm512_set1_epi64(-(1LL << 30));
    if (any_left) x = _mm512_sllv_epi32(x, q->left);
    __m512i even = _mm512_mul_epi32(x, q->m);
    __m512i odd = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), q->m_odd);
    const __mmask8 neg_even = _mm512_cmpgt_epi64_mask(below, even), neg_odd = _mm512_cmpgt_epi64_mask(below, odd);
    even = _mm512_add_epi64(even, q->add_e);
    odd = _mm512_add_epi64(odd, q->add_o);
    even = _mm512_srav_epi64(_mm512_mask_add_epi64(even, neg_even, even, q->neg_e), q->sh_e);
    odd = _mm512_srav_epi64(_mm512_mask_add_epi64(odd, neg_odd, odd, q->neg_o), q->sh_o);
    /* odd results' low dwords into the odd dword slots */
    return _mm512_mask_shuffle_epi32(even, (__mmask16)0xAAAA, odd, _MM_PERM_CCAA);
}

EM_VNNI_TARGET static inline __m512i em_mbqm_apply_x16(__m512i x, const em_mbqm16* q) {
    return em_mbqm_lanes_x16(x, &q->l, q->any_left);
}

/* RoundingDivideByPOT alone, on a 32-bit v with |v| < 2^30 (no overflow in v + 2^(e-1)). */
EM_VNNI_TARGET static inline __m512i em_rdbpot_x16(__m512i v, const em_mbqm16* q) {
    const __mmask16 neg = _mm512_movepi32_mask(v);
    __m512i t = _mm512_add_epi32(v, q->hpos);
    t = _mm512_mask_add_epi32(t, neg, t, q->corr);
    return _mm512_srav_epi32(t, q->right);
}

/* SRDHM(d << 20, m) for |d| <= 255 (ADD's input stage) in 32-bit lanes: with m = mh 2^16 + ml it equals
 * floor((d m + 2^10) / 2^11) = 32 d mh + floor((d ml + 2^10) / 2^11), every term below 2^29. */
EM_VNNI_TARGET static inline __m512i em_srdhm_shifted20_x16(__m512i d, __m512i mh, __m512i ml) {
    __m512i low = _mm512_srai_epi32(_mm512_add_epi32(_mm512_mullo_epi32(d, ml), _mm512_set1_epi32(1 << 10)), 11);
    return _mm512_add_epi32(_mm512_slli_epi32(_mm512_mullo_epi32(d, mh), 5), low);
}

EM_VNNI_TARGET static inline __m512i em_mbqm_double_x16(__m512i x, __m512i m, __m512i shift) {
    em_mbqm16 q = em_mbqm_consts(m, shift);
    return em_mbqm_apply_x16(x, &q);
}

/* round(acc * scale) in double, half away from zero, exactly, as em_round_scale_x4 (em_gemm_avx2.h) argues:
 * the product clamped to +-1e9, plus copysign(0.5 - 2^-54, x) (one ternary-logic merge of the sign), truncated. */
EM_VNNI_TARGET static inline __m256i em_round_scale_x8(__m256i acc, __m512d scale) {
    __m512d x = _mm512_mul_pd(_mm512_cvtepi32_pd(acc), scale);
    x = _mm512_min_pd(_mm512_max_pd(x, _mm512_set1_pd(-1e9)), _mm512_set1_pd(1e9));
    const __m512i h = _mm512_ternarylogic_epi64(_mm512_castpd_si512(x), _mm512_set1_epi64(INT64_MIN),
                                                _mm512_castpd_si512(_mm512_set1_pd(0.49999999999999994)), 0xEA);
    return _mm512_cvttpd_epi32(_mm512_add_pd(x, _mm512_castsi512_pd(h)));     /* (x & sign) | h: +-h */
}

/* TFLITE_SINGLE_ROUNDING on 16 lanes: (x * m + 2^(30 - shift)) >> (31 - shift) in 64-bit halves, exact. */
EM_VNNI_TARGET static inline __m512i em_mbqm_single_x16(__m512i x, __m512i m, __m512i shift) {
    const __m512i lo32 = _mm512_set1_epi64(0xFFFFFFFFLL), one = _mm512_set1_epi64(1);
    __m512i total = _mm512_sub_epi32(_mm512_set1_epi32(31), shift);
    __m512i t_even = _mm512_and_si512(total, lo32), t_odd = _mm512_srli_epi64(total, 32);
    __m512i even = _mm512_add_epi64(_mm512_mul_epi32(x, m), _mm512_sllv_epi64(one, _mm512_sub_epi64(t_even, one)));
    __m512i odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(m, 32)),
                                   _mm512_sllv_epi64(one, _mm512_sub_epi64(t_odd, one)));
    even = _mm512_srav_epi64(even, t_even);
    odd = _mm512_srav_epi64(odd, t_odd);
    return _mm512_mask_blend_epi32((__mmask16)0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

/* Requantize 16 int32 sums (bias included) of columns n .. n + 15 in the modes other than double rounding. */
EM_VNNI_TARGET static inline __m512i em_vnni_rescale16(__m512i acc, const em_vnni_gemm* g, int64_t n) {
    if (g->mode == EM_REQUANT_DOUBLE_SCALE) {
        __m256i lo = em_round_scale_x8(_mm512_castsi512_si256(acc), _mm512_loadu_pd(g->scale + n));
        __m256i hi = em_round_scale_x8(_mm512_extracti64x4_epi64(acc, 1), _mm512_loadu_pd(g->scale + n + 8));
        return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
    if (g->mode == EM_REQUANT_FLOAT) {
        __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(g->fscale + n));
        f = _mm512_min_ps(_mm512_max_ps(f, _mm512_set1_ps(-1e9f)), _mm512_set1_ps(1e9f));
        return _mm512_cvt_roundps_epi32(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    }
    return em_mbqm_single_x16(acc, _mm512_loadu_si512(g->mult + n), _mm512_loadu_si512(g->shift + n));
}

/* The output zero point and the activation bounds inside [-128, 127]: callers narrow with signed saturation, which
 * clamps to int8. */
EM_VNNI_TARGET static inline __m512i em_vnni_finish16(__m512i v, const em_vnni_gemm* g) {
    v = _mm512_add_epi32(v, _mm512_set1_epi32(g->out_zp));
    if (g->act_min > -128) v = _mm512_max_epi32(v, _mm512_set1_epi32(g->act_min));
    if (g->act_max < 127) v = _mm512_min_epi32(v, _mm512_set1_epi32(g->act_max));
    return v;
}

/* Requantize 16 int32 sums of columns n .. n + 15 that already include the bias (see em_vnni_store16_q), as int32
 * to be narrowed with signed saturation; q: the double-rounding constants of these columns (em_mbqm_consts),
 * computed once per column block by the caller. */
EM_VNNI_TARGET static inline __m512i em_vnni_requant16(__m512i acc, const em_vnni_gemm* g, int64_t n,
                                                     const em_mbqm16* q) {
    return em_vnni_finish16(g->mode == EM_ROUND_DOUBLE ? em_mbqm_apply_x16(acc, q) : em_vnni_rescale16(acc, g, n), g);
}

EM_VNNI_TARGET static inline void em_vnni_requant_store16(__m512i acc, const em_vnni_gemm* g, int64_t n, int8_t* c,
                                                          __mmask16 cols, const em_mbqm16* q) {
    __m128i bytes = _mm512_cvtsepi32_epi8(em_vnni_requant16(acc, g, n, q));
    if (cols == 0xFFFF) _mm_storeu_si128((__m128i*)c, bytes);
    else _mm_mask_storeu_epi8(c, cols, bytes);
}

EM_VNNI_TARGET static inline void em_vnni_store16_q(__m512i acc, const em_vnni_gemm* g, int64_t n, int8_t* c,
                                                    __mmask16 cols, const em_mbqm16* q) {
    acc = _mm512_add_epi32(acc, _mm512_loadu_si512(g->bias + n));
    em_vnni_requant_store16(acc, g, n, c, cols, q);
}

/* The output zero point and the activation bounds inside [-128, 127], as vectors (em_vnni_double_store16). */
typedef struct { __m512i zp, lo, hi; } em_vnni_bounds16;

EM_VNNI_TARGET static inline em_vnni_bounds16 em_vnni_bounds(const em_vnni_gemm* g) {
    em_vnni_bounds16 b = {_mm512_set1_epi32(g->out_zp), _mm512_set1_epi32(g->act_min > -128 ? g->act_min : -128),
                          _mm512_set1_epi32(g->act_max < 127 ? g->act_max : 127)};
    return b;
}

/* The activation clamp (lo / hi already inside [-128, 127]), the saturating narrowing and the store of the first
 * columns `cols` of 16 requantized outputs (both double-rounding stages end so). */
EM_VNNI_TARGET static inline __attribute__((always_inline)) void em_vnni_clamp_store16(
        __m512i v, __m512i lo, __m512i hi, int8_t* c, __mmask16 cols) {
    const __m128i bytes = _mm512_cvtsepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(v, lo), hi));
    if (cols == 0xFFFF) _mm_storeu_si128((__m128i*)c, bytes);
    else _mm_mask_storeu_epi8(c, cols, bytes);
}

/* The double-rounding output stage with every constant in a register (em_vnni_tile's epilogue): zp the output
 * zero point, lo / hi the activation bounds already inside [-128, 127] (so the narrowing cannot saturate further;
 * the same bytes as em_vnni_requant_store16).  The left shift is applied unconditionally (by 0 in most lanes). */
EM_VNNI_TARGET static inline __attribute__((always_inline)) void em_vnni_double_store16(
        __m512i acc, const em_mbqm16* q, __m512i zp, __m512i lo, __m512i hi, int8_t* c, __mmask16 cols) {
    em_vnni_clamp_store16(_mm512_add_epi32(em_mbqm_lanes_x16(acc, &q->l, 1), zp), lo, hi, c, cols);
}

/* The double-rounding output stage in fewer operations, for sums known to lie in (-2^30, 2^30), no lane shifting
 * left, e <= 21 (em_vnni_short_consts checks all three); the same bytes as em_vnni_double_store16.  With
 * K = 2^30 + [e > 0] 2^(30+e) and P = acc m, that stage's result is floor((floor((P + K) / 2^31) - c) / 2^e) + zp,
 * c = [e > 0][v < 0] for v = floor((P + 2^30) / 2^31); c may be taken as [e > 0][acc < 0] instead (m >= 0: they
 * differ only where v = 0, and there both give 0).  Adding zp 2^e inside the floor is exact, so
 * V = floor((P + K + zp 2^(31+e)) / 2^31), the high half of 2 acc m + 2 K + zp 2^(32+e): one 64-bit add per
 * product and no 64-bit shift (|V| < 2^30 + 2^28 + 2^20 + 1 fits 32 bits, |2 acc| < 2^31 fits the multiply).
 * Then out = (V - c) >> e. */
EM_VNNI_TARGET static inline __attribute__((always_inline)) void em_vnni_short_store16(
        __m512i acc, const em_mbqm16* q, __m512i lo, __m512i hi, int8_t* c, __mmask16 cols) {
    const __m512i a2 = _mm512_add_epi32(acc, acc);
    const __m512i even = _mm512_add_epi64(_mm512_mul_epi32(a2, q->l.m), q->k2_e);
    const __m512i odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(a2, 32), q->l.m_odd), q->k2_o);
    /* the high dwords: the odd products' are in the odd slots already, the even products' move down a slot */
    __m512i v = _mm512_mask_shuffle_epi32(odd, (__mmask16)0x5555, even, _MM_PERM_DDBB);
    v = _mm512_srav_epi32(_mm512_add_epi32(v, _mm512_maskz_srai_epi32(q->e_pos, acc, 31)), q->right);
    em_vnni_clamp_store16(v, lo, hi, c, cols);
}

/* Sets q->fast (and em_vnni_short_store16's constants) when that stage is exact for columns n .. n + 15 of any
 * input: no weight zero point (no row corrections), an int8 output zero point, and in every lane no left shift,
 * e <= 21, a multiplier >= 0 and every sum bias + sum_k w (x + 128) inside (-2^30, 2^30): |bias| + 255 sum_k |w|
 * < 2^30, the packed column block read once (vpdpbusd of |w| by ones: four columns' |w| per k-group and lane).
 * A lane failing these whose weights are all zero (a pruned or dead channel: tiny weight scale, large bias, e past
 * 21) has the constant sum bias, so its output is one value, computed here by the scalar reference
 * (em_mbqm_double) and produced by the stage with m = 0, e = 0 and that value in the high dword of its constant. */
EM_VNNI_TARGET static inline void em_vnni_short_consts(const em_vnni_gemm* g, int64_t n, em_mbqm16* q) {
    q->fast = 0;
    /* (Kp <= 2^15: 255 sum |w| < 2^30 fits the int32 lanes; an int8 zero point keeps zp 2^(32+e) inside 2^61) */
    if (g->row_corr || g->Kp > (1 << 15) || g->out_zp < -128 || g->out_zp > 127) return;
    const __m512i zero = _mm512_setzero_si512(), limit = _mm512_set1_epi32(1 << 30);
    const int8_t* w = g->w + n * g->Kp;
    __m512i sum = zero;
    const __m512i ones = _mm512_set1_epi8(1);
    for (int64_t k = 0; k < g->Kp / 4; k++)
        sum = _mm512_dpbusd_epi32(sum, _mm512_abs_epi8(_mm512_loadu_si512(w + 64 * k)), ones);
    const __m512i wide = _mm512_mullo_epi32(sum, _mm512_set1_epi32(255));
    const __m512i bias = _mm512_abs_epi32(_mm512_loadu_si512(g->bias + n));    /* (|-2^31| stays 2^31: refused) */
    const __mmask16 bad = _mm512_cmpgt_epi32_mask(q->l.left, zero)
                          | _mm512_cmpgt_epi32_mask(q->right, _mm512_set1_epi32(21))
                          | _mm512_cmplt_epi32_mask(q->l.m, zero) | _mm512_cmpge_epu32_mask(wide, limit)
                          | _mm512_cmpge_epu32_mask(bias, limit)
                          | _mm512_cmpge_epu32_mask(_mm512_add_epi32(wide, bias), limit);
    const __mmask16 dead = _mm512_cmpeq_epi32_mask(sum, zero);
    if (bad & ~dead) return;
    /* 2 K + zp 2^(32+e) per 64-bit lane: twice em_mbqm_consts' add (2^30 + [e > 0] 2^(30+e)), plus zp shifted by
     * its sh + 1 (31 + e + 1) */
    const __m512i zp = _mm512_set1_epi64(g->out_zp), one = _mm512_set1_epi64(1);
    q->k2_e = _mm512_add_epi64(_mm512_add_epi64(q->l.add_e, q->l.add_e),
                               _mm512_sllv_epi64(zp, _mm512_add_epi64(q->l.sh_e, one)));
    q->k2_o = _mm512_add_epi64(_mm512_add_epi64(q->l.add_o, q->l.add_o),
                               _mm512_sllv_epi64(zp, _mm512_add_epi64(q->l.sh_o, one)));
    if (bad) {      /* dead lanes: m = 0, e = 0, the constant output in the high dword */
        int32_t m[16], right[16];
        int64_t k2[2][8];
        _mm512_storeu_si512(m, q->l.m);
        _mm512_storeu_si512(right, q->right);
        _mm512_storeu_si512(k2[0], q->k2_e);
        _mm512_storeu_si512(k2[1], q->k2_o);
        const int32_t lo = g->act_min > -128 ? g->act_min : -128, hi = g->act_max < 127 ? g->act_max : 127;
        for (int c = 0; c < 16; c++) {
            if (!((bad >> c) & 1)) continue;
            int32_t v = em_mbqm_double(g->bias[n + c], g->mult[n + c], g->shift[n + c]) + g->out_zp;
            v = v < lo ? lo : v > hi ? hi : v;
            m[c] = 0;
            right[c] = 0;
            k2[c & 1][c >> 1] = (int64_t)((uint64_t)(int64_t)v << 32);
        }
        q->l.m = _mm512_loadu_si512(m);
        q->l.m_odd = _mm512_srli_epi64(q->l.m, 32);
        q->right = _mm512_loadu_si512(right);
        q->k2_e = _mm512_loadu_si512(k2[0]);
        q->k2_o = _mm512_loadu_si512(k2[1]);
    }
    q->e_pos = _mm512_cmpgt_epi32_mask(q->right, zero);
    q->fast = 1;
}

/* The double-rounding constants of columns n .. n + 15 (unused in the other modes). */
EM_VNNI_TARGET static inline em_mbqm16 em_vnni_consts(const em_vnni_gemm* g, int64_t n) {
    return em_mbqm_consts(_mm512_loadu_si512(g->mult + n), _mm512_loadu_si512(g->shift + n));
}


#define EM_VNNI_L1_WEIGHTS 16384   /* bytes of packed weights a column panel may take */

/* One MR x (16 NB) register tile of C: rows m .. m + rows - 1 (rows <= MR; missing rows repeat the last one and
 * are not stored), columns n .. n + 16 NB - 1.  MR, NB and PAIRS (N = 8 packed two rows per vector, see below) are
 * compile-time constants at every call site, so the accumulators stay in registers. */
EM_VNNI_TARGET static inline __attribute__((always_inline)) void em_vnni_tile(
        const em_gemm_rows* A, int64_t m, int64_t rows, const em_vnni_gemm* g, int64_t n, int8_t* C,
        int64_t ldc, const int MR, const int NB, const int PAIRS, const em_mbqm16* qs) {
    const int64_t Kp = g->Kp;
    const uint8_t* a[8];
    em_gemm_row_starts(A, m, rows, MR, a);
    const int8_t* w = g->w + n * Kp;
    __m512i acc[8][4];
    const int pairs = PAIRS;
    for (int j = 0; j < NB; j++) {   /* the sums start from the bias (padded columns hold 0) */
        const __m512i bias = _mm512_loadu_si512(g->bias + n + 16 * j);
        for (int r = 0; r < MR; r++) acc[r][j] = bias;
        if (MR == 1) acc[1][j] = _mm512_setzero_si512();
        if (g->row_corr) {           /* weight zero point: each row's own correction (pairs: rows r, r + 1) */
            for (int r = 0; r < MR; r++) {
                const int32_t c0 = g->row_corr[m + (r < rows ? r : rows - 1)];
                const int32_t c1 = g->row_corr[m + (r + 1 < rows ? r + 1 : rows - 1)];
                const __m512i corr = pairs ? _mm512_mask_set1_epi32(_mm512_set1_epi32(c0), (__mmask16)0xFF00, c1)
                                           : _mm512_set1_epi32(c0);
                acc[r][j] = _mm512_add_epi32(acc[r][j], corr);
            }
        }
    }
    if (pairs) {   /* N = 8: rows r (lanes 0-7) and r + 1 (lanes 8-15) share a vector; the packer repeats the
                    * 8 columns' weights, bias and requantization in lanes 8-15 */
        for (int64_t sg = 0; sg < A->nseg; sg++) {
            const int64_t off = sg * A->seg_stride;
            for (int64_t k = 0; k < A->seg_groups; k++, w += 64) {
                const __m512i b = _mm512_loadu_si512(w);
                for (int r = 0; r < MR; r += 2) {
                    int32_t four0, four1;
                    memcpy(&four0, a[r] + off + 4 * k, 4);
                    memcpy(&four1, a[r + 1] + off + 4 * k, 4);
                    const __m512i av = _mm512_mask_set1_epi32(_mm512_set1_epi32(four0), (__mmask16)0xFF00, four1);
                    acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], av, b);
                }
            }
        }
        const em_mbqm16 q = qs ? qs[0] : em_vnni_consts(g, 0);
        if (g->mode == EM_ROUND_DOUBLE) {
            const em_vnni_bounds16 b = em_vnni_bounds(g);
            if (q.fast) {
#pragma GCC unroll 8
                for (int r = 0; r < MR; r += 2) {
                    if (r >= rows) break;
                    em_vnni_short_store16(acc[r][0], &q, b.lo, b.hi, C + (m + r) * 8,
                                          r + 1 < rows ? (__mmask16)0xFFFF : (__mmask16)0xFF);
                }
                return;
            }
#pragma GCC unroll 8
            for (int r = 0; r < MR; r += 2) {
                if (r >= rows) break;
                em_vnni_double_store16(acc[r][0], &q, b.zp, b.lo, b.hi, C + (m + r) * 8,
                                       r + 1 < rows ? (__mmask16)0xFFFF : (__mmask16)0xFF);
            }
            return;
        }
        for (int r = 0; r < MR && r < rows; r += 2)
            em_vnni_requant_store16(acc[r][0], g, 0, C + (m + r) * 8, r + 1 < rows ? (__mmask16)0xFFFF : (__mmask16)0xFF,
                                    &q);
        return;
    }
    if (MR == 1 && A->nseg == 1) {   /* GEMV: even and odd k-groups in separate chains to hide the latency */
        int64_t k = 0;
        for (; k + 2 <= A->seg_groups; k += 2, w += 128) {
            int32_t four0, four1;
            memcpy(&four0, a[0] + 4 * k, 4);
            memcpy(&four1, a[0] + 4 * k + 4, 4);
            const __m512i a0 = _mm512_set1_epi32(four0), a1 = _mm512_set1_epi32(four1);
            for (int j = 0; j < NB; j++) {
                acc[0][j] = _mm512_dpbusd_epi32(acc[0][j], a0, _mm512_loadu_si512(w + j * 16 * Kp));
                acc[1][j] = _mm512_dpbusd_epi32(acc[1][j], a1, _mm512_loadu_si512(w + j * 16 * Kp + 64));
            }
        }
        if (k < A->seg_groups) {
            int32_t four0;
            memcpy(&four0, a[0] + 4 * k, 4);
            const __m512i a0 = _mm512_set1_epi32(four0);
            for (int j = 0; j < NB; j++)
                acc[0][j] = _mm512_dpbusd_epi32(acc[0][j], a0, _mm512_loadu_si512(w + j * 16 * Kp));
        }
        for (int j = 0; j < NB; j++) acc[0][j] = _mm512_add_epi32(acc[0][j], acc[1][j]);
    } else
    for (int64_t sg = 0; sg < A->nseg; sg++) {
        const int64_t off = sg * A->seg_stride;
        for (int64_t k = 0; k < A->seg_groups; k++, w += 64) {
            __m512i b[4];
            for (int j = 0; j < NB; j++) b[j] = _mm512_loadu_si512(w + j * 16 * Kp);
            for (int r = 0; r < MR; r++) {
                int32_t four;
                memcpy(&four, a[r] + off + 4 * k, 4);
                __m512i av = _mm512_set1_epi32(four);
                for (int j = 0; j < NB; j++) acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], av, b[j]);
            }
        }
    }
    if (g->mode == EM_ROUND_DOUBLE) {   /* (TFLite's default: the branches on mode and bounds taken once) */
        const em_vnni_bounds16 b = em_vnni_bounds(g);
#pragma GCC unroll 4
        for (int j = 0; j < NB; j++) {
            const int64_t c = n + 16 * j;
            if (c >= g->N) break;
            const __mmask16 cols = g->N - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (g->N - c)) - 1);
            const em_mbqm16 q = qs ? qs[j] : em_vnni_consts(g, c);
            if (q.fast) {
#pragma GCC unroll 8
                for (int r = 0; r < MR; r++) {
                    if (r >= rows) break;
                    em_vnni_short_store16(acc[r][j], &q, b.lo, b.hi, C + (m + r) * ldc + c, cols);
                }
                continue;
            }
#pragma GCC unroll 8
            for (int r = 0; r < MR; r++) {
                if (r >= rows) break;
                em_vnni_double_store16(acc[r][j], &q, b.zp, b.lo, b.hi, C + (m + r) * ldc + c, cols);
            }
        }
        return;
    }
    for (int j = 0; j < NB; j++) {
        const int64_t c = n + 16 * j;
        if (c >= g->N) break;
        __mmask16 cols = g->N - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (g->N - c)) - 1);
        const em_mbqm16 q = qs ? qs[j] : em_vnni_consts(g, c);
        for (int r = 0; r < MR; r++) {
            if (r >= rows) break;
            em_vnni_requant_store16(acc[r][j], g, c, C + (m + r) * ldc + c, cols, &q);
        }
    }
}

/* All row tiles of one column panel of 16 NB columns; the panel's weights stay in cache across the rows, and its
 * double-rounding constants are derived once for all of them (with a small K they cost as much as the sums).  A
 * panel of one tile (a GEMV's) derives them in the tile instead (qs NULL): kept in a table they cost stores and
 * loads that a single use does not repay (a 128 -> 640 FC: 0.6 -> 1.1 us). */
#define EM_VNNI_PANEL(MR, NB, PAIRS)                                                                            \
    do {                                                                                                   \
        em_mbqm16 qs[NB];                  /* (read in double rounding only; mult and shift hold Np) */  \
        const int table = (MR) > 1 && M > (MR);                                                            \
        if (table && g->mode == EM_ROUND_DOUBLE)                                                           \
            for (int j = 0; j < (NB); j++) {                                                               \
                qs[j] = em_vnni_consts(g, n + 16 * j);                                                     \
                em_vnni_short_consts(g, n + 16 * j, &qs[j]);                                              \
            }                                                                                              \
        else if (table)                                                                                    \
            memset(qs, 0, sizeof qs);                                                                      \
        const em_mbqm16* tq = table ? qs : NULL;                                                           \
        int64_t m = 0;                                                                                     \
        for (; m + (MR) <= M; m += (MR)) em_vnni_tile(A, m, (MR), g, n, C, ldc, (MR), (NB), (PAIRS), tq); \
        if (m < M) em_vnni_tile(A, m, M - m, g, n, C, ldc, (MR), (NB), (PAIRS), tq);                     \
    } while (0)

/* C[M][N] (row stride ldc) = requant(A . W), A (uint8, x + 128) described by em_gemm_rows.  Column panels of
 * 64 (3-row tiles), 32 (6 rows) or 16 (8 rows): 8 to 12 accumulators, each weight load feeding several rows.
 * Wide panels only while a panel's weights fit in L1 (they are read once per row tile); a GEMV (M < 3) takes
 * 1-row tiles of 64 columns. */
EM_VNNI_TARGET static void em_gemm_vnni_rows(const em_gemm_rows* A, int64_t M, const em_vnni_gemm* g, int8_t* C,
                                             int64_t ldc) {
    const int64_t Np = (g->N + 15) / 16 * 16, panel_bytes = 16 * g->Kp;
    int64_t n = 0;
    if (M < 3) {
        for (; n + 64 <= Np; n += 64) EM_VNNI_PANEL(1, 4, 0);
    }
    /* (K <= 32: the output stage outweighs the sums, and 6-row tiles of 32 columns ran the 1x1 convs of
     * MobileNetV2 (K 16, 24, 32) 2-6% faster than 3-row tiles of 64 on Zen 5; 8-row tiles of 16: 5-10% slower) */
    if (4 * panel_bytes <= EM_VNNI_L1_WEIGHTS && g->Kp > 32)
        for (; n + 64 <= Np; n += 64) EM_VNNI_PANEL(3, 4, 0);
    if (2 * panel_bytes <= EM_VNNI_L1_WEIGHTS)
        for (; n + 32 <= Np; n += 32) EM_VNNI_PANEL(6, 2, 0);
    /* (N = 8 with packed rows: two rows per vector, a tile of its own so that the other's sums stay in registers) */
    if (g->N == 8 && ldc == 8)
        for (; n < Np; n += 16) EM_VNNI_PANEL(8, 1, 1);
    for (; n < Np; n += 16) EM_VNNI_PANEL(8, 1, 0);
}

/* Plain GEMM: rows lda bytes apart, Kp bytes each. */
EM_VNNI_TARGET static void em_gemm_u8s8_vnni_ex(const uint8_t* A, int64_t lda, int64_t M, const em_vnni_gemm* g,
                                               int8_t* C, int64_t ldc) {
    em_gemm_rows rows = {A, lda, 0, 0, 0, 1, 0, g->Kp / 4, 0};
    em_gemm_vnni_rows(&rows, M, g, C, ldc);
}

/* C[M][N] (row stride ldc) = requant(A[M][Kp] (uint8, x + 128) . W). */
EM_VNNI_TARGET static void em_gemm_u8s8_vnni(const uint8_t* A, int64_t M, const em_vnni_gemm* g, int8_t* C,
                                            int64_t ldc) {
    em_gemm_u8s8_vnni_ex(A, g->Kp, M, g, C, ldc);
}

#endif
#endif
