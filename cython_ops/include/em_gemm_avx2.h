/* qs8 GEMM micro-kernel for AVX2 CPUs without VNNI: 4 rows x 8 columns, exact; rows read plainly or as an implicit
 * convolution (em_gemm_rows).
 *
 * vpmaddubsw would saturate its int16 pair sums (255 * 127 * 2 > 32767), so both operands are sign-extended
 * to int16 at pack time and vpmaddwd forms exact int32 pair sums (|x w| <= 2^14).  The input zero point is
 * folded into the bias at load (bias - zp sum w), as on the scalar path; padding taps hold zp and cancel.
 * Weights are packed at load into panels of 8 columns: for each group of 4 k, 8 columns x 4 int16 (64 bytes);
 * each accumulator lane holds one column's sum over half of the group, and a final hadd joins the halves.
 * Requantization in every em_requant.h mode, 8 lanes at a time. */
#ifndef EM_GEMM_AVX2_H
#define EM_GEMM_AVX2_H
#include <stdint.h>
#include <string.h>
#include "em_requant.h"
#include "em_gemm.h"

typedef struct {
    const int16_t* w;       /* packed, Np/8 panels x Kp/4 groups x 32 int16 */
    const int32_t* bias;    /* Np, includes -zp * sum w */
    const int32_t* mult;    /* Np */
    const int32_t* shift;   /* Np */
    const double* scale;    /* Np, EM_REQUANT_DOUBLE_SCALE */
    const float* fscale;    /* Np, EM_REQUANT_FLOAT */
    int64_t N, Kp;
    int32_t out_zp, act_min, act_max, mode;
} em_avx2_gemm;

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define EM_AVX2_TARGET __attribute__((target("avx2")))

/* MultiplyByQuantizedMultiplier, double rounding, on 8 lanes from per-lane constants (m >= 0, so SRDHM never
 * saturates), in the order packing.mbqm_lanes8 writes them for kernels that read a table built at load (32 bytes
 * each, int32 lanes): m, m_odd (odd lanes' multipliers in the even dwords), left, right (e), half (2^(e-1) or 0). */
typedef struct { __m256i m, m_odd, left, right, half; } em_mbqm8_lanes;

EM_AVX2_TARGET static inline em_mbqm8_lanes em_mbqm8_consts(__m256i m, __m256i shift) {
    const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1);
    em_mbqm8_lanes q;
    q.m = m;
    q.m_odd = _mm256_srli_epi64(m, 32);
    q.left = _mm256_max_epi32(shift, zero);
    q.right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
    q.half = _mm256_srli_epi32(_mm256_sllv_epi32(one, q.right), 1);
    return q;
}

/* SRDHM(x << left, m) = floor((x m + 2^30) / 2^31): bits 31..62 of the 64-bit sums, which a logical shift keeps
 * for either sign; then RoundingDivideByPOT (ties away from zero) = sign(v) floor((|v| + 2^(e-1)) / 2^e), taken
 * unsigned so |v| + 2^(e-1) cannot overflow (|v| < 2^31 since m < 2^31). */
EM_AVX2_TARGET static inline __m256i em_mbqm_lanes_x8(__m256i x, const em_mbqm8_lanes* q, int any_left) {
    const __m256i round = _mm256_set1_epi64x(1LL << 30);
    if (any_left) x = _mm256_sllv_epi32(x, q->left);
    const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, q->m), round);
    const __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), q->m_odd), round);
    const __m256i v = _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xAA);
    const __m256i r = _mm256_srlv_epi32(_mm256_add_epi32(_mm256_abs_epi32(v), q->half), q->right);
    return _mm256_sign_epi32(r, v);
}

/* TFLITE_SINGLE_ROUNDING, 8 lanes: (x m + 2^(t-1)) >> t with t = 31 - shift up to 62.  AVX2 has no 64-bit
 * arithmetic shift: offset by 2^62 (the sum stays in [0, 2^63)), shift logically, subtract 2^62 >> t. */
EM_AVX2_TARGET static inline __m256i em_mbqm_single_x8(__m256i x, __m256i m, __m256i shift) {
    const __m256i lo32 = _mm256_set1_epi64x(0xFFFFFFFFLL), one = _mm256_set1_epi64x(1);
    const __m256i offset = _mm256_set1_epi64x(1LL << 62);
    __m256i total = _mm256_sub_epi32(_mm256_set1_epi32(31), shift);
    __m256i t_even = _mm256_and_si256(total, lo32), t_odd = _mm256_srli_epi64(total, 32);
    __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, m), _mm256_sllv_epi64(one, _mm256_sub_epi64(t_even, one)));
    __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32)),
                                   _mm256_sllv_epi64(one, _mm256_sub_epi64(t_odd, one)));
    even = _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_add_epi64(even, offset), t_even), _mm256_srlv_epi64(offset, t_even));
    odd = _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_add_epi64(odd, offset), t_odd), _mm256_srlv_epi64(offset, t_odd));
    return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

/* round(acc * scale) in double, half away from zero, 4 lanes.  The product x is the reference's; clamped to
 * +-1e9, then rounded as trunc(x + copysign(h, x)) with h = 0.5 - 2^-54, the largest double below 1/2, which is
 * round-half-away for |x| < 2^52: for x = n + f (n >= 0 an integer, f in [0, 1), x >= 0; negatives mirror),
 * f >= 1/2 gives x + h >= n + 1 - 2^-54, which rounds to n + 1 or above (the doubles near n + 1 >= 1 are at least
 * 2^-53 apart, and a tie goes to the even one, n + 1 itself for x < 1); f < 1/2 means f <= 1/2 - ulp(x), so
 * x + h <= n + 1 - ulp(x) - 2^-54 lies below n + 1 by more than half the spacing there: trunc gives n. */
EM_AVX2_TARGET static inline __m128i em_round_scale_x4(__m128i acc, __m256d scale) {
    __m256d x = _mm256_mul_pd(_mm256_cvtepi32_pd(acc), scale);
    x = _mm256_min_pd(_mm256_max_pd(x, _mm256_set1_pd(-1e9)), _mm256_set1_pd(1e9));
    const __m256d h = _mm256_or_pd(_mm256_and_pd(x, _mm256_set1_pd(-0.0)), _mm256_set1_pd(0.49999999999999994));
    return _mm256_cvttpd_epi32(_mm256_add_pd(x, h));
}

/* Requantize 8 int32 sums (bias included) of columns n .. n + 7 in the modes other than double rounding. */
EM_AVX2_TARGET static inline __m256i em_avx2_rescale8(__m256i acc, const em_avx2_gemm* g, int64_t n) {
    if (g->mode == EM_ROUND_SINGLE)
        return em_mbqm_single_x8(acc, _mm256_loadu_si256((const __m256i*)(g->mult + n)),
                                 _mm256_loadu_si256((const __m256i*)(g->shift + n)));
    if (g->mode == EM_REQUANT_DOUBLE_SCALE) {
        __m128i lo = em_round_scale_x4(_mm256_castsi256_si128(acc), _mm256_loadu_pd(g->scale + n));
        __m128i hi = em_round_scale_x4(_mm256_extracti128_si256(acc, 1), _mm256_loadu_pd(g->scale + n + 4));
        return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
    }
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(g->fscale + n));
    f = _mm256_min_ps(_mm256_max_ps(f, _mm256_set1_ps(-1e9f)), _mm256_set1_ps(1e9f));
    return _mm256_cvtps_epi32(f);   /* MXCSR default: round to nearest even */
}

/* The output zero point and the activation clamp; the result is in [-128, 127], so saturating packs narrow it. */
EM_AVX2_TARGET static inline __m256i em_avx2_finish8(__m256i v, const em_avx2_gemm* g) {
    v = _mm256_add_epi32(v, _mm256_set1_epi32(g->out_zp));
    v = _mm256_max_epi32(v, _mm256_set1_epi32(g->act_min));
    return _mm256_min_epi32(v, _mm256_set1_epi32(g->act_max));
}

/* Requantize 8 int32 sums of columns n .. n + 7 (q: their double-rounding constants) and store the first `cols`. */
EM_AVX2_TARGET static inline void em_avx2_store8(__m256i acc, const em_avx2_gemm* g, int64_t n, int8_t* c,
                                                 int64_t cols, const em_mbqm8_lanes* q) {
    acc = _mm256_add_epi32(acc, _mm256_loadu_si256((const __m256i*)(g->bias + n)));
    __m256i v = em_avx2_finish8(g->mode == EM_ROUND_DOUBLE ? em_mbqm_lanes_x8(acc, q, 1) : em_avx2_rescale8(acc, g, n), g);
    __m256i p16 = _mm256_packs_epi32(v, v);
    __m256i p8 = _mm256_packs_epi16(p16, p16);
    __m256i bytes = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4));
    if (cols >= 8) {
        _mm_storel_epi64((__m128i*)c, _mm256_castsi256_si128(bytes));
        return;
    }
    int8_t tmp[32];
    _mm256_storeu_si256((__m256i*)tmp, bytes);
    memcpy(c, tmp, (size_t)cols);
}

/* em_avx2_store8 for two rows of the same 8 columns (sums acc0, acc1; first `cols` bytes stored at c0 and c1): the
 * output zero point and the clamp apply to both rows at once in int16 / int8 lanes.  Saturating packs keep this
 * exact: a value beyond int16 saturates to one that clamps to the same int8 as the exact sum would. */
EM_AVX2_TARGET static inline void em_avx2_store8x2(__m256i acc0, __m256i acc1, const em_avx2_gemm* g, int64_t n,
                                                   int8_t* c0, int8_t* c1, int64_t cols, const em_mbqm8_lanes* q) {
    const __m256i bias = _mm256_loadu_si256((const __m256i*)(g->bias + n));
    acc0 = _mm256_add_epi32(acc0, bias);
    acc1 = _mm256_add_epi32(acc1, bias);
    __m256i v0, v1;
    if (g->mode == EM_ROUND_DOUBLE) {
        v0 = em_mbqm_lanes_x8(acc0, q, 1);
        v1 = em_mbqm_lanes_x8(acc1, q, 1);
    } else {
        v0 = em_avx2_rescale8(acc0, g, n);
        v1 = em_avx2_rescale8(acc1, g, n);
    }
    /* [v0 0-3, v1 0-3 | v0 4-7, v1 4-7] in int16, + zp; bytes; dwords 0 4 1 5: row 0's 8 bytes, then row 1's */
    const __m256i p16 = _mm256_adds_epi16(_mm256_packs_epi32(v0, v1), _mm256_set1_epi16((int16_t)g->out_zp));
    const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16, p16),
                                                   _mm256_setr_epi32(0, 4, 1, 5, 0, 4, 1, 5));
    __m128i bytes = _mm_max_epi8(_mm256_castsi256_si128(p8), _mm_set1_epi8((int8_t)g->act_min));
    bytes = _mm_min_epi8(bytes, _mm_set1_epi8((int8_t)g->act_max));
    if (cols >= 8) {
        _mm_storel_epi64((__m128i*)c0, bytes);
        _mm_storel_epi64((__m128i*)c1, _mm_unpackhi_epi64(bytes, bytes));   /* not _mm_storeh_pd: a double store */
        return;
    }
    int8_t tmp[16];
    _mm_storeu_si128((__m128i*)tmp, bytes);
    memcpy(c0, tmp, (size_t)cols);
    memcpy(c1, tmp + 8, (size_t)cols);
}

/* A panel's output-stage constants for em_avx2_tile.  The tile leaves each row's 8 sums in hadd order (columns
 * 0 1 4 5 | 2 3 6 7): the double-rounding constants are permuted to that order once per panel so that no row
 * needs a permute, and the bias is the accumulators' starting value (bias_lo, bias_hi: columns 0-3 and 4-7, each
 * in the even dword of its column's lane pair, which hadd joins). */
typedef struct {
    em_mbqm8_lanes q;       /* double rounding, hadd order */
    __m256i bias_lo, bias_hi;
    int any_left;           /* some multiplier shifts left */
} em_avx2_panel;

EM_AVX2_TARGET static inline em_avx2_panel em_avx2_panel_consts(const em_avx2_gemm* g, int64_t n) {
    const __m256i hadd_order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
    em_avx2_panel c;
    c.q = em_mbqm8_consts(
        _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i*)(g->mult + n)), hadd_order),
        _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i*)(g->shift + n)), hadd_order));
    c.any_left = !_mm256_testz_si256(c.q.left, c.q.left);
    c.bias_lo = _mm256_cvtepu32_epi64(_mm_loadu_si128((const __m128i*)(g->bias + n)));
    c.bias_hi = _mm256_cvtepu32_epi64(_mm_loadu_si128((const __m128i*)(g->bias + n + 4)));
    return c;
}

/* Store R rows (1 or 4) of 8 requantized values (v[r], before the output zero point; columns 0 1 4 5 | 2 3 6 7 when
 * hadd_order, else in column order): their first `cols` bytes at c[r].  The rows are narrowed together: int16
 * packs (+ zero point, saturating: a sum beyond int16 clamps to the same int8), one int8 pack and clamp, then one
 * 16- or 32-bit interleave of the two 128-bit halves puts each row's 8 bytes in column order. */
EM_AVX2_TARGET static inline __attribute__((always_inline)) void em_avx2_narrow_rows(
        __m256i v[4], const int R, const em_avx2_gemm* g, int8_t* c[4], int64_t cols, const int hadd_order) {
    for (int r = R; r < 4; r++) v[r] = v[0];
    const __m256i zp = _mm256_set1_epi16((int16_t)g->out_zp);
    const __m256i p01 = _mm256_adds_epi16(_mm256_packs_epi32(v[0], v[1]), zp);
    const __m256i p23 = _mm256_adds_epi16(_mm256_packs_epi32(v[2], v[3]), zp);
    __m256i p8 = _mm256_packs_epi16(p01, p23);     /* dwords: rows 0-3 first halves | rows 0-3 second halves */
    p8 = _mm256_min_epi8(_mm256_max_epi8(p8, _mm256_set1_epi8((char)g->act_min)), _mm256_set1_epi8((char)g->act_max));
    const __m128i lo = _mm256_castsi256_si128(p8), hi = _mm256_extracti128_si256(p8, 1);
    __m128i r01, r23;
    if (hadd_order) { r01 = _mm_unpacklo_epi16(lo, hi); r23 = _mm_unpackhi_epi16(lo, hi); }
    else { r01 = _mm_unpacklo_epi32(lo, hi); r23 = _mm_unpackhi_epi32(lo, hi); }
    if (cols >= 8) {
        _mm_storel_epi64((__m128i*)c[0], r01);
        if (R > 1) {
            _mm_storeh_pi((__m64*)c[1], _mm_castsi128_ps(r01));
            _mm_storel_epi64((__m128i*)c[2], r23);
            _mm_storeh_pi((__m64*)c[3], _mm_castsi128_ps(r23));
        }
        return;
    }
    int8_t tmp[32];
    _mm_storeu_si128((__m128i*)tmp, r01);
    _mm_storeu_si128((__m128i*)(tmp + 16), r23);
    for (int r = 0; r < R; r++) memcpy(c[r], tmp + 8 * r, (size_t)cols);
}

/* Requantize R rows (1 or 4) of joined sums x[r] (hadd order, bias included) and store their first `cols` columns
 * at c[r] (em_avx2_narrow_rows).  Straight-line code for a constant R (no spills). */
EM_AVX2_TARGET static inline __attribute__((always_inline)) void em_avx2_exact_rows(
        const __m256i x[4], const int R, const em_avx2_gemm* g, int64_t n, const em_avx2_panel* pc, int8_t* c[4],
        int64_t cols) {
    __m256i v[4];
    const int hadd_order = g->mode == EM_ROUND_DOUBLE;
    if (hadd_order && pc->any_left) {
        for (int r = 0; r < R; r++) v[r] = em_mbqm_lanes_x8(x[r], &pc->q, 1);
    } else if (hadd_order) {
        for (int r = 0; r < R; r++) v[r] = em_mbqm_lanes_x8(x[r], &pc->q, 0);
    } else {
        for (int r = 0; r < R; r++) v[r] = em_avx2_rescale8(_mm256_permute4x64_epi64(x[r], 0xD8), g, n);
    }
    if (hadd_order) em_avx2_narrow_rows(v, R, g, c, cols, 1);
    else em_avx2_narrow_rows(v, R, g, c, cols, 0);
}

/* Requantize the sums of R rows (1 or 4: acc[r][0..1] as em_avx2_tile leaves them, bias included) and store their
 * first `cols` columns at c[r] (em_avx2_exact_rows). */
EM_AVX2_TARGET static inline __attribute__((always_inline)) void em_avx2_store_rows(
        __m256i acc[4][2], const int R, const em_avx2_gemm* g, int64_t n, const em_avx2_panel* pc, int8_t* c[4],
        int64_t cols) {
    __m256i x[4];
    for (int r = 0; r < R; r++) x[r] = _mm256_hadd_epi32(acc[r][0], acc[r][1]);
    em_avx2_exact_rows(x, R, g, n, pc, c, cols);
}

/* One MR x 8 tile (MR = 1 or 4 rows from row m); rows as em_gemm_rows describes them, a group being 4 int16 (8
 * bytes); pc: the panel's output-stage constants. */
EM_AVX2_TARGET static inline __attribute__((always_inline)) void em_avx2_tile(
        const em_gemm_rows* A, int64_t m, const em_avx2_gemm* g, int64_t n, int8_t* C, int64_t ldc,
        const em_avx2_panel* pc, const int MR) {
    const int16_t* w = g->w + (n / 8) * (g->Kp / 4) * 32;
    const uint8_t* a[4];
    em_gemm_row_starts(A, m, MR, MR, a);
    __m256i acc[4][2];
    for (int r = 0; r < MR; r++) { acc[r][0] = pc->bias_lo; acc[r][1] = pc->bias_hi; }
    for (int64_t sg = 0; sg < A->nseg; sg++) {
        const int64_t off = sg * A->seg_stride;
#pragma GCC unroll 2
        for (int64_t k = 0; k < A->seg_groups; k++, w += 32) {
            const __m256i b0 = _mm256_loadu_si256((const __m256i*)w);
            const __m256i b1 = _mm256_loadu_si256((const __m256i*)(w + 16));
            for (int r = 0; r < MR; r++) {
                int64_t four;
                memcpy(&four, a[r] + off + 8 * k, 8);
                const __m256i av = _mm256_set1_epi64x(four);
                acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(av, b0));
                acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(av, b1));
            }
        }
    }
    int8_t* c[4];
    for (int r = 0; r < 4; r++) c[r] = C + (m + (r < MR ? r : 0)) * ldc + n;
    em_avx2_store_rows(acc, MR, g, n, pc, c, g->N - n);
}

/* Weights in use come from L1 / L2, but a layer's first read of them comes from L3 or memory (a model's int16
 * weights are megabytes): while one panel (or block of panels) works, its successor's lines [lo, hi) are fetched
 * into L2, a share per 4-row tile, so that the fetch is spread over the work instead of stalling the first tile. */
EM_AVX2_TARGET static inline void em_avx2_prefetch_lines(const int16_t* w, int64_t lo, int64_t hi) {
    for (int64_t j = lo; j < hi; j++) _mm_prefetch((const char*)(w + 32 * j), _MM_HINT_T1);
}

/* The small-K GEMM (stems, small 1x1s) holds a block of panels' weights and output constants at once: at most
 * EM_AVX2_SMALL_PANELS panels and EM_AVX2_SMALL_WORK panel groups (64 bytes each) in all (16 KiB, L1). */
#define EM_AVX2_SMALL_PANELS 8
#define EM_AVX2_SMALL_WORK 256

/* The sums of MR (1 or 4) rows x 8 columns of the small-K GEMM, joined (hadd order, bias included), into x: rows
 * start at a[r], group k of each at a[r] + off[k] (window rows flattened into one loop); w: the panel. */
EM_AVX2_TARGET static inline __attribute__((always_inline)) void em_avx2_small_sums(
        const uint8_t* const a[4], const int64_t* off, int64_t groups, const int16_t* w, const em_avx2_panel* pc,
        __m256i x[4], const int MR) {
    __m256i acc[4][2];
    for (int r = 0; r < MR; r++) { acc[r][0] = pc->bias_lo; acc[r][1] = pc->bias_hi; }
#pragma GCC unroll 4
    for (int64_t k = 0; k < groups; k++, w += 32) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i*)w);
        const __m256i b1 = _mm256_loadu_si256((const __m256i*)(w + 16));
        const int64_t o = off[k];
        for (int r = 0; r < MR; r++) {
            int64_t four;
            memcpy(&four, a[r] + o, 8);
            const __m256i av = _mm256_set1_epi64x(four);
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(av, b0));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(av, b1));
        }
    }
    for (int r = 0; r < MR; r++) x[r] = _mm256_hadd_epi32(acc[r][0], acc[r][1]);
}

/* Panels per block of the small-K GEMM (0: K too long for it, blocks of fewer than 2 panels gain nothing). */
static inline int64_t em_gemm_avx2_small_block(const em_gemm_rows* A, const em_avx2_gemm* g) {
    const int64_t groups = A->nseg * A->seg_groups;
    if (groups != g->Kp / 4 || g->N <= 8) return 0;
    const int64_t block = EM_AVX2_SMALL_WORK / groups;
    return block < 2 ? 0 : (block > EM_AVX2_SMALL_PANELS ? EM_AVX2_SMALL_PANELS : block);
}

/* Panels [p0, p1) of em_gemm_s16_avx2_rows when K is small (em_gemm_avx2_small_block): rows outer, panels inner,
 * so that each 4-row group's starts are found once (no division per tile), the window rows' offsets come from one
 * table and the panels' output constants are computed once per call. */
EM_AVX2_TARGET static void em_gemm_s16_avx2_small(const em_gemm_rows* A, int64_t M, const em_avx2_gemm* g,
                                                  int8_t* C, int64_t ldc, int64_t p0, int64_t p1) {
    const int64_t groups = A->nseg * A->seg_groups, panel = (g->Kp / 4) * 32;
    int64_t off[EM_AVX2_SMALL_WORK];
    for (int64_t sg = 0, k = 0; sg < A->nseg; sg++)
        for (int64_t j = 0; j < A->seg_groups; j++) off[k++] = sg * A->seg_stride + 8 * j;
    em_avx2_panel pcs[EM_AVX2_SMALL_PANELS];
    for (int64_t p = p0; p < p1; p++) pcs[p - p0] = em_avx2_panel_consts(g, 8 * p);
    /* the next block's panels (as many, fewer at the end): their 64-byte lines, a share per 4-row group */
    const int64_t panels = (g->N + 7) / 8, next_end = p1 + (p1 - p0) < panels ? p1 + (p1 - p0) : panels;
    const int64_t lines = (next_end - p1) * (g->Kp / 4), share = M >= 4 ? (lines + M / 4 - 1) / (M / 4) : 0;
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) {
        const uint8_t* a[4];
        const int64_t lo = m / 4 * share;
        em_avx2_prefetch_lines(g->w + p1 * panel, lo, lo + share < lines ? lo + share : lines);
        em_gemm_row_starts(A, m, 4, 4, a);
        /* every panel's sums first, then their output stage: the latter's long dependency chains (requantization,
         * narrowing) overlap one another instead of stalling the next tile's loop (7% on K = 32 .. 64) */
        __m256i sums[EM_AVX2_SMALL_PANELS][4];
        for (int64_t p = p0; p < p1; p++)
            em_avx2_small_sums(a, off, groups, g->w + p * panel, &pcs[p - p0], sums[p - p0], 4);
        for (int64_t p = p0; p < p1; p++) {
            int8_t* c[4];
            for (int r = 0; r < 4; r++) c[r] = C + (m + r) * ldc + 8 * p;
            em_avx2_exact_rows(sums[p - p0], 4, g, 8 * p, &pcs[p - p0], c, g->N - 8 * p);
        }
    }
    for (; m < M; m++) {
        const uint8_t* a[4];
        em_gemm_row_starts(A, m, 1, 1, a);
        for (int64_t p = p0; p < p1; p++) {
            int8_t* c[4];
            __m256i x[4];
            for (int r = 0; r < 4; r++) c[r] = C + m * ldc + 8 * p;
            em_avx2_small_sums(a, off, groups, g->w + p * panel, &pcs[p - p0], x, 1);
            em_avx2_exact_rows(x, 1, g, 8 * p, &pcs[p - p0], c, g->N - 8 * p);
        }
    }
}

/* C[M][N] (row stride ldc) = requant(A . W), A (int16) described by em_gemm_rows; 4-row tiles, 1-row for the
 * last rows, panels of 8 columns. */
EM_AVX2_TARGET static void em_gemm_s16_avx2_rows(const em_gemm_rows* A, int64_t M, const em_avx2_gemm* g, int8_t* C,
                                                 int64_t ldc) {
    const int64_t block = em_gemm_avx2_small_block(A, g), panels = (g->N + 7) / 8;
    if (block) {
        for (int64_t p = 0; p < panels; p += block)
            em_gemm_s16_avx2_small(A, M, g, C, ldc, p, p + block < panels ? p + block : panels);
        return;
    }
    const int64_t lines = g->Kp / 4, share = M >= 4 ? (lines + M / 4 - 1) / (M / 4) : 0;
    for (int64_t n = 0; n < g->N; n += 8) {
        const em_avx2_panel pc = em_avx2_panel_consts(g, n);
        const int16_t* next = g->w + (n / 8 + 1) * lines * 32;     /* the next panel (em_avx2_prefetch_lines) */
        int64_t m = 0;
        for (; m + 4 <= M; m += 4) {
            const int64_t lo = m / 4 * share;
            if (n + 8 < g->N) em_avx2_prefetch_lines(next, lo, lo + share < lines ? lo + share : lines);
            em_avx2_tile(A, m, g, n, C, ldc, &pc, 4);
        }
        for (; m < M; m++) em_avx2_tile(A, m, g, n, C, ldc, &pc, 1);
    }
}

/* C[M][N] (row stride ldc) = requant(A[M][Kp] (int16, row stride lda) . W). */
EM_AVX2_TARGET static void em_gemm_s16_avx2(const int16_t* A, int64_t lda, int64_t M, const em_avx2_gemm* g,
                                           int8_t* C, int64_t ldc) {
    const em_gemm_rows rows = {(const uint8_t*)A, 2 * lda, 0, 0, 0, 1, 0, g->Kp / 4, 0};
    em_gemm_s16_avx2_rows(&rows, M, g, C, ldc);
}

/* Rows of int8 (row stride lda, K used) -> int16 rows of Kp, zero-filled tail. */
EM_AVX2_TARGET static void em_pack_rows_s16(const int8_t* X, int64_t lda, int64_t M, int64_t K, int64_t Kp,
                                           int16_t* out) {
    for (int64_t m = 0; m < M; m++) {
        const int8_t* x = X + m * lda;
        int16_t* o = out + m * Kp;
        int64_t k = 0;
        for (; k + 16 <= K; k += 16)
            _mm256_storeu_si256((__m256i*)(o + k), _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(x + k))));
        for (; k < K; k++) o[k] = x[k];
        for (; k < Kp; k++) o[k] = 0;
    }
}
#endif
#endif
