"""The int8 multiply-accumulate ceiling of each x86 instruction path.

Issue 18 asks the AVX2 path to stay within 2.5x of the default (AVX-512 VNNI) one.  A GEMM-bound layer cannot run
on AVX2 faster than AVX2's multiply-accumulate ceiling, so its AVX2 / VNNI ratio is at least (the VNNI kernel's
measured GMAC/s) / (that ceiling).  This script measures the ceilings: loops of independent multiply-accumulates
held in registers (no loads), timed in thread CPU time, for

  avx2 exact     vpmaddwd + vpaddd on int16 operands (16 MACs per pair): what the exact AVX2 kernels do, since
                 vpmaddubsw's int16 pair sums saturate (255 * 127 * 2 > 32767)
  avx2 maddubs   vpmaddubsw + vpmaddwd(ones) + vpaddd (32 MACs per triple): saturating, NOT exact; shown to say
                 that even it would not close the gap
  avx2 sign      |a| . (sign(a) w) by vpabsb / vpsignb + the maddubs triple: exact when no weight is -128, but the
                 extra vpsignb per product makes it slower than the exact form here
  avxvnni        vpdpbusd on 256-bit registers (32 MACs, one instruction)
  avx512vnni     vpdpbusd on 512-bit registers (64 MACs, one instruction)

The AVX2 loops use 4 accumulators over a 2 x 2 tile of distinct operands (their chains go through vpaddd only); the
vpdpbusd loops 12 accumulators (to cover its latency).  The kernels' own rates per path on real layer shapes come
from `benchmarks/bench_kernels.py layers` (GMAC/s per ISA path).  The C loops are compiled at run time with the
system's cc (target attributes per function; a path the CPU lacks is skipped).

    python benchmarks/bench_peak.py
"""
from __future__ import annotations

import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import time

SOURCE = r"""
#include <immintrin.h>
#include <stdint.h>
#define ACC 12
static int64_t sink;

/* The AVX2 loops form each product apart from the accumulation, so each of their 4 accumulators takes its own
 * operand pair (2 row values x 2 weight vectors, a 2 x 2 GEMM tile; with one shared pair the compiler would form the
 * product once); the accumulators' chains go through vpaddd only (latency 1), so 4 keep the units busy.  The asm
 * barrier makes the operands new each iteration; named variables keep everything in registers. */
#define AVX2_LOOP(NAME, X, Y, ROW, PRODUCT)                                                               \
    __attribute__((target("avx2"))) int64_t NAME(int64_t iters) {                                          \
        __m256i c0 = _mm256_set1_epi32(0), c1 = _mm256_set1_epi32(1), c2 = _mm256_set1_epi32(2),           \
                c3 = _mm256_set1_epi32(3), x0 = X(0), x1 = X(1), y0 = Y(0), y1 = Y(1);                     \
        const __m256i one = _mm256_set1_epi16(1);                                                         \
        for (int64_t n = 0; n < iters; n++) {                                                             \
            __asm__ volatile("" : "+x"(x0), "+x"(x1), "+x"(y0), "+x"(y1));                                \
            const __m256i r0 = ROW(x0), r1 = ROW(x1);                                                     \
            c0 = _mm256_add_epi32(c0, PRODUCT(x0, r0, y0, one));                                          \
            c1 = _mm256_add_epi32(c1, PRODUCT(x0, r0, y1, one));                                          \
            c2 = _mm256_add_epi32(c2, PRODUCT(x1, r1, y0, one));                                          \
            c3 = _mm256_add_epi32(c3, PRODUCT(x1, r1, y1, one));                                          \
        }                                                                                                 \
        const __m256i s = _mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3));           \
        return sink = _mm256_extract_epi32(s, 0);                                                         \
    }
#define X16(i) _mm256_set1_epi32(0x00030002 + (i))
#define Y16(i) _mm256_set1_epi32(0x00050007 + (i))
#define X8(i) _mm256_set1_epi8(-3 - (i))
#define Y8(i) _mm256_set1_epi8(5 + (i))
#define SAME(x) (x)
#define ABS(x) _mm256_abs_epi8(x)
#define MADD(a, row, b, one) _mm256_madd_epi16(a, b)
#define MADDUBS(a, row, b, one) _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), one)
/* a . w = |a| . (sign(a) w): |a| once per row (vpabsb), the sign per row and weight vector (vpsignb) */
#define SIGNED(a, abs_a, b, one) _mm256_madd_epi16(_mm256_maddubs_epi16(abs_a, _mm256_sign_epi8(b, a)), one)
AVX2_LOOP(avx2_exact, X16, Y16, SAME, MADD)
AVX2_LOOP(avx2_maddubs, X8, Y8, SAME, MADDUBS)
AVX2_LOOP(avx2_sign, X8, Y8, ABS, SIGNED)

/* vpdpbusd takes its accumulator as an operand, so 12 of them sharing one operand pair are 12 instructions; 12 cover
 * its latency at two per cycle. */
#define VNNI_LOOP(NAME, TARGET, VEC, SET1, SET1_32, DPBUSD, ADD, FIRST_LANE)                   \
    __attribute__((target(TARGET))) int64_t NAME(int64_t iters) {                              \
        VEC acc[ACC], a = SET1(3), b = SET1(5);                                                \
        for (int i = 0; i < ACC; i++) acc[i] = SET1_32(i);                                     \
        for (int64_t n = 0; n < iters; n++) {                                                  \
            __asm__ volatile("" : "+v"(a), "+v"(b));                                           \
            _Pragma("GCC unroll 12")                                                           \
            for (int i = 0; i < ACC; i++) acc[i] = DPBUSD(acc[i], a, b);                       \
        }                                                                                      \
        VEC s = acc[0];                                                                        \
        for (int i = 1; i < ACC; i++) s = ADD(s, acc[i]);                                      \
        return sink = FIRST_LANE(s);                                                           \
    }
#define FIRST256(s) _mm256_extract_epi32(s, 0)
#define FIRST512(s) _mm512_reduce_add_epi32(s)

#if (defined(__clang__) && __clang_major__ >= 13) || (!defined(__clang__) && __GNUC__ >= 11)
VNNI_LOOP(avxvnni, "avx2,avxvnni", __m256i, _mm256_set1_epi8, _mm256_set1_epi32, _mm256_dpbusd_avx_epi32,
          _mm256_add_epi32, FIRST256)
int has_avxvnni(void) { __builtin_cpu_init(); return __builtin_cpu_supports("avxvnni"); }
#else
int64_t avxvnni(int64_t iters) { return iters; }
int has_avxvnni(void) { return 0; }
#endif
VNNI_LOOP(avx512vnni, "avx512f,avx512bw,avx512vnni", __m512i, _mm512_set1_epi8, _mm512_set1_epi32,
          _mm512_dpbusd_epi32, _mm512_add_epi32, FIRST512)

int has_avx2(void) { __builtin_cpu_init(); return __builtin_cpu_supports("avx2"); }
int has_avx512vnni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
}
"""

# (name, function, feature probe, MACs per accumulator per iteration, exact)
LOOPS = (("avx2 exact (vpmaddwd + vpaddd)", "avx2_exact", "has_avx2", 16, True),
         ("avx2 maddubs (saturating, not exact)", "avx2_maddubs", "has_avx2", 32, False),
         ("avx2 sign trick (vpsignb + vpmaddubsw + vpmaddwd + vpaddd; weights in [-127, 127])", "avx2_sign", "has_avx2", 32, True),
         ("avxvnni (vpdpbusd ymm)", "avxvnni", "has_avxvnni", 32, True),
         ("avx512vnni (vpdpbusd zmm)", "avx512vnni", "has_avx512vnni", 64, True))
ACC = 12


def build(tmp: str) -> ctypes.CDLL:
    src, lib = os.path.join(tmp, "peak.c"), os.path.join(tmp, "peak.so")
    with open(src, "w") as f:
        f.write(SOURCE)
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", "-o", lib, src], check=True)
    return ctypes.CDLL(lib)


def gmacs(fn, macs_per_iter: int, accs: int, iters: int = 2_000_000, runs: int = 9) -> float:
    fn.restype, fn.argtypes = ctypes.c_int64, [ctypes.c_int64]
    fn(iters // 10)
    rates = []
    for _ in range(runs):
        t = time.thread_time_ns()
        fn(iters)
        rates.append(macs_per_iter * accs * iters / (time.thread_time_ns() - t))
    return statistics.median(rates)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        lib = build(tmp)
        rows = []
        for name, fn, probe, macs, exact in LOOPS:
            if not getattr(lib, probe)():
                rows.append((name, None, exact))
                continue
            rows.append((name, gmacs(getattr(lib, fn), macs, 4 if fn.startswith("avx2") else ACC), exact))
    best = max(r for _, r, e in rows if r is not None and e)
    print("| loop | GMAC/s | exact | ceiling ratio to the best exact path |")
    print("|---|---:|---|---:|")
    for name, rate, exact in rows:
        if rate is None:
            print(f"| {name} | (CPU lacks it) | {'yes' if exact else 'no'} | |")
        else:
            print(f"| {name} | {rate:.1f} | {'yes' if exact else 'no'} | {best / rate:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
