/* One name per vector operation, per x86 ISA: EM_V(ISA, OP) is OP on ISA's float vectors (avx2: 8 lanes,
 * avx512: 16), so that a kernel written once as a macro over ISA is instantiated per ISA with that ISA's
 * intrinsics (as em_onnx_conv.h's EM_MLAS_* do).  Each operation is the one instruction the twin bodies used,
 * so an instantiated body computes the same bits as the hand-written one it replaces. */
#ifndef EM_VEC_H
#define EM_VEC_H
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define EM_V(ISA, OP) EM_V_##OP##_##ISA

#define EM_V_T_avx2 __m256
#define EM_V_IT_avx2 __m256i
#define EM_V_LANES_avx2 8
#define EM_V_LOAD_avx2(p) _mm256_loadu_ps(p)
#define EM_V_STORE_avx2(p, v) _mm256_storeu_ps(p, v)
#define EM_V_SET1_avx2(x) _mm256_set1_ps(x)
#define EM_V_BCAST_avx2(p) _mm256_broadcast_ss(p)
#define EM_V_ZERO_avx2() _mm256_setzero_ps()
#define EM_V_ADD_avx2(a, b) _mm256_add_ps(a, b)
#define EM_V_SUB_avx2(a, b) _mm256_sub_ps(a, b)
#define EM_V_MUL_avx2(a, b) _mm256_mul_ps(a, b)
#define EM_V_DIV_avx2(a, b) _mm256_div_ps(a, b)
#define EM_V_MIN_avx2(a, b) _mm256_min_ps(a, b)
#define EM_V_MAX_avx2(a, b) _mm256_max_ps(a, b)
#define EM_V_FLOOR_avx2(a) _mm256_floor_ps(a)
#define EM_V_AND_avx2(a, b) _mm256_and_ps(a, b)
#define EM_V_OR_avx2(a, b) _mm256_or_ps(a, b)
#define EM_V_ANDNOT_avx2(a, b) _mm256_andnot_ps(a, b)                   /* ~a & b */
#define EM_V_LT_SELECT_avx2(a, b, x, y) _mm256_blendv_ps(x, y, _mm256_cmp_ps(a, b, _CMP_LT_OQ))   /* a < b ? y : x */
#define EM_V_LT_ZERO_avx2(a, b, y) _mm256_andnot_ps(_mm256_cmp_ps(a, b, _CMP_LT_OQ), y)          /* a < b ? 0 : y */
#define EM_V_ANY_NAN_avx2(a) _mm256_movemask_ps(_mm256_cmp_ps(a, a, _CMP_UNORD_Q))
#define EM_V_LANE_MASK_avx2(n) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define EM_V_STORE_N_avx2(p, n, v) _mm256_maskstore_ps(p, EM_V_LANE_MASK_avx2(n), v)     /* lanes [0, n) */
#define EM_V_STORE_UPTO_avx2(p, n, v)                         /* lanes [0, min(n, 8)) */                       \
    do {                                                                                                      \
        if ((n) >= 8) _mm256_storeu_ps(p, v);                                                                 \
        else _mm256_maskstore_ps(p, EM_V_LANE_MASK_avx2(n), v);                                               \
    } while (0)
#define EM_V_CVT_avx2(a) _mm256_cvtps_epi32(a)
#define EM_V_CVTT_avx2(a) _mm256_cvttps_epi32(a)
#define EM_V_I2F_avx2(a) _mm256_cvtepi32_ps(a)
#define EM_V_AS_F_avx2(a) _mm256_castsi256_ps(a)
#define EM_V_ILOAD_avx2(p) _mm256_loadu_si256((const __m256i*)(const void*)(p))
#define EM_V_ISET1_avx2(x) _mm256_set1_epi32(x)
#define EM_V_IADD_avx2(a, b) _mm256_add_epi32(a, b)
#define EM_V_ISUB_avx2(a, b) _mm256_sub_epi32(a, b)
#define EM_V_IMULLO_avx2(a, b) _mm256_mullo_epi32(a, b)
#define EM_V_IMIN_avx2(a, b) _mm256_min_epi32(a, b)
#define EM_V_IMAX_avx2(a, b) _mm256_max_epi32(a, b)
#define EM_V_ISHL_avx2(a, n) _mm256_slli_epi32(a, n)
/* the 8 int32 lanes (each in [-128, 127]) as 8 bytes at q */
#define EM_V_STORE_I8_avx2(q, v)                                                                              \
    do {                                                                                                      \
        const __m128i em_v_w16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));  \
        _mm_storel_epi64((__m128i*)(void*)(q), _mm_packs_epi16(em_v_w16, em_v_w16));                          \
    } while (0)
/* the smallest / largest lane, folded from lane 0 upward (an order that picks the same signed zero each time) */
__attribute__((target("avx2"))) static inline float em_v_reduce_min_avx2(__m256 a) {
    float l[8];
    _mm256_storeu_ps(l, a);
    for (int k = 1; k < 8; k++) l[0] = l[k] < l[0] ? l[k] : l[0];
    return l[0];
}
__attribute__((target("avx2"))) static inline float em_v_reduce_max_avx2(__m256 a) {
    float l[8];
    _mm256_storeu_ps(l, a);
    for (int k = 1; k < 8; k++) l[0] = l[k] > l[0] ? l[k] : l[0];
    return l[0];
}
#define EM_V_REDUCE_MIN_avx2(a) em_v_reduce_min_avx2(a)
#define EM_V_REDUCE_MAX_avx2(a) em_v_reduce_max_avx2(a)

#define EM_V_T_avx512 __m512
#define EM_V_IT_avx512 __m512i
#define EM_V_LANES_avx512 16
#define EM_V_LOAD_avx512(p) _mm512_loadu_ps(p)
#define EM_V_STORE_avx512(p, v) _mm512_storeu_ps(p, v)
#define EM_V_SET1_avx512(x) _mm512_set1_ps(x)
#define EM_V_BCAST_avx512(p) _mm512_set1_ps(*(p))
#define EM_V_ZERO_avx512() _mm512_setzero_ps()
#define EM_V_ADD_avx512(a, b) _mm512_add_ps(a, b)
#define EM_V_SUB_avx512(a, b) _mm512_sub_ps(a, b)
#define EM_V_MUL_avx512(a, b) _mm512_mul_ps(a, b)
#define EM_V_DIV_avx512(a, b) _mm512_div_ps(a, b)
#define EM_V_MIN_avx512(a, b) _mm512_min_ps(a, b)
#define EM_V_MAX_avx512(a, b) _mm512_max_ps(a, b)
#define EM_V_FLOOR_avx512(a) _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
/* bitwise float operations through the integer forms: the float ones need AVX512DQ */
#define EM_V_AND_avx512(a, b) _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)))
#define EM_V_OR_avx512(a, b) _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)))
#define EM_V_ANDNOT_avx512(a, b) _mm512_castsi512_ps(_mm512_andnot_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)))
#define EM_V_LT_SELECT_avx512(a, b, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), x, y)
#define EM_V_LT_ZERO_avx512(a, b, y) _mm512_maskz_mov_ps(~_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), y)
#define EM_V_ANY_NAN_avx512(a) _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q)
#define EM_V_STORE_N_avx512(p, n, v) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1u), v)
#define EM_V_STORE_UPTO_avx512(p, n, v) _mm512_mask_storeu_ps(p, (__mmask16)((n) >= 16 ? 0xFFFFu : (1u << (n)) - 1u), v)
#define EM_V_CVT_avx512(a) _mm512_cvtps_epi32(a)
#define EM_V_CVTT_avx512(a) _mm512_cvttps_epi32(a)
#define EM_V_I2F_avx512(a) _mm512_cvtepi32_ps(a)
#define EM_V_AS_F_avx512(a) _mm512_castsi512_ps(a)
#define EM_V_ILOAD_avx512(p) _mm512_loadu_si512((const void*)(p))
#define EM_V_ISET1_avx512(x) _mm512_set1_epi32(x)
#define EM_V_IADD_avx512(a, b) _mm512_add_epi32(a, b)
#define EM_V_ISUB_avx512(a, b) _mm512_sub_epi32(a, b)
#define EM_V_IMULLO_avx512(a, b) _mm512_mullo_epi32(a, b)
#define EM_V_IMIN_avx512(a, b) _mm512_min_epi32(a, b)
#define EM_V_IMAX_avx512(a, b) _mm512_max_epi32(a, b)
#define EM_V_ISHL_avx512(a, n) _mm512_slli_epi32(a, n)
#define EM_V_STORE_I8_avx512(q, v) _mm_storeu_si128((__m128i*)(void*)(q), _mm512_cvtepi32_epi8(v))
#define EM_V_REDUCE_MIN_avx512(a) _mm512_reduce_min_ps(a)
#define EM_V_REDUCE_MAX_avx512(a) _mm512_reduce_max_ps(a)
#endif
#endif
