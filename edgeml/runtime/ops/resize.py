"""RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR (cython_ops/include/em_resize.h): the source rows, columns and
weights of every output row and column computed here, once, in LiteRT's reference arithmetic (float32 for
float and uint8 data and for nearest neighbour, 10-bit fixed point for int8 / int16 data).  uint8 held as int8
(options[UINT8]) runs the uint8 kernel, which flips the sign bits as it reads and writes."""
from __future__ import annotations

import math

import numpy as np

from cython_ops import load_resize
from edgeml.errors import ModelFormatError
from edgeml.ir import UINT8, Op
from edgeml.runtime.ops.element_types import (DTYPE_CODES, F32, I8, I16, U8, U16, dtype_code,
                                              require_equal_quantization, require_same_type)
from edgeml.runtime.plan import Ctx, OpSpec, Step, address

F = np.float32


def resize_operands(ctx: Ctx, op: Op):
    """(input, output, [batch, in_h, in_w, depth], out_h, out_w, align_corners, half_pixel_centers), checked as
    LiteRT's Prepare checks them; sets the output shape."""
    x, size, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    xs = list(ctx.shape(x))
    if len(xs) != 4:
        raise ModelFormatError(f"{op.describe()}: input {x.describe()} must be 4-D (NHWC), got {xs}")
    if 0 in xs[1:3]:
        raise ModelFormatError(f"{op.describe()}: cannot resize the empty image {xs} of {x.describe()}")
    if size.dtype != np.int32 or tuple(ctx.shape(size)) != (2,):
        raise ModelFormatError(f"{op.describe()}: size {size.describe()} must be 2 int32 values")
    out_h, out_w = (int(v) for v in ctx.const(size, f"{op.describe()} size"))
    if out_h <= 0 or out_w <= 0:
        raise ModelFormatError(f"{op.describe()}: output size {[out_h, out_w]} must be positive")
    align = bool(op.options.get("align_corners", False))
    half = bool(op.options.get("half_pixel_centers", False))
    if align and half:
        raise ModelFormatError(f"{op.describe()}: align_corners and half_pixel_centers cannot both be set")
    require_same_type(op, x, y)
    require_equal_quantization(op, x, y)
    ctx.set_output(op, 0, (xs[0], out_h, out_w, xs[3]))
    return x, y, xs, out_h, out_w, align, half


def float_scale(in_size: int, out_size: int, align: bool) -> np.float32:
    if align and out_size > 1:
        return F(in_size - 1) / F(out_size - 1)
    return F(in_size) / F(out_size)


def bilinear_float_axis(in_size: int, out_size: int, align: bool, half: bool):
    """LiteRT's float ComputeInterpolationValues for each output coordinate: (pairs of source indices, the
    fraction input - lower as float32), in float32 vector arithmetic (each operation rounds as the scalar one;
    bilinear_float_axis_loop is its element-by-element twin)."""
    scale = float_scale(in_size, out_size, align)
    v = np.arange(out_size, dtype=np.float32)
    pos = (v + F(0.5)) * scale - F(0.5) if half else v * scale
    lower = np.maximum(np.floor(pos), F(0)).astype(np.int32)
    pairs = np.empty((out_size, 2), np.int32)
    pairs[:, 0] = lower
    pairs[:, 1] = np.minimum(np.ceil(pos).astype(np.int64), in_size - 1)
    return pairs, (pos - lower.astype(np.float32)).astype(np.float32)


def bilinear_float_axis_loop(in_size: int, out_size: int, align: bool, half: bool):
    """bilinear_float_axis one coordinate at a time, in float32 scalars."""
    scale = float_scale(in_size, out_size, align)
    pairs = np.zeros((out_size, 2), np.int32)
    frac = np.zeros(out_size, np.float32)
    for v in range(out_size):
        pos = (F(v) + F(0.5)) * scale - F(0.5) if half else F(v) * scale
        lower = max(int(math.floor(pos)), 0)
        pairs[v] = lower, min(int(math.ceil(pos)), in_size - 1)
        frac[v] = pos - F(lower)
    return pairs, frac


def c_div(a: int, b: int) -> int:
    """C's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def integer_scale(in_size: int, out_size: int, align: bool) -> int:
    if align and out_size > 1:
        return ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    return ((1 << 10) * in_size + out_size // 2) // out_size


def truncated_quotient(a: np.ndarray, b: int) -> np.ndarray:
    """C's a / b on int64 (toward zero) for b > 0."""
    return np.where(a >= 0, a // b, -((-a) // b))


def bilinear_integer_axis(in_size: int, out_size: int, align: bool, half: bool):
    """LiteRT's ComputeInterpolationValuesInteger: (pairs of source indices, input - 1024 * lower), in int64 vector
    arithmetic (bilinear_integer_axis_loop is its element-by-element twin)."""
    scale = integer_scale(in_size, out_size, align)
    pos = np.arange(out_size, dtype=np.int64) * scale
    if half:
        pos += scale // 2 - (1 << 9)
    lower = np.maximum(truncated_quotient(pos, 1 << 10), 0)
    pairs = np.empty((out_size, 2), np.int32)
    pairs[:, 0] = lower
    pairs[:, 1] = np.minimum(truncated_quotient(pos + (1 << 10) - 1, 1 << 10), in_size - 1)
    return pairs, (pos - (1 << 10) * lower).astype(np.int32)


def bilinear_integer_axis_loop(in_size: int, out_size: int, align: bool, half: bool):
    """bilinear_integer_axis one coordinate at a time, in Python integers."""
    scale = integer_scale(in_size, out_size, align)
    pairs = np.zeros((out_size, 2), np.int32)
    frac = np.zeros(out_size, np.int32)
    for v in range(out_size):
        pos = v * scale + scale // 2 - (1 << 9) if half else v * scale
        lower = max(c_div(pos, 1 << 10), 0)
        pairs[v] = lower, min(c_div(pos + (1 << 10) - 1, 1 << 10), in_size - 1)
        frac[v] = pos - (1 << 10) * lower
    return pairs, frac


def resize_step(op: Op, xi: int, yi: int, kernel: str, ints: dict, tables: list) -> Step:
    """The step of either resize: its kernel over the kept tables (rows, columns[, row weights, column weights])."""
    names = ("y_index", "x_index", "y_weight", "x_weight")

    def make(addr):
        ptrs = dict(input=addr(xi), output=addr(yi))
        for name, table in zip(names, tables):
            ptrs[name] = address(table)
        return ptrs, ints, {}
    return Step(op, kernel, make, 0, 0)


def shell_step(ctx: Ctx, op: Op, bilinear: bool):
    """The resize's step built by load_resize.resize_shell (checks and tables in one call), or None: its Python
    twin below then decides."""
    made = load_resize.resize_shell(ctx, op, bilinear, DTYPE_CODES, bool(op.options.get(UINT8)))
    return None if made is None else resize_step(op, *made)


def prepare_resize_bilinear(ctx: Ctx, op: Op) -> Step:
    step = shell_step(ctx, op, True)
    if step is not None:
        return step
    x, y, xs, out_h, out_w, align, half = resize_operands(ctx, op)
    code = dtype_code(op, x, (F32, U8, I8, I16, U16))
    held_uint8 = x.dtype == I8 and bool(op.options.get(UINT8))    # the u8 kernel flips the sign bits itself
    if x.dtype in (F32, U8) or held_uint8:   # LiteRT's reference: the float template for float and uint8
        axis = bilinear_float_axis
        kernel = "resize_bilinear_f32" if x.dtype == F32 else "resize_bilinear_u8"
    else:
        axis = bilinear_integer_axis
        kernel = "resize_bilinear_int"
    (ys, wy), (xs_, wx) = axis(xs[1], out_h, align, half), axis(xs[2], out_w, align, half)
    tables = [ctx.keep_array(a) for a in (ys, xs_, wy, wx)]
    ints = dict(batch=xs[0], in_h=xs[1], in_w=xs[2], depth=xs[3], out_h=out_h, out_w=out_w, dtype=code,
                mode=ctx.rounding)
    return resize_step(op, x.index, y.index, kernel, ints, tables)


def nearest_axis(in_size: int, out_size: int, align: bool, half: bool) -> np.ndarray:
    """LiteRT's GetNearestNeighbor for each output coordinate (float32 arithmetic; align_corners rounds half
    away from zero, otherwise floor), as vectors (nearest_axis_loop is its element-by-element twin)."""
    scale = float_scale(in_size, out_size, align)
    pos = ((np.arange(out_size, dtype=np.float32) + (F(0.5) if half else F(0.0))) * scale).astype(np.float64)
    index = np.floor(np.abs(pos) + 0.5) * np.where(pos >= 0, 1.0, -1.0) if align else np.floor(pos)
    index = np.minimum(index.astype(np.int64), in_size - 1)
    return (np.maximum(index, 0) if half else index).astype(np.int32)


def nearest_axis_loop(in_size: int, out_size: int, align: bool, half: bool) -> np.ndarray:
    """nearest_axis one coordinate at a time."""
    scale = float_scale(in_size, out_size, align)
    offset = F(0.5) if half else F(0.0)
    out = np.zeros(out_size, np.int32)
    for v in range(out_size):
        pos = float((F(v) + offset) * scale)
        index = int(math.floor(abs(pos) + 0.5) * (1 if pos >= 0 else -1)) if align else int(math.floor(pos))
        index = min(index, in_size - 1)
        out[v] = max(index, 0) if half else index
    return out


def prepare_resize_nearest(ctx: Ctx, op: Op) -> Step:
    step = shell_step(ctx, op, False)
    if step is not None:
        return step
    x, y, xs, out_h, out_w, align, half = resize_operands(ctx, op)
    dtype_code(op, x, (F32, U8, I8, I16))
    rows, cols = (ctx.keep_array(nearest_axis(n, m, align, half)) for n, m in ((xs[1], out_h), (xs[2], out_w)))
    ints = dict(batch=xs[0], in_h=xs[1], in_w=xs[2], pixel_bytes=xs[3] * x.dtype.itemsize, out_h=out_h, out_w=out_w)
    return resize_step(op, x.index, y.index, "resize_nearest", ints, [rows, cols])


OPS = {
    "RESIZE_BILINEAR": OpSpec(prepare_resize_bilinear, max_version=4, output_types=None),
    "RESIZE_NEAREST_NEIGHBOR": OpSpec(prepare_resize_nearest, max_version=4, output_types=None),
}
