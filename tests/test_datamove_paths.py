"""Data-movement kernels with vector bodies on every ISA path EDGEML_ISA can force, against NumPy expectations
written from LiteRT's reference formulas (not from the kernels):

- RESIZE_BILINEAR uint8 (the reference's float template: four products and sums in float32, + 0.5, truncated)
  and int8 (ResizeBilinearInteger: 10-bit weights, the 2^-20 sum rounded half away from zero, or half up with
  single rounding), with align_corners / half_pixel_centers / neither, up- and downscaling, batch 2, depths
  around the vector widths (1, 3, 7, 8, 9, 16, 17, 21, 33, 64), rows wider than the uint8 kernel's row buffer;
- ARG_MAX / ARG_MIN of int8 and uint8 over the last axis (sizes 1 .. 40, ties: the first index) and a middle
  axis, int32 and int64 outputs.

One subprocess per path (the path is fixed per process)."""
import pytest

from test_kernel_paths import PATHS, run_on_path

CHECK = r'''
import numpy as np
from edgeml.ir import Graph, Op
from edgeml.runtime.ops.resize import bilinear_integer_axis
from tests.path_cases import report, resize_bilinear_u8_expect, run_graph, tensor

rng = np.random.default_rng(5)
failures, kernels = [], set()


def run(graph, x, rounding=0):
    return run_graph(graph, (x,), rounding, kernels)


def resize_expect(x, oh, ow, align, half, rounding):
    if x.dtype == np.uint8:
        return resize_bilinear_u8_expect(x, oh, ow, align, half)
    n, ih, iw, c = x.shape
    (ys, fy), (xs, fx) = bilinear_integer_axis(ih, oh, align, half), bilinear_integer_axis(iw, ow, align, half)
    xi = x.astype(np.int64)
    fy, fx = fy.astype(np.int64)[None, :, None, None], fx.astype(np.int64)[None, None, :, None]
    s = (xi[:, ys[:, 0]][:, :, xs[:, 0]] * (1024 - fy) * (1024 - fx) + xi[:, ys[:, 1]][:, :, xs[:, 0]] * fy * (1024 - fx)
         + xi[:, ys[:, 0]][:, :, xs[:, 1]] * (1024 - fy) * fx + xi[:, ys[:, 1]][:, :, xs[:, 1]] * fy * fx)
    if rounding:      # single rounding: half up
        return ((s + (1 << 19)) >> 20).astype(x.dtype)
    q = (np.abs(s) + (1 << 19)) >> 20
    return (np.sign(s) * q).astype(x.dtype)


RESIZE_CASES = [  # n, ih, iw, c, oh, ow
    (1, 4, 5, 21, 9, 13), (2, 3, 3, 8, 7, 5), (1, 5, 4, 9, 11, 8), (1, 6, 7, 16, 3, 4), (1, 2, 3, 17, 5, 9),
    (1, 7, 5, 33, 7, 12), (1, 3, 4, 64, 6, 8), (1, 4, 4, 3, 9, 9), (1, 5, 6, 1, 8, 3), (1, 3, 5, 7, 6, 10),
    (1, 1, 1, 32, 2, 2), (1, 4, 20, 16, 2, 5), (1, 3, 130, 33, 4, 140)]
for n, ih, iw, c, oh, ow in RESIZE_CASES:
    for dtype in (np.uint8, np.int8):
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max + 1, (n, ih, iw, c)).astype(dtype)
        x.reshape(-1)[:4] = info.max      # the extremes saturate nothing
        x.reshape(-1)[4:8] = info.min
        for align, half in ((False, False), (True, False), (False, True)):
            for rounding in ((0, 1) if dtype == np.int8 else (0,)):
                size = np.array([oh, ow], np.int32)
                ts = [tensor(0, x.shape, dtype, 0.05, 3), tensor(1, (2,), np.int32, None, 0, size),
                      tensor(2, (n, oh, ow, c), dtype, 0.05, 3)]
                op = Op(0, "RESIZE_BILINEAR", 1, [0, 1], [2], dict(align_corners=align, half_pixel_centers=half))
                got = run(Graph(ts, [op], [0], [2]), x, rounding)
                want = resize_expect(x, oh, ow, align, half, rounding)
                if not np.array_equal(got, want):
                    failures.append(f"RESIZE_BILINEAR {np.dtype(dtype)} {(n, ih, iw, c, oh, ow)} align={align} "
                                    f"half={half} rounding={rounding}: {int((got != want).sum())} of {want.size} differ")

ARG_CASES = [  # input shape, axis
    ((1, 7, 9, 21), 3), ((1, 5, 5, 1), 3), ((2, 6, 32), 2), ((1, 3, 11, 31), 3), ((1, 4, 40), 2), ((3, 5), 1),
    ((1, 9, 9, 2), 3), ((1, 4, 6, 5), 1), ((1, 33, 17), 2)]
for shape, axis in ARG_CASES:
    for dtype in (np.int8, np.uint8):
        info = np.iinfo(dtype)
        for lo, hi in ((info.min, info.max + 1), (0, 3)):          # (0, 3): many ties
            x = rng.integers(lo, hi, shape).astype(dtype)
            x.reshape(-1)[::7] = info.max
            for is_max in (True, False):
                for out in (np.int32, np.int64):
                    ts = [tensor(0, shape, dtype, 0.05, 3), tensor(1, (), np.int32, None, 0, np.array(axis, np.int32)),
                          tensor(2, shape[:axis] + shape[axis + 1:], out)]
                    name = "ARG_MAX" if is_max else "ARG_MIN"
                    got = run(Graph(ts, [Op(0, name, 1, [0, 1], [2], dict(output_type=4))], [0], [2]), x)
                    want = (np.argmax if is_max else np.argmin)(x, axis=axis)   # first index of ties
                    if not np.array_equal(got, want):
                        failures.append(f"{name} {np.dtype(dtype)} {shape} axis {axis} -> {np.dtype(out)}: "
                                        f"{int((got != want).sum())} of {want.size} differ")
report(kernels, failures)
'''


@pytest.mark.parametrize("forced", [p for p in PATHS if not p.startswith("neon")])
def test_resize_and_arg_max_are_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK)
    for name in ("resize_bilinear_u8", "resize_bilinear_int", "arg_min_max"):
        assert name in kernels, kernels
