"""int8 ADD / SUB / MUL split over threads (em_elementwise.h em_binary_split: contiguous ranges of whole cache
lines, one call of the same kernel each, em_add_int8_avx512's tables per range) on every ISA path EDGEML_ISA can
force: the same bytes as LiteRT's reference formulas (test_elementwise_paths' NumPy expectations) for 2, 3 and 4
threads, sizes on and off 64-byte lines and just past the split threshold, scales the float estimate takes and ones
it refuses (the exact runs, ADD's per-range tables); the plan splits only same-shape operands of 2 x
SPLIT_MIN_ELEMENTS elements and more, and never a broadcast."""
import pytest

from test_binary_broadcast_paths import EXPECTED       # (the ADD / MUL kernels each path runs)
from test_kernel_paths import PATHS, run_on_path

CHECK = r'''
import sys
import numpy as np
from edgeml.runtime.ops.elementwise import SPLIT_MIN_ELEMENTS
from tests.path_cases import ESTIMATE_MUL_SCALES, ESTIMATE_SCALES, binary_expect, compare, report, run_binary

REFUSED = [(0.05, 0.04, 3e-7), (0.03, 0.05, 2e-7)]
REFUSED_MUL = [(0.5, 0.5, 1.0), (0.3, 0.2, 0.1)]
SIZES = [2 * SPLIT_MIN_ELEMENTS, 2 * SPLIT_MIN_ELEMENTS + 1, 3 * SPLIT_MIN_ELEMENTS - 37, 12345, 40000, 100003]


def threads_of(steps):
    return [s.make(lambda t: 0)[1]["threads"] for s in steps]


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, kernels = [], set()
    for k, n in enumerate(SIZES):
        shape = (1, n) if k % 2 else (1, 1, n // 7 + 1, 7)
        a = rng.integers(-128, 128, size=shape).astype(np.int8)
        b = rng.integers(-128, 128, size=shape).astype(np.int8)
        za, zb, zo = (int(v) for v in rng.integers(-128, 128, 3))
        for which in ("ADD", "SUB", "MUL"):
            scales = (ESTIMATE_MUL_SCALES + REFUSED_MUL) if which == "MUL" else (ESTIMATE_SCALES + REFUSED)
            for rounding in (0, 1):
                sa, sb, so = scales[(2 * k + rounding) % len(scales)]
                want = binary_expect(which, a, b, za, zb, zo, sa, sb, so, rounding, "NONE")
                for threads in (1, 2, 3, 4):
                    steps = []
                    got = run_binary(which, a, b, za, zb, zo, sa, sb, so, rounding, "NONE", kernels, threads, steps)
                    compare(failures, f"{which} {shape} rounding {rounding} scales {(sa, sb, so)} threads {threads}",
                            got, want)
                    split = threads_of(steps)[0]
                    expected = max(1, min(threads, a.size // SPLIT_MIN_ELEMENTS))
                    if split != expected:
                        failures.append(f"{which} {shape} with {threads} threads planned {split}, not {expected}")
    # broadcasts and small tensors stay whole
    for sa_shape, sb_shape in (((1, 64, 50, 32), (1, 64, 1, 32)), ((1, 200, 300), (1, 1, 300)),
                               ((1, SPLIT_MIN_ELEMENTS), (1, SPLIT_MIN_ELEMENTS))):
        a = rng.integers(-128, 128, size=sa_shape).astype(np.int8)
        b = rng.integers(-128, 128, size=sb_shape).astype(np.int8)
        for which in ("ADD", "MUL"):
            steps = []
            sa, sb, so = (ESTIMATE_MUL_SCALES if which == "MUL" else ESTIMATE_SCALES)[0]
            got = run_binary(which, a, b, 3, -5, 7, sa, sb, so, 0, "RELU", kernels, 4, steps)
            compare(failures, f"{which} {sa_shape} x {sb_shape} 4 threads", got,
                    binary_expect(which, a, b, 3, -5, 7, sa, sb, so, 0, "RELU"))
            if threads_of(steps) != [1]:
                failures.append(f"{which} {sa_shape} x {sb_shape} was split: {threads_of(steps)}")
    report(kernels, failures)


main()
'''

@pytest.mark.parametrize("forced", PATHS)
def test_split_binary_ops_are_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK, 13)
    for name in EXPECTED.get(forced, ("add_int8", "mul_int8")):
        assert name in kernels, kernels
