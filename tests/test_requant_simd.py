"""The AVX-512 double-rounding requantization (em_gemm_vnni.h: em_mbqm_apply_x16, em_rdbpot_x16 after
em_srdhm_shifted20_x16) equals the scalar em_mbqm_double lane for lane: every right shift 0..31, left shifts,
multipliers at the ends of [2^30, 2^31) and 0, int32 extremes and rounding ties in both roundings.  Built with
the host gcc as a small C program; skips where gcc or AVX-512 VNNI is absent."""
import shutil
import subprocess
from pathlib import Path

import pytest

INCLUDE = Path(__file__).resolve().parents[1] / "cython_ops" / "include"

CHECK = r'''
#include <stdio.h>
#include <stdlib.h>
#include "em_gemm_vnni.h"
#include "em_requant.h"
static uint64_t state = 88172645463325252ull;
static uint32_t rnd32(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return (uint32_t)state; }
static const int32_t EDGE[] = {INT32_MIN, INT32_MIN + 1, INT32_MAX, INT32_MAX - 1, 0, 1, -1, 2, -2, 3, -3,
                               1 << 30, -(1 << 30), (1 << 30) + 1, -(1 << 30) - 1, 65535, -65536, 1 << 16};
static int32_t pick_x(int kind) {
    switch (kind) {
    case 0: return (int32_t)rnd32();                                              /* anywhere */
    case 1: return EDGE[rnd32() % (sizeof EDGE / sizeof EDGE[0])];
    case 2: return (int32_t)(rnd32() % 4001) - 2000;                              /* small sums: ties */
    default: return (int32_t)((rnd32() % 65) - 32) << (rnd32() % 28);             /* multiples of powers of 2 */
    }
}
EM_VNNI_TARGET static long check(void) {
    long bad = 0, checked = 0;
    int32_t x[16], m[16], sh[16], got[16];
    for (int trial = 0; trial < 200000; trial++) {
        for (int l = 0; l < 16; l++) {
            uint32_t r = rnd32() % 8;
            m[l] = r == 0 ? (1 << 30) : r == 1 ? INT32_MAX : r == 2 ? 0 : (int32_t)((1u << 30) | (rnd32() >> 2));
            r = rnd32() % 4;   /* right shifts 0..31 most often, left shifts up to 12 */
            sh[l] = r == 0 ? (int32_t)(rnd32() % 13) : -(int32_t)(rnd32() % 32);
            x[l] = pick_x((int)(rnd32() % 4));
            if (sh[l] > 0 && rnd32() % 2) x[l] >>= sh[l] + 1;   /* mostly without wrapping in the left shift */
        }
        __m512i v = em_mbqm_double_x16(_mm512_loadu_si512(x), _mm512_loadu_si512(m), _mm512_loadu_si512(sh));
        _mm512_storeu_si512(got, v);
        for (int l = 0; l < 16; l++, checked++) {
            int32_t want = em_mbqm_double(x[l], m[l], sh[l]);
            if (got[l] != want && bad++ < 10)
                printf("mbqm x=%d m=%d shift=%d: got %d want %d\n", x[l], m[l], sh[l], got[l], want);
        }
    }
    /* ADD's input stage: SRDHM((d << 20), m) in 32-bit lanes, then RoundingDivideByPOT, for every |d| <= 255 */
    for (int trial = 0; trial < 20000; trial++) {
        for (int l = 0; l < 16; l++) {
            uint32_t r = rnd32() % 4;
            m[l] = r == 0 ? (1 << 30) : r == 1 ? INT32_MAX : (int32_t)((1u << 30) | (rnd32() >> 2));
            sh[l] = -(int32_t)(rnd32() % 32);
        }
        __m512i mv = _mm512_loadu_si512(m);
        em_mbqm16 q = em_mbqm_consts(mv, _mm512_loadu_si512(sh));
        __m512i mh = _mm512_srli_epi32(mv, 16), ml = _mm512_and_si512(mv, _mm512_set1_epi32(0xFFFF));
        for (int d0 = -255; d0 <= 255; d0 += 16) {
            for (int l = 0; l < 16; l++) x[l] = d0 + l > 255 ? 255 : d0 + l;
            _mm512_storeu_si512(got, em_rdbpot_x16(em_srdhm_shifted20_x16(_mm512_loadu_si512(x), mh, ml), &q));
            for (int l = 0; l < 16; l++, checked++) {
                int32_t want = em_mbqm_double(x[l] * (1 << 20), m[l], sh[l]);
                if (got[l] != want && bad++ < 20)
                    printf("add stage d=%d m=%d shift=%d: got %d want %d\n", x[l], m[l], sh[l], got[l], want);
            }
        }
    }
    printf("checked %ld bad %ld\n", checked, bad);
    return bad;
}
int main(void) {
    if (!__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("avx512dq") ||
        !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl")) { puts("noisa"); return 0; }
    return check() != 0;
}
'''


def test_simd_double_rounding_equals_scalar(tmp_path):
    cc = shutil.which("gcc")
    if cc is None:
        pytest.skip("gcc is not installed")
    src = tmp_path / "check.c"
    src.write_text(CHECK)
    exe = tmp_path / "check"
    built = subprocess.run([cc, "-O2", "-fno-strict-aliasing", "-Wall", "-I", str(INCLUDE), str(src), "-o", str(exe)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    if out.stdout.strip() == "noisa":
        pytest.skip("the CPU has no AVX-512 VNNI")
    assert out.returncode == 0 and " bad 0" in out.stdout, out.stdout + out.stderr
