/* Which instruction-set path the kernels take, decided once from CPU features.
 * EDGEML_ISA=scalar|avx2|avxvnni|avx512|avx512vnni forces a path (never one the CPU lacks); aarch64 has scalar and
 * neon.  The x86 levels are ordered so that "isa >= EM_ISA_AVX2" / ">= EM_ISA_AVX512" test for the instructions of
 * that level; AVX-VNNI (vpdpbusd on 256-bit registers, VEX-encoded: Alder Lake, Zen 4+) sits between AVX2 and
 * AVX-512 and is taken only where the CPU reports it (a CPU with AVX-512 VNNI need not have the VEX form). */
#ifndef EM_ISA_H
#define EM_ISA_H
#include <stdlib.h>
#include <string.h>

#define EM_ISA_SCALAR 0
#define EM_ISA_AVX2 1
#define EM_ISA_AVXVNNI 2    /* AVX2 + AVX-VNNI, no AVX-512 */
#define EM_ISA_AVX512 3
#define EM_ISA_AVX512VNNI 4
#define EM_ISA_NEON 5       /* aarch64: Advanced SIMD is part of the base architecture */

/* The AVX-VNNI kernels need GCC 11 / clang 13 (target "avxvnni", _mm256_dpbusd_avx_epi32); older compilers build
 * without them and never take that path.  -DEM_HAVE_AVXVNNI=0 builds without them on any compiler. */
#ifndef EM_HAVE_AVXVNNI
#if defined(__x86_64__) && ((defined(__clang__) && __clang_major__ >= 13) || \
                            (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define EM_HAVE_AVXVNNI 1
#else
#define EM_HAVE_AVXVNNI 0
#endif
#endif

#ifdef EM_SCALAR_ONLY
/* Portable builds (edgeml compile --target generic): every dispatch takes the scalar body, so the compiler drops
 * the SIMD ones, and no CPU probing or getenv is needed. */
static inline int em_isa(void) { return EM_ISA_SCALAR; }
#else
static int em_isa_detect(void) {
    int best = EM_ISA_SCALAR, avxvnni = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) best = EM_ISA_AVX2;
#if EM_HAVE_AVXVNNI
    avxvnni = best == EM_ISA_AVX2 && __builtin_cpu_supports("avxvnni");
#endif
    if (avxvnni) best = EM_ISA_AVXVNNI;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl")) best = EM_ISA_AVX512;
    if (best == EM_ISA_AVX512 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512dq"))
        best = EM_ISA_AVX512VNNI;
#elif defined(__aarch64__)
    best = EM_ISA_NEON;
#endif
    const char* forced = getenv("EDGEML_ISA");
    if (forced) {
        /* only a path this build and CPU have: x86 names below the best x86 path, "scalar" anywhere */
        if (strcmp(forced, "scalar") == 0) best = EM_ISA_SCALAR;
        else if (best != EM_ISA_NEON) {
            int want = best;
            if (strcmp(forced, "avx2") == 0) want = EM_ISA_AVX2;
            else if (strcmp(forced, "avxvnni") == 0) want = avxvnni ? EM_ISA_AVXVNNI : best;
            else if (strcmp(forced, "avx512") == 0) want = EM_ISA_AVX512;
            else if (strcmp(forced, "avx512vnni") == 0) want = EM_ISA_AVX512VNNI;
            if (want < best) best = want;
        }
    }
    return best;
}

static int em_isa_cached = -1;
static inline int em_isa(void) {
    if (em_isa_cached < 0) em_isa_cached = em_isa_detect();
    return em_isa_cached;
}
#endif  /* EM_SCALAR_ONLY */
#endif
