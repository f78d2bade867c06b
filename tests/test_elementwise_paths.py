"""The element-wise vector kernels on every ISA path EDGEML_ISA can force, against NumPy expectations written from
the formulas (not from the kernels): the 256-entry table lookup (int8 -> int8, int8 -> float32, the checked form)
on every length around the vector widths, and int8 ADD / SUB / MUL with every kind of broadcast (per channel, per
row, scalar, both inputs broadcasting, odd channel counts, ranks 1-5) in both rounding modes with fused
activations; MEAN int8 / float32 over every kind of axis set.  As in test_kernel_paths.py the ISA path is fixed per process, so each path runs in a subprocess."""

import pytest

from test_kernel_paths import PATHS, run_on_path

CHECK = r'''
import sys
import numpy as np
from edgeml.runtime.kernels import Engine, kernel_address
from edgeml.runtime.layouts import layout_of
from edgeml.runtime.plan import address
from tests.path_cases import ACTIVATIONS, binary_expect, check_mean, compare, report, run_binary


def run_kernel(kernel, ptrs, ints, keep):
    layout = layout_of(kernel)
    Engine([(kernel_address(kernel), layout.ptrs(**ptrs), [int(v) for v in layout.ints(**ints)], [])],
           keepalive=keep).invoke()


def check_tables(rng, failures, kernels):
    lengths = [0, 1, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 191, 200, 1000, 1025, 4099]
    for n in lengths:
        table = rng.integers(0, 256, 256, dtype=np.int64).astype(np.uint8)
        x = rng.integers(0, 256, n, dtype=np.int64).astype(np.uint8)
        y = np.zeros(n + 64, np.uint8)              # bytes past n must stay untouched
        run_kernel("lut_int8", dict(input=address(x), output=address(y), table=address(table)), dict(n=n),
                   [x, y, table])
        if not np.array_equal(y[:n], table[x]) or y[n:].any():
            failures.append(f"lut_int8 n={n}: {int((y[:n] != table[x]).sum())} differ")
        ftable = rng.standard_normal(256).astype(np.float32)
        yf = np.zeros(n + 16, np.float32)
        run_kernel("lut_int8_f32", dict(input=address(x), output=address(yf), table=address(ftable)), dict(n=n),
                   [x, yf, ftable])
        if not np.array_equal(yf[:n], ftable[x]) or yf[n:].any():
            failures.append(f"lut_int8_f32 n={n} differs")
        checked = np.concatenate([table, (rng.random(256) < 0.9).astype(np.uint8)])
        status = np.full(4, 7, np.int32)
        yc = np.zeros(n, np.uint8)
        run_kernel("lut_checked", dict(input=address(x), output=address(yc), table=address(checked),
                                       status=address(status)), dict(n=n), [x, yc, checked, status])
        want = 0 if checked[256 + x.astype(np.int64)].all() else 1
        if not np.array_equal(yc, table[x]) or status[0] != want:
            failures.append(f"lut_checked n={n}: status {status[0]} (want {want})")
    kernels.update(["lut_int8", "lut_int8_f32", "lut_checked"])


def broadcast_pair(rng, k):
    """Two input shapes that broadcast, by kind: per channel, per row, scalar, both broadcasting, general."""
    c = int(rng.choice([1, 3, 5, 16, 17, 24, 64, 70]))
    h, w = (int(v) for v in rng.integers(1, 12, 2))
    kind = k % 7
    if kind == 0:
        return (1, h, w, c), (c,)
    if kind == 1:
        return (1, h, w, c), (1, h, 1, 1)
    if kind == 2:
        return (1, h, w, c), (1, 1, 1, 1) if k % 2 else ()
    if kind == 3:
        return (1, h, 1, c), (1, 1, w, c)
    if kind == 4:
        return (2, h, w, c), (2, 1, w, 1)
    if kind == 5:
        return (int(rng.integers(1, 4)), h, w * c), (int(rng.integers(1, 4)) * 0 + 1, 1, w * c)
    return (h,), (h,) if k % 2 else (1,)


# large enough for ADD / SUB's table loop (1024 elements, runs of 64 or more): per frequency, per frame, scalar;
# runs of 512 or more against one element (the run as a 256-entry table, EM_RUN_VIA_LUT) on either side;
# per-channel operands, walked in buffers of whole periods (EM_BINARY_RUNS), and one whose period is too long
TABLE_PAIRS = [((1, 9, 13, 17), (1, 1, 13, 17)), ((1, 9, 13, 17), (1, 9, 1, 1)), ((1, 7, 11, 19), ()),
               ((2, 5, 3, 71), (2, 5, 3, 71)), ((1, 5, 16, 40), (1, 5, 1, 1)), ((1,), (1, 6, 9, 23)),
               ((2, 1, 1, 1), (2, 3, 4, 50)),
               ((1, 9, 12, 16), (16,)), ((24,), (2, 10, 10, 24)), ((1, 7, 7, 1030), (1030,))]   # per channel


def check_binary(rng, failures, kernels):
    for k in range(42 + len(TABLE_PAIRS)):
        sa_shape, sb_shape = broadcast_pair(rng, k) if k < 42 else TABLE_PAIRS[k - 42]
        if k % 3 == 1:
            sa_shape, sb_shape = sb_shape, sa_shape
        za, zb, zo = (int(v) for v in rng.integers(-128, 128, 3))
        sa, sb, so = (float(v) for v in rng.uniform(0.01, 0.2, 3))
        if k % 5 == 4:                     # very different scales, an output scale giving a multiplier above 1
            sa, so = sa * 40, so / 30
        a = rng.integers(-128, 128, size=sa_shape).astype(np.int8)
        b = rng.integers(-128, 128, size=sb_shape).astype(np.int8)
        act = ACTIVATIONS[k % 4]
        for which in ("ADD", "SUB", "MUL"):
            for rounding in (0, 1):
                want = binary_expect(which, a, b, za, zb, zo, sa, sb, so, rounding, act)
                compare(failures, f"{which} {list(a.shape)} x {list(b.shape)} {act} rounding {rounding}",
                        run_binary(which, a, b, za, zb, zo, sa, sb, so, rounding, act, kernels), want)


MEAN_CASES = [((1, 7, 5, 16), [1, 2]), ((1, 6, 9, 17), [1, 2]), ((1, 25, 5, 64), [1, 2]), ((1, 3, 4, 70), [2, 1]),
              ((1, 5, 5, 1), [1, 2]), ((2, 5, 7, 9), [0, 2]), ((1, 33, 20, 17), [1]), ((1, 33, 20, 17), [2, 3]),
              ((3, 4, 19), [2]), ((4, 30), [0]), ((2, 3, 5, 7, 11), [1, 3]), ((1, 2, 3, 129), [-3, -2])]


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, kernels = [], set()
    check_tables(rng, failures, kernels)
    check_binary(rng, failures, kernels)
    check_mean(rng, failures, kernels, MEAN_CASES)
    report(kernels, failures)


main()
'''

EXPECTED = {"avx512vnni": ("add_int8_avx512", "mul_int8_avx512"), "avx512": ("add_int8_avx2", "mul_int8_avx2"),
            "avx2": ("add_int8_avx2", "mul_int8_avx2"), "avxvnni": ("add_int8_avx2", "mul_int8_avx2"), "scalar": ("add_int8", "mul_int8"),
            "neon": ("add_int8", "mul_int8"), "neon_dotprod": ("add_int8", "mul_int8"),
            "neon_i8mm": ("add_int8", "mul_int8")}


@pytest.mark.parametrize("forced", PATHS)
def test_table_lookups_broadcast_binary_ops_and_mean_are_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK, 3)
    for name in EXPECTED[forced]:
        assert name in kernels, kernels
