"""int8 ADD / SUB / MUL's float-estimate loops (em_binary_estimate in em_elementwise.h: a float estimate rounded
to the nearest integer, the exact integer arithmetic for vectors holding a lane near a tie) on every ISA path
EDGEML_ISA can force, against NumPy expectations written from LiteRT's reference formulas: every one of the
65,536 input pairs, for scales drawn at random and for scales that put many sums exactly on a tie (equal scales,
ratios of powers of two, MUL multipliers of exactly 2^-k), in both rounding modes, with each fused activation, on
long runs, on one-element operands (the run's 256-entry table) and on awkward broadcasts (odd channels, size-1 axes
in the middle, batch > 1, rank 5); and int8 MEAN's vector sums (em_reduce.h: whole runs, blocks of rows, the
vector requantization of the sums).  As in test_kernel_paths.py each path runs in a subprocess."""
import pytest

from test_kernel_paths import PATHS, run_on_path

CHECK = r'''
import sys
import numpy as np
from edgeml import numerics as Q
from edgeml.ir import Graph, Op
from tests.path_cases import (ACTIVATIONS, ESTIMATE_MUL_SCALES, ESTIMATE_SCALES, I64, binary_expect, check_broadcasts,
                              check_mean, compare, mbqm, report, run_binary, run_graph, tensor)

BROADCASTS = [((1, 9, 13, 17), (1, 1, 13, 17)), ((1, 9, 13, 17), (1, 9, 1, 17)), ((1, 9, 13, 17), (1, 9, 1, 1)),
              ((2, 5, 3, 71), (2, 5, 3, 71)), ((3, 1, 7, 5), (3, 4, 1, 5)), ((2, 3, 1, 4, 9), (1, 3, 5, 1, 9)),
              ((1, 7, 11, 19), ()), ((1, 64, 50, 32), (1, 1, 50, 32)), ((1, 64, 50, 32), (1, 64, 1, 1)),
              ((1, 40, 33), (33,)), ((700,), (1,)), ((2, 1, 1, 1), (2, 3, 4, 50))]


def check_every_pair(rng, failures, kernels):
    """All 65,536 (x1, x2): as two equal-shaped runs, and as a column against a row (one-element runs)."""
    values = np.arange(-128, 128, dtype=np.int64).astype(np.int8)
    col, row = values.reshape(256, 1), values.reshape(1, 256)
    flat1, flat2 = np.repeat(values, 256), np.tile(values, 256)
    for which, scales in (("ADD", ESTIMATE_SCALES), ("SUB", ESTIMATE_SCALES), ("MUL", ESTIMATE_MUL_SCALES)):
        for k, (sa, sb, so) in enumerate(scales):
            za, zb, zo = (int(v) for v in rng.integers(-128, 128, 3))
            if k % 3 == 0:
                za, zb, zo = 0, -128, 5
            for rounding in (0, 1):
                act = ACTIVATIONS[(k + rounding) % 4] if k % 2 else "NONE"
                label = f"{which} scales {(sa, sb, so)} zps {(za, zb, zo)} rounding {rounding} {act}"
                want = binary_expect(which, flat1, flat2, za, zb, zo, sa, sb, so, rounding, act)
                got = run_binary(which, flat1, flat2, za, zb, zo, sa, sb, so, rounding, act, kernels)
                compare(failures, label + " flat", got, want)
                got = run_binary(which, col, row, za, zb, zo, sa, sb, so, rounding, act, kernels)
                compare(failures, label + " column x row", got, want.reshape(256, 256))


# MEAN int8 (path_cases.check_mean): runs summed at once with tails, blocks of rows past 256 (the
# 16-bit partial sums), column counts off the vector widths, rank 5, small counts (multipliers above 1)
MEAN_CASES = [((1, 64, 50, 32), [2, 3]), ((1, 64, 50, 32), [1]), ((1, 64, 50, 32), [2]), ((1, 7, 67, 3), [2, 3]),
              ((1, 600, 37), [1]), ((2, 300, 5, 17), [1, 2]), ((3, 1, 1000), [2]), ((1, 5, 7, 9, 11), [0, 2, 4]),
              ((1, 2, 3, 129), [-3, -2]), ((4, 2, 30), [1]), ((2, 513, 64), [1]), ((6, 2, 3), [0]),
              ((1, 33, 20, 17), [1, 2]), ((1, 9, 31, 8), [2])]


def check_mean_extremes(rng, failures, kernels):
    """Sums at the int16 partial sums' limits: 256 and more rows of -128 or 127 (and a run of them)."""
    for shape, axes, value in (((1, 700, 40), [1], -128), ((1, 700, 40), [1], 127), ((1, 256, 33), [1], -128),
                               ((2, 3000), [1], -128), ((1, 300, 2, 20), [1, 2], 127)):
        x = np.full(shape, value, np.int8)
        x.reshape(-1)[:: 7] = -128 if value > 0 else 127           # a few of the other extreme
        za, zo, sa, so = 3, -7, 0.05, 0.04
        out_shape = tuple(1 if d in axes else n for d, n in enumerate(shape))
        count = int(np.prod([shape[d] for d in axes]))
        axes_t = tensor(1, (len(axes),), np.int32, None, 0, np.array(axes, np.int32))
        for rounding in (0, 1):
            g = Graph([tensor(0, shape, np.int8, sa, za), axes_t, tensor(2, out_shape, np.int8, so, zo)],
                      [Op(0, "MEAN", 1, [0, 1], [2], {"keep_dims": True})], [0], [2])
            got = run_graph(g, (x,), rounding, kernels)
            m, sh = Q.mean_multiplier(np.float64(np.float32(sa)) / np.float64(np.float32(so)), count, rounding)
            acc = x.astype(I64).sum(axis=tuple(axes), keepdims=True) - za * count
            want = np.clip(mbqm(acc, m, sh, rounding) + zo, -128, 127).astype(np.int8)
            compare(failures, f"MEAN {list(shape)} axes {axes} of {value} rounding {rounding}", got, want)


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, kernels = [], set()
    check_every_pair(rng, failures, kernels)
    check_broadcasts(rng, failures, kernels, BROADCASTS, ESTIMATE_SCALES, ESTIMATE_MUL_SCALES)
    check_mean(rng, failures, kernels, MEAN_CASES)
    check_mean_extremes(rng, failures, kernels)
    report(kernels, failures)


main()
'''

EXPECTED = {"avx512vnni": ("add_int8_avx512", "mul_int8_avx512"), "avx512": ("add_int8_avx2", "mul_int8_avx2"),
            "avx2": ("add_int8_avx2", "mul_int8_avx2"), "avxvnni": ("add_int8_avx2", "mul_int8_avx2"),
            "scalar": ("add_int8", "mul_int8"), "neon": ("add_int8", "mul_int8"),
            "neon_dotprod": ("add_int8", "mul_int8"), "neon_i8mm": ("add_int8", "mul_int8")}
EXPECTED = {path: names + ("mean",) for path, names in EXPECTED.items()}


@pytest.mark.parametrize("forced", PATHS)
def test_estimate_loops_of_add_sub_mul_and_int8_mean_sums_are_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK, 5)
    for name in EXPECTED[forced]:
        assert name in kernels, kernels


QLINEAR_ADD_CHECK = r'''
import numpy as np
from onnx import helper
import edgeml
from tests.onnx_models import make_model, ort_run
from tests.path_cases import report

F = np.float32
MS = [("com.microsoft", 1)]
rng = np.random.default_rng(7)
failures, kernels = [], set()
# spans past the vector widths with tails, an operand broadcast along the span, per channel, scalar
SHAPES = [((1, 77), (1, 77)), ((2, 3, 41), (41,)), ((1, 5, 7, 33), (1, 5, 7, 1)), ((300,), (1,)), ((4, 1, 24), (4, 3, 24)),
          ((1, 2, 3, 16), (1, 2, 3, 16)), ((9,), (9,))]
for dtype in (np.uint8, np.int8):
    lo, hi = (0, 255) if dtype == np.uint8 else (-128, 127)
    for k, (sa, sb) in enumerate(SHAPES):
        s1, s2, s3 = (F(v) for v in rng.uniform(0.01, 0.2, 3))
        z1, z2, z3 = (dtype(v) for v in rng.integers(lo, hi + 1, 3))
        inits = {"s1": np.array(s1), "z1": np.array(z1), "s2": np.array(s2), "z2": np.array(z2), "s3": np.array(s3),
                 "z3": np.array(z3)}
        node = helper.make_node("QLinearAdd", ["a", "s1", "z1", "b", "s2", "z2", "s3", "z3"], ["y"],
                                domain="com.microsoft")
        model = make_model([node], [("a", dtype, sa), ("b", dtype, sb)], [("y", dtype, None)], inits, extra_opsets=MS)
        it = edgeml.Interpreter(model)
        kernels.update(s.kernel for s in it.plan.steps)
        for _ in range(3):
            feeds = {"a": rng.integers(lo, hi + 1, sa).astype(dtype), "b": rng.integers(lo, hi + 1, sb).astype(dtype)}
            got, want = it.run(feeds), ort_run(model, feeds)[0]
            if not np.array_equal(got, want):
                failures.append(f"QLinearAdd {dtype.__name__} {sa} + {sb}: {int((got != want).sum())} differ")
report(kernels, failures)
'''


@pytest.mark.parametrize("forced", ["scalar", "avx2", "avx512", "avx512vnni"])
def test_qlinear_add_vector_spans_match_onnxruntime_on_every_path(forced):
    pytest.importorskip("onnxruntime")
    kernels = run_on_path(forced, QLINEAR_ADD_CHECK)
    assert "onnx_qlinear_add" in kernels, kernels
