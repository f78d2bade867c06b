/* float32 ADD / SUB / MUL with broadcasting, and the clamp / leaky activations, on AVX-512 / AVX2.
 *
 * Each output is the reference's one operation on its two inputs (a + b, a - b or a * b, then the clamp), the same
 * rounding on every lane: the reference's bits.  The clamp is min(hi, max(lo, v)), which returns v when v is NaN
 * and keeps -0.0f, as the portable `v < lo ? lo : (v > hi ? hi : v)` does.  The broadcast loop is the portable
 * kernel's (em_elementwise.h EM_BINARY_LOOP): five outer dims, then the innermost run, which is vectorized when
 * each input either walks it (stride 1) or repeats one value (stride 0).
 *
 * Layout EM_FBIN (add_f32_<isa>, sub_f32_<isa>, mul_f32_<isa>): the slots of EM_BINARY.
 *   ptr: input1, input2, output;  i: dims[6], strides1[6], strides2[6] (elements; 0 where broadcast)
 *   f:   act_min, act_max
 * Layout EM_FACT (clamp_f32_<isa>): ptr: input, output;  i: n, kind (0 clamp, 1 leaky);  f: act_min, act_max,
 *   alpha (leaky: x > 0 ? x : x * alpha) */
#ifndef EM_FLOAT_ELEMENTWISE_H
#define EM_FLOAT_ELEMENTWISE_H
#include <stdint.h>
#include "em_params.h"

enum { EM_FBIN_P_INPUT1, EM_FBIN_P_INPUT2, EM_FBIN_P_OUTPUT, EM_FBIN_P_COUNT };
enum { EM_FBIN_I_DIMS, EM_FBIN_I_DIMS_LAST = EM_FBIN_I_DIMS + 5, EM_FBIN_I_STRIDES1,
       EM_FBIN_I_STRIDES1_LAST = EM_FBIN_I_STRIDES1 + 5, EM_FBIN_I_STRIDES2,
       EM_FBIN_I_STRIDES2_LAST = EM_FBIN_I_STRIDES2 + 5, EM_FBIN_I_COUNT };
enum { EM_FBIN_F_ACT_MIN, EM_FBIN_F_ACT_MAX, EM_FBIN_F_COUNT };

enum { EM_FACT_P_INPUT, EM_FACT_P_OUTPUT, EM_FACT_P_COUNT };
enum { EM_FACT_I_N, EM_FACT_I_KIND, EM_FACT_I_COUNT };
enum { EM_FACT_F_ACT_MIN, EM_FACT_F_ACT_MAX, EM_FACT_F_ALPHA, EM_FACT_F_COUNT };

enum { EM_FBIN_ADD, EM_FBIN_SUB, EM_FBIN_MUL };

static inline float em_fbin_scalar(int op, float a, float b, float lo, float hi) {
    const float v = op == EM_FBIN_ADD ? a + b : (op == EM_FBIN_SUB ? a - b : a * b);
    return v < lo ? lo : (v > hi ? hi : v);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* The innermost run of n outputs: x1 / x2 step s1 / s2 (0 or 1 take the vector loop). */
#define EM_FBIN_ROW(SUFFIX, TARGET, VEC, L, LOAD, SET1, ADD, SUB, MUL, MIN, MAX, STORE)                        \
TARGET static void em_fbin_row_##SUFFIX(int op, const float* x1, int64_t s1, const float* x2, int64_t s2,       \
                                       float* y, int64_t n, float lo, float hi) {                              \
    int64_t k = 0;                                                                                             \
    if ((s1 == 0 || s1 == 1) && (s2 == 0 || s2 == 1)) {                                                        \
        const VEC vlo = SET1(lo), vhi = SET1(hi);                                                              \
        for (; k + L <= n; k += L) {                                                                           \
            const VEC a = s1 ? LOAD(x1 + k) : SET1(x1[0]);                                                     \
            const VEC b = s2 ? LOAD(x2 + k) : SET1(x2[0]);                                                     \
            const VEC v = op == EM_FBIN_ADD ? ADD(a, b) : (op == EM_FBIN_SUB ? SUB(a, b) : MUL(a, b));         \
            STORE(y + k, MIN(vhi, MAX(vlo, v)));                                                               \
        }                                                                                                      \
    }                                                                                                          \
    for (; k < n; k++) y[k] = em_fbin_scalar(op, x1[k * s1], x2[k * s2], lo, hi);                              \
}                                                                                                              \
TARGET static void em_fbin_##SUFFIX(const em_params* p, int op) {                                              \
    const int64_t* dims = p->i + EM_FBIN_I_DIMS;                                                               \
    const int64_t* st1 = p->i + EM_FBIN_I_STRIDES1;                                                            \
    const int64_t* st2 = p->i + EM_FBIN_I_STRIDES2;                                                            \
    const float* x1 = (const float*)p->ptr[EM_FBIN_P_INPUT1];                                                  \
    const float* x2 = (const float*)p->ptr[EM_FBIN_P_INPUT2];                                                  \
    float* y = (float*)p->ptr[EM_FBIN_P_OUTPUT];                                                               \
    const float lo = p->f[EM_FBIN_F_ACT_MIN], hi = p->f[EM_FBIN_F_ACT_MAX];                                    \
    int64_t o = 0;                                                                                             \
    for (int64_t i0 = 0; i0 < dims[0]; i0++)                                                                   \
    for (int64_t i1 = 0; i1 < dims[1]; i1++)                                                                   \
    for (int64_t i2 = 0; i2 < dims[2]; i2++)                                                                   \
    for (int64_t i3 = 0; i3 < dims[3]; i3++)                                                                   \
    for (int64_t i4 = 0; i4 < dims[4]; i4++, o += dims[5]) {                                                   \
        const int64_t b1 = i0 * st1[0] + i1 * st1[1] + i2 * st1[2] + i3 * st1[3] + i4 * st1[4];                \
        const int64_t b2 = i0 * st2[0] + i1 * st2[1] + i2 * st2[2] + i3 * st2[3] + i4 * st2[4];                \
        em_fbin_row_##SUFFIX(op, x1 + b1, st1[5], x2 + b2, st2[5], y + o, dims[5], lo, hi);                    \
    }                                                                                                          \
}                                                                                                              \
static void em_add_f32_##SUFFIX(const em_params* p) { em_fbin_##SUFFIX(p, EM_FBIN_ADD); }                      \
static void em_sub_f32_##SUFFIX(const em_params* p) { em_fbin_##SUFFIX(p, EM_FBIN_SUB); }                      \
static void em_mul_f32_##SUFFIX(const em_params* p) { em_fbin_##SUFFIX(p, EM_FBIN_MUL); }                      \
TARGET static void em_clamp_f32_##SUFFIX(const em_params* p) {                                                 \
    const float* x = (const float*)p->ptr[EM_FACT_P_INPUT];                                                    \
    float* y = (float*)p->ptr[EM_FACT_P_OUTPUT];                                                               \
    const int64_t n = p->i[EM_FACT_I_N];                                                                       \
    const float lo = p->f[EM_FACT_F_ACT_MIN], hi = p->f[EM_FACT_F_ACT_MAX], alpha = p->f[EM_FACT_F_ALPHA];     \
    const VEC vlo = SET1(lo), vhi = SET1(hi), va = SET1(alpha), zero = SET1(0.0f);                             \
    int64_t k = 0;                                                                                             \
    if (p->i[EM_FACT_I_KIND] == 0) {                                                                           \
        for (; k + L <= n; k += L) STORE(y + k, MIN(vhi, MAX(vlo, LOAD(x + k))));                              \
        for (; k < n; k++) y[k] = x[k] < lo ? lo : (x[k] > hi ? hi : x[k]);                                    \
        return;                                                                                                \
    }                                                                                                          \
    for (; k + L <= n; k += L) {       /* x > 0 ? x : x * alpha, lane by lane */                               \
        const VEC v = LOAD(x + k);                                                                             \
        STORE(y + k, EM_FBLEND_##SUFFIX(MUL(v, va), v, v, zero));                                              \
    }                                                                                                          \
    for (; k < n; k++) y[k] = x[k] > 0.0f ? x[k] : x[k] * alpha;                                               \
}

/* EM_FBLEND_<isa>(a, b, v, zero): b where v > 0, else a */
#define EM_FBLEND_avx512(A, B, V, Z) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(V, Z, _CMP_GT_OQ), A, B)
#define EM_FBLEND_avx2(A, B, V, Z) _mm256_blendv_ps(A, B, _mm256_cmp_ps(V, Z, _CMP_GT_OQ))

EM_FBIN_ROW(avx512, __attribute__((target("avx512f"))), __m512, 16, _mm512_loadu_ps, _mm512_set1_ps, _mm512_add_ps,
            _mm512_sub_ps, _mm512_mul_ps, _mm512_min_ps, _mm512_max_ps, _mm512_storeu_ps)
EM_FBIN_ROW(avx2, __attribute__((target("avx2"))), __m256, 8, _mm256_loadu_ps, _mm256_set1_ps, _mm256_add_ps,
            _mm256_sub_ps, _mm256_mul_ps, _mm256_min_ps, _mm256_max_ps, _mm256_storeu_ps)
#else
/* never selected: the loader picks these kernels only on x86-64 CPUs that report the ISA */
#define EM_FBIN_NONE(SUFFIX)                                                                                   \
static void em_add_f32_##SUFFIX(const em_params* p) { (void)p; }                                               \
static void em_sub_f32_##SUFFIX(const em_params* p) { (void)p; }                                               \
static void em_mul_f32_##SUFFIX(const em_params* p) { (void)p; }                                               \
static void em_clamp_f32_##SUFFIX(const em_params* p) { (void)p; }
EM_FBIN_NONE(avx512)
EM_FBIN_NONE(avx2)
#endif
#endif
