"""Data-movement and softmax kernels sped up for issue 15's per-op floors, on every ISA path EDGEML_ISA can force,
against NumPy expectations written from LiteRT's reference formulas (not from the kernels):

- SOFTMAX int8 (reference_ops::Softmax: gemmlowp fixed point, Q5.26 differences, Q12.19 sum, GetReciprocal's
  Newton-Raphson), row lengths 1 .. 33, 91 and long rows near their maximum (300, 1001, 4100: shifts of 32 or
  more, a wrapped sum), every one of the 65,536 two-value rows (the pair table), int8
  extremes, several input scales and betas, double and single rounding;
- FLIP_SIGN_BIT (uint8 <-> int8 at a graph's boundary: q ^ 0x80) over lengths around the vector widths;
- RESIZE_BILINEAR on uint8 held as int8 (options[UINT8]): the uint8 float template, its bytes flipped on the way
  in and out, so that no FLIP_SIGN_BIT pass surrounds it;
- REDUCE_MAX / REDUCE_MIN / SUM / REDUCE_PROD of unquantized values by runs (kept or reduced innermost dim, every
  axis, keep_dims), float sums in the reference's input order;
- CONCATENATION and SPLIT with rows of a few bytes (channel slices of NHWC pixels) and long ones.

One subprocess per path (the path is fixed per process)."""
import pytest

from test_kernel_paths import PATHS, run_on_path

CHECK = r'''
import numpy as np
from edgeml.ir import UINT8, Graph, Op
from edgeml.runtime.compile import compile_graph
from edgeml.runtime.ops.activations import softmax_int8_params
from tests.path_cases import (I64, INT32_MAX, mbqm, rdbp, report, resize_bilinear_u8_expect, run_graph,
                              sat_shift_left, srdhm, tensor, wrap32)

rng = np.random.default_rng(15)
failures, kernels = [], set()


def run(graph, x, rounding=0):
    return run_graph(graph, (x,), rounding, kernels)


# ----- SOFTMAX: gemmlowp's exp and GetReciprocal over path_cases' fixed-point helpers ------------------------------

def exp_neg_quarter(a):
    x = wrap32(a + 2**28)
    x2 = srdhm(x, x)
    x3, x4 = srdhm(x2, x), srdhm(x2, x2)
    poly = rdbp(wrap32(srdhm(wrap32(rdbp(x4, 2) + x3), 715827883) + x2), 1)
    return wrap32(1895147668 + srdhm(1895147668, wrap32(x + poly)))


def exp_on_negative_values(a, integer_bits=5):
    frac = 31 - integer_bits
    quarter = 1 << (frac - 2)
    a_mod = wrap32((a & (quarter - 1)) - quarter)
    result = exp_neg_quarter(sat_shift_left(a_mod, integer_bits))
    remainder = wrap32(a_mod - a)
    for k, mult in zip(range(-2, 5), (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)):
        if integer_bits > k:
            result = np.where(remainder & (1 << (frac + k)), srdhm(result, mult), result)
    return np.where(a == 0, INT32_MAX, result)


def reciprocal(x, integer_bits=12):
    """GetReciprocal: (Q0.31 scale, num_bits_over_unit)"""
    xu = x % 2**32                                                      # as uint32: a wrapped sum has no headroom
    headroom_plus_one = 32 - np.frexp(xu.astype(np.float64))[1]         # count of leading zeros (x != 0)
    shifted = wrap32((xu << headroom_plus_one) - 2**31)
    half_den = (shifted + INT32_MAX + 1) // 2                           # rounding half sum with 1 (>= 0)
    y = wrap32(1515870810 + srdhm(half_den, -1010580540))
    for _ in range(3):
        one_minus = wrap32((1 << 29) - srdhm(half_den, y))
        y = wrap32(y + sat_shift_left(srdhm(y, one_minus), 2))
    return sat_shift_left(y, 1), integer_bits - headroom_plus_one


def softmax_expect(x, input_scale, beta, rounding):
    p = softmax_int8_params(input_scale, beta, rounding)
    m, left, diff_min = p["input_multiplier"], p["input_left_shift"], p["diff_min"]
    xi = x.astype(I64)
    diff = xi - xi.max(axis=-1, keepdims=True)
    scaled = mbqm(diff, m, left, rounding)          # MultiplyByQuantizedMultiplierGreaterThanOne
    e = np.where(diff >= diff_min, exp_on_negative_values(scaled), 0)
    total = wrap32(rdbp(e, 12).sum(axis=-1, keepdims=True))
    scale, bits = reciprocal(total)
    y = rdbp(srdhm(scale, e), bits + 31 - 8)
    return np.where(diff >= diff_min, np.clip(y - 128, -128, 127), -128).astype(np.int8)


def check_softmax(x, scale, beta, rounding):
    """One SOFTMAX op over the rows of x (int8, input scale `scale`, output 1/256 - 128) against softmax_expect."""
    shape = (1,) + x.shape
    ts = [tensor(0, shape, np.int8, scale, -7), tensor(1, shape, np.int8, 1 / 256, -128)]
    got = run(Graph(ts, [Op(0, "SOFTMAX", 1, [0], [1], dict(beta=beta))], [0], [1]), x[None], rounding)[0]
    want = softmax_expect(x, scale, beta, rounding)
    if not np.array_equal(got, want):
        failures.append(f"SOFTMAX {x.shape} scale {scale} beta {beta} rounding {rounding}: "
                        f"{int((got != want).sum())} of {want.size} differ")


SCALES = ((1 / 256, 1.0), (0.1, 1.0), (0.5, 3.0), (0.02, 0.4), (2e-6, 1.0), (1.0, 1.0), (0.0625, 10.0))
pairs = np.stack(np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)), -1).reshape(-1, 2).astype(np.int8)
for scale, beta in SCALES:
    for rounding in (0, 1):
        for depth in list(range(1, 34)) + [91, 300, 1001, 4100]:
            if depth == 2:
                x = pairs
            elif depth > 100:       # long rows near their maximum: final shifts of 32 or more, a wrapped sum
                x = rng.integers(-128, 128, (3, depth)).astype(np.int8)
                x[0] = 127
                x[1, : depth // 2] = 126
                x[2] = -128
                x[2, 7] = 127
            else:
                x = rng.integers(-128, 128, (37, depth)).astype(np.int8)
                x[0] = 127
                x[1] = -128
                x[2, ::2] = 127
                x[3, 1::3] = -128
                x[4] = 126 - rng.integers(0, 3, depth)        # near-ties with the maximum
            check_softmax(x, scale, beta, rounding)

for n in list(range(1, 70)) + [127, 128, 129, 191, 4096 + 13, 100003]:
    x = rng.integers(0, 256, n).astype(np.uint8)
    ts = [tensor(0, (n,), np.uint8, 0.05, 3), tensor(1, (n,), np.int8, 0.05, 3 - 128)]
    got = run(Graph(ts, [Op(0, "FLIP_SIGN_BIT", 1, [0], [1], {})], [0], [1]), x)
    if not np.array_equal(got, (x ^ 0x80).view(np.int8)):
        failures.append(f"FLIP_SIGN_BIT {n}: {int((got != (x ^ 0x80).view(np.int8)).sum())} differ")


RESIZE_CASES = [  # n, ih, iw, c, oh, ow
    (1, 4, 5, 21, 9, 13), (2, 3, 3, 8, 7, 5), (1, 5, 4, 9, 11, 8), (1, 6, 7, 16, 3, 4), (1, 2, 3, 17, 5, 9),
    (1, 7, 5, 33, 7, 12), (1, 4, 4, 3, 9, 9), (1, 5, 6, 1, 8, 3), (1, 3, 5, 7, 6, 10), (1, 1, 1, 32, 2, 2),
    (1, 3, 130, 33, 4, 140), (1, 3, 3, 21, 17, 17)]
for n, ih, iw, c, oh, ow in RESIZE_CASES:
    u = rng.integers(0, 256, (n, ih, iw, c)).astype(np.uint8)
    u.reshape(-1)[:4], u.reshape(-1)[4:8] = 255, 0
    for align, half in ((False, False), (True, False), (False, True)):
        size = np.array([oh, ow], np.int32)
        ts = [tensor(0, u.shape, np.int8, 0.05, 3 - 128), tensor(1, (2,), np.int32, None, 0, size),
              tensor(2, (n, oh, ow, c), np.int8, 0.05, 3 - 128)]
        op = Op(0, "RESIZE_BILINEAR", 1, [0, 1], [2], {"align_corners": align, "half_pixel_centers": half, UINT8: True})
        got = run(Graph(ts, [op], [0], [2]), (u ^ 0x80).view(np.int8))
        want = (resize_bilinear_u8_expect(u, oh, ow, align, half) ^ 0x80).view(np.int8)
        if not np.array_equal(got, want):
            failures.append(f"RESIZE_BILINEAR uint8 held as int8 {(n, ih, iw, c, oh, ow)} align={align} half={half}: "
                            f"{int((got != want).sum())} of {want.size} differ")
REDUCE_CASES = [  # input shape, axes, keep_dims
    ((1, 40, 3, 16), (1, 2), False), ((2, 5, 7, 33), (1,), True), ((3, 17), (-1,), False), ((4, 6, 9), (0, 2), False),
    ((2, 3, 4, 5), (0, 1, 2, 3), False), ((5, 1, 70), (2, 0), True), ((1, 2, 2, 256), (1, 2), False),
    # (int8 / uint8 max and min over a kept innermost run of 16+: em_reduce_minmax8_avx2's 32 / 16 / tail columns,
    # up to 8 rows folded at a time, reduced dims outside kept ones)
    ((6, 2, 20), (1,), False), ((3, 20, 5, 48), (0, 2), True), ((2, 11, 3, 64), (1, 2), False),
    ((1, 17, 1, 47), (1,), False)]
NUMPY = {"REDUCE_MAX": np.max, "REDUCE_MIN": np.min, "SUM": np.sum, "REDUCE_PROD": np.prod}
for shape, axes, keep in REDUCE_CASES:
    for dtype in (np.int8, np.uint8, np.int16, np.int32, np.float32):
        for name in ("REDUCE_MAX", "REDUCE_MIN", "SUM", "REDUCE_PROD"):
            if dtype in (np.int8, np.uint8, np.int16) and name in ("SUM", "REDUCE_PROD"):
                continue            # those requantize (another kernel)
            info = np.iinfo(dtype) if dtype != np.float32 else None
            x = (rng.integers(info.min, int(info.max) + 1, shape) if info else rng.normal(0, 3, shape)).astype(dtype)
            x.reshape(-1)[::5] = info.max if info else 1e30
            want = NUMPY[name](x, axis=tuple(axes), keepdims=keep)
            if name == "SUM" and dtype == np.float32:       # the reference's order: input order, float32 sums
                moved = np.moveaxis(x, sorted(a % len(shape) for a in axes), list(range(-len(axes), 0)))
                acc = np.zeros(moved.shape[:moved.ndim - len(axes)], np.float32)
                for v in moved.reshape(acc.shape + (-1,)).transpose((acc.ndim,) + tuple(range(acc.ndim))):
                    acc = (acc + v).astype(np.float32)
                want = acc.reshape(want.shape)
            ts = [tensor(0, shape, dtype, None), tensor(1, (len(axes),), np.int32, None, 0, np.array(axes, np.int32)),
                  tensor(2, want.shape, dtype, None)]
            op = Op(0, name, 1, [0, 1], [2], {"keep_dims": keep})
            got = run(Graph(ts, [op], [0], [2]), x)
            if not np.array_equal(got, want.astype(dtype)):
                failures.append(f"{name} {np.dtype(dtype)} {shape} axes {axes}: {int((got != want).sum())} differ")
CONCAT_CASES = [  # shapes of the inputs, axis
    ([(1, 8, 8, 3), (1, 8, 8, 1), (1, 8, 8, 2)], 3), ([(1, 8, 8, 1), (1, 8, 8, 1)], -1), ([(2, 5, 16), (2, 5, 8)], 2),
    ([(3, 4, 5), (3, 4, 7), (3, 4, 17), (3, 4, 33)], 2), ([(1, 9, 4), (1, 9, 4), (1, 9, 12), (1, 9, 3)], 2),
    ([(2, 3, 40), (2, 3, 30)], 2), ([(2, 3, 4), (2, 1, 4)], 1)]
for shapes, axis in CONCAT_CASES:
    for dtype in (np.int8, np.int16, np.float32):
        xs = [rng.integers(-100, 100, sh).astype(dtype) for sh in shapes]
        want = np.concatenate(xs, axis=axis)
        ts = [tensor(k, sh, dtype, 0.05, 3) for k, sh in enumerate(shapes)]
        ts.append(tensor(len(shapes), want.shape, dtype, 0.05, 3))
        graph = Graph(ts, [Op(0, "CONCATENATION", 1, list(range(len(shapes))), [len(shapes)], {"axis": axis})],
                      list(range(len(shapes))), [len(shapes)])
        if not np.array_equal(run_graph(graph, xs, 0, kernels), want):
            failures.append(f"CONCATENATION {np.dtype(dtype)} {shapes} axis {axis}")

SPLIT_CASES = [((1, 8, 8, 6), 3, 6), ((2, 6, 9), 1, 3), ((4, 40), -1, 2), ((3, 5, 7, 2), 0, 3), ((1, 4, 4, 66), 3, 3)]
for shape, axis, n in SPLIT_CASES:
    for dtype in (np.int8, np.float32):
        x = rng.integers(-100, 100, shape).astype(dtype)
        want = np.split(x, n, axis=axis)
        ts = [tensor(0, (), np.int32, None, 0, np.array(axis, np.int32)), tensor(1, shape, dtype, 0.05, 3)]
        ts += [tensor(2 + k, w.shape, dtype, 0.05, 3) for k, w in enumerate(want)]
        graph = Graph(ts, [Op(0, "SPLIT", 1, [0, 1], [2 + k for k in range(n)], {"num_splits": n})], [1],
                      [2 + k for k in range(n)])
        plan = compile_graph(graph, {}, 0)
        kernels.update(st.kernel for st in plan.steps)
        plan.view(1)[...] = x
        plan.engine.invoke()
        for k, w in enumerate(want):
            if not np.array_equal(plan.view(2 + k), w):
                failures.append(f"SPLIT {np.dtype(dtype)} {shape} axis {axis} into {n}: piece {k}")
report(kernels, failures)
'''


@pytest.mark.parametrize("forced", [p for p in PATHS if not p.startswith("neon")])
def test_softmax_flip_and_held_uint8_resize_are_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK)
    for name in ("softmax_lut_int8", "onnx_flip_sign_bit", "resize_bilinear_u8", "reduce", "concat",
                 "gather_strided"):
        assert name in kernels, kernels
