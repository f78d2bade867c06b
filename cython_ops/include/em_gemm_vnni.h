/* qs8 GEMM micro-kernel for AVX-512 VNNI: 4 rows x 16 columns, K in groups of 4 (vpdpbusd), requantization
 * vectorized and exact.
 *
 * vpdpbusd multiplies unsigned by signed bytes, so activations are stored as x + 128 (uint8); the extra
 * 128 * sum(w) is folded into the bias at load, as is the input zero point:
 *   sum w (x - zp) + bias = sum w (x + 128) + [bias - (zp + 128) sum w].
 * Weights are packed at load into blocks of 16 columns: for each k-group of 4, 64 bytes w[n+j][k..k+3].
 * Columns are padded to a multiple of 16 and K to a multiple of 4 with zero weights. */
#ifndef EM_GEMM_VNNI_H
#define EM_GEMM_VNNI_H
#include <stdint.h>
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
} em_vnni_gemm;

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define EM_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

/* TFLite's MultiplyByQuantizedMultiplier (double rounding) on 16 lanes. */
EM_VNNI_TARGET static inline __m512i em_mbqm_double_x16(__m512i x, __m512i m, __m512i shift) {
    const __m512i zero = _mm512_setzero_si512();
    __m512i left = _mm512_max_epi32(shift, zero);
    __m512i right = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
    x = _mm512_sllv_epi32(x, left);
    /* SRDHM: (x*m + nudge) / 2^31 truncating; m > 0 so no saturation case */
    __m512i p_even = _mm512_mul_epi32(x, m);
    __m512i p_odd = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(m, 32));
    const __m512i pos_nudge = _mm512_set1_epi64(1LL << 30);
    const __m512i neg_nudge = _mm512_set1_epi64(1 - (1LL << 30));
    const __m512i bias_neg = _mm512_set1_epi64((1LL << 31) - 1);
    __mmask8 ne = _mm512_cmplt_epi64_mask(p_even, _mm512_setzero_si512());
    __mmask8 no = _mm512_cmplt_epi64_mask(p_odd, _mm512_setzero_si512());
    p_even = _mm512_add_epi64(p_even, _mm512_mask_blend_epi64(ne, pos_nudge, neg_nudge));
    p_odd = _mm512_add_epi64(p_odd, _mm512_mask_blend_epi64(no, pos_nudge, neg_nudge));
    /* truncating division by 2^31: add 2^31 - 1 to negative numerators before the arithmetic shift */
    ne = _mm512_cmplt_epi64_mask(p_even, _mm512_setzero_si512());
    no = _mm512_cmplt_epi64_mask(p_odd, _mm512_setzero_si512());
    p_even = _mm512_mask_add_epi64(p_even, ne, p_even, bias_neg);
    p_odd = _mm512_mask_add_epi64(p_odd, no, p_odd, bias_neg);
    p_even = _mm512_srai_epi64(p_even, 31);
    p_odd = _mm512_srai_epi64(p_odd, 31);
    /* even results in the low halves, odd in the high halves */
    __m512i hi = _mm512_slli_epi64(p_odd, 32);
    __m512i v = _mm512_mask_blend_epi32((__mmask16)0xAAAA, p_even, hi);
    /* RoundingDivideByPOT(v, right) */
    __m512i one = _mm512_set1_epi32(1);
    __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, right), one);
    __m512i rem = _mm512_and_si512(v, mask);
    __m512i thr = _mm512_srai_epi32(mask, 1);
    __mmask16 negv = _mm512_cmplt_epi32_mask(v, zero);
    thr = _mm512_mask_add_epi32(thr, negv, thr, one);
    v = _mm512_srav_epi32(v, right);
    __mmask16 up = _mm512_cmpgt_epi32_mask(rem, thr);
    return _mm512_mask_add_epi32(v, up, v, one);
}

/* round(acc * scale) in double, half away from zero, exactly: trunc, then compare the exact remainder. */
EM_VNNI_TARGET static inline __m256i em_round_scale_x8(__m256i acc, __m512d scale) {
    __m512d x = _mm512_mul_pd(_mm512_cvtepi32_pd(acc), scale);
    __m512d t = _mm512_roundscale_pd(x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m512d frac = _mm512_sub_pd(x, t);
    __mmask8 up = _mm512_cmp_pd_mask(frac, _mm512_set1_pd(0.5), _CMP_GE_OQ);
    __mmask8 down = _mm512_cmp_pd_mask(frac, _mm512_set1_pd(-0.5), _CMP_LE_OQ);
    t = _mm512_mask_add_pd(t, up, t, _mm512_set1_pd(1.0));
    t = _mm512_mask_sub_pd(t, down, t, _mm512_set1_pd(1.0));
    t = _mm512_min_pd(_mm512_max_pd(t, _mm512_set1_pd(-1e9)), _mm512_set1_pd(1e9));
    return _mm512_cvttpd_epi32(t);
}

EM_VNNI_TARGET static inline void em_vnni_store16(__m512i acc, const em_vnni_gemm* g, int64_t n, int8_t* c,
                                                  __mmask16 cols) {
    acc = _mm512_add_epi32(acc, _mm512_loadu_si512(g->bias + n));
    __m512i v;
    if (g->mode == EM_ROUND_DOUBLE) {
        v = em_mbqm_double_x16(acc, _mm512_loadu_si512(g->mult + n), _mm512_loadu_si512(g->shift + n));
    } else if (g->mode == EM_REQUANT_DOUBLE_SCALE) {
        __m256i lo = em_round_scale_x8(_mm512_castsi512_si256(acc), _mm512_loadu_pd(g->scale + n));
        __m256i hi = em_round_scale_x8(_mm512_extracti64x4_epi64(acc, 1), _mm512_loadu_pd(g->scale + n + 8));
        v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    } else if (g->mode == EM_REQUANT_FLOAT) {
        __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(g->fscale + n));
        f = _mm512_min_ps(_mm512_max_ps(f, _mm512_set1_ps(-1e9f)), _mm512_set1_ps(1e9f));
        v = _mm512_cvt_roundps_epi32(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    } else {
        int32_t tmp[16];
        _mm512_storeu_si512(tmp, acc);
        for (int j = 0; j < 16; j++) tmp[j] = em_mbqm_single(tmp[j], g->mult[n + j], (int)g->shift[n + j]);
        v = _mm512_loadu_si512(tmp);
    }
    v = _mm512_add_epi32(v, _mm512_set1_epi32(g->out_zp));
    v = _mm512_max_epi32(v, _mm512_set1_epi32(g->act_min));
    v = _mm512_min_epi32(v, _mm512_set1_epi32(g->act_max));
    _mm_mask_storeu_epi8(c, cols, _mm512_cvtepi32_epi8(v));
}

/* C[M][N] (row stride ldc) = requant(A[M][Kp] (uint8, x + 128) . W). */
EM_VNNI_TARGET static void em_gemm_u8s8_vnni(const uint8_t* A, int64_t M, const em_vnni_gemm* g, int8_t* C,
                                            int64_t ldc) {
    const int64_t Kp = g->Kp, N = g->N, kg = Kp / 4;
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) {
        const uint8_t* a0 = A + (m + 0) * Kp;
        const uint8_t* a1 = A + (m + 1) * Kp;
        const uint8_t* a2 = A + (m + 2) * Kp;
        const uint8_t* a3 = A + (m + 3) * Kp;
        for (int64_t n = 0; n < N; n += 16) {
            const int8_t* w = g->w + n * Kp;
            __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0;
            for (int64_t k = 0; k < kg; k++) {
                __m512i b = _mm512_loadu_si512(w + k * 64);
                c0 = _mm512_dpbusd_epi32(c0, _mm512_set1_epi32(*(const int32_t*)(a0 + 4 * k)), b);
                c1 = _mm512_dpbusd_epi32(c1, _mm512_set1_epi32(*(const int32_t*)(a1 + 4 * k)), b);
                c2 = _mm512_dpbusd_epi32(c2, _mm512_set1_epi32(*(const int32_t*)(a2 + 4 * k)), b);
                c3 = _mm512_dpbusd_epi32(c3, _mm512_set1_epi32(*(const int32_t*)(a3 + 4 * k)), b);
            }
            __mmask16 cols = N - n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (N - n)) - 1);
            em_vnni_store16(c0, g, n, C + (m + 0) * ldc + n, cols);
            em_vnni_store16(c1, g, n, C + (m + 1) * ldc + n, cols);
            em_vnni_store16(c2, g, n, C + (m + 2) * ldc + n, cols);
            em_vnni_store16(c3, g, n, C + (m + 3) * ldc + n, cols);
        }
    }
    for (; m < M; m++) {
        const uint8_t* a0 = A + m * Kp;
        for (int64_t n = 0; n < N; n += 16) {
            const int8_t* w = g->w + n * Kp;
            __m512i c0 = _mm512_setzero_si512(), c1 = c0;
            int64_t k = 0;
            for (; k + 2 <= kg; k += 2) {   /* two chains so the dependency latency overlaps */
                c0 = _mm512_dpbusd_epi32(c0, _mm512_set1_epi32(*(const int32_t*)(a0 + 4 * k)),
                                         _mm512_loadu_si512(w + k * 64));
                c1 = _mm512_dpbusd_epi32(c1, _mm512_set1_epi32(*(const int32_t*)(a0 + 4 * k + 4)),
                                         _mm512_loadu_si512(w + k * 64 + 64));
            }
            for (; k < kg; k++)
                c0 = _mm512_dpbusd_epi32(c0, _mm512_set1_epi32(*(const int32_t*)(a0 + 4 * k)),
                                         _mm512_loadu_si512(w + k * 64));
            __mmask16 cols = N - n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (N - n)) - 1);
            em_vnni_store16(_mm512_add_epi32(c0, c1), g, n, C + m * ldc + n, cols);
        }
    }
}

/* Rows of int8 (row stride lda, K used) -> uint8 rows of Kp (x + 128), zero-filled tail. */
EM_VNNI_TARGET static void em_pack_rows_u8(const int8_t* X, int64_t lda, int64_t M, int64_t K, int64_t Kp,
                                          uint8_t* out) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (int64_t m = 0; m < M; m++) {
        const int8_t* x = X + m * lda;
        uint8_t* o = out + m * Kp;
        int64_t k = 0;
        for (; k + 64 <= K; k += 64)
            _mm512_storeu_si512(o + k, _mm512_xor_si512(_mm512_loadu_si512(x + k), flip));
        if (k < K) {
            __mmask64 mk = ((__mmask64)-1) >> (64 - (K - k));
            _mm512_mask_storeu_epi8(o + k, mk, _mm512_xor_si512(_mm512_maskz_loadu_epi8(mk, x + k), flip));
        }
        for (int64_t t = K; t < Kp; t++) o[t] = 0;
    }
}
#endif
#endif
